"""Run one trial's training: the single seam between a sweep and what it trains.

:func:`train_once` is every run a sweep makes, grid or TPE: the task named in the config, trained once at one
``(lr, λ, seed)`` with the :class:`weightdecay.tasks.TrainConfig` that :meth:`SweepConfig.train_config` builds; or
the config's own command (:mod:`weightdecay.sweeps.command`) or function (:mod:`weightdecay.sweeps.objective`).
All three end in one :class:`~weightdecay.sweeps.outcome.TrialOutcome`, and its record is what a trial stores:
the value (``+inf`` for a minimized metric that came out NaN/inf), every final metric, the per-epoch history,
``diverged`` and the wall time. A diverged run is a result, not a failure; a run without a result raises
:class:`~weightdecay.sweeps.outcome.TrialFailed`, and a Python exception propagates: the trial fails with its text.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from weightdecay.sweeps.config import Arm, SweepConfig
from weightdecay.sweeps.outcome import TrialOutcome, outcome_from_metrics

__all__ = ["train_once", "MONITOR_LOG", "STORED_LAYERS"]

# A watched task trial's records, in its folder (RUN_DIR/trials/ARM/NNNN[/seedS]); the report draws them.
MONITOR_LOG = "monitor.jsonl.gz"
# The per-tensor rows of the monitor summary each trial stores (the rest is in its log): the storage stays
# small whatever the model's size.
STORED_LAYERS = 8


def train_once(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
               workdir: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Run one training run and return what a trial records (value, metrics, history, diverged, seconds).

    A task, a command (in ``workdir``, with ``threads`` OMP threads) or a function, as the config names. A task
    watched by the config's ``monitor_every`` keeps its monitor's summary in the record (``monitor``) and, given
    a ``workdir``, writes the records there as :data:`MONITOR_LOG` (``monitor_log``, that file's path).
    """
    if config.command:
        from weightdecay.sweeps.command import run_command

        return run_command(config, arm, lr, weight_decay, seed, workdir=workdir, threads=threads).record()
    if config.function:
        from weightdecay.sweeps.objective import run_objective

        return run_objective(config, arm, lr, weight_decay, seed).record()
    return _run_task(config, arm, lr, weight_decay, seed, workdir)


def _run_task(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int,
              workdir: str | None) -> dict[str, Any]:
    from weightdecay.tasks import get_task

    task = get_task(config.task)
    start = time.perf_counter()
    monitors = []
    if config.monitor_every:
        from weightdecay.monitors import Monitor

        monitors = [Monitor(every=config.monitor_every)]
    result = task.run(config.train_config(arm, lr=lr, weight_decay=weight_decay, seed=seed),
                      **({"monitors": monitors} if monitors else {}))
    seconds = result.seconds or time.perf_counter() - start
    outcome: TrialOutcome = outcome_from_metrics(config.metric, config.direction, result.metrics, result.history,
                                                 seconds, diverged=bool(result.diverged),
                                                 source=f"task {config.task!r}")
    record = outcome.record()
    if monitors:
        record["monitor"] = _json_safe(monitors[0].summary().to_dict(max_layers=STORED_LAYERS))
        if workdir is not None:
            from weightdecay.monitors import write_jsonl

            record["monitor_log"] = str(write_jsonl(monitors[0].records, Path(workdir) / MONITOR_LOG))
    return record


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None, at any depth (trial attributes are JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
