"""A predicted λ against one column of a ground-truth grid: its distance to λ* and its regret.

A column is one learning rate's sweep over λ (``torch`` units), the metric averaged over seeds (lower is better).
``λ*`` is the analysis's refined best (:func:`weightdecay.reports.analysis.refine_best_wd`: the vertex of the parabola
through the best grid point and its neighbours in ``log λ``). A prediction ``λ̂`` scores

- ``log_error = |log10(λ̂/λ*)|`` (0.3 is a factor of 2), and
- ``regret = m(λ̂)/m* − 1``, with ``m(λ̂)`` the column's metric interpolated linearly in ``log λ`` and ``m*`` the
  column's best grid value; outside the grid ``m`` is the nearer edge's value (flagged ``outside``), which
  understates the regret when the metric keeps rising beyond the edge.

A λ* on the grid's edge is a bound, not a measurement (``interior`` is False): the true optimum lies beyond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weightdecay.reports.analysis import refine_best_wd
from weightdecay.errors import UserError

__all__ = ["Column", "Score", "score", "summarize"]


@dataclass(frozen=True)
class Column:
    """One lr's sweep over λ of a ground-truth grid, with the settings a rule may read.

    ``weight_decays`` are in ``torch`` units at ``lr`` (the peak lr, for a schedule); ``metric`` is the seed
    mean at each of them (``inf`` where a run diverged).
    """

    task: str
    lr: float
    batch_size: int
    dataset_size: int
    epochs: float
    weight_decays: tuple[float, ...]
    metric: tuple[float, ...]
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if len(self.weight_decays) != len(self.metric) or len(self.weight_decays) < 3:
            raise UserError(f"column {self.task} at lr {self.lr:g}: needs the same number (≥ 3) of weight decays "
                            f"and metric values, got {len(self.weight_decays)} and {len(self.metric)}")
        if list(self.weight_decays) != sorted(self.weight_decays) or min(self.weight_decays) <= 0:
            raise UserError(f"column {self.task} at lr {self.lr:g}: weight decays must be positive and increasing")

    @property
    def total_steps(self) -> float:
        """``T = B·epochs/b``."""
        return self.dataset_size * self.epochs / self.batch_size

    def best(self) -> tuple[float, bool]:
        """``(λ*, interior)``."""
        m = np.array(self.metric, dtype=float)[:, None]
        star, interior = refine_best_wd(np.where(np.isfinite(m), m, np.inf), self.weight_decays)
        return float(star[0]), bool(interior[0])

    def metric_at(self, weight_decay: float) -> tuple[float, bool]:
        """``(m(λ), outside)``: the metric interpolated linearly in ``log λ``; the edge value outside the grid."""
        x = np.log(np.array(self.weight_decays, dtype=float))
        m = np.array(self.metric, dtype=float)
        at = math.log(weight_decay)
        outside = not x[0] <= at <= x[-1]
        at = min(max(at, x[0]), x[-1])
        i = int(np.clip(np.searchsorted(x, at) - 1, 0, len(x) - 2))
        w = (at - x[i]) / (x[i + 1] - x[i])
        if w == 0:
            return float(m[i]), outside
        if w == 1:
            return float(m[i + 1]), outside
        return float((1 - w) * m[i] + w * m[i + 1]), outside  # inf beside a diverged cell


@dataclass(frozen=True)
class Score:
    """A prediction against a column: see the module's docstring."""

    task: str
    lr: float
    predicted: float
    best: float
    interior: bool
    log_error: float
    regret: float
    outside: bool


def score(column: Column, predicted: float) -> Score:
    """Score ``predicted`` (``torch`` units at the column's lr) against ``column``.

    >>> lams = tuple(10.0 ** k for k in range(-3, 2))
    >>> col = Column("toy", 1e-3, 10, 100, 5, lams, tuple(1 + (math.log10(l) + 1) ** 2 for l in lams))
    >>> s = score(col, 1.0)
    >>> round(s.best, 6), round(s.log_error, 6), round(s.regret, 6)
    (0.1, 1.0, 1.0)
    """
    if not predicted > 0 or not math.isfinite(predicted):
        raise UserError(f"a predicted weight decay must be positive and finite, got {predicted}")
    star, interior = column.best()
    value, outside = column.metric_at(predicted)
    best_value = float(np.min(np.array(column.metric, dtype=float)))
    return Score(task=column.task, lr=column.lr, predicted=predicted, best=star, interior=interior,
                 log_error=abs(math.log10(predicted / star)), regret=value / best_value - 1, outside=outside)


def summarize(scores: Sequence[Score]) -> dict[str, float]:
    """Median ``log_error`` and ``regret``, and the share within 2× of λ* and within 1% regret."""
    if not scores:
        raise UserError("no scores to summarize")
    logs = np.array([s.log_error for s in scores])
    regrets = np.array([s.regret for s in scores])
    return {"n": len(scores), "median_log_error": float(np.median(logs)), "median_regret": float(np.median(regrets)),
            "within_2x": float(np.mean(logs <= math.log10(2))), "regret_within_1pct": float(np.mean(regrets <= 0.01))}
