"""Run one trial's training: the single seam between a sweep and what it trains.

:func:`train_once` is every run a sweep makes, grid or TPE: the task named in the config, trained once at one
``(lr, λ, seed)`` with the :class:`weightdecay.tasks.TrainConfig` that :meth:`SweepConfig.train_config` builds.
Its result is what a trial records: the value (``+inf`` for a minimized metric that came out NaN/inf), every
final metric, the per-epoch history, ``diverged`` and the wall time. A diverged run is a result, not a failure;
a Python exception propagates and the trial fails with its text.
"""

from __future__ import annotations

import math
import time
from typing import Any

from weightdecay.sweeps.config import Arm, SweepConfig

__all__ = ["train_once"]


def train_once(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int) -> dict[str, Any]:
    """Run one training run and return what a trial records (value, metrics, history, diverged, seconds)."""
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
    if config.metric not in result.metrics:
        raise KeyError(f"task {config.task!r} reports no metric {config.metric!r}; it reports "
                       f"{', '.join(sorted(result.metrics))}: set `metric` in the config to one of them")
    value = float(result.metrics[config.metric])
    diverged = bool(result.diverged) or not math.isfinite(value)
    if not math.isfinite(value):
        value = math.inf if config.direction == "minimize" else -math.inf
    record = {"value": value, "diverged": diverged, "seconds": float(seconds),
              "metrics": _json_floats(result.metrics), "history": [_json_floats(h) for h in result.history]}
    if monitors:
        record["monitor"] = _json_safe(monitors[0].summary().to_dict())
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


def _json_floats(d: dict[str, Any]) -> dict[str, Any]:
    # NaN/inf are not JSON; None marks them in the stored attributes.
    out = {}
    for k, v in d.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v) if math.isfinite(v) else None
        else:
            out[k] = v
    return out
