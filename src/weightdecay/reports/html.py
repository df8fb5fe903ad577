"""One self-contained HTML page per sweep: figures inlined as base64 PNG, no script, no network.

The page shows the recommendation first, then the heatmaps (one colour scale for all panels, in the style of
Loshchilov & Hutter's figure 2), λ*(lr) with the fitted slopes, the learning curves of the best runs, the
slope/basin table and the best configurations. The figures are also written beside the page as PNG and SVG.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from weightdecay._io import atomic_write
from weightdecay.reports.analysis import MIN_RULE_COLUMNS, SweepAnalysis, format_slope, peak_shrink, ranked_points
from weightdecay.reports.figures import FIGURES, SweepView, caption, draw_figures, figure_rows
from weightdecay.reports.style import CSS, figure_html, render
from weightdecay.reports.watched_runs import WatchedRun, watched_best_runs, watched_figures, watched_section
from weightdecay.sweeps import SweepResults, strategy_for

__all__ = ["write_report", "render_html", "write_combined_report", "render_combined_html", "OWN_MODEL"]

# The sentence on top of every report of a built-in task: the demo's point is that a user measures their own model.
OWN_MODEL = ("Measure your own model the same way. A training script you already have: end it with "
             "<code>weightdecay.report({\"val_loss\": val_loss})</code> and sweep it with a config whose "
             "<code>command</code> runs it (examples/train_script.toml, docs/own_script.md). Or register it as a "
             "task in a Python file (examples/custom_task.py shows how), try it with <code>weightdecay train "
             "YOUR_TASK --import your_tasks.py</code>, then sweep it with <code>imports = [\"your_tasks\"]</code> in a "
             "copy of a config from experiments/ and <code>PYTHONPATH=. weightdecay sweep your.toml</code> "
             "(docs/sweeps.md).")

def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "inf (diverged)"
    return f"{x:.{digits}g}"


def _figure(name: str, png: bytes, caption: str) -> str:
    return figure_html(name, png, caption, f' (also <a href="figures/{name}.svg">SVG</a>, '
                                           f'<a href="figures/{name}.png">PNG</a>)')


def _arm_table(analysis: SweepAnalysis) -> str:
    rows = []
    for a in analysis.arms.values():
        b, s, bs = a.best, a.slope, a.basin
        n_int = int(s.interior.sum())
        slope = format_slope(s.slope, s.err, s.censored) if math.isfinite(s.slope) else "–"
        div = int(a.heatmap.diverged_any.sum())
        rows.append(
            f"<tr><td class=l>{html.escape(a.arm)}</td><td>{_fmt(b.mean)}</td><td>{_fmt(b.std, 2)}</td>"
            f"<td>{_fmt(b.low)} – {_fmt(b.high)}</td><td>{b.lr:.3g}</td><td>{b.weight_decay:.3g}</td>"
            f"<td>{slope}</td><td>{s.method}</td><td>{n_int}/{len(s.lrs)}</td>"
            f"<td class=l>{html.escape(bs.orientation)}</td><td>{_fmt(bs.angle, 2)}°</td><td>{_fmt(bs.area, 3)}</td>"
            f"<td>{int(bs.cells.sum())}</td><td>{div}</td></tr>")
    head = ("<tr><th class=l>arm</th><th>best mean</th><th>seed sd</th><th>seed range</th><th>lr</th><th>wd</th>"
            "<th>slope d log λ*/d log lr</th><th>uncertainty</th><th>interior λ*</th><th class=l>basin</th>"
            "<th>axis</th><th>area (dec²)</th><th>cells</th><th>diverged cells</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _table_note(tolerance: float) -> str:
    """What the slope/basin table's columns mean (both pages show the table)."""
    return f"""<p class="note">Slope: least-squares fit of log λ* against log lr over the learning rates whose best λ
lies inside the grid (λ* refined by a parabola in log λ through the best grid point and its neighbours);
uncertainty: standard deviation over bootstrap resamples of the seeds; interior λ*: the learning rates the fit
uses (a rule is stated from {MIN_RULE_COLUMNS} on). −1: keep lr·λ fixed; 0: keep λ. Basin: cells within
{tolerance:.0%} of the best score; area in decades² of (lr, λ); axis: angle of its principal axis (−45° is the
diagonal λ ∝ 1/lr); diverged cells: a seed diverged there.</p>"""


