"""What the experiment scripts share: their command line, running a sweep to its end, and how they publish their
raw data (CSV beside docs/results.md) and figures. Every file is written through ``weightdecay._io.atomic_write``,
so a script stopped half way (they are rerun to resume) never leaves half a CSV or PNG for the page to link."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from weightdecay._io import atomic_write

__all__ = ["command_line", "finished_sweep", "finished_sweeps", "write_json", "write_csv", "pyplot", "save_figure"]


def command_line(doc: str, name: str, quick: str, publishes: str,
                 jobs: str = "worker processes") -> argparse.ArgumentParser:
    """The options every experiment takes: ``--out`` (default ``runs/NAME``, resumable), ``--jobs``, ``--quick``
    (a smoke test of the pipeline, described by ``quick``) and ``--publish DOCS`` (what it writes there:
    ``publishes``). The first paragraph of ``doc`` (the script's docstring) is the description."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", default=f"runs/{name}", help="folder of the runs (a rerun resumes there)")
    p.add_argument("--jobs", type=int, default=2, help=jobs)
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--publish", default=None, metavar="DOCS", help=f"also write {publishes}")
    return p


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON (a script's ``summary.json``, or one run's record that a rerun reads back)."""
    atomic_write(path, json.dumps(data, indent=2))


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """One row per mapping, the columns those of the first row; floats as ``%.6g``, anything else as ``str``
    (a caller wanting another precision passes the formatted string)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows)
    atomic_write(path, buffer.getvalue())


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display: the scripts run in the background)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 90) -> None:
    """Lay ``fig`` out tightly, write it to ``path`` (its suffix names the format) and close it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    pyplot().close(fig)
    atomic_write(path, buffer.getvalue())


def finished_sweep(config, folder: str | Path, jobs: int, script: str):
    """Run (or resume) the sweep ``config`` into ``folder`` and load its results; None, with a line on stderr,
    when some of its points did not finish (then the script is rerun to resume)."""
    import sys

    from weightdecay.sweeps import load_results, run_sweep

    summary = run_sweep(config, out_dir=folder, jobs=jobs, quiet=True)
    if not summary.complete:
        print(f"{script}: {config.name} not finished ({summary.line()}); run again to resume", file=sys.stderr)
        return None
    return load_results(folder)


def finished_sweeps(configs, out: str | Path, jobs: int, script: str) -> dict | None:
    """:func:`finished_sweep` for each config in turn, into ``out/NAME`` (where `weightdecay sweep A.toml B.toml
    --out OUT` puts them too): their results by config name, or None at the first that did not finish."""
    results = {}
    for config in configs:
        results[config.name] = finished_sweep(config, Path(out) / config.name, jobs, script)
        if results[config.name] is None:
            return None
    return results
