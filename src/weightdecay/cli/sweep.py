"""``weightdecay sweep CONFIG.toml [MORE.toml …]`` runs (or resumes) lr×wd sweeps; ``weightdecay report RUN [RUN …]``
writes their page (one sweep, or one page for several)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weightdecay.reports.analysis import SweepAnalysis
    from weightdecay.sweeps import SweepConfig

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="run or resume an lr×wd sweep from a TOML config, then write its report",
        description="Run every (arm, lr, wd, seed) of a config as an Optuna trial. Running the same command "
                    "again resumes: only unfinished or failed trials run. Several machines can share one "
                    "grid with --storage postgresql://...")
    p.add_argument("config", nargs="+",
                   help="the sweep's TOML file (see docs/sweeps.md); several run one after another into "
                        "OUT/NAME each, with one report for all of them in OUT/report.html")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="worker processes on this machine (default: one per CPU core, at most 8)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker (default: this machine's cores / --jobs)")
    p.add_argument("--storage", default=None,
                   help="journal file (default OUT/study.journal), sqlite:///PATH.db or postgresql://USER@HOST/DB")
    p.add_argument("--out", "-o", default=None,
                   help="output folder (default runs/NAME; with several configs, the folder that holds OUT/NAME "
                        "for each, default runs)")
    p.add_argument("--quiet", "-q", action="store_true", help="log lines instead of a progress bar")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--grace-period", type=float, default=60.0,
                   help="seconds without a heartbeat before another worker re-runs a trial (default 60)")
    p.set_defaults(func=_sweep)

    r = subparsers.add_parser(
        "report", help="write a sweep's self-contained HTML report (heatmaps, slopes, basins, best configs)",
        description="Analyze a sweep and write one HTML file that opens from disk, plus its figures as PNG and SVG.")
    r.add_argument("source", nargs="+",
                   help="a sweep's output folder, or its storage (journal file / database URL); several folders "
                        "make one page with a section per sweep")
    r.add_argument("-o", "--output", default=None,
                   help="HTML file (default SOURCE/report.html; with several sources, their parent's report.html)")
    r.add_argument("--study", default=None, help="the sweep's name, when a storage holds several")
    r.set_defaults(func=_report)


def _logging(quiet: bool) -> None:
    # Without a terminal there is no progress bar: the progress log lines (INFO) take its place.
    info = quiet or not sys.stderr.isatty()
    logging.basicConfig(level=logging.INFO if info else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")


def _sweep(args: argparse.Namespace) -> int:
    from weightdecay.sweeps import load_config

    _logging(args.quiet)
    configs = [load_config(path) for path in args.config]  # every ConfigError surfaces here, before any trial
    if args.threads is not None and args.threads < 1:
        from weightdecay.errors import UserError

        raise UserError(f"--threads {args.threads}: give at least 1")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        from weightdecay.errors import UserError

        raise UserError(f"configs named {names}: each sweep needs its own name (its folder is OUT/NAME); set "
                        f"`name` in the files")
    if len(configs) == 1:
        return _run_one(args, configs[0], args.out)
    parent = Path(args.out or "runs")
    codes = [_run_one(args, config, parent / config.name) for config in configs]
    if not args.no_report and all(code == 0 for code in codes):
        _write_combined_report([parent / c.name for c in configs], str(parent / "report.html"))
    return max(codes)


def _run_one(args: argparse.Namespace, config: SweepConfig, out: str | Path | None) -> int:
    """Run (or resume) one sweep into ``out`` and write its own report; 0 when every trial is complete."""
    from weightdecay.sweeps import run_sweep, trial_dir

    jobs = args.jobs if args.jobs is not None else min(8, len(os.sched_getaffinity(0)))
    summary = run_sweep(config, out_dir=out, storage=args.storage, jobs=jobs, threads=args.threads,
                        quiet=args.quiet, grace_period=args.grace_period,
                        heartbeat_interval=max(0.5, min(10.0, args.grace_period / 6)))
    print(f"sweep {summary.name}: {summary.line()}")
    for arm, s in summary.status.items():
        if s.failed:
            logs = (f" and {trial_dir(summary.out_dir, arm, 0).parent}/*/stderr.log" if config.command else "")
            print(f"  {arm}: {s.failed} trials failed; see the trials' 'error' attribute{logs}, then run the same "
                  f"command again to retry them")
    if not summary.complete:
        print(f"  not finished: run the same command again to resume (storage {summary.storage})")
    if args.no_report or not any(s.complete for s in summary.status.values()):
        return 0 if summary.complete else 1
    _write_report(summary.out_dir, None, None)
    return 0 if summary.complete else 1


def _write_report(source: str | Path, output: str | None, study: str | None) -> None:
    from weightdecay.reports.analysis import analyze, format_slope
    from weightdecay.reports import write_report
    from weightdecay.sweeps import load_results

    results = load_results(source, study)
    analysis = analyze(results)
    if output is None:
        base = Path(source) if Path(str(source)).is_dir() else Path(".")
        output = str(base / "report.html")
    path = write_report(results, analysis, output)
    print(f"report: {path}")
    for a in analysis.arms.values():
        b = a.best
        spread = f" ± {b.std:.3g}" if math.isfinite(b.std) else ""
        if analysis.grid:
            shape = (f" | slope log λ*/log lr {format_slope(a.slope.slope, a.slope.err, a.slope.censored)}"
                     f" | basin {a.basin.orientation}, {a.basin.area:.2f} dec²")
        else:
            shape = " | TPE samples: no slope or basin (they need a grid)"
        print(f"  {a.arm:<24} best {analysis.metric} {b.mean:.4g}{spread} at lr={b.lr:.3g} wd={b.weight_decay:.3g}"
              f"{shape}")
    diverged = sum(r.diverged for r in results.records)
    if diverged:
        print(f"  diverged: {_diverged_line(diverged, len(results.records), analysis)}")
    print(analysis.recommendation)


def _diverged_line(diverged: int, runs: int, analysis: SweepAnalysis) -> str:
    """The sweep's diverged runs in one line: expected when they fill the grid's large-lr, large-λ corner."""
    from weightdecay.reports.analysis import diverged_inside

    counted = f"{diverged} of {runs} runs (× on the heatmaps)"
    if not analysis.grid:
        return counted
    inside = sum(diverged_inside(a.heatmap) for a in analysis.arms.values())
    if inside:
        return (f"{counted}; {inside} cell{'s' if inside > 1 else ''} diverged where a larger lr or λ trained: "
                f"look at {'those' if inside > 1 else 'that'} on the heatmaps")
    return f"{counted}, all in the grid's large-lr, large-λ corner, as expected: the step or the shrink is too large"


def _write_combined_report(sources: list[Path], output: str) -> None:
    from weightdecay.reports.analysis import analyze
    from weightdecay.reports import write_combined_report
    from weightdecay.sweeps import load_results

    parts = []
    for source in sources:
        results = load_results(source)
        parts.append((results, analyze(results)))
    print(f"report (all {len(parts)} sweeps): {write_combined_report(parts, output)}")


def _report(args: argparse.Namespace) -> int:
    _logging(True)
    if len(args.source) == 1:
        _write_report(args.source[0], args.output, args.study)
        return 0
    if args.study is not None:
        from weightdecay.errors import UserError

        raise UserError("--study names one sweep of one storage; with several sources give their folders")
    sources = [Path(s) for s in args.source]
    output = args.output or str(Path(os.path.commonpath([s.resolve() for s in sources])) / "report.html")
    for source in sources:
        _write_report(source, None, None)  # each sweep's own page (OUT/NAME/report.html), linked from the summary
    _write_combined_report(sources, output)
    return 0
