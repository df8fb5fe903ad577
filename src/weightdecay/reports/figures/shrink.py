"""The shrink s_t each step applied, and the learning rate, a line per param group that decays."""

from __future__ import annotations

from matplotlib.figure import Figure

from weightdecay.reports.figures.base import FigureRow, MonitorView
from weightdecay.reports.style import new_figure

__all__ = ["shrink_data", "draw_shrink", "ROW"]


def shrink_data(view: MonitorView) -> dict[int, dict[str, list[float]]] | None:
    """Per param group with a positive shrink: ``step``, ``shrink``, ``lr`` once per step (None: no group decays)."""
    groups: dict[int, dict[str, list[float]]] = {}
    for r in sorted(view.records, key=lambda r: r["step"]):
        if r["shrink"] is not None and r["shrink"] > 0:
            g = groups.setdefault(r["group"], {"step": [], "shrink": [], "lr": []})
            if not g["step"] or g["step"][-1] != r["step"]:
                g["step"].append(r["step"])
                g["shrink"].append(r["shrink"])
                g["lr"].append(r["lr"])
    return groups or None


def draw_shrink(groups: dict[int, dict[str, list[float]]]) -> Figure:
    fig = new_figure(figsize=(9, 2.8))
    axes = fig.subplots(1, 2, squeeze=False)[0]
    for k, (g, data) in enumerate(sorted(groups.items())):
        axes[0].plot(data["step"], data["shrink"], color=f"C{k}", label=f"group {g}")
        axes[1].plot(data["step"], data["lr"], color=f"C{k}", label=f"group {g}")
    for ax, label in zip(axes, ("shrink s_t per step", "learning rate lr_t")):
        ax.set_yscale("log")
        ax.set_xlabel("step", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return fig


ROW = FigureRow("shrink", MonitorView, "The shrink s_t each step applied, and the learning rate, per param group",
                shrink_data, draw_shrink)
