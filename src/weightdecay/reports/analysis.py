"""What an lr × λ sweep says: heatmaps, the best point, the slope of log λ* against log lr, the basin's shape.

For each arm (an optimizer and decay convention), with ``M[s, i, j]`` the metric of seed ``s`` at weight decay
``λ_i`` and learning rate ``lr_j`` (turned into a score to minimize):

- the heatmap is ``mean_s M[s, i, j]`` (a cell where a seed diverged to inf stays inf);
- ``λ*(lr_j)`` is the best λ of column ``j``, refined in log space by the parabola through the best grid point
  and its two neighbours (exact when the score is quadratic in ``log λ``); at the grid's edge it stays the
  edge value and is flagged, since the true optimum lies beyond the grid;
- the slope ``k`` fits ``log λ* = a + k·log lr`` by least squares over the interior columns; its uncertainty is
  the standard deviation of ``k`` over bootstrap resamples of the seeds (the OLS standard error with one seed).
  ``k ≈ −1``: keep ``lr·λ`` fixed (PyTorch's AdamW in the noise-dominated regime); ``k ≈ 0``: keep λ;
- the near-optimal basin is every cell within ``tolerance·|best|`` of the best score; its area is in
  decades² (``log10 lr × log10 λ``) and its orientation is the principal axis of those cells: *diagonal* (a
  valley along ``λ ∝ lr^k``) or *axis-aligned*.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from weightdecay.decay import get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.sweeps import Arm, RunRecord, SweepResults, strategy_for

__all__ = ["Heatmap", "BestPoint", "SlopeFit", "Basin", "ArmAnalysis", "SweepAnalysis", "heatmap", "best_point",
           "ranked_points", "format_slope", "refine_best_wd", "fit_slope", "slope_with_uncertainty", "basin",
           "analyze_arm", "analyze", "recommend", "peak_shrink", "diverged_inside", "twin_weight_decay", "twin_cells",
           "grid_edges", "MIN_RULE_COLUMNS"]

# A run as the analysis reads it: a sweep's record, or a mapping with the same fields.
Record = Union[RunRecord, Mapping[str, Any]]


@dataclass
class Heatmap:
    """Per-seed metric values on the (λ, lr) grid: ``values[s, i, j]`` for seed s, ``λ_i``, ``lr_j`` (NaN: not run)."""

    arm: str
    lrs: np.ndarray
    wds: np.ndarray
    seeds: tuple[int, ...]
    values: np.ndarray
    diverged: np.ndarray  # bool, same shape as values
    direction: str = "minimize"

    @property
    def score(self) -> np.ndarray:
        """Per-seed values turned into "lower is better"."""
        return self.values if self.direction == "minimize" else -self.values

    @property
    def mean(self) -> np.ndarray:
        """The metric averaged over seeds, ``(n_λ, n_lr)``; NaN where no seed ran."""
        return _nanmean(self.values, axis=0)

    @property
    def diverged_any(self) -> np.ndarray:
        return self.diverged.any(axis=0)


@dataclass
class BestPoint:
    """The best cell of the seed-averaged heatmap and the spread of its seeds."""

    lr: float
    weight_decay: float
    mean: float
    std: float
    low: float
    high: float
    n_seeds: int


@dataclass
class SlopeFit:
    """``log10 λ* = intercept + slope·log10 lr`` over the columns whose λ* lies inside the grid."""

    slope: float
    err: float
    method: str  # "bootstrap" (over seeds), "ols" (one seed) or "none"
    intercept: float
    lrs: np.ndarray
    wd_star: np.ndarray  # refined best λ per lr (NaN where the column has no finite value)
    interior: np.ndarray  # bool: λ* strictly inside the λ grid
    censored: bool  # fewer than 2 interior columns: fitted on edge values, a bound rather than a measurement

    def predict(self, lr: np.ndarray | float) -> np.ndarray:
        return 10 ** (self.intercept + self.slope * np.log10(lr))


@dataclass
class Basin:
    """The near-optimal region: its cells, area (decades²) and principal-axis orientation."""

    cells: np.ndarray  # bool (n_λ, n_lr)
    threshold: float
    area: float
    orientation: str  # "diagonal", "axis-aligned (along lr)", "axis-aligned (along λ)", "round", "single cell"
    angle: float  # degrees of the major axis in (log10 lr, log10 λ) coordinates, in (-90, 90]
    axis_ratio: float  # sqrt of the principal variances' ratio (elongation)


@dataclass
class ArmAnalysis:
    """Everything the report says about one arm."""

    arm: str
    heatmap: Heatmap
    best: BestPoint
    slope: SlopeFit
    basin: Basin
    sentence: str = ""


@dataclass
class SweepAnalysis:
    """Per-arm analyses, the best arm, and the recommendation that follows from the numbers."""

    arms: dict[str, ArmAnalysis]
    metric: str
    direction: str
    best_arm: str
    recommendation: str
    notes: list[str] = field(default_factory=list)
    grid: bool = True  # the trials lie on an (lr, λ) grid (False: TPE samples, no slope or basin)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def heatmap(records: Iterable[Record], arm: str, direction: str = "minimize") -> Heatmap:
    """Arrange run records (``lr``, ``weight_decay``, ``seed``, ``value``, ``diverged``) of one arm on its grid.

    Args:
        records: objects or dicts with those fields (e.g. :class:`weightdecay.sweeps.RunRecord`).
        arm: which arm to take (records of other arms are skipped).
        direction: ``"minimize"`` or ``"maximize"`` the metric.

    >>> rs = [dict(arm="a", lr=lr, weight_decay=wd, seed=0, value=lr * wd, diverged=False)
    ...       for lr in (0.1, 1.0) for wd in (0.1, 1.0)]
    >>> heatmap(rs, "a").mean.tolist()
    [[0.010000000000000002, 0.1], [0.1, 1.0]]
    """
    rows = [_as_dict(r) for r in records]
    rows = [r for r in rows if r["arm"] == arm]
    if not rows:
        raise ValueError(f"no finished runs for arm {arm!r}")
    lrs = np.array(sorted({r["lr"] for r in rows}))
    wds = np.array(sorted({r["weight_decay"] for r in rows}))
    seeds = tuple(sorted({int(r["seed"]) for r in rows}))
    values = np.full((len(seeds), len(wds), len(lrs)), np.nan)
    diverged = np.zeros(values.shape, dtype=bool)
    li = {v: j for j, v in enumerate(lrs)}
    wi = {v: i for i, v in enumerate(wds)}
    si = {v: s for s, v in enumerate(seeds)}
    for r in rows:
        idx = (si[int(r["seed"])], wi[r["weight_decay"]], li[r["lr"]])
        values[idx] = r["value"]
        diverged[idx] = bool(r["diverged"])
    return Heatmap(arm=arm, lrs=lrs, wds=wds, seeds=seeds, values=values, diverged=diverged, direction=direction)


def _as_dict(r: Record) -> Mapping[str, Any]:
    if isinstance(r, Mapping):
        return r
    return {k: getattr(r, k) for k in ("arm", "lr", "weight_decay", "seed", "value", "diverged")}


def best_point(hm: Heatmap) -> BestPoint:
    """The cell with the best seed-averaged metric, with its seeds' standard deviation, min and max."""
    ranked = ranked_points(hm, 1)
    return ranked[0] if ranked else _point(hm, 0, 0)


