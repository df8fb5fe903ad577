"""A monitor's records on disk: CSV, JSON lines (what ``weightdecay monitor-report`` reads) and TensorBoard."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from weightdecay._extras import require
from weightdecay._io import atomic_write
from weightdecay.errors import DataNotFoundError, UserError
from weightdecay.monitors.fields import FIELDS, GROUP_FACTORS, PRECISION_FIELDS, TEXT_FIELDS

__all__ = ["write_csv", "write_jsonl", "read_records", "write_tensorboard", "summary_writer", "add_records",
           "SCALARS", "LOGGED", "metrics_of"]

# The quantities that become TensorBoard scalars, tagged "<quantity>/<tensor name>".
SCALARS: tuple[str, ...] = ("weight_norm", "grad_norm", "update_norm", "grad_to_weight", "rotation", "shrink",
                            "tau_iter", "tau_epoch", "predicted_rotation", "predicted_grad_to_weight")

# What a trainer's loggers get: the measured quantities beside their predictions, "weightdecay/<q>/<name>".
LOGGED: tuple[str, ...] = ("rotation", "predicted_rotation", "grad_to_weight", "predicted_grad_to_weight",
                           "weight_norm", "shrink")


def metrics_of(records: Iterable[dict[str, Any]], prefix: str = "weightdecay") -> dict[str, float]:
    """Records as flat ``{prefix/quantity/name: value}`` metrics for a trainer's logger (None left out).

    >>> metrics_of([{"name": "0.weight", "rotation": 0.01, "shrink": None}])
    {'weightdecay/rotation/0.weight': 0.01}
    """
    return {f"{prefix}/{q}/{r['name']}": r[q] for r in records for q in LOGGED if r.get(q) is not None}


def write_csv(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """The records as CSV, columns in :data:`weightdecay.monitors.fields.FIELDS` order; None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FIELDS), extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
    return atomic_write(path, buffer.getvalue())


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per record and line (None, and the NaN/inf of a diverged run, as null); gzip-compressed
    when ``path`` ends in ``.gz`` (what a sweep keeps per trial: a few times smaller, read back the same)."""
    text = "".join(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                               for k, v in r.items()}, allow_nan=False) + "\n" for r in records)
    if str(path).endswith(".gz"):
        return atomic_write(path, gzip.compress(text.encode("utf-8"), mtime=0))
    return atomic_write(path, text)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a monitor's ``.jsonl`` (or ``.jsonl.gz``) or ``.csv`` file (numbers back as floats, empty cells
    as None)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"No monitor log at {path}: write one with monitor.to_jsonl(path) or to_csv(path)")
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise UserError(f"{path} is not a gzip file ({error}); expected a monitor log from "
                            "monitor.to_jsonl(path)") from None
    text = data.decode("utf-8")
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        missing = set(FIELDS) - set(GROUP_FACTORS) - set(PRECISION_FIELDS) - set(rows[0]) if rows else set()
        if missing:
            raise UserError(f"{path} is not a monitor CSV: columns {sorted(missing)} are missing")
        return [{k: _cell(k, v) for k, v in row.items()} for row in rows]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number} is not JSON ({error.msg}); expected a monitor log from "
                            "monitor.to_jsonl(path)") from None
        if not isinstance(record, dict) or not {"step", "name", "rotation"} <= set(record):
            raise UserError(f"{path}:{number} is not a monitor record (needs step, name, rotation, ...)")
        records.append(record)
    return records


def _cell(key: str, value: str) -> Any:
    if value == "":
        return None
    if key in ("step", "group"):
        return int(value)
    if key in TEXT_FIELDS:
        return value
    return float(value)


def summary_writer(log_dir: str | Path) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``, or a UserError saying how to install it."""
    require("tensorboard", extra="monitor", needed_for="TensorBoard export")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def add_records(writer: Any, records: Iterable[dict[str, Any]]) -> None:
    """One scalar per quantity and tensor and step: tag ``<quantity>/<name>``, global step the record's step."""
    for record in records:
        for quantity in SCALARS:
            value = record.get(quantity)
            if value is not None and math.isfinite(value):
                writer.add_scalar(f"{quantity}/{record['name']}", value, global_step=record["step"])


def write_tensorboard(records: Iterable[dict[str, Any]], log_dir: str | Path) -> Path:
    """Write the records as TensorBoard event files under ``log_dir`` (read them with ``tensorboard --logdir``)."""
    writer = summary_writer(log_dir)
    try:
        add_records(writer, records)
    finally:
        writer.close()
    return Path(log_dir)
