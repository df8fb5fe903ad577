"""Learning curves of each arm's best configuration: per-epoch metric (and training loss), mean over seeds with
the min–max band, from the histories the runs recorded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from weightdecay.reports.figures.base import FigureRow, SweepView
from weightdecay.reports.style import new_figure

__all__ = ["Curve", "CurvesData", "curves_data", "draw_curves", "ROW"]


@dataclass
class Curve:
    """One arm's best point, one history key: epochs and the seeds' values [seed, epoch] (NaN: not recorded)."""

    arm: str
    key: str
    label: str
    epochs: np.ndarray
    values: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return np.nanmean(self.values, axis=0)


@dataclass
class CurvesData:
    keys: list[str]  # a panel each
    curves: list[Curve]


def has_history(view: SweepView) -> bool:
    """Whether any run recorded a history (a script that prints only its final line has none: no panels then)."""
    return any(r.history for r in view.results.records)


def curves_data(view: SweepView) -> CurvesData | None:
    analysis, results = view.analysis, view.results
    keys = [analysis.metric] + (["train_loss"] if analysis.metric != "train_loss" else [])
    curves = []
    for a in analysis.arms.values():
        runs = [r for r in results.for_arm(a.arm) if r.lr == a.best.lr and r.weight_decay == a.best.weight_decay]
        for key in keys:
            with_key = [r for r in runs if any(h.get(key) is not None for h in r.history)]
            if not with_key:
                continue
            n = min(len(r.history) for r in with_key)
            y = np.array([[np.nan if h.get(key) is None else h[key] for h in r.history[:n]] for r in with_key],
                         dtype=float)
            # The history's own clock: epochs, else steps (a script's printed lines), else the row's place.
            epochs = np.array([h.get("epoch", h.get("step", i + 1)) for i, h in enumerate(with_key[0].history[:n])],
                              dtype=float)
            curves.append(Curve(a.arm, key, f"{a.arm} (lr={a.best.lr:.2g}, wd={a.best.weight_decay:.2g})", epochs, y))
    if not curves:
        return None  # the best runs recorded no history: nothing to draw, not empty axes
    return CurvesData([k for k in keys if any(c.key == k for c in curves)], curves)


def draw_curves(data: CurvesData) -> Figure:
    fig = new_figure(figsize=(4.4 * len(data.keys), 3.2))
    axes = fig.subplots(1, len(data.keys), squeeze=False)[0]
    arms = list(dict.fromkeys(c.arm for c in data.curves))
    for c in data.curves:
        ax, color = axes[data.keys.index(c.key)], f"C{arms.index(c.arm)}"
        ax.plot(c.epochs, c.mean, color=color, label=c.label)
        if len(c.values) > 1:
            ax.fill_between(c.epochs, np.nanmin(c.values, axis=0), np.nanmax(c.values, axis=0), color=color,
                            alpha=0.2)
    for ax, key in zip(axes, data.keys):
        ax.set_xlabel("epoch (or step)")
        ax.set_ylabel(key)
        ax.set_title(f"{key} of the best runs")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


ROW = FigureRow("curves", SweepView, "learning curves of each arm's best configuration (mean over seeds, min–max band)",
                curves_data, draw_curves, applies=has_history)