def ranked_points(hm: Heatmap, top: int) -> list[BestPoint]:
    """The ``top`` cells with the best finite seed-averaged metric, best first (ties: the smaller λ, then lr).

    >>> hm = heatmap([dict(arm="a", lr=lr, weight_decay=wd, seed=0, value=lr + wd, diverged=False)
    ...               for lr in (0.1, 1.0) for wd in (0.01, 0.5)], "a")
    >>> [(p.lr, p.weight_decay) for p in ranked_points(hm, 3)]
    [(0.1, 0.01), (0.1, 0.5), (1.0, 0.01)]
    """
    score = _nanmean(hm.score, axis=0)
    flat = np.where(np.isfinite(score), score, np.inf).ravel()
    order = [int(k) for k in np.argsort(flat, kind="stable")[:top] if np.isfinite(flat[k])]
    return [_point(hm, *np.unravel_index(k, score.shape)) for k in order]


def _point(hm: Heatmap, i: int, j: int) -> BestPoint:
    cell = hm.values[:, i, j]
    cell = cell[~np.isnan(cell)]
    std = float(np.std(cell, ddof=1)) if len(cell) > 1 and np.isfinite(cell).all() else float("nan")
    return BestPoint(lr=float(hm.lrs[j]), weight_decay=float(hm.wds[i]), mean=float(np.mean(cell)) if len(cell) else
                     float("nan"), std=std, low=float(np.min(cell)) if len(cell) else float("nan"),
                     high=float(np.max(cell)) if len(cell) else float("nan"), n_seeds=len(cell))


