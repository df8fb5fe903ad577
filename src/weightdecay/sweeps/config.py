"""Sweep configuration: a TOML file read and checked in full before any trial runs.

A sweep compares *arms* (an optimizer and a decay convention each) on one task over a log-spaced grid of
learning rates ``lr`` and weight decays ``λ``, for several seeds. Every error names the key at fault::

    name = "demo"
    task = "digits-mlp"
    epochs = 6
    seeds = [0, 1]

    [grid]
    lr = { min = 1e-4, max = 1e-2, num = 5 }          # log-spaced, both ends included
    weight_decay = { min = 1e-4, max = 1e-1, num = 4 }  # or an explicit list: [0.001, 0.01]

    [[arms]]
    name = "AdamW torch"
    optimizer = "adamw"
    decay = "torch"

    [[arms]]
    name = "AdamW paper"
    decay = "paper"
    weight_decay = { min = 1e-7, max = 1e-4, num = 4 }  # per-arm grid: paper's λ is lr·λ in torch units

:func:`parse_config` checks in two steps: :func:`check_schema` (keys, types, ranges: the file alone) and
:func:`check_environment` (what this machine must provide: the imports, the task and its data, the task's own
checks of each arm). This module reads the top-level keys and hands each table to its owner: ``[[arms]]`` to
:mod:`~weightdecay.sweeps.arms`, ``[search]`` to the strategy its ``sampler`` names
(:mod:`~weightdecay.sweeps.strategies`), and ``task`` / ``command`` / ``function`` with their keys to the workload
(:mod:`~weightdecay.sweeps.workloads`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from weightdecay.errors import ConfigError
from weightdecay.sweeps._toml import check_keys, grid_values, positive_int, read_toml, seeds, typed
from weightdecay.sweeps.arms import Arm, parse_arm
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.strategies import parse_search
from weightdecay.sweeps.workloads import workload_named, workload_of

__all__ = ["Arm", "SearchSpace", "SweepConfig", "load_config", "parse_config", "check_schema", "check_environment"]

_TOP_KEYS = {"name", "task", "metric", "direction", "epochs", "batch_size", "schedule", "seeds", "imports",
             "extra", "grid", "search", "arms", "basin_tolerance", "monitor_every", "command", "function", "timeout",
             "result"}
_GRID_KEYS = {"lr", "weight_decay"}


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config file; raises :class:`ConfigError` naming the key and the fix.

    Args:
        path: a TOML file.

    >>> load_config("experiments/demo.toml").task  # doctest: +SKIP
    'digits-mlp'
    """
    path = Path(path)
    raw, text = read_toml(path)
    return parse_config(raw, source=text, default_name=path.stem, base_dir=path.resolve().parent)


def parse_config(raw: dict[str, Any], *, source: str = "", default_name: str = "sweep",
                 base_dir: str | Path | None = None) -> SweepConfig:
    """Validate a config already parsed into a dict (see :func:`load_config`): the file, then this machine.

    ``base_dir`` is where a command's or a function's relative paths resolve (default: the current folder).
    """
    return check_environment(check_schema(raw, source=source, default_name=default_name, base_dir=base_dir))


def check_schema(raw: dict[str, Any], *, source: str = "", default_name: str = "sweep",
                 base_dir: str | Path | None = None) -> SweepConfig:
    """Check a config's keys, types and ranges, without importing the user's modules or loading data.

    The task's own defaults (its metric, its training-set size for ``timescale`` coordinates) are filled in by
    :func:`check_environment`; until then ``metric`` is ``""`` when the file names none. A command's program
    and a function's module are looked up here too (they are what the config names, not a task's data).
    """
    check_keys(raw, _TOP_KEYS, "")
    imports = tuple(typed(raw, "imports", list, []))
    workload = workload_named(raw)
    name = typed(raw, "name", str, default_name)
    if not name or any(c in name for c in "/\\\n"):
        raise ConfigError(f"name: {name!r} is not a valid sweep name; use letters, digits, '-' and '_'")
    metric = typed(raw, "metric", str, "")
    direction = typed(raw, "direction", str, "minimize")
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction: {direction!r}; choose minimize or maximize")
    epochs = positive_int(raw, "epochs", None)
    batch_size = positive_int(raw, "batch_size", None)
    tolerance = typed(raw, "basin_tolerance", (int, float), 0.1)
    if not tolerance > 0:
        raise ConfigError(f"basin_tolerance: {tolerance}; give a positive relative tolerance, e.g. 0.1")

    grid = typed(raw, "grid", dict, {})
    check_keys(grid, _GRID_KEYS, "grid.")
    lr = grid_values(grid["lr"], "grid.lr") if "lr" in grid else ()
    default_wd = grid_values(grid["weight_decay"], "grid.weight_decay") if "weight_decay" in grid else ()
    arms_raw = raw.get("arms")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise ConfigError("arms: missing or empty; add [[arms]] tables with optimizer and decay")
    arms = tuple(parse_arm(a, f"arms[{i}]", default_wd) for i, a in enumerate(arms_raw))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"arms: names {names} repeat; give each arm a distinct name")
    search = parse_search(typed(raw, "search", dict, {}), lr, arms)
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    own = workload.check(raw, list(arms), search, base)
    return SweepConfig(**{"task": "", "schedule": "", **own}, name=name, metric=metric, direction=direction,
                       epochs=epochs, batch_size=batch_size, seeds=seeds(raw.get("seeds", 1)), lr=lr, arms=arms,
                       search=search, imports=imports, extra=typed(raw, "extra", dict, {}),
                       basin_tolerance=float(tolerance), source=source, base_dir=str(base))


def check_environment(config: SweepConfig) -> SweepConfig:
    """Check what the config needs from this machine, and fill in the workload's defaults.

    Imports the config's modules, then lets the workload look: a task is found, asked whether its data is here,
    its metric checked and its own checks (options, schedule, epochs) run on every arm before any trial.
    """
    for module in config.imports:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any import failure is the user's module
            raise ConfigError(f"imports: cannot import {module!r} ({exc}); check the module name and PYTHONPATH") from None
    return workload_of(config).check_environment(config)
