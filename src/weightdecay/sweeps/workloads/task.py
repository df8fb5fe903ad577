"""Task sweeps: each trial trains a built-in or registered task (``task = "ridge"``; ``weightdecay tasks``).

The task brings its data, model, metric and defaults; the sweep builds each run's
:class:`weightdecay.tasks.TrainConfig` with :meth:`SweepConfig.train_config`. With ``monitor_every = N`` each run
is watched by :class:`weightdecay.monitors.Monitor`: the trial keeps the monitor's summary and, in its folder,
the records as :data:`MONITOR_LOG` (the report draws them).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from weightdecay.errors import ConfigError, UserError
from weightdecay.sweeps._toml import positive_int, typed
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.outcome import outcome_from_metrics
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.workloads.base import check_train_size
from weightdecay.tasks import Task, get_task

__all__ = ["TaskWorkload", "MONITOR_LOG", "STORED_LAYERS"]

# A watched task trial's records, in its folder (RUN_DIR/trials/ARM/NNNN[/seedS]); the report draws them.
MONITOR_LOG = "monitor.jsonl.gz"
# The per-tensor rows of the monitor summary each trial stores (the rest is in its log): the storage stays
# small whatever the model's size.
STORED_LAYERS = 8


class TaskWorkload:
    key = "task"

    def check(self, raw: dict[str, Any], arms: list[Arm], search: SearchSpace, base_dir: Path) -> dict[str, Any]:
        from weightdecay.schedules.lr import SCHEDULE_NAMES

        if "timeout" in raw:
            raise ConfigError("timeout: only a command sweep has a per-trial timeout; remove it")
        if "result" in raw:
            raise ConfigError("result: a task reports its metrics itself; only a command sweep says where to read "
                              "them; remove it")
        schedule = typed(raw, "schedule", str, "cosine")
        if schedule not in SCHEDULE_NAMES:
            raise ConfigError(f"schedule: {schedule!r} is not a learning-rate schedule; choose one of "
                              f"{', '.join(SCHEDULE_NAMES)}")
        return {"task": typed(raw, "task", str), "schedule": schedule,
                "monitor_every": positive_int(raw, "monitor_every", None)}

    def check_environment(self, config: SweepConfig) -> SweepConfig:
        """Find the task and its data, check the metric against the task's, run the task's checks on every arm."""
        try:
            task = get_task(config.task)
        except UserError as exc:
            raise ConfigError(f"task: {exc}") from None
        ok, how = task.available()
        if not ok:
            raise ConfigError(f"task: {task.name!r} cannot run on this machine: {how}")
        metric = config.metric or task.metric
        reported = tuple(getattr(task, "metrics", ()) or ())
        if reported and metric not in reported:
            raise ConfigError(f"metric: {metric!r} is not reported by task {task.name!r}; choose one of "
                              f"{', '.join(reported)}")
        config = check_train_size(replace(config, task=task.name, metric=metric), getattr(task, "train_size", None))
        _dry_resolve(task, config)
        return config

    def keeps_folder(self, config: SweepConfig) -> bool:
        return bool(config.monitor_every)  # only a watched run leaves a file: its monitor log

    def run(self, config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
            workdir: str | None, threads: int | None) -> dict[str, Any]:
        task = get_task(config.task)
        start = time.perf_counter()
        monitors = []
        if config.monitor_every:
            from weightdecay.monitors import Monitor

            monitors = [Monitor(every=config.monitor_every)]
        result = task.run(config.train_config(arm, lr=lr, weight_decay=weight_decay, seed=seed),
                          **({"monitors": monitors} if monitors else {}))
        seconds = result.seconds or time.perf_counter() - start
        record = outcome_from_metrics(config.metric, config.direction, result.metrics, result.history, seconds,
                                      diverged=bool(result.diverged), source=f"task {config.task!r}").record()
        if monitors:
            record["monitor"] = _json_safe(monitors[0].summary().to_dict(max_layers=STORED_LAYERS))
            if workdir is not None:
                from weightdecay.monitors import write_jsonl

                record["monitor_log"] = str(write_jsonl(monitors[0].records, Path(workdir) / MONITOR_LOG))
        return record


def _dry_resolve(task: Task, config: SweepConfig) -> None:
    # The task's own checks (unknown options, bad epochs or batch size), run once per arm before any trial.
    resolve = getattr(task, "resolve", None)
    if resolve is None:
        return
    for i, arm in enumerate(config.arms):
        run = config.train_config(arm, lr=config.lr[0] if config.lr else 1e-3,
                                  weight_decay=arm.weight_decay[0] if arm.weight_decay else 0.0)
        try:
            resolve(run)
        except UserError as exc:
            where = f"arms[{i}].extra" if set(arm.extra) - set(config.extra) else "extra"
            raise ConfigError(f"{where}: {exc}") from None


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None, at any depth (trial attributes are JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