def refine_best_wd(score: np.ndarray, wds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a ``(n_λ, n_lr)`` score (lower is better): the best λ refined in log space, and "interior".

    The refinement is the vertex of the parabola through the best grid point and its two neighbours in
    ``(log λ, score)``; a best point on the grid's edge (or next to a non-finite cell) keeps its grid value.

    >>> wds = [1e-3, 1e-2, 1e-1]
    >>> score = np.array([[(np.log10(w) + 1.7) ** 2] for w in wds])  # best at log10 λ = -1.7
    >>> best, interior = refine_best_wd(score, wds)
    >>> round(float(np.log10(best[0])), 6), bool(interior[0])
    (-1.7, True)
    """
    x = np.log(np.asarray(wds, dtype=float))
    n_wd, n_lr = score.shape
    best = np.full(n_lr, np.nan)
    interior = np.zeros(n_lr, dtype=bool)
    for j in range(n_lr):
        y = score[:, j]
        if not np.isfinite(y).any():
            continue
        i = int(np.argmin(np.where(np.isfinite(y), y, np.inf)))
        best[j] = x[i]
        if 0 < i < n_wd - 1 and np.isfinite(y[i - 1]) and np.isfinite(y[i + 1]):
            x0, x1, x2 = x[i - 1], x[i], x[i + 1]
            y0, y1, y2 = y[i - 1], y[i], y[i + 1]
            denom = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
            if denom != 0:
                vertex = x1 - 0.5 * ((x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)) / denom
                best[j] = float(np.clip(vertex, x0, x2))
            interior[j] = True
    return np.exp(best), interior


def fit_slope(lrs: Sequence[float], wd_star: np.ndarray, use: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``log10 λ* = a + k·log10 lr`` over the columns in ``use``: ``(k, a, standard error of k)``."""
    x = np.log10(np.asarray(lrs, dtype=float))[use]
    y = np.log10(wd_star)[use]
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    k, a = np.polyfit(x, y, 1)
    if len(x) > 2:
        resid = y - (a + k * x)
        se = math.sqrt(float(resid @ resid) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum()))
    else:
        se = float("nan")
    return float(k), float(a), se


def _slope_of(score: np.ndarray, lrs: np.ndarray, wds: np.ndarray) -> tuple[float, float, float, np.ndarray,
                                                                             np.ndarray, bool]:
    wd_star, interior = refine_best_wd(score, wds)
    censored = interior.sum() < 2
    use = np.isfinite(wd_star) if censored else interior
    k, a, se = fit_slope(lrs, wd_star, use)
    return k, a, se, wd_star, interior, bool(censored)


def slope_with_uncertainty(hm: Heatmap, n_boot: int = 300, seed: int = 0) -> SlopeFit:
    """The slope of ``log λ*`` against ``log lr`` with a bootstrap-over-seeds standard deviation.

    Args:
        hm: the arm's heatmap.
        n_boot: bootstrap resamples of the seeds (with replacement).
        seed: the resampling's random seed (the result is deterministic).
    """
    score = _nanmean(hm.score, axis=0)
    k, a, se, wd_star, interior, censored = _slope_of(score, hm.lrs, hm.wds)
    n = hm.values.shape[0]
    if n >= 2 and math.isfinite(k):
        rng = np.random.default_rng(seed)
        slopes = []
        for _ in range(n_boot):
            pick = rng.integers(0, n, size=n)
            kb = _slope_of(_nanmean(hm.score[pick], axis=0), hm.lrs, hm.wds)[0]
            if math.isfinite(kb):
                slopes.append(kb)
        err, method = (float(np.std(slopes, ddof=1)), "bootstrap") if len(slopes) > 1 else (float("nan"), "none")
    else:
        err, method = se, "ols" if math.isfinite(se) else "none"
    return SlopeFit(slope=k, err=err, method=method, intercept=a, lrs=hm.lrs, wd_star=wd_star, interior=interior,
                    censored=censored)


