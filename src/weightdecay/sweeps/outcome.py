"""What one training run of a sweep produced, the same shape whichever kind of code ran it.

A sweep trains a built-in or registered *task*, a *command* (your script as a subprocess,
:mod:`weightdecay.sweeps.workloads.command`) or a Python *function* (:mod:`weightdecay.sweeps.workloads.function`). Each ends in a
:class:`TrialOutcome`: ``ok``, ``diverged`` (the metric or the loss went NaN/inf: a finished run, drawn as × in
the heatmap) or ``failed`` (no result: a crash, a timeout, no metric; the error text says which, and the next
run of the sweep retries it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialOutcome", "TrialFailed", "outcome_from_metrics"]

STATUSES = ("ok", "diverged", "failed")


class TrialFailed(Exception):
    """A run that produced no result; its message (the cause, and the tail of stderr for a command) is kept
    in the trial's ``error`` attribute instead of a Python traceback."""


@dataclass
class TrialOutcome:
    """One run's result: status, the sweep's metric as the trial's value, every metric, the history."""

    status: str
    value: float = math.nan
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def record(self) -> dict[str, Any]:
        """What a trial stores (value, diverged, seconds, metrics, history); raises :class:`TrialFailed`."""
        if self.status == "failed":
            raise TrialFailed(self.error)
        return {"value": self.value, "diverged": self.status == "diverged", "seconds": float(self.seconds),
                "metrics": _json_floats(self.metrics), "history": [_json_floats(h) for h in self.history]}


def outcome_from_metrics(metric: str, direction: str, metrics: dict[str, Any], history: list[dict[str, Any]],
                         seconds: float, *, diverged: bool = False, source: str = "the run") -> TrialOutcome:
    """Turn reported metrics into an outcome: ``failed`` without the metric, ``diverged`` when it is not finite.

    A non-finite metric becomes the worst value (``+inf`` when minimizing, ``-inf`` when maximizing), so the
    optimizer of the sweep never prefers it.
    """
    if metric not in metrics:
        return TrialOutcome("failed", seconds=seconds, error=f"{source} reports no metric {metric!r}; it reports "
                            f"{', '.join(sorted(map(str, metrics))) or 'nothing'}: report {metric!r} or set "
                            f"`metric` in the config to one of them")
    raw = metrics[metric]
    if raw is None:
        raw = math.nan
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return TrialOutcome("failed", seconds=seconds, error=f"{source} reports {metric} = {raw!r}, not a number")
    value = float(raw)
    if not math.isfinite(value):
        diverged, value = True, math.inf if direction == "minimize" else -math.inf
    return TrialOutcome("diverged" if diverged else "ok", value=value, metrics=dict(metrics), history=list(history),
                        seconds=seconds)


def _json_floats(d: dict[str, Any]) -> dict[str, Any]:
    # NaN/inf are not JSON; None marks them in the stored attributes.
    out = {}
    for k, v in d.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v) if math.isfinite(v) else None
        else:
            out[k] = v
    return out
