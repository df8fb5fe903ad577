"""Per tensor (a row each): the angle it turns per step, ‖g‖/‖p‖ and ‖p‖ against the step, the rules'
predictions dashed. On the monitor page, and for each arm's best run in a watched sweep's report."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from weightdecay.monitors.fields import TEXT_FIELDS
from weightdecay.reports.figures.base import FigureRow, MonitorView
from weightdecay.reports.style import new_figure

__all__ = ["PANELS", "layer_curves", "layers_data", "draw_layers", "ROW"]

# (record key, its prediction, axis label, log scale)
PANELS: tuple[tuple[str, str | None, str, bool], ...] = (
    ("rotation", "predicted_rotation", "rotation per step (rad)", True),
    ("grad_to_weight", "predicted_grad_to_weight", "‖g‖/‖p‖", True),
    ("weight_norm", None, "‖p‖", False),
)


def layer_curves(records: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Per tensor name: ``step`` and every numeric field as arrays in step order (None → NaN)."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in sorted(records, key=lambda r: r["step"]):
        curves = out.setdefault(r["name"], {})
        for key, value in r.items():
            if key != "group" and key not in TEXT_FIELDS:
                curves.setdefault(key, []).append(np.nan if value is None else float(value))
    return {name: {k: np.asarray(v, dtype=float) for k, v in curves.items()} for name, curves in out.items()}


def layers_data(view: MonitorView) -> dict[str, dict[str, np.ndarray]] | None:
    """The curves of the chosen tensors, in the order chosen (None when none is chosen)."""
    if not view.names:
        return None
    curves = layer_curves(view.records)
    return {name: curves[name] for name in view.names}


def draw_layers(curves: dict[str, dict[str, np.ndarray]]) -> Figure:
    fig = new_figure(figsize=(4.2 * len(PANELS), 2.3 * len(curves)))
    axes = fig.subplots(len(curves), len(PANELS), squeeze=False)
    for row, (name, c) in enumerate(curves.items()):
        for col, (key, predicted, label, log) in enumerate(PANELS):
            ax = axes[row][col]
            y = c[key]
            if log:
                y = np.where(y > 0, y, np.nan)
            ax.plot(c["step"], y, color="C0", lw=1, label="measured")
            if predicted and np.isfinite(c[predicted]).any():
                ax.plot(c["step"], c[predicted], color="C3", lw=1.3, ls="--", label="predicted")
                ax.legend(fontsize=7, loc="best")
            if log and np.isfinite(y).any():
                ax.set_yscale("log")
            ax.set_title(f"{name}: {label}", fontsize=8)
            ax.tick_params(labelsize=7)
            if row == len(curves) - 1:
                ax.set_xlabel("step", fontsize=8)
    return fig


ROW = FigureRow("layers", MonitorView,
                "Per tensor (rows): the angle it turns per step, ‖g‖/‖p‖ and ‖p‖; dashed red: the prediction "
                "(Kosson's equilibrium rotation; AdamC's sqrt(2·s_t)/lr_t under SGD), drawn for scale-invariant "
                "weights only", layers_data, draw_layers)