def basin(hm: Heatmap, tolerance: float = 0.1) -> Basin:
    """The cells within ``tolerance·|best|`` of the best seed-averaged score, their area and orientation.

    >>> lrs, wds = np.logspace(-4, -2, 5), np.logspace(-3, 1, 9)
    >>> rs = [dict(arm="a", lr=lr, weight_decay=wd, seed=0, diverged=False,
    ...            value=1 + (np.log10(wd) + np.log10(lr) + 4) ** 2) for lr in lrs for wd in wds]
    >>> basin(heatmap(rs, "a"), tolerance=0.3).orientation
    'diagonal'
    """
    score = _nanmean(hm.score, axis=0)
    finite = np.isfinite(score)
    if not finite.any():
        return Basin(np.zeros(score.shape, bool), float("nan"), 0.0, "single cell", 0.0, 1.0)
    best = float(score[finite].min())
    threshold = best + tolerance * max(abs(best), 1e-12)
    cells = finite & (score <= threshold)
    dx = float(np.mean(np.diff(np.log10(hm.lrs)))) if len(hm.lrs) > 1 else 1.0
    dy = float(np.mean(np.diff(np.log10(hm.wds)))) if len(hm.wds) > 1 else 1.0
    area = float(cells.sum()) * dx * dy
    ii, jj = np.nonzero(cells)
    if len(ii) < 2:
        return Basin(cells, threshold, area, "single cell", 0.0, 1.0)
    pts = np.stack([np.log10(hm.lrs)[jj], np.log10(hm.wds)[ii]])
    cov = np.cov(pts)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, int(np.argmax(evals))]
    angle = math.degrees(math.atan2(major[1], major[0]))
    angle = angle - 180 if angle > 90 else angle + 180 if angle <= -90 else angle
    ratio = math.sqrt(evals.max() / evals.min()) if evals.min() > 1e-15 else math.inf
    if ratio < 1.5:
        orientation = "round"
    elif abs(angle) < 22.5:
        orientation = "axis-aligned (along lr)"
    elif abs(angle) > 67.5:
        orientation = "axis-aligned (along λ)"
    else:
        orientation = "diagonal"
    return Basin(cells, threshold if hm.direction == "minimize" else -threshold, area, orientation, angle, ratio)


def diverged_inside(hm: Heatmap) -> int:
    """Diverged cells that are not in the grid's large-lr, large-λ corner: cells where some seed diverged while
    the cell with the next larger λ or the next larger lr (same other coordinate) trained with every seed.

    A grid that reaches past the region where training works diverges in that corner (the shrink ``s_t`` grows
    with λ and lr; so does the step): those cells are expected, and every diverged cell then has diverged cells
    above and to the right of it, up to the grid's edges. A diverged cell with a trained one beyond it is not.

    >>> d = np.array([[0, 0, 1], [0, 1, 1]], dtype=bool)  # rows λ_i ascending, columns lr_j ascending
    >>> hm = Heatmap("a", np.arange(3.0), np.arange(2.0), (0,), np.zeros((1, 2, 3)), d[None])
    >>> diverged_inside(hm), diverged_inside(Heatmap("a", hm.lrs, hm.wds, (0,), hm.values, d[None, ::-1]))
    (0, 1)
    """
    d = hm.diverged_any
    larger_wd = np.vstack([d[1:], np.ones((1, d.shape[1]), bool)])
    larger_lr = np.hstack([d[:, 1:], np.ones((d.shape[0], 1), bool)])
    return int((d & ~(larger_wd & larger_lr)).sum())


