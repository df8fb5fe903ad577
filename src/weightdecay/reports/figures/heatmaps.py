"""The metric over (lr, λ), one panel per arm on one colour scale, in the style of Loshchilov & Hutter's figure 2:
best point ★, λ*(lr) points and the fitted line on a grid; the sampled points of a TPE search."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from weightdecay.reports.analysis import SweepAnalysis, format_slope
from weightdecay.reports.figures.base import FigureRow, SweepView
from weightdecay.reports.style import new_figure

__all__ = ["Panel", "HeatmapsData", "heatmaps_data", "draw_heatmaps", "ROW", "edges", "basin_outline"]


@dataclass
class Panel:
    """One arm: the grid's axes, the mean over seeds (NaN: no run), the cells with a diverged seed, the sampled
    points (a TPE search: log10 lr, log10 λ, value), λ* per lr (``interior``: inside the grid) and the fit."""

    arm: str
    lrs: np.ndarray
    wds: np.ndarray
    mean: np.ndarray  # [wd, lr]
    diverged: np.ndarray  # [wd, lr] bool
    points: np.ndarray  # [n, 3] for a TPE search, empty on a grid
    wd_star: np.ndarray  # [lr]
    interior: np.ndarray  # [lr] bool
    fit: tuple[float, float] | None  # (slope, intercept) of log10 λ* against log10 lr
    fit_label: str
    best: tuple[float, float, float]  # lr, λ, mean
    basin: np.ndarray  # [wd, lr] bool: the near-optimal cells (outlined: a colour scale alone may not tell them)


@dataclass
class HeatmapsData:
    metric: str
    direction: str
    grid: bool
    low: float  # the shared colour scale
    high: float
    log_scale: bool
    clipped: bool  # some cells lie beyond the scale (drawn in its end colour)
    panels: list[Panel]


def heatmaps_data(view: SweepView) -> HeatmapsData:
    analysis = view.analysis
    panels = []
    for a in analysis.arms.values():
        hm, sl, b = a.heatmap, a.slope, a.best
        finite = np.isfinite(hm.values)
        _, i, j = np.nonzero(finite)
        points = (np.column_stack([np.log10(hm.lrs[j]), np.log10(hm.wds[i]), hm.values[finite]])
                  if not analysis.grid else np.empty((0, 3)))
        fit = (float(sl.slope), float(sl.intercept)) if math.isfinite(sl.slope) else None
        panels.append(Panel(a.arm, hm.lrs, hm.wds, hm.mean, hm.diverged_any, points, sl.wd_star, sl.interior, fit,
                            f"fit: slope {format_slope(sl.slope, sl.err, sl.censored)}" if fit else "",
                            (b.lr, b.weight_decay, b.mean), a.basin.cells))
    low, high, log_scale, clipped = shared_scale(analysis)
    return HeatmapsData(analysis.metric, analysis.direction, analysis.grid, low, high, log_scale, clipped, panels)


def shared_scale(analysis: SweepAnalysis) -> tuple[float, float, bool, bool]:
    """One colour scale for every panel: log-spaced for a positive metric spanning > 20×, clipped at the 95th
    (5th when maximizing) percentile so that a few blown-up cells do not wash out the near-optimal region."""
    means = [a.heatmap.mean[np.isfinite(a.heatmap.mean)] for a in analysis.arms.values()]
    finite = np.concatenate(means) if means else np.array([0.0, 1.0])
    if finite.size == 0:
        finite = np.array([0.0, 1.0])
    if analysis.direction == "minimize":
        low, high = float(finite.min()), float(np.quantile(finite, 0.95))
    else:
        low, high = float(np.quantile(finite, 0.05)), float(finite.max())
    if high <= low:
        high = low + 1e-12
    clipped = bool((finite > high).any() or (finite < low).any())
    return low, high, bool(low > 0 and high / low > 20), clipped


def edges(values: np.ndarray) -> np.ndarray:
    """Cell edges in log10 around log-spaced values (a single value gets a cell one decade wide)."""
    x = np.log10(values)
    if len(x) == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def basin_outline(cells: np.ndarray, lr_edges: np.ndarray, wd_edges: np.ndarray) -> list[list[tuple[float, float]]]:
    """The boundary of a set of cells ``[wd, lr]`` as segments in (log10 lr, log10 λ): each side of a basin cell
    whose neighbour across it is not in the basin (or off the grid)."""
    inside = np.pad(cells.astype(bool), 1)
    segments = []
    for i, j in zip(*np.nonzero(cells)):
        x0, x1, y0, y1 = lr_edges[j], lr_edges[j + 1], wd_edges[i], wd_edges[i + 1]
        if not inside[i, j + 1]:  # below
            segments.append([(x0, y0), (x1, y0)])
        if not inside[i + 2, j + 1]:  # above
            segments.append([(x0, y1), (x1, y1)])
        if not inside[i + 1, j]:  # left
            segments.append([(x0, y0), (x0, y1)])
        if not inside[i + 1, j + 2]:  # right
            segments.append([(x1, y0), (x1, y1)])
    return segments


def draw_heatmaps(data: HeatmapsData) -> Figure:
    fig = new_figure(figsize=(3.6 * len(data.panels) + 1.2, 4.2))
    axes = fig.subplots(1, len(data.panels), squeeze=False)
    norm = (LogNorm if data.log_scale else Normalize)(vmin=data.low, vmax=data.high)
    cmap = matplotlib.colormaps["viridis_r" if data.direction == "minimize" else "viridis"].with_extremes(bad="#dddddd")
    mesh = None
    for ax, p in zip(axes[0], data.panels):
        if not data.grid:
            mesh = ax.scatter(p.points[:, 0], p.points[:, 1], c=p.points[:, 2], cmap=cmap, norm=norm, s=28,
                              edgecolors="none")
        else:
            mesh = ax.pcolormesh(edges(p.lrs), edges(p.wds), np.ma.masked_invalid(p.mean), cmap=cmap, norm=norm,
                                 shading="flat")
            outline = basin_outline(p.basin, edges(p.lrs), edges(p.wds))
            if outline:
                ax.add_collection(LineCollection(outline, colors="white", linewidths=3.2))
                ax.add_collection(LineCollection(outline, colors="black", linewidths=1.4, label="basin"))
            ii, jj = np.nonzero(p.diverged)
            if len(ii):
                ax.scatter(np.log10(p.lrs[jj]), np.log10(p.wds[ii]), marker="x", c="#aa0000", s=22, lw=1.2,
                           label="diverged")
            ok = np.isfinite(p.wd_star)
            ax.plot(np.log10(p.lrs[ok & p.interior]), np.log10(p.wd_star[ok & p.interior]), "o", mfc="white",
                    mec="black", ms=4.5, label="λ*(lr)")
            if (ok & ~p.interior).any():
                ax.plot(np.log10(p.lrs[ok & ~p.interior]), np.log10(p.wd_star[ok & ~p.interior]), "v",
                        mfc="white", mec="black", ms=4.5, label="λ* at grid edge")
            if p.fit is not None:
                slope, intercept = p.fit
                xs = np.linspace(np.log10(p.lrs[0]), np.log10(p.lrs[-1]), 20)
                ax.plot(xs, intercept + slope * xs, "--", color="white", lw=1.6)
                ax.plot(xs, intercept + slope * xs, "--", color="black", lw=0.9, label=p.fit_label)
            ax.set_ylim(*edges(p.wds)[[0, -1]])
            ax.set_xlim(*edges(p.lrs)[[0, -1]])
        lr, wd, mean = p.best
        ax.plot(math.log10(lr), math.log10(wd), "*", ms=15, mfc="white", mec="crimson", mew=1.5,
                label=f"best {mean:.3g}")
        ax.set_title(p.arm)
        ax.set_xlabel("log10 lr")
        ax.set_ylabel("log10 weight decay")
        # Below the panel: inside, it would hide cells.
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    extend = ("max" if data.direction == "minimize" else "min") if data.clipped else "neither"
    cbar = fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.9, extend=extend)
    cbar.set_label(f"{data.metric} (mean over seeds)")
    return fig


ROW = FigureRow("heatmaps", SweepView, "{metric} over (lr, wd), mean over seeds; one colour scale for all panels; "
                "★ best point, ○ refined λ*(lr), ▽ λ* at the grid edge, dashed: fitted λ*(lr), × diverged; "
                "outlined: the basin, the cells within {tolerance:.0%} of the best",
                heatmaps_data, draw_heatmaps)
