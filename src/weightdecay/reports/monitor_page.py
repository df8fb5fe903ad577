"""One self-contained page per monitor log: the flags on top, then per-layer curves against their predictions.

Figures are inlined as base64 PNG; the page has no script and makes no network request. The curve *data*
(:func:`layer_curves`) is computed apart from the drawing, so another backend could draw the same thing.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from weightdecay.monitors import MonitorSummary, summarize  # noqa: E402
from weightdecay.monitors.export import atomic_write_bytes  # noqa: E402
from weightdecay.reports.figures import render  # noqa: E402
from weightdecay.reports.html import _CSS  # noqa: E402

__all__ = ["layer_curves", "chosen_layers", "layers_figure", "shrink_figure", "monitor_figures", "render_monitor_page",
           "write_monitor_page", "CAPTIONS"]

# (record key, its prediction, axis label, log scale)
PANELS: tuple[tuple[str, str | None, str, bool], ...] = (
    ("rotation", "predicted_rotation", "rotation per step (rad)", True),
    ("grad_to_weight", "predicted_grad_to_weight", "‖g‖/‖p‖", True),
    ("weight_norm", None, "‖p‖", False),
)

# What the figures show, for the page and for the sweep report's best runs.
CAPTIONS = {
    "layers": ("Per tensor (rows): the angle it turns per step, ‖g‖/‖p‖ and ‖p‖; dashed red: the prediction "
               "(Kosson's equilibrium rotation; AdamC's sqrt(2·s_t)/lr_t under SGD), drawn for scale-invariant "
               "weights only"),
    "shrink": "The shrink s_t each step applied, and the learning rate, per param group",
}


def layer_curves(records: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Per tensor name: ``step`` and every numeric field as arrays in step order (None → NaN)."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in sorted(records, key=lambda r: r["step"]):
        curves = out.setdefault(r["name"], {})
        for key, value in r.items():
            if key not in ("name", "decay", "group"):
                curves.setdefault(key, []).append(np.nan if value is None else float(value))
    return {name: {k: np.asarray(v, dtype=float) for k, v in curves.items()} for name, curves in out.items()}


def chosen_layers(summary: MonitorSummary, limit: int) -> list[str]:
    """The tensors worth a row (:meth:`MonitorSummary.worth_showing`): scale-invariant first, then the decayed
    ones (s_t > 0), largest ‖p‖ first."""
    return summary.worth_showing(limit)


def layers_figure(records: list[dict[str, Any]], names: list[str]) -> Figure:
    """A row per tensor of ``names``: rotation, ‖g‖/‖p‖, ‖p‖ against the step; dashed, the prediction."""
    curves = layer_curves(records)
    fig, axes = plt.subplots(len(names), len(PANELS), figsize=(4.2 * len(PANELS), 2.3 * len(names)),
                             squeeze=False, constrained_layout=True)
    for row, name in enumerate(names):
        c = curves[name]
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
            if row == len(names) - 1:
                ax.set_xlabel("step", fontsize=8)
    return fig


def shrink_figure(records: list[dict[str, Any]]) -> Figure | None:
    """The shrink s_t and the lr per step, a line per param group that decays; None when none does."""
    groups: dict[int, dict[str, list[float]]] = {}
    for r in sorted(records, key=lambda r: r["step"]):
        if r["shrink"] is not None and r["shrink"] > 0:
            g = groups.setdefault(r["group"], {"step": [], "shrink": [], "lr": []})
            if not g["step"] or g["step"][-1] != r["step"]:
                g["step"].append(r["step"])
                g["shrink"].append(r["shrink"])
                g["lr"].append(r["lr"])
    if not groups:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), squeeze=False, constrained_layout=True)
    for k, (g, data) in enumerate(sorted(groups.items())):
        axes[0][0].plot(data["step"], data["shrink"], color=f"C{k}", label=f"group {g}")
        axes[0][1].plot(data["step"], data["lr"], color=f"C{k}", label=f"group {g}")
    for ax, label in zip(axes[0], ("shrink s_t per step", "learning rate lr_t")):
        ax.set_yscale("log")
        ax.set_xlabel("step", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return fig


def monitor_figures(records: list[dict[str, Any]], names: list[str]) -> dict[str, bytes]:
    """PNG bytes: ``layers`` (:func:`layers_figure`, when ``names``) and ``shrink`` (:func:`shrink_figure`)."""
    figures: dict[str, bytes] = {}
    if names:
        figures["layers"] = render(layers_figure(records, names))[0]
    shrink = shrink_figure(records)
    if shrink is not None:
        figures["shrink"] = render(shrink)[0]
    return figures


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}" if isinstance(x, float) else html.escape(str(x))


def _layer_table(summary: MonitorSummary) -> str:
    head = ("<tr><th class=l>tensor</th><th>group</th><th>scale-invariant</th><th>final ‖p‖</th>"
            "<th>final ‖g‖/‖p‖</th><th>s_t</th><th>τ_iter</th><th>settled rotation</th><th>predicted</th></tr>")
    rows = "".join(
        f"<tr><td class=l><code>{html.escape(n)}</code></td><td>{d['group']}</td>"
        f"<td>{'yes' if d['scale_invariant'] else 'no'}</td><td>{_fmt(d['weight_norm'])}</td>"
        f"<td>{_fmt(d['grad_to_weight'])}</td><td>{_fmt(d['shrink'])}</td><td>{_fmt(d['tau_iter'])}</td>"
        f"<td>{_fmt(d['settled_rotation'])}</td><td>{_fmt(d['predicted_rotation'])}</td></tr>"
        for n, d in summary.layers.items())
    return f'<table id="layers">{head}{rows}</table>'


def render_monitor_page(records: list[dict[str, Any]], *, title: str = "monitor", max_layers: int = 8,
                        steps_per_epoch: int | None = None) -> str:
    """The page as a string: flags, the per-layer figure, the shrink/lr figure and the layer table."""
    esc = html.escape
    summary = summarize(records, steps_per_epoch=steps_per_epoch)
    names = chosen_layers(summary, max_layers)
    figures = monitor_figures(records, names)
    flags = ("".join(f'<li class="flag" data-kind="{esc(f.kind)}">{esc(f.sentence)}</li>' for f in summary.flags)
             or f"<li>No weight-decay flags after {summary.steps} steps.</li>")
    invariant = [n for n, d in summary.layers.items() if d["scale_invariant"]]
    more = len([n for n, d in summary.layers.items() if d["scale_invariant"] or d["shrink"]]) - len(names)
    captions = {**CAPTIONS, "layers": CAPTIONS["layers"] + (f"; {more} more tensors in the table" if more > 0 else "")}
    figs = "".join(
        f'<figure id="fig-{k}"><img alt="{esc(captions[k])}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{esc(captions[k])}</figcaption></figure>'
        for k, png in figures.items())
    decays = sorted({str(r["decay"]) for r in records})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>weightdecay monitor {esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>Weight decay in <code>{esc(title)}</code></h1>
<p class="meta">{summary.steps} steps · {len(summary.layers)} tensors · decay {esc(', '.join(decays))} ·
scale-invariant: {esc(', '.join(invariant)) or 'none found'}</p>
<h2>Flags</h2>
<ul class="rec" id="flags">{flags}</ul>
<h2>Per layer, measured against predicted</h2>
{figs}
<h2>Tensors</h2>
<p>Settled rotation: the median angle per step once three timescales 1/s_t have passed; predicted: the
median equilibrium angle over the same steps.</p>
{_layer_table(summary)}
</body></html>
"""


def write_monitor_page(records: list[dict[str, Any]], output: str | Path, **options: Any) -> Path:
    """Write :func:`render_monitor_page` to ``output`` atomically; returns the path."""
    return atomic_write_bytes(output, render_monitor_page(records, **options).encode("utf-8"))
