"""A Lightning ``Callback`` that attaches :class:`weightdecay.Monitor` to the trainer's optimizers and logs
its records through the trainer's own loggers (TensorBoard, CSV, W&B, ... whatever ``Trainer(logger=)`` has).

    import lightning as L
    from weightdecay.monitors.lightning import MonitorCallback

    callback = MonitorCallback(every=10)
    L.Trainer(max_epochs=3, callbacks=[callback]).fit(module, loader)
    print(callback.monitor.summary())

Needs ``lightning`` (``pip install lightning``); the monitor itself does not.
"""

from __future__ import annotations

import math
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as error:  # pragma: no cover - the message is the point
    from weightdecay.errors import UserError

    raise UserError("weightdecay.monitors.lightning needs Lightning: pip install lightning") from error

from weightdecay.monitors.export import metrics_of
from weightdecay.monitors.monitor import Monitor

__all__ = ["MonitorCallback"]


class MonitorCallback(Callback):
    """Watches every optimizer of the fit with a :class:`weightdecay.Monitor` and logs each recorded step.

    Args:
        every: record every ``every``-th optimizer step.
        log_to_trainer: send the records to ``trainer.loggers`` (``log_metrics`` at the trainer's global step).
        monitor_options: passed on to :class:`weightdecay.Monitor` (``scale_invariant=``, ``log_dir=``, ...).

    After the fit, ``callback.monitor`` (the first optimizer's) and ``callback.monitors`` hold the records.
    """

    def __init__(self, every: int = 10, *, log_to_trainer: bool = True, **monitor_options: Any) -> None:
        super().__init__()
        self.every = every
        self.log_to_trainer = log_to_trainer
        self.monitor_options = monitor_options
        self.monitors: list[Monitor] = []
        self._logged: list[int] = []

    @property
    def monitor(self) -> Monitor | None:
        return self.monitors[0] if self.monitors else None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # By now the optimizers exist and the train loader is loaded (its length is known, unless it has none).
        batches = trainer.num_training_batches
        steps_per_epoch = (max(1, int(batches) // trainer.accumulate_grad_batches)
                           if math.isfinite(batches) and batches > 0 else None)
        total = trainer.estimated_stepping_batches
        total_steps = int(total) if math.isfinite(total) and total > 0 else None
        self.monitors = [Monitor(optimizer, pl_module, every=self.every, steps_per_epoch=steps_per_epoch,
                                 total_steps=total_steps, **self.monitor_options)
                         for optimizer in trainer.optimizers]
        self._logged = [0] * len(self.monitors)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *_args: Any) -> None:
        if not self.log_to_trainer:
            return
        for k, monitor in enumerate(self.monitors):
            new = monitor.records[self._logged[k]:]
            self._logged[k] = len(monitor.records)
            if not new:
                continue
            prefix = "weightdecay" if len(self.monitors) == 1 else f"weightdecay/optimizer{k}"
            for logger in trainer.loggers:
                logger.log_metrics(metrics_of(new, prefix), step=new[-1]["step"])

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        for monitor in self.monitors:
            monitor.remove()
