"""Where a command's metric is: its JSON line (the default), a pattern over its output, a file it writes, or
TensorBoard event files. A script is swept as it is; the config says where to look::

    [result]
    regex = 'step (?P<step>\\d+): train loss (?P<train_loss>[\\d.]+), val loss (?P<val_loss>[\\d.]+)'  # nanoGPT

    [result]
    file = "all_results.json"                       # Hugging Face run_*.py; a JSON object
    file = "lightning_logs/version_*/metrics.csv"   # Lightning's CSVLogger; the last row holding the metric

    [result]
    tensorboard = "runs"                            # event files under the trial folder; a tag per metric

- ``regex``: every match over stdout is a row of the history, the last match the result; each named group is a
  metric (a number where it reads as one). The pattern must compile and name the sweep's metric as a group.
- ``file``: a path inside the trial folder (a glob picks the last match in sorted order). ``.json``: one object,
  its numbers the metrics. ``.csv``: a header and rows; the rows holding the metric are the history (blank
  cells, as Lightning writes them, are left out), the last of them the result.
- ``tensorboard``: a folder inside the trial folder; read with TensorBoard's own ``EventAccumulator`` (the
  ``monitor`` extra). Each scalar tag is a metric, its last value the result; the metric's tag by step is the
  history.

Each is checked before any run (:func:`parse_result`); a run whose source holds no metric fails with the cause
and the last lines of its output.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from weightdecay._extras import require
from weightdecay.errors import ConfigError
from weightdecay.report_line import json_lines, read_report
from weightdecay.sweeps._toml import check_keys, typed

__all__ = ["SOURCES", "parse_result", "read_result", "describe"]

SOURCES = ("regex", "file", "tensorboard")
Found = tuple[dict[str, Any], list[dict[str, Any]]]


class NoResult(Exception):
    """The source holds no value of the metric; the message says what it holds instead."""


def parse_result(table: Any, metric: str) -> dict[str, Any]:
    """Check a ``[result]`` table against the sweep's metric; returns it as the config keeps it ({} by default)."""
    if not isinstance(table, dict):
        raise ConfigError(f"result: {table!r}; give a table, e.g. [result] regex = '...'")
    check_keys(table, set(SOURCES), "result.")
    given = [k for k in SOURCES if k in table]
    if len(given) != 1:
        raise ConfigError(f"result: give one of {', '.join(SOURCES)}" + (f", not {' and '.join(given)}" if given else ""))
    key = given[0]
    value = typed(table, key, str, where="result.")
    if key == "regex":
        try:
            pattern = re.compile(value, re.MULTILINE)
        except re.error as exc:
            raise ConfigError(f"result.regex: {value!r} is not a regular expression ({exc}); fix the pattern") \
                from None
        if metric not in pattern.groupindex:
            raise ConfigError(f"result.regex: no group named {metric!r}, the sweep's metric; capture it as "
                              f"(?P<{metric}>[-+.\\deE]+)" + (f" (groups: {', '.join(pattern.groupindex)})"
                                                              if pattern.groupindex else ""))
        if pattern.fullmatch(""):
            raise ConfigError(f"result.regex: {value!r} matches an empty line, so it matches everywhere; make it "
                              f"require the text around the number")
    else:
        if not value or Path(value).is_absolute() or ".." in Path(value).parts:
            raise ConfigError(f"result.{key}: {value!r}; give a path inside the trial folder, relative to it")
        if key == "file" and Path(value).suffix not in (".json", ".csv"):
            raise ConfigError(f"result.file: {value!r}; give a .json (one object) or .csv (a header and rows) file")
        if key == "tensorboard":
            require("tensorboard", extra="monitor", needed_for="result.tensorboard (reading event files)")
    return {key: value}


def describe(result: dict[str, Any]) -> str:
    """Where the metric is read, in a few words (for an error)."""
    if not result:
        return "the command's JSON line"
    (key, value), = result.items()
    return {"regex": f"the pattern {value!r} over stdout", "file": f"the file {value!r}",
            "tensorboard": f"the event files under {value!r}"}[key]


