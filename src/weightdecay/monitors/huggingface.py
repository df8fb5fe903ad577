"""A Hugging Face ``TrainerCallback`` that attaches :class:`weightdecay.Monitor` to the Trainer's optimizer and
hands its records to the Trainer's own reporters (``report_to``: TensorBoard, W&B, ...) at each logging step.

    from transformers import Trainer
    from weightdecay.monitors.huggingface import add_monitor

    trainer = Trainer(model=model, args=args, train_dataset=data)
    callback = add_monitor(trainer, every=10)
    trainer.train()
    print(callback.monitor.summary())

``add_monitor`` puts the callback first, so the reporters that run after it see the monitor's latest values in
the same ``logs`` (and in ``trainer.state.log_history``); a callback passed as ``Trainer(callbacks=[...])``
records just as well but reports only to the callbacks after it. Needs ``transformers`` and ``accelerate``.
weightdecay's own optimizer in the same Trainer, with Trainer's decay groups:
``Trainer(..., optimizer_cls_and_kwargs=weightdecay.optim.huggingface.trainer_optimizer(args, decay="paper"))``.
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - the message is the point
    from weightdecay.errors import UserError

    raise UserError("weightdecay.monitors.huggingface needs transformers: pip install transformers accelerate") \
        from error

import torch

from weightdecay.monitors.export import metrics_of
from weightdecay.monitors.monitor import Monitor

__all__ = ["MonitorTrainerCallback", "add_monitor"]


def _unwrapped(optimizer: Any) -> torch.optim.Optimizer:
    # accelerate's AcceleratedOptimizer forwards step() to the real optimizer, whose hooks are the ones that fire.
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer


class MonitorTrainerCallback(TrainerCallback):
    """Watches the Trainer's optimizer with a :class:`weightdecay.Monitor`; adds the newest recorded step's
    values to each ``logs`` the Trainer reports (``weightdecay/<quantity>/<tensor>``).

    Args:
        every: record every ``every``-th optimizer step.
        monitor_options: passed on to :class:`weightdecay.Monitor` (``scale_invariant=``, ``log_dir=``, ...).
    """

    def __init__(self, every: int = 10, **monitor_options: Any) -> None:
        self.every = every
        self.monitor_options = monitor_options
        self.monitor: Monitor | None = None
        self._reported = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       train_dataloader: Any = None, **_kwargs: Any) -> None:
        steps_per_epoch = None
        if train_dataloader is not None and hasattr(train_dataloader, "__len__"):
            steps_per_epoch = max(1, len(train_dataloader) // max(1, args.gradient_accumulation_steps))
        self.monitor = Monitor(_unwrapped(optimizer), model, every=self.every, steps_per_epoch=steps_per_epoch,
                               total_steps=state.max_steps or None, **self.monitor_options)
        self._reported = 0

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **_kwargs: Any) -> None:
        if self.monitor is None or logs is None:
            return
        new = self.monitor.records[self._reported:]
        self._reported = len(self.monitor.records)
        if not new:
            return
        last = new[-1]["step"]
        metrics = metrics_of([r for r in new if r["step"] == last])
        logs.update(metrics)  # the reporters after this callback see them in the same call
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(metrics)

    def on_train_end(self, args: Any, state: Any, control: Any, **_kwargs: Any) -> None:
        if self.monitor is not None:
            self.monitor.remove()


def add_monitor(trainer: Any, every: int = 10, **monitor_options: Any) -> MonitorTrainerCallback:
    """Create a :class:`MonitorTrainerCallback` and put it first among ``trainer``'s callbacks."""
    callback = MonitorTrainerCallback(every, **monitor_options)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