def analyze_arm(records: Iterable[Record], arm: str, direction: str = "minimize", tolerance: float = 0.1,
                n_boot: int = 300, grid: bool = True) -> ArmAnalysis:
    """Heatmap, best point, slope with uncertainty and basin of one arm (see the module docstring).

    ``grid=False`` (TPE samples, scattered in the plane): best point only; slope and basin need a grid.
    """
    hm = heatmap(records, arm, direction)
    if grid:
        slope, shape = slope_with_uncertainty(hm, n_boot), basin(hm, tolerance)
    else:
        nan = float("nan")
        slope = SlopeFit(nan, nan, "none", nan, hm.lrs, np.full(len(hm.lrs), nan), np.zeros(len(hm.lrs), bool),
                         False)
        shape = Basin(np.zeros(hm.mean.shape, bool), nan, nan, "n/a (TPE samples, no grid)", nan, nan)
    result = ArmAnalysis(arm=arm, heatmap=hm, best=best_point(hm), slope=slope, basin=shape)
    result.sentence = _arm_sentence(result)
    return result


def format_slope(slope: float, err: float = math.nan, censored: bool = False) -> str:
    """A slope as the report prints it: signed, two decimals, never "-0.00"; with ``± err`` when it is finite.

    A ``censored`` slope (fitted on λ* at the grid's edge) is a bound, not a measurement: it is printed with
    ``(edge-bound)`` and never with an uncertainty, whose ``± 0.00`` would read as a precise result.

    >>> format_slope(-0.001), format_slope(-1.004, 0.1234), format_slope(float("nan"))
    ('+0.00', '-1.00 ± 0.12', 'n/a')
    >>> format_slope(-0.5, 0.0, censored=True)
    '-0.50 (edge-bound)'
    """
    if not math.isfinite(slope):
        return "n/a"  # too few λ* inside the grid to fit a line
    text = f"{(0.0 if abs(slope) < 0.005 else slope):+.2f}"
    if censored:
        return f"{text} (edge-bound)"
    return f"{text} ± {err:.2f}" if math.isfinite(err) else text


def peak_shrink(arm: Arm, lr: float, weight_decay: float) -> float:
    """The per-step shrink ``s`` of a run of ``arm`` at its peak lr, in the arm's own convention; NaN if unknown.

    ``s = shrink(decay, λ, lr, peak_lr=lr)`` (docs/math.md, "Decay conventions"): ``lr·λ`` for ``torch``, ``λ``
    for ``paper`` and ``constant``. NaN for coupled ``l2`` (no shrink: λ goes into the gradient), ``stable``
    (divided by a training state) and normalized weight decay (λ is ``λ_norm``). Its EMA timescale is
    ``τ_iter = 1/s`` steps.

    >>> from weightdecay.sweeps import Arm
    >>> paper, torch_ = Arm("p", "adamw", "paper", (0.1,)), Arm("t", "adamw", "torch", (0.1,))
    >>> peak_shrink(paper, 1e-3, 0.1), peak_shrink(torch_, 1e-3, 0.1)
    (0.1, 0.0001)
    """
    mode = get_mode(arm.decay)
    if not mode.decoupled or mode.statistic is not None or arm.normalized_wd:
        return math.nan
    return shrink(arm.decay, weight_decay, lr, peak_lr=lr)


# A slope becomes a rule ("when you double lr, …") only when this many learning rates carry a λ* inside the grid.
MIN_RULE_COLUMNS = 3


def _arm_sentence(a: ArmAnalysis) -> str:
    k, e = a.slope.slope, a.slope.err
    if a.basin.orientation.startswith("n/a"):
        return f"{a.arm}: sampled by TPE, so no slope (run a grid to measure λ*(lr))"
    if not math.isfinite(k):
        return f"{a.arm}: slope not measurable (fewer than 2 learning rates with a best λ): widen the grid"
    if a.slope.censored:
        return (f"{a.arm}: slope {format_slope(k, censored=True)}: λ* sits on the λ grid's edge for most learning "
                f"rates, so this is a bound, not a measurement: widen the λ grid")
    n_int = int(a.slope.interior.sum())
    if n_int < MIN_RULE_COLUMNS or not math.isfinite(e):
        why = (f"only {n_int} learning rate{'s' if n_int != 1 else ''} with λ* inside the grid (a rule needs "
               f"{MIN_RULE_COLUMNS}): add learning rates" if n_int < MIN_RULE_COLUMNS else
               "no uncertainty (one seed): add seeds")
        return f"{a.arm}: slope {format_slope(k, e)}, no rule stated: {why}"
    head = f"{a.arm}: slope {format_slope(k, e)} over {n_int} learning rates"
    tol = max(2 * e, 0.25)
    near_minus_one, near_zero = abs(k + 1) <= tol, abs(k) <= tol
    if near_minus_one and near_zero:
        return f"{head}: the data cannot tell −1 from 0; add seeds or widen the lr range"
    if near_minus_one:
        return f"{head}, so when you double lr, halve wd (keep lr·λ fixed)"
    if near_zero:
        return f"{head}, so keep wd when lr changes"
    lo, hi = 2 ** (k - e), 2 ** (k + e)
    return (f"{head}, so λ* ∝ lr^{k:.2f}: when you double lr, multiply wd by {2 ** k:.2f} "
            f"({lo:.2f}–{hi:.2f} within one σ)")