def read_result(result: dict[str, Any], metric: str, stdout: str, workdir: Path) -> Found:
    """The metrics and history of one run; raises :class:`NoResult` naming what the source holds instead."""
    if not result:
        found = read_report(stdout, metric)
        if found is None:
            objects = json_lines(stdout)
            raise NoResult(f"no line of stdout is a JSON object holding {metric!r}" + (
                f"; its last JSON line holds {', '.join(sorted(objects[-1])) or 'nothing'}" if objects else
                "; it printed no JSON line") + f": print it with weightdecay.report({{{metric!r}: ...}}), or say "
                "where the script writes it in [result] (docs/own_script.md)")
        return found
    (key, value), = result.items()
    if key == "regex":
        return _from_matches(value, metric, stdout)
    path = _one_path(workdir, value, key)
    if key == "tensorboard":
        return _from_events(path, metric)
    text = path.read_text(encoding="utf-8", errors="replace")
    return _from_json(path, text, metric) if path.suffix == ".json" else _from_csv(path, text, metric)


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _from_matches(pattern: str, metric: str, stdout: str) -> Found:
    rows = [{k: _number(v) for k, v in m.groupdict().items() if v is not None}
            for m in re.finditer(pattern, stdout, re.MULTILINE)]
    rows = [r for r in rows if metric in r]
    if not rows:
        raise NoResult(f"no line of stdout matches {pattern!r} with a value for {metric!r}")
    return dict(rows[-1]), rows


def _one_path(workdir: Path, pattern: str, key: str) -> Path:
    matches = sorted(glob.glob(str(workdir / pattern)))
    if not matches:
        raise NoResult(f"the run wrote no {pattern!r} in its folder {workdir}")
    return Path(matches[-1])


def _from_json(path: Path, text: str, metric: str) -> Found:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise NoResult(f"{path} is not JSON ({exc})") from None
    if not isinstance(value, dict) or metric not in value:
        held = ", ".join(sorted(value)) if isinstance(value, dict) else type(value).__name__
        raise NoResult(f"{path} holds no {metric!r} (it holds {held})")
    metrics = {k: v for k, v in value.items() if isinstance(v, (int, float, str)) or v is None}
    if metrics[metric] is None:
        metrics[metric] = math.nan
    return metrics, []


def _from_csv(path: Path, text: str, metric: str) -> Found:
    reader = csv.DictReader(io.StringIO(text))
    if metric not in (reader.fieldnames or []):
        raise NoResult(f"{path} has no column {metric!r} (columns: {', '.join(reader.fieldnames or [])})")
    every = [{k: _number(v) for k, v in row.items() if k and v not in (None, "")} for row in reader]
    rows = [r for r in every if metric in r]
    if not rows:
        raise NoResult(f"{path} has a column {metric!r} but no row with a value in it")
    final: dict[str, Any] = {}
    for row in every:  # the last value of every column: a logger writes train and val metrics on different rows
        final.update(row)
    final.update(rows[-1])
    return final, rows


def _from_events(path: Path, metric: str) -> Found:
    require("tensorboard", extra="monitor", needed_for="result.tensorboard (reading event files)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point, not a sample
    events.Reload()
    tags = events.Tags().get("scalars", [])
    if metric not in tags:
        raise NoResult(f"the event files under {path} hold no scalar {metric!r} (tags: {', '.join(tags) or 'none'})")
    final = {tag: float(events.Scalars(tag)[-1].value) for tag in tags}
    by_step: dict[int, dict[str, Any]] = {}
    for tag in tags:
        for event in events.Scalars(tag):
            by_step.setdefault(event.step, {"step": event.step})[tag] = float(event.value)
    history = [row for _, row in sorted(by_step.items()) if metric in row]
    return final, history
