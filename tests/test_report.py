"""The sweep report: a self-contained page, figures as PNG and SVG, and a real headless Chromium that loads it."""

from __future__ import annotations

import base64
import math
import re
import struct
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from conftest import run_cli
from weightdecay.reports.analysis import analyze
from weightdecay.reports import write_report
from weightdecay.sweeps import load_results

class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.scripts, self.styles = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag in ("a", "link"):
            self.links.append(a.get("href", ""))
        elif tag == "script":
            self.scripts.append(a)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(ridge_sweep_dir):
    results = load_results(ridge_sweep_dir)
    analysis = analyze(results, n_boot=50)
    path = write_report(results, analysis, ridge_sweep_dir / "report.html")
    return path, results, analysis


def test_report_is_self_contained_with_figures_on_disk(report):
    path, results, analysis = report
    text = path.read_text()
    parser = _Assets()
    parser.feed(text)
    assert len(parser.imgs) == 3 and not parser.scripts
    # No monitor_every: no section on the best runs' monitors (tests/test_report_watched.py has one)
    assert 'id="watched"' not in text and not list((path.parent / "figures").glob("monitor-*"))
    for img in parser.imgs:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        w, h = _png_size(base64.b64decode(src.split(",", 1)[1]))
        assert w > 200 and h > 150
    # Nothing to fetch from a network: links only point at the figure files beside the page.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert all(h.startswith("figures/") for h in parser.links)
    for name in ("heatmaps", "slopes", "curves"):
        assert _png_size((path.parent / "figures" / f"{name}.png").read_bytes())[0] > 200
        root = ET.parse(path.parent / "figures" / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")
    # The page states the numbers of the analysis (the same objects, formatted).
    for a in analysis.arms.values():
        assert f"{a.best.lr:.3g}" in text and f"{a.slope.slope:+.2f}" in text
    assert analysis.recommendation.split(".")[0] in text.replace("&#x27;", "'")


def test_report_command_prints_path_and_headline(ridge_sweep_dir, tmp_path):
    from conftest import run_cli_in_process

    out = tmp_path / "r.html"
    result = run_cli("report", str(ridge_sweep_dir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"report: {out}" in result.stdout and "slope log λ*/log lr" in result.stdout
    assert "Best: " in result.stdout and out.exists() and (tmp_path / "figures" / "heatmaps.svg").exists()
    # From the storage itself (the journal file), as another machine would.
    result = run_cli_in_process("report", str(ridge_sweep_dir / "study.journal"), "-o", str(tmp_path / "r2.html"))
    assert result.returncode == 0, result.stderr
    missing = run_cli("report", str(tmp_path / "nothing-here"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr


def test_best_configurations_table_is_the_analysis_ranking(report):
    from weightdecay.reports.analysis import ranked_points

    path, results, analysis = report
    table = path.read_text().split("<h2>Best configurations</h2>", 1)[1]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tr>")[2:]]
    expected = [[a.arm, str(rank), f"{p.lr:.3g}", f"{p.weight_decay:.3g}"]
                for a in analysis.arms.values() for rank, p in enumerate(ranked_points(a.heatmap, 3), 1)]
    assert [r[:4] for r in rows] == expected
    for a in analysis.arms.values():  # rank 1 is the best point the headline states
        assert ranked_points(a.heatmap, 1)[0] == a.best
    # The shrink per step is each arm's own: lr·λ under torch, λ itself under paper (not lr·λ for both, which
    # showed 1e-5 for a paper arm shrinking by 1e-2), and τ_iter = 1/s.
    for row in rows:
        lr, wd, s, tau = float(row[2]), float(row[3]), float(row[4]), float(row[5])
        expected = lr * wd if row[0] == "torch" else wd
        assert s == pytest.approx(expected, rel=2e-3) and tau == pytest.approx(1 / expected, rel=2e-3)


def test_report_headline_never_prints_a_minus_zero_slope(ridge_sweep_dir, tmp_path, monkeypatch, capsys):
    import weightdecay.reports.analysis as analysis_module
    from weightdecay.cli import sweep as cli_sweep

    real = analysis_module.analyze

    def nearly_flat(results, n_boot=300):
        analysis = real(results, n_boot=10)
        for a in analysis.arms.values():
            a.slope.slope = -0.001  # what the analysis sentence calls "+0.00"
        return analysis

    monkeypatch.setattr(analysis_module, "analyze", nearly_flat)
    cli_sweep._write_report(ridge_sweep_dir, str(tmp_path / "r.html"), None)
    out = capsys.readouterr().out
    assert out.count("slope log λ*/log lr +0.00") == 2 and "-0.00" not in out, out


def test_slopes_figure_without_a_fitted_line_warns_nothing():
    import warnings

    from weightdecay.reports.analysis import SweepAnalysis, analyze_arm
    from weightdecay.reports.figures import SweepView
    from weightdecay.reports.figures.slopes import draw_slopes, slopes_data

    # One learning rate: λ* is drawn, but no slope can be fitted, so no line carries a label.
    recs = [dict(arm="a", lr=1e-3, weight_decay=wd, seed=0, value=(math.log10(wd) + 2) ** 2, diverged=False)
            for wd in (1e-3, 1e-2, 1e-1)]
    a = analyze_arm(recs, "a", n_boot=5)
    assert not math.isfinite(a.slope.slope)
    analysis = SweepAnalysis(arms={"a": a}, metric="loss", direction="minimize", best_arm="a", recommendation="")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_slopes(slopes_data(SweepView(None, analysis)))
    assert not [w for w in caught if "No artists with labels" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.needs("chromium")
def test_report_renders_in_headless_chromium(report, tmp_path, chromium_page):
    path = report[0]
    cdp = chromium_page("Page", "Runtime", "Log")
    cdp.call("Page.navigate", url=path.resolve().as_uri())
    cdp.wait_event("Page.loadEventFired")
    check = cdp.call("Runtime.evaluate", returnByValue=True, expression="""(() => {
        const figs = [...document.querySelectorAll('img, svg')].map(e => {
            const r = e.getBoundingClientRect();
            return {tag: e.tagName, complete: e.tagName !== 'IMG' || e.complete,
                    natural: e.tagName === 'IMG' ? e.naturalWidth * e.naturalHeight : 1,
                    width: r.width, height: r.height};
        });
        return {title: document.title, figs, tables: document.querySelectorAll('table').length,
                rec: document.getElementById('recommendation').textContent};
    })()""")["result"]["value"]
    shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
    errors = [e for e in cdp.events if
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    assert check["title"].startswith("weightdecay sweep") and check["tables"] == 2
    assert check["rec"].startswith("Best: ")
    assert len(check["figs"]) == 3
    for fig in check["figs"]:
        assert fig["complete"] and fig["natural"] > 0 and fig["width"] > 100 and fig["height"] > 100, fig
    assert _png_size((tmp_path / "report.png").read_bytes())[1] > 1000


def test_each_figures_data_is_the_sweeps_records(report):
    # The figure rows compute their data apart from the drawing: here that data against the records themselves.
    import numpy as np

    from weightdecay.reports.figures import FIGURES, SweepView, figure_rows

    _, results, analysis = report
    view = SweepView(results, analysis)
    assert [r.name for r in figure_rows(view)] == ["heatmaps", "slopes", "curves"]  # a grid: all three
    heat = FIGURES["heatmaps"].data(view)
    for panel in heat.panels:
        runs = results.for_arm(panel.arm)
        for i, wd in enumerate(panel.wds):
            for j, lr in enumerate(panel.lrs):
                values = [r.value for r in runs if r.lr == lr and r.weight_decay == wd]
                assert panel.mean[i, j] == pytest.approx(np.mean(values)), (panel.arm, lr, wd)
                assert panel.diverged[i, j] == any(r.diverged for r in runs if r.lr == lr and r.weight_decay == wd)
        means = {(r.lr, r.weight_decay): np.mean([s.value for s in runs if (s.lr, s.weight_decay) == (r.lr, r.weight_decay)])
                 for r in runs}
        best = min(means, key=means.get)
        assert panel.best == (best[0], best[1], pytest.approx(means[best]))
    finite = np.concatenate([p.mean[np.isfinite(p.mean)] for p in heat.panels])
    assert heat.low == pytest.approx(finite.min()) and heat.high == pytest.approx(np.quantile(finite, 0.95))
    for line in FIGURES["slopes"].data(view):
        # λ* of each lr: the refined minimum of that column, within one grid step of the column's best cell
        panel = next(p for p in heat.panels if p.arm == line.arm)
        for j, lr in enumerate(line.lrs):
            column = panel.mean[:, j]
            k = int(np.nanargmin(column))
            steps = np.diff(np.log10(panel.wds))
            assert abs(np.log10(line.wd_star[j]) - np.log10(panel.wds[k])) <= steps.max() / 2 + 1e-9
    curves = FIGURES["curves"].data(view)
    assert curves.keys[0] == results.config.metric
    for c in curves.curves:
        a = analysis.arms[c.arm]
        runs = [r for r in results.for_arm(c.arm) if (r.lr, r.weight_decay) == (a.best.lr, a.best.weight_decay)]
        assert len(c.values) == len(runs)
        assert list(c.mean) == pytest.approx([np.mean([r.history[e][c.key] for r in runs])
                                              for e in range(len(c.epochs))])


def test_drawing_a_report_leaves_matplotlibs_backend_and_style_alone(ridge_sweep_dir, tmp_path):
    # A notebook user's backend and rcParams are theirs: nothing at import or while drawing switches them.
    import subprocess
    import sys

    from conftest import cli_env

    code = ("import matplotlib; matplotlib.rcParams['font.size'] = 13\n"
            "from weightdecay.reports import write_report\nfrom weightdecay.reports.analysis import analyze\n"
            "from weightdecay.sweeps import load_results\nr = load_results(sys.argv[1])\n"
            "write_report(r, analyze(r, n_boot=5), sys.argv[2])\n"
            "print(matplotlib.get_backend(), matplotlib.rcParams['font.size'], matplotlib.rcParams['svg.fonttype'])")
    env = {**cli_env(), "MPLBACKEND": "svg"}
    done = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(ridge_sweep_dir), str(tmp_path / "r.html")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "13.0", "path"], done.stdout
    # ... while the figures have the report's own style: text kept as text, at its 9 px, not the caller's 13
    assert "<text" in (tmp_path / "figures" / "heatmaps.svg").read_text()
    assert "font-size: 9px" in (tmp_path / "figures" / "heatmaps.svg").read_text()


def test_heatmaps_outline_the_basin_the_table_counts(report):
    # A colour scale alone can paint many cells alike while the table counts the basin's cells: the outline is the
    # analysis' basin, its perimeter each side of a basin cell that borders a cell outside it.
    import numpy as np
    from matplotlib.collections import LineCollection

    from weightdecay.reports.figures import FIGURES, SweepView
    from weightdecay.reports.figures.heatmaps import basin_outline, edges

    _, results, analysis = report
    data = FIGURES["heatmaps"].data(SweepView(results, analysis))
    fig = FIGURES["heatmaps"].draw(data)
    for panel, ax in zip(data.panels, fig.axes):
        cells = analysis.arms[panel.arm].basin.cells
        assert (panel.basin == cells).all() and cells.any()
        padded = np.pad(cells, 1).astype(int)
        perimeter = int(np.abs(np.diff(padded, axis=0)).sum() + np.abs(np.diff(padded, axis=1)).sum())
        outline = basin_outline(cells, edges(panel.lrs), edges(panel.wds))
        assert len(outline) == perimeter
        drawn = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_label() == "basin"]
        assert len(drawn) == 1 and len(drawn[0].get_segments()) == perimeter
    assert "outlined: the basin, the cells within 10% of the best" in report[0].read_text()


def test_a_sweep_without_histories_gets_no_learning_curve_panels(report):
    # A script that prints only its final line records no history: no curves row, no empty axes.
    import dataclasses

    from weightdecay.reports.figures import FIGURES, SweepView, draw_figures, figure_rows

    _, results, analysis = report
    bare = dataclasses.replace(results, records=[dataclasses.replace(r, history=[]) for r in results.records])
    view = SweepView(bare, analysis)
    assert [r.name for r in figure_rows(view)] == ["heatmaps", "slopes"]
    assert "curves" not in draw_figures(view) and FIGURES["curves"].data(view) is None
    # A history without the training loss: one panel (the metric), not a second empty one.
    metric = results.config.metric
    only = dataclasses.replace(results, records=[dataclasses.replace(r, history=[{"epoch": h["epoch"], metric: h[metric]}
                                                                                 for h in r.history])
                                                 for r in results.records])
    assert FIGURES["curves"].data(SweepView(only, analysis)).keys == [metric]


@pytest.mark.parametrize("lrs, wd_star", [((3e-3, 9.49e-3, 3e-2), (0.01, 0.1, 1.0)),
                                          ((3e-3, 9.49e-3, 3e-2), (0.01, 0.013, 0.04)),
                                          (tuple(10 ** (-4 + k / 2) for k in range(7)), tuple(10 ** (-4 + k / 2) for k in range(7)))])
def test_slope_plot_tick_labels_never_overlap(lrs, wd_star):
    # The own-script example's lr grid spans one decade: matplotlib's log axis then labels 2×, 3×, 4×, 6× of
    # each decade, and 3×10⁻³ ran into 4×10⁻³. Every label in view, on both axes, has room of its own.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from weightdecay.reports.figures.slopes import SlopeLine, draw_slopes

    lrs, wd_star = np.array(lrs), np.array(wd_star)
    fig = draw_slopes([SlopeLine("torch", lrs, wd_star, np.ones(len(lrs), bool), wd_star, "torch: +1.00 ± 0.10"),
                       SlopeLine("paper", lrs, wd_star / 30, np.arange(len(lrs)) > 0, None, "")])
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        ticks = [t for t in axis.get_major_ticks() + axis.get_minor_ticks()
                 if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high]
        boxes = [t.label1.get_window_extent(renderer) for t in ticks]
        assert len(boxes) >= 2, [t.label1.get_text() for t in ticks]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert not boxes[a].overlaps(boxes[b]), (ticks[a].label1.get_text(), ticks[b].label1.get_text())


def test_combined_page_explains_its_columns_and_the_banner_leads_with_the_own_script_route(report, tmp_path):
    from weightdecay.reports.html import OWN_MODEL, render_combined_html

    path, results, analysis = report
    text = render_combined_html([(results, analysis, {}, "x/report.html")])
    for words in ("Slope: least-squares fit of log λ*", "interior λ*: the learning rates the fit",
                  "Basin: cells within", "diverged cells: a seed diverged there"):
        assert words in text and words in path.read_text()
    assert "weightdecay.report(" in OWN_MODEL and "docs/own_script.md" in OWN_MODEL
    assert OWN_MODEL.index("docs/own_script.md") < OWN_MODEL.index("custom_task.py")
