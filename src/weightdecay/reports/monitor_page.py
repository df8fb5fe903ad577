"""One self-contained page per monitor log: the flags on top, then per-layer curves against their predictions.

Figures are inlined as base64 PNG; the page has no script and makes no network request. The figures are the
monitor rows of :data:`weightdecay.reports.figures.FIGURES` (``layers``, ``shrink``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from weightdecay._io import atomic_write
from weightdecay.monitors import MonitorSummary, summarize
from weightdecay.reports.figures import FIGURES, MonitorView, caption, draw_figures
from weightdecay.reports.style import CSS, figure_html

__all__ = ["chosen_layers", "monitor_figures", "render_monitor_page", "write_monitor_page"]


def chosen_layers(summary: MonitorSummary, limit: int) -> list[str]:
    """The tensors worth a row (:meth:`MonitorSummary.worth_showing`): scale-invariant first, then the decayed
    ones (s_t > 0), largest ‖p‖ first."""
    return summary.worth_showing(limit)


def monitor_figures(records: list[dict[str, Any]], names: list[str]) -> dict[str, bytes]:
    """PNG bytes of the monitor page's figures (:data:`weightdecay.reports.figures.FIGURES`): ``layers`` (when
    ``names``) and ``shrink`` (when a group decays)."""
    return {name: png for name, (png, _) in draw_figures(MonitorView(records, names)).items()}


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
    view = MonitorView(records, names)
    figures = monitor_figures(records, names)
    flags = ("".join(f'<li class="flag" data-kind="{esc(f.kind)}">{esc(f.sentence)}</li>' for f in summary.flags)
             or f"<li>No weight-decay flags after {summary.steps} steps.</li>")
    invariant = [n for n, d in summary.layers.items() if d["scale_invariant"]]
    more = len([n for n, d in summary.layers.items() if d["scale_invariant"] or d["shrink"]]) - len(names)
    captions = {k: caption(FIGURES[k], view) for k in figures}
    if more > 0 and "layers" in captions:
        captions["layers"] += f"; {more} more tensors in the table"
    figs = "".join(figure_html(k, png, captions[k]) for k, png in figures.items())
    decays = sorted({str(r["decay"]) for r in records})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>weightdecay monitor {esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
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
    return atomic_write(output, render_monitor_page(records, **options))
