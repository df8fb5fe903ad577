"""A sweep config's file: reading the TOML, writing a dict config back as TOML, and the checks every table uses.

Each check raises :class:`ConfigError` naming the key at fault (``where`` is the table's prefix, e.g.
``"search."``) and the fix. The modules that own a table (:mod:`~weightdecay.sweeps.config`,
:mod:`~weightdecay.sweeps.arms`, each search strategy and workload) call these and nothing else to read it.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from weightdecay.checks import is_number, is_whole
from weightdecay.errors import ConfigError

__all__ = ["read_toml", "to_toml", "check_keys", "typed", "positive_int", "log_range", "grid_values", "log_grid",
           "seeds"]


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """A config file's parsed table and its text, with a one-line error for a missing file or bad TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}; check the path") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None


def to_toml(raw: dict[str, Any]) -> str:
    """A dict config written as TOML (kept as the run's sweep.toml); JSON in a comment if it does not round-trip."""
    def key(k: Any) -> str:
        return k if isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(str(k))

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return json.dumps(v)

    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    lines = [f"{key(k)} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict) and not is_tables(v)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += ["", f"[{key(k)}]"] + [f"{key(a)} = {value(b)}" for a, b in v.items()]
        elif is_tables(v):
            for table in v:
                lines += ["", f"[[{key(k)}]]"] + [f"{key(a)} = {value(b)}" for a, b in table.items()]
    text = "\n".join(lines) + "\n"
    try:
        if tomllib.loads(text) == json.loads(json.dumps(raw)):
            return text
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        pass
    return "# the config passed to weightdecay.sweep, as JSON:\n# " + json.dumps(raw, default=str) + "\n"


def check_keys(d: dict[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{where}{key}: unknown key; valid keys here: {', '.join(sorted(allowed))}")


def typed(d: dict[str, Any], key: str, types: Any, default: Any = None, where: str = "") -> Any:
    """``d[key]`` if it has one of ``types`` (a bool is not an int here), else ``default`` when absent."""
    if key not in d:
        return default
    value = d[key]
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}{key}: {value!r} is not a {names}")
    return value


def positive_int(d: dict[str, Any], key: str, default: Any, where: str = "") -> Any:
    value = typed(d, key, int, default, where)
    if value is not None and value < 1:
        raise ConfigError(f"{where}{key}: {value}; give a positive integer")
    return value


def log_range(value: Any, where: str) -> tuple[float, float]:
    """A ``{ min = ..., max = ... }`` range on a log scale: ``0 < min < max``."""
    if not isinstance(value, dict) or set(value) != {"min", "max"}:
        raise ConfigError(f"{where}: {value!r}; give a range {{ min = ..., max = ... }}")
    low, high = value["min"], value["max"]
    if not all(is_number(v, finite=False) for v in (low, high)) or not 0 < low < high:
        raise ConfigError(f"{where}: min={low!r}, max={high!r}; need 0 < min < max (log scale)")
    return float(low), float(high)


def log_grid(low: float, high: float, num: int) -> tuple[float, ...]:
    """``num`` log-spaced values from ``low`` to ``high``, both included, rounded to 6 significant digits.

    >>> log_grid(1e-4, 1e-2, 3)
    (0.0001, 0.001, 0.01)
    """
    if num == 1:
        return (float(f"{low:.6g}"),)
    step = (math.log(high) - math.log(low)) / (num - 1)
    return tuple(float(f"{math.exp(math.log(low) + i * step):.6g}") for i in range(num))


def grid_values(value: Any, where: str) -> tuple[float, ...]:
    """A grid axis: an explicit list of positive values, or ``{ min, max, num }`` log-spaced."""
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{where}: empty grid; list at least one value")
        if not all(is_number(v) for v in value):
            raise ConfigError(f"{where}: {value!r}; every value must be a finite number")
        if any(v <= 0 for v in value):
            raise ConfigError(f"{where}: {value!r}; grid values must be > 0 (the grid is in log space)")
        values = tuple(sorted(float(v) for v in value))
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: {value!r} repeats a value; list each value once")
        return values
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "num"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; a log grid has min, max, num")
        if "num" not in value:
            raise ConfigError(f"{where}.num: missing; give the number of grid points")
        num = value["num"]
        if not is_whole(num, minimum=1):
            raise ConfigError(f"{where}.num: {num!r}; empty grid: give num >= 1")
        if num > 1:
            return log_grid(*log_range({"min": value.get("min"), "max": value.get("max")}, where), num)
        low = value.get("min")
        if not is_number(low) or not low > 0:
            raise ConfigError(f"{where}.min: {low!r}; a one-point grid needs min, a finite number > 0")
        return log_grid(float(low), float(low), 1)
    raise ConfigError(f"{where}: {value!r}; give a list of values or {{ min = ..., max = ..., num = ... }}")


def seeds(value: Any) -> tuple[int, ...]:
    """``seeds = 3`` (seeds 0, 1, 2) or an explicit list of distinct integers."""
    if is_whole(value):
        if value < 1:
            raise ConfigError(f"seeds: {value}; give a count >= 1 or a list of seeds")
        return tuple(range(value))
    if isinstance(value, list) and value and all(is_whole(s) for s in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds: {value} repeats a seed; list each seed once")
        return tuple(value)
    raise ConfigError(f"seeds: {value!r}; give a count (seeds = 3) or a non-empty list of integers")
