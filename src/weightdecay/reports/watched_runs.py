"""The sweep report's monitor section: each arm's best run as its monitor saw it (a sweep with ``monitor_every``).

Each watched trial stores its monitor's summary (the flags, a few tensors' final figures) in the sweep's storage and
its records in a log beside it, ``RUN_DIR/trials/ARM/NNNN/monitor.jsonl.gz`` (:mod:`weightdecay.sweeps.workloads.task`).
For the best configuration of each arm, the section shows the stored flags and draws the log's per-layer curves
against their predictions with the ``layers`` row of :data:`weightdecay.reports.figures.FIGURES`, the figure of
``weightdecay monitor-report``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from weightdecay.reports.analysis import SweepAnalysis
from weightdecay.errors import UserError
from weightdecay.monitors import read_records, summarize
from weightdecay.reports.figures import FIGURES, MonitorView
from weightdecay.sweeps import RunRecord, SweepResults

__all__ = ["WatchedRun", "watched_best_runs", "watched_figures", "watched_section", "LAYERS_PER_RUN"]

LAYERS_PER_RUN = 3  # rows per best run: the report shows one run per arm, the monitor page shows more


@dataclass
class WatchedRun:
    """One arm's best run with its monitor's records (empty, with ``missing`` saying why, when its log is not
    where the trial left it) and the tensors to draw."""

    arm: str
    run: RunRecord
    records: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    missing: str = ""

    @property
    def figure_name(self) -> str:
        return "monitor-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", self.arm).strip("-") or "arm")


def watched_best_runs(results: SweepResults, analysis: SweepAnalysis) -> list[WatchedRun]:
    """Per arm, the watched run at its best point (the lowest seed there), with the records from its log."""
    watched = []
    for a in analysis.arms.values():
        runs = [r for r in results.for_arm(a.arm) if r.monitor is not None
                and r.lr == a.best.lr and r.weight_decay == a.best.weight_decay]
        if not runs:
            continue
        w = WatchedRun(arm=a.arm, run=min(runs, key=lambda r: r.seed))
        if w.run.monitor_log is None:
            w.missing = "this trial kept no monitor log (it ran without the sweep's output folder)"
        elif results.run_dir is None:
            w.missing = (f"its log is {w.run.monitor_log} in the sweep's output folder; make the report from that "
                         f"folder (weightdecay report OUT) to draw it")
        else:
            try:
                w.records = read_records(results.run_dir / w.run.monitor_log)
            except UserError as exc:
                w.missing = str(exc)
            else:
                w.names = summarize(w.records).worth_showing(LAYERS_PER_RUN)
        watched.append(w)
    return watched


def watched_figures(watched: list[WatchedRun]) -> dict[str, Any]:
    """The data of the ``layers`` figure of each run that has records and tensors to draw, by its figure name
    (draw it with ``FIGURES["layers"].draw``)."""
    return {w.figure_name: FIGURES["layers"].data(MonitorView(w.records, w.names))
            for w in watched if w.records and w.names}


def watched_section(watched: list[WatchedRun], every: int, figure_html: Any) -> str:
    """The section's HTML: per arm, its best run's flags (as the trial stored them) and its figure.

    ``figure_html(name, caption)`` writes a figure of :func:`watched_figures` (or "" when there is none).
    """
    esc = html.escape
    parts = []
    for w in watched:
        r = w.run
        flags = "".join(f'<li class="flag" data-kind="{esc(f["kind"])}">{esc(f["sentence"])}</li>'
                        for f in r.monitor.get("flags", []))
        flags = flags or f"<li>No weight-decay flags after {r.monitor.get('steps', 0)} steps.</li>"
        where = (f' · log <a href="{esc(r.monitor_log)}"><code>{esc(r.monitor_log)}</code></a> '
                 f'(<code>weightdecay monitor-report</code> draws all of it)' if r.monitor_log and not w.missing
                 else "")
        body = (figure_html(w.figure_name, f"{w.arm}, best run: {FIGURES['layers'].caption}") if w.names
                else f'<p class="meta">Not drawn: {esc(w.missing or "no scale-invariant or decayed tensor")}.</p>')
        parts.append(f'<h3 id="watched-{esc(w.figure_name)}">{esc(w.arm)}: lr {r.lr:.3g}, wd {r.weight_decay:.3g}, '
                     f'seed {r.seed}</h3>\n<p class="meta">{r.monitor.get("steps", 0)} steps{where}</p>\n'
                     f'<ul class="rec watched-flags">{flags}</ul>\n{body}')
    intro = (f"<p>Each arm's best configuration (its lowest seed) as <code>weightdecay.Monitor(every={every})</code> "
             "saw it: the flags it raised, and per tensor the angle turned per step, ‖g‖/‖p‖ and ‖p‖ against the "
             "rules' predictions (docs/monitor.md).</p>")
    return intro + "\n".join(parts) if parts else intro + "<p>No watched run at a best point.</p>"
