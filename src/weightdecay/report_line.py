"""The one line a training script prints so that a command sweep can read its result: a JSON object on stdout.

A sweep whose config names a ``command`` (docs/own_script.md) runs your script once per trial and reads, from
its standard output, the **last line that is a JSON object holding the sweep's metric**. Every other line
(progress, warnings, tqdm bars) is ignored. :func:`report` writes that line::

    weightdecay.report({"val_loss": 0.31, "val_accuracy": 0.91}, history=history)

prints ``{"val_loss": 0.31, "val_accuracy": 0.91, "history": [...]}``. The history, a list of per-epoch dicts
(``{"epoch": 1, "train_loss": ..., "val_loss": ...}``), lets the report draw learning curves. A script that
prints one JSON line per epoch instead (each with an ``epoch`` key) gets the same: those lines are the history.

NaN and ±inf are written as ``NaN`` / ``Infinity`` (what Python's ``json`` reads and writes); a sweep records
a non-finite metric as a *diverged* run, not a failure. This module is the format's only definition: the
writer and the reader sit side by side, and it imports nothing but the standard library, so ``import
weightdecay`` in a script stays as light as the optimizers.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from weightdecay.errors import UserError

__all__ = ["report", "json_lines", "read_report"]


def report(metrics: Mapping[str, Any], history: Iterable[Mapping[str, Any]] | None = None, *,
           file: TextIO | None = None) -> str:
    """Print the JSON line a command sweep reads as this run's result; returns the line.

    Call it once at the end of training (or once per epoch with an ``epoch`` key). Numbers may be Python
    numbers, 0-d tensors or NumPy scalars (anything with ``.item()``); strings, booleans and ``None`` pass
    through.

    Args:
        metrics: final metrics by name, e.g. ``{"val_loss": 0.31}``; must hold the sweep's ``metric``.
        history: optional per-epoch dicts (``{"epoch": 1, "val_loss": ...}``) for the report's learning curves.
        file: where to write (default ``sys.stdout``); the line is flushed at once.

    >>> line = report({"val_loss": 0.5, "epoch": 3})
    {"val_loss": 0.5, "epoch": 3}
    >>> read_report(line, "val_loss")
    ({'val_loss': 0.5, 'epoch': 3}, [{'val_loss': 0.5, 'epoch': 3}])
    """
    if not isinstance(metrics, Mapping):
        raise UserError(f"weightdecay.report: metrics must be a dict such as {{'val_loss': 0.3}}, got "
                        f"{type(metrics).__name__}")
    record = {str(k): _plain(v, f"metrics[{k!r}]") for k, v in metrics.items()}
    if history is not None:
        if "history" in record:
            raise UserError("weightdecay.report: 'history' given both as a metric and as history=; pass it once")
        rows = []
        for i, row in enumerate(history):
            if not isinstance(row, Mapping):
                raise UserError(f"weightdecay.report: history[{i}] must be a dict such as {{'epoch': 1, "
                                f"'val_loss': 0.3}}, got {type(row).__name__}")
            rows.append({str(k): _plain(v, f"history[{i}][{k!r}]") for k, v in row.items()})
        record["history"] = rows
    line = json.dumps(record)
    out = sys.stdout if file is None else file
    out.write(line + "\n")
    out.flush()
    return line


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object, in order (other lines, and other JSON values, skipped)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def read_report(text: str, metric: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The metrics and history a script's output reports, or ``None`` when no JSON line holds ``metric``.

    The metrics are the last JSON-object line holding ``metric`` (without its ``history``). The history is that
    line's ``history`` list if it has one, else every JSON-object line with an ``epoch`` key and the metric, in
    order. A metric of ``null`` reads as NaN (the run diverged).

    >>> read_report('epoch 1\\n{"epoch": 1, "loss": 2.0}\\n{"epoch": 2, "loss": NaN}\\n', "loss")
    ({'epoch': 2, 'loss': nan}, [{'epoch': 1, 'loss': 2.0}, {'epoch': 2, 'loss': nan}])
    """
    objects = json_lines(text)
    holding = [o for o in objects if metric in o]
    if not holding:
        return None
    final = dict(holding[-1])
    history = final.pop("history", None)
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        history = [{k: v for k, v in o.items() if k != "history"} for o in holding if "epoch" in o]
    for row in (final, *history):
        if metric in row and row[metric] is None:
            row[metric] = math.nan
    return final, history


def _plain(value: Any, where: str) -> Any:
    # A JSON value: tensors and NumPy scalars become Python numbers; anything else is the caller's mistake.
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (ValueError, RuntimeError):  # a tensor with more than one element
            shape = tuple(getattr(value, "shape", ()))
            raise UserError(f"weightdecay.report: {where} is not a single number (shape {shape}); report a "
                            f"scalar, e.g. loss.mean().item()") from None
        if isinstance(value, (bool, int, float)):
            return value
    raise UserError(f"weightdecay.report: {where} = {value!r} is not a number, string, bool or None")