# How the shrink of a decoupled mode follows the schedule's lr_t (docs/math.md, "Decay conventions").
_LR_POWER = {"torch": 1, "paper": 1, "constant": 0, "corrected": 2}


def twin_weight_decay(a: Arm, b: Arm, lr: float, weight_decay: float) -> float:
    """The λ of arm ``b`` whose run at ``lr`` is the twin of arm ``a``'s run at ``(lr, weight_decay)``: the same
    optimizer and the same per-step shrink at the peak lr, in ``b``'s convention (``λ_paper = lr·λ_torch``); NaN
    when the arms have no such correspondence (other optimizers, or shrinks that follow the schedule differently).

    >>> from weightdecay.sweeps import Arm
    >>> paper, torch_ = Arm("p", "adamw", "paper", (0.1,)), Arm("t", "adamw", "torch", (0.1,))
    >>> round(twin_weight_decay(torch_, paper, 1e-2, 3.0), 12), twin_weight_decay(paper, paper, 1e-2, 0.1)
    (0.03, 0.1)
    """
    same = (a.optimizer, a.momentum, a.betas, a.extra, a.wd_schedule, a.optimizer_options) == \
        (b.optimizer, b.momentum, b.betas, b.extra, b.wd_schedule, b.optimizer_options)
    # Twins at every step, not only at the peak: the shrink follows lr_t alike (torch and paper: ∝ lr_t).
    same = same and _LR_POWER.get(a.decay, -1) == _LR_POWER.get(b.decay, -2)
    s, unit = peak_shrink(a, lr, weight_decay), peak_shrink(b, lr, 1.0)
    if not same or not math.isfinite(s) or not math.isfinite(unit) or unit <= 0:
        return math.nan
    return s / unit


def _on_grid(value: float, grid: np.ndarray) -> int | None:
    """The index of ``value`` in a log-spaced grid (to a relative 1e-6), or None."""
    hit = np.nonzero(np.isclose(grid, value, rtol=1e-6, atol=0))[0] if math.isfinite(value) else []
    return int(hit[0]) if len(hit) else None


def twin_cells(a: ArmAnalysis, b: ArmAnalysis, arm_a: Arm, arm_b: Arm) -> list[tuple[int, int, int, int]]:
    """Pairs of cells ``(i_a, j_a, i_b, j_b)`` run by both arms that are twins (same lr, same shrink per step):
    the same runs in two parametrisations."""
    pairs = []
    ha, hb = a.heatmap, b.heatmap
    for ja, lr in enumerate(ha.lrs):
        jb = _on_grid(float(lr), hb.lrs)
        if jb is None:
            continue
        for ia, wd in enumerate(ha.wds):
            ib = _on_grid(twin_weight_decay(arm_a, arm_b, float(lr), float(wd)), hb.wds)
            if ib is not None and np.isfinite(ha.mean[ia, ja]) and np.isfinite(hb.mean[ib, jb]):
                pairs.append((ia, ja, ib, jb))
    return pairs


def grid_edges(a: ArmAnalysis) -> str:
    """A sentence when the best cell lies on the lr or the λ grid's edge (the optimum may lie beyond it), else ""."""
    hm, b, said = a.heatmap, a.best, []
    for name, grid, value in (("lr", hm.lrs, b.lr), ("λ", hm.wds, b.weight_decay)):
        if len(grid) > 1 and value in (grid[0], grid[-1]):
            end = "smallest" if value == grid[0] else "largest"
            said.append(f"its best {name} {value:.3g} is the {name} grid's {end}: the optimum may lie beyond it; "
                        f"widen the {name} grid")
    return f"{a.arm}: " + "; ".join(said) + "." if said else ""