def _best_configs(results: SweepResults, analysis: SweepAnalysis, top: int = 3) -> str:
    # The shrink per step in each arm's own convention (lr·λ only under torch; λ itself under paper), so that
    # arms of different conventions compare on what the weights feel.
    rows = []
    for a in analysis.arms.values():
        arm = results.config.arm(a.arm)
        for rank, p in enumerate(ranked_points(a.heatmap, top), 1):
            s = peak_shrink(arm, p.lr, p.weight_decay)
            tau = _fmt(1 / s, 3) if s > 0 else "–"
            rows.append(f"<tr><td class=l>{html.escape(a.arm)}</td><td>{rank}</td><td>{p.lr:.3g}</td>"
                        f"<td>{p.weight_decay:.3g}</td><td>{_fmt(s, 3)}</td><td>{tau}</td><td>{_fmt(p.mean)}</td>"
                        f"<td>{_fmt(p.std, 2)}</td><td>{p.n_seeds}</td></tr>")
    head = ("<tr><th class=l>arm</th><th>rank</th><th>lr</th><th>wd</th><th>shrink s per step (at the peak lr)</th>"
            "<th>τ_iter = 1/s (steps)</th><th>mean</th><th>seed sd</th><th>seeds</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(results: SweepResults, analysis: SweepAnalysis, figures: dict[str, bytes],
                watched: list[WatchedRun] | None = None) -> str:
    """The report page as a string, with the given PNG figures (``heatmaps``, ``slopes``, ``curves``) inlined;
    with ``watched`` (a sweep with ``monitor_every``: :func:`~weightdecay.reports.watched_runs.watched_best_runs`)
    a section on the best runs as their monitors saw them, their figures among ``figures``."""
    c = results.config
    esc = html.escape
    grid = strategy_for(c).describe()
    arms = "; ".join(f"{a.name} = {a.optimizer} decay={a.decay}"
                     + (f", wd {min(a.weight_decay):.3g}–{max(a.weight_decay):.3g} ({len(a.weight_decay)})"
                        if a.weight_decay else "") for a in c.arms)
    n_div = sum(r.diverged for r in results.records)
    notes = list(analysis.notes)
    if results.failed:
        points = getattr(results, "failed_points", results.failed)
        notes.append(f"{points} point{'s' if points != 1 else ''} failed with an error and never completed "
                     f"({results.failed} failed trial{'s' if results.failed != 1 else ''}; not in the heatmaps); "
                     f"rerun the sweep to retry")
    notes_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    view = SweepView(results, analysis)
    fig_html = "".join(_figure(row.name, figures[row.name], caption(row, view)) for row in figure_rows(view)
                       if row.name in figures)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    own = "task default" if c.task else "set by your code"  # a command or function sweep trains its own way
    watched_html = "" if watched is None else (
        '<h2 id="watched">Weight decay in the best runs</h2>\n'
        + watched_section(watched, c.monitor_every, lambda name, cap: _figure(name, figures[name], cap)
                          if name in figures else ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>weightdecay sweep {esc(c.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>Sweep <code>{esc(c.name)}</code>: {esc(c.workload)}, {esc(c.metric)} ({esc(c.direction)})</h1>
{'' if c.imports or not c.task else f'<p class="rec" id="own-model">{OWN_MODEL}</p>'}
<p class="meta">{esc(grid)} · {len(c.seeds)} seeds · epochs {c.epochs or own} · schedule {esc(c.schedule or own)}
 · {len(results.records)} runs ({n_div} diverged) · written {stamp}</p>
<p class="meta">Arms: {esc(arms)}</p>
<h2>Recommendation</h2>
<p class="rec" id="recommendation">{esc(analysis.recommendation)}</p>
{f'<ul>{notes_html}</ul>' if notes_html else ''}
<h2>Heatmaps, λ*(lr) and learning curves</h2>
{fig_html}
{watched_html}
<h2>Slopes and basins</h2>
{_table_note(c.basin_tolerance)}
{_arm_table(analysis)}
<h2>Best configurations</h2>
<p>s is the per-step shrink p ← p·(1 − s) at the peak lr in the arm's own convention (lr·λ for torch, λ for
paper and constant; – for coupled l2, stable and normalized weight decay); τ_iter = 1/s is the number of steps
the weights average over (docs/math.md, "EMA timescale").</p>
{_best_configs(results, analysis)}
</body></html>
"""


def write_report(results: SweepResults, analysis: SweepAnalysis, output: str | Path) -> Path:
    """Write the HTML page and ``figures/*.png|svg`` beside it; returns the page's path.

    A sweep with ``monitor_every`` also gets a section on each arm's best run as its monitor saw it, drawn from
    the run's monitor log in the sweep's output folder (``figures/monitor-ARM.png|svg``).

    Args:
        results: :class:`weightdecay.sweeps.SweepResults`.
        analysis: :func:`weightdecay.reports.analysis.analyze` of those results.
        output: the HTML file to write.

    >>> write_report(results, analyze(results), "runs/demo/report.html")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    output = Path(output)
    fig_dir = output.parent / "figures"
    drawn = draw_figures(SweepView(results, analysis))
    watched = watched_best_runs(results, analysis) if results.config.monitor_every else None
    for name, data in watched_figures(watched or []).items():
        drawn[name] = render(lambda data=data: FIGURES["layers"].draw(data))
    pngs = {}
    for name, (png, svg) in drawn.items():
        atomic_write(fig_dir / f"{name}.png", png)
        atomic_write(fig_dir / f"{name}.svg", svg)
        pngs[name] = png
    atomic_write(output, render_html(results, analysis, pngs, watched))
    return output


def render_combined_html(parts: list[tuple[Any, Any, dict[str, bytes], str]]) -> str:
    """One page for several sweeps: the own-model sentence on top, then per sweep its recommendation, heatmaps,
    λ*(lr) and slope/basin table, with a link to that sweep's full report.

    Args:
        parts: per sweep ``(results, analysis, figures, link)``: PNG figures by name (``heatmaps``, ``slopes``)
            and the relative address of the sweep's own report page.
    """
    esc = html.escape
    sections = []
    for i, (results, analysis, figures, link) in enumerate(parts):
        c = results.config
        arms = "; ".join(f"{a.name} = {a.optimizer} decay={a.decay}" for a in c.arms)
        folder = link.rsplit("/", 1)[0] + "/" if "/" in link else ""
        figs = "".join(
            figure_html(f"{i}-{name}", png, f"{c.name}: " + ("heatmaps, one colour scale per sweep"
                                                             if name == "heatmaps" else "λ*(lr) and the fitted slopes"),
                        f' (also <a href="{esc(folder)}figures/{name}.svg">SVG</a>)')
            for name, png in figures.items())
        sections.append(
            f'<h2 id="sweep-{i}">{esc(c.name)}: {esc(c.task)}, {esc(c.metric)}, epochs {c.epochs or "task default"}, '
            f'schedule {esc(c.schedule)}, {len(c.seeds)} seeds</h2>\n<p class="meta">Arms: {esc(arms)} · '
            f'{len(results.records)} runs · <a href="{esc(link)}">full report</a></p>\n'
            f'<p class="rec">{esc(analysis.recommendation)}</p>\n{figs}\n{_table_note(c.basin_tolerance)}\n'
            f'{_arm_table(analysis)}')
    names = ", ".join(esc(r.config.name) for r, *_ in parts)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>weightdecay sweeps {names}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>Sweeps {names}</h1>
<p class="rec" id="own-model">{OWN_MODEL}</p>
<p class="meta">written {stamp}</p>
{body}
</body></html>
"""


def write_combined_report(parts: list[tuple[Any, Any]], output: str | Path) -> Path:
    """Write one page for several sweeps (see :func:`render_combined_html`); returns its path.

    Each sweep's own page is expected at ``output.parent/NAME/report.html`` (where ``weightdecay sweep A.toml
    B.toml --out OUT`` writes it), and the page links there.

    >>> write_combined_report([(results, analyze(results)) for results in both], "runs/demo/report.html")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    output = Path(output)
    rendered = []
    for results, analysis in parts:
        drawn = draw_figures(SweepView(results, analysis), only=("heatmaps", "slopes"))
        figures = {name: png for name, (png, _) in drawn.items()}
        rendered.append((results, analysis, figures, f"{results.config.name}/report.html"))
    atomic_write(output, render_combined_html(rendered))
    return output
