"""λ*(lr) of every arm on log-log axes with its fitted power law: the transfer rule at a glance (a grid only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from weightdecay.reports.analysis import format_slope
from weightdecay.reports.figures.base import FigureRow, SweepView
from weightdecay.reports.style import new_figure

__all__ = ["SlopeLine", "slopes_data", "draw_slopes", "ROW"]


@dataclass
class SlopeLine:
    """One arm: λ* per lr (``interior``: inside the grid) and, when a slope was fitted, the line λ = 10^b·lr^a."""

    arm: str
    lrs: np.ndarray
    wd_star: np.ndarray
    interior: np.ndarray
    fitted: np.ndarray | None  # the fit at ``lrs``
    label: str


def slopes_data(view: SweepView) -> list[SlopeLine]:
    lines = []
    for a in view.analysis.arms.values():
        sl = a.slope
        fitted = sl.predict(sl.lrs) if math.isfinite(sl.slope) else None
        lines.append(SlopeLine(a.arm, sl.lrs, sl.wd_star, sl.interior, fitted,
                               f"{a.arm}: {format_slope(sl.slope, sl.err, sl.censored)}" if fitted is not None else ""))
    return lines


def draw_slopes(lines: list[SlopeLine]) -> Figure:
    fig = new_figure(figsize=(4.8, 3.4))
    ax = fig.subplots()
    for k, line in enumerate(lines):
        ok = np.isfinite(line.wd_star)
        color = f"C{k}"
        ax.plot(line.lrs[ok & line.interior], line.wd_star[ok & line.interior], "o", color=color)
        ax.plot(line.lrs[ok & ~line.interior], line.wd_star[ok & ~line.interior], "v", color=color, mfc="none")
        if line.fitted is not None:
            ax.plot(line.lrs, line.fitted, "-", color=color, label=line.label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    lrs = np.unique(np.concatenate([line.lrs for line in lines])) if lines else np.array([])
    _label_ticks(ax.xaxis, lrs)
    _label_ticks(ax.yaxis, np.array([]))
    ax.set_xlabel("lr")
    ax.set_ylabel("best weight decay λ*")
    ax.set_title("λ*(lr); ▽ = at the grid's edge")
    if ax.get_legend_handles_labels()[0]:  # no fitted line (no slope measurable): no legend, no warning
        ax.legend(fontsize=7)
    return fig


def _label_ticks(axis, values: np.ndarray) -> None:
    """Labels a log axis can hold side by side: the grid's own values when they are few (a grid spanning about a
    decade otherwise gets matplotlib's 2×, 3×, 4×, 6× labels, which overlap), else the decades; minor ticks
    unlabelled."""
    axis.axes.autoscale_view()
    low, high = sorted(axis.get_view_interval())
    if 1 < len(values) <= 6:
        axis.set_major_locator(FixedLocator(values))
        axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    elif low > 0 and high / low < 30:  # under about a decade and a half: 1, 2, 5 of each decade
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    else:
        axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_minor_formatter(NullFormatter())


ROW = FigureRow("slopes", SweepView, "best weight decay λ* against lr with the fitted power law, per arm",
                slopes_data, draw_slopes, applies=lambda view: view.analysis.grid)