def recommend(arms: dict[str, ArmAnalysis], metric: str, direction: str,
              configs: Mapping[str, Arm] | None = None) -> tuple[str, str]:
    """The best arm and a recommendation paragraph that follows from the per-arm numbers.

    With the arms' ``configs``, an arm that is the best arm re-parametrised (same optimizer, a shrink ``c·λ``) is
    compared only when its grid holds the twin of the best cell, the run that is the same training; otherwise the
    page says why the comparison is withheld. Arms that share twin cells are said to be the same runs.
    """
    sign = 1 if direction == "minimize" else -1
    ranked = sorted(arms.values(), key=lambda a: sign * a.best.mean if math.isfinite(a.best.mean) else math.inf)
    top = ranked[0]
    b = top.best
    spread = f" ± {b.std:.3g}" if math.isfinite(b.std) else ""
    parts = [f"Best: {top.arm} at lr={b.lr:.3g}, wd={b.weight_decay:.3g} ({metric} {b.mean:.4g}{spread} over "
             f"{b.n_seeds} seed{'s' if b.n_seeds != 1 else ''})."]
    for a in ranked[1:]:
        if not (math.isfinite(a.best.mean) and b.mean != 0):
            continue
        if configs is not None and top.arm in configs and a.arm in configs:
            twin = twin_weight_decay(configs[top.arm], configs[a.arm], b.lr, b.weight_decay)
            if math.isfinite(twin) and (_on_grid(b.lr, a.heatmap.lrs) is None or _on_grid(twin, a.heatmap.wds) is None):
                parts.append(f"{a.arm} is not compared: its grid lacks the twin of {top.arm}'s best cell (lr={b.lr:.3g}, "
                             f"wd={twin:.3g} in its convention), so a gap would measure the grids, not the conventions.")
                continue
        rel = (a.best.mean - b.mean) / abs(b.mean) * 100 * sign
        parts.append(f"{a.arm} ties it." if rel < 0.05 else f"{a.arm}'s best is {rel:.1f}% worse.")
    names = list(arms)
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            if configs is None or names[x] not in configs or names[y] not in configs:
                continue
            pairs = twin_cells(arms[names[x]], arms[names[y]], configs[names[x]], configs[names[y]])
            if pairs:
                ma, mb = arms[names[x]].heatmap.mean, arms[names[y]].heatmap.mean
                gap = max(abs(ma[ia, ja] - mb[ib, jb]) for ia, ja, ib, jb in pairs)
                parts.append(f"{names[x]} and {names[y]} share {len(pairs)} cells that are the same runs in two "
                             f"parametrisations (same lr, same shrink per step); there they differ by at most "
                             f"{gap:.3g}.")
    parts.extend(f"{a.sentence}; basin {a.basin.orientation}." if math.isfinite(a.basin.area) else f"{a.sentence}."
                 for a in arms.values())
    parts.extend(edge for edge in (grid_edges(a) for a in arms.values()) if edge)
    return top.arm, " ".join(parts)


def analyze(results: SweepResults, n_boot: int = 300) -> SweepAnalysis:
    """Analyze every arm of a sweep (:class:`weightdecay.sweeps.SweepResults`) and write the recommendation."""
    config = results.config
    grid = strategy_for(config).grid
    arms = {}
    notes = []
    for arm in config.arms:
        recs = results.for_arm(arm.name)
        if not recs:
            notes.append(f"{arm.name}: no finished runs yet")
            continue
        arms[arm.name] = analyze_arm(recs, arm.name, config.direction, config.basin_tolerance, n_boot,
                                     grid=grid)
    if not arms:
        raise UserError(f"sweep {config.name!r} has no finished runs yet; run `weightdecay sweep` first")
    best_arm, text = recommend(arms, config.metric, config.direction, {a.name: a for a in config.arms})
    return SweepAnalysis(arms=arms, metric=config.metric, direction=config.direction, best_arm=best_arm,
                         recommendation=text, notes=notes, grid=grid)
