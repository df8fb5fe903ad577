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
checks of each arm). :meth:`SweepConfig.train_config` builds the :class:`weightdecay.tasks.TrainConfig` of a run,
the one place that turns a sweep's settings into a training configuration.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from weightdecay.checks import is_number, is_whole
from weightdecay.decay import get_mode
from weightdecay.errors import ConfigError, UserError
from weightdecay.optim.registry import OPTIMIZERS, get_optimizer
from weightdecay.tasks import Task, TrainConfig
from weightdecay.tasks.training import check_weight_decay_schedule

__all__ = ["Arm", "SearchSpace", "SweepConfig", "load_config", "parse_config", "check_schema", "check_environment",
           "log_grid", "train_config", "unused_optimizer_options"]

SAMPLERS = ("grid", "tpe")
COORDINATES = ("raw", "decoupled", "timescale")

_TOP_KEYS = {"name", "task", "metric", "direction", "epochs", "batch_size", "schedule", "seeds", "imports",
             "extra", "grid", "search", "arms", "basin_tolerance", "monitor_every", "command", "function", "timeout"}
# What a trial runs: a registered task, your own command (sweeps/command.py) or a Python function (objective.py).
WORKLOADS = ("task", "command", "function")
_ARM_KEYS = {"name", "optimizer", "decay", "weight_decay", "momentum", "betas", "wd_schedule", "normalized_wd",
             "extra"}
_GRID_KEYS = {"lr", "weight_decay"}
_SEARCH_KEYS = {"sampler", "trials", "coordinates", "lr", "weight_decay", "shrink", "tau_epoch", "train_size"}


@dataclass(frozen=True)
class Arm:
    """One optimizer/decay-convention pair of the comparison, with its own λ grid.

    ``wd_schedule`` names a schedule λ follows during each run (``λ_k = λ·η(k)``); with ``normalized_wd`` the λ
    values are Loshchilov & Hutter's ``λ_norm``, turned into ``λ_norm·sqrt(b/(B·T_i))`` per restart period.
    """

    name: str
    optimizer: str
    decay: str
    weight_decay: tuple[float, ...]
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    extra: dict[str, Any] = field(default_factory=dict)
    wd_schedule: str | None = None
    normalized_wd: bool = False
    optimizer_options: dict[str, Any] = field(default_factory=dict)  # its other registry hyperparameters


# Arm fields added after sweeps were first stored: left out of the fingerprint while at their default, so a
# study made before them still resumes.
_LATER_ARM_FIELDS = {"wd_schedule": None, "normalized_wd": False, "optimizer_options": {}}


def train_config(arm: Arm, *, lr: float, weight_decay: float, seed: int = 0, schedule: str = "cosine",
                 epochs: int | None = None, batch_size: int | None = None,
                 extra: dict[str, Any] | None = None) -> TrainConfig:
    """The training configuration of one run of ``arm`` (its optimizer and decay settings) at ``(lr, λ, seed)``.

    >>> train_config(Arm("a", "sgdw", "paper", (0.1,), momentum=0.5), lr=0.01, weight_decay=0.1).momentum
    0.5
    """
    return TrainConfig(lr=lr, weight_decay=weight_decay, optimizer=arm.optimizer, decay=arm.decay, schedule=schedule,
                       epochs=epochs, batch_size=batch_size, seed=seed, momentum=arm.momentum, betas=arm.betas,
                       wd_schedule=arm.wd_schedule, normalized_wd=arm.normalized_wd,
                       extra={**(extra or {}), **arm.extra}, optimizer_options=dict(arm.optimizer_options))


def unused_optimizer_options(optimizer: str, given: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The hyperparameters in ``given`` that ``optimizer`` does not read, each with the optimizers that do.

    Read from the optimizer registry, for the sweep config and ``weightdecay train`` alike (an option the
    optimizer ignores would be dropped silently; both refuse it instead).

    >>> unused_optimizer_options("adamw", ["momentum", "betas"])[0][0]
    'momentum'
    """
    info = get_optimizer(optimizer)
    known = {h.name for o in OPTIMIZERS.values() for h in o.hyperparameters} | {"momentum", "betas"}
    return [(key, [o.name for o in OPTIMIZERS.values() if o.takes(key)]) for key in given
            if key in known and not info.takes(key)]


@dataclass(frozen=True)
class SearchSpace:
    """How trials are chosen: the full grid, or TPE over a box in raw or decoupled coordinates.

    ``decoupled`` samples ``(lr, s)`` with ``s`` the per-step shrink at the peak lr (``lr·λ`` for ``torch``);
    ``timescale`` samples ``(lr, τ_epoch)`` with ``s = b / (B·τ_epoch)`` (docs/math.md, "EMA timescale").
    """

    sampler: str = "grid"
    trials: int = 0
    coordinates: str = "raw"
    lr: tuple[float, float] = (0.0, 0.0)
    second: tuple[float, float] = (0.0, 0.0)  # range of λ, s or τ_epoch, depending on ``coordinates``
    train_size: int | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: task, arms, grid, seeds and the metric to minimize (or maximize)."""

    name: str
    task: str
    metric: str
    direction: str
    epochs: int | None
    batch_size: int | None
    schedule: str
    seeds: tuple[int, ...]
    lr: tuple[float, ...]
    arms: tuple[Arm, ...]
    search: SearchSpace = SearchSpace()
    imports: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    basin_tolerance: float = 0.1
    source: str = ""  # the TOML text, kept with the run
    monitor_every: int | None = None  # watch each run with weightdecay.Monitor(every=N), keep its summary
    command: str = ""  # instead of a task: a command template (docs/own_script.md)
    function: str = ""  # instead of a task: "module:name" or "file.py:name" of an objective function
    timeout: float | None = None  # seconds per trial of a command
    base_dir: str = ""  # the config file's folder, where a command's and a function's relative paths resolve

    @property
    def workload(self) -> str:
        """What each trial runs, in a few words: the task's name, the command, or the function."""
        if self.command:
            return f"command `{self.command}`"
        if self.function:
            return f"function {self.function}"
        return self.task

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise UserError(f"No arm named {name!r} in sweep {self.name!r}; arms: {', '.join(a.name for a in self.arms)}")

    def train_config(self, arm: Arm, *, lr: float, weight_decay: float, seed: int = 0) -> TrainConfig:
        """The :class:`TrainConfig` of one run of ``arm`` in this sweep (see :func:`train_config`)."""
        return train_config(arm, lr=lr, weight_decay=weight_decay, seed=seed, schedule=self.schedule,
                            epochs=self.epochs, batch_size=self.batch_size, extra=self.extra)

    def grid_size(self, arm: Arm) -> int:
        return len(self.lr) * len(arm.weight_decay) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d.pop("base_dir")  # where this machine keeps the files: not part of the sweep's identity
        for key in ("command", "function", "timeout"):
            if d[key] in ("", None):
                d.pop(key)  # a task sweep's dict (and fingerprint) stays what it was before these keys
        return d

    def fingerprint(self, arm: Arm) -> str:
        """A short hash of everything that defines an arm's trials; a study keeps it to refuse a changed config."""
        d = self.to_dict()
        d.pop("arms")
        d.pop("basin_tolerance")
        d.pop("monitor_every")  # watching a run does not change it
        d.pop("timeout", None)  # a longer timeout, to retry the runs that hit it, resumes the same trials
        d["arm"] = {k: v for k, v in asdict(arm).items() if k not in _LATER_ARM_FIELDS or v != _LATER_ARM_FIELDS[k]}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SweepConfig":
        """Rebuild a config saved with :meth:`to_dict` (e.g. from a study's attributes)."""
        d = dict(d)
        arms = tuple(Arm(**{**a, "weight_decay": tuple(a["weight_decay"]), "betas": tuple(a["betas"])})
                     for a in d.pop("arms"))
        s = d.pop("search")
        search = SearchSpace(**{**s, "lr": tuple(s["lr"]), "second": tuple(s["second"])})
        return SweepConfig(**{**d, "seeds": tuple(d["seeds"]), "lr": tuple(d["lr"]), "imports": tuple(d["imports"]),
                              "arms": arms, "search": search})


def log_grid(low: float, high: float, num: int) -> tuple[float, ...]:
    """``num`` log-spaced values from ``low`` to ``high``, both included, rounded to 6 significant digits.

    >>> log_grid(1e-4, 1e-2, 3)
    (0.0001, 0.001, 0.01)
    """
    if num == 1:
        return (float(f"{low:.6g}"),)
    step = (math.log(high) - math.log(low)) / (num - 1)
    return tuple(float(f"{math.exp(math.log(low) + i * step):.6g}") for i in range(num))


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
    _check_keys(raw, _TOP_KEYS, "")
    imports = tuple(_typed(raw, "imports", list, []))
    workload = _workload(raw)
    task = _typed(raw, "task", str) if workload == "task" else ""
    if task and "timeout" in raw:
        raise ConfigError("timeout: only a command sweep has a per-trial timeout; remove it")
    if not task and "monitor_every" in raw:
        raise ConfigError(f"monitor_every: only a task sweep's runs are watched for you; your {workload} can "
                          "attach weightdecay.Monitor(optimizer, model, every=N) itself (docs/monitor.md)")
    name = _typed(raw, "name", str, default_name)
    if not name or any(c in name for c in "/\\\n"):
        raise ConfigError(f"name: {name!r} is not a valid sweep name; use letters, digits, '-' and '_'")
    if not task and "metric" not in raw:
        raise ConfigError(f"metric: missing; name the metric your {workload} reports, e.g. metric = \"val_loss\"")
    metric = _typed(raw, "metric", str, "")
    direction = _typed(raw, "direction", str, "minimize")
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction: {direction!r}; choose minimize or maximize")
    epochs = _positive_int(raw, "epochs", None)
    batch_size = _positive_int(raw, "batch_size", None)
    schedule = _typed(raw, "schedule", str, "cosine" if task else "")
    from weightdecay.schedules.lr import SCHEDULE_NAMES

    if task and schedule not in SCHEDULE_NAMES:
        raise ConfigError(f"schedule: {schedule!r} is not a learning-rate schedule; choose one of "
                          f"{', '.join(SCHEDULE_NAMES)}")
    seeds = _seeds(raw.get("seeds", 1))
    extra = _typed(raw, "extra", dict, {})
    tolerance = _typed(raw, "basin_tolerance", (int, float), 0.1)
    if not tolerance > 0:
        raise ConfigError(f"basin_tolerance: {tolerance}; give a positive relative tolerance, e.g. 0.1")

    grid = _typed(raw, "grid", dict, {})
    _check_keys(grid, _GRID_KEYS, "grid.")
    lr = _grid_values(grid["lr"], "grid.lr") if "lr" in grid else ()
    default_wd = _grid_values(grid["weight_decay"], "grid.weight_decay") if "weight_decay" in grid else ()
    arms_raw = raw.get("arms")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise ConfigError("arms: missing or empty; add [[arms]] tables with optimizer and decay")
    arms = tuple(_parse_arm(a, f"arms[{i}]", default_wd) for i, a in enumerate(arms_raw))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"arms: names {names} repeat; give each arm a distinct name")
    search = _parse_search(_typed(raw, "search", dict, {}), lr, arms)
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    own = _own_code(workload, raw, list(arms), search, batch_size, base) if not task else {}
    return SweepConfig(name=name, task=task, metric=metric, direction=direction, epochs=epochs,
                       batch_size=batch_size, schedule=schedule, seeds=seeds, lr=lr, arms=arms, search=search,
                       imports=imports, extra=extra, basin_tolerance=float(tolerance), source=source,
                       monitor_every=_positive_int(raw, "monitor_every", None), base_dir=str(base), **own)


def check_environment(config: SweepConfig) -> SweepConfig:
    """Check what the config needs from this machine, and fill in the task's defaults.

    Imports the config's modules, finds the task and asks whether its data is here, checks the metric against
    the task's, and runs the task's own checks (options, schedule, epochs) on every arm before any trial.
    """
    for module in config.imports:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any import failure is the user's module
            raise ConfigError(f"imports: cannot import {module!r} ({exc}); check the module name and PYTHONPATH") from None
    if not config.task:  # your own command or function: nothing of the project's to find on this machine
        if config.search.coordinates == "timescale" and not config.search.train_size:
            raise ConfigError("search.train_size: missing; τ_epoch needs the training-set size B, e.g. "
                              "train_size = 1437")
        return config
    from weightdecay.tasks import get_task

    try:
        task = get_task(config.task)
    except UserError as exc:
        raise ConfigError(f"task: {exc}") from None
    ok, how = task.available()
    if not ok:
        raise ConfigError(f"task: {task.name!r} cannot run on this machine: {how}")
    metric = config.metric or task.metric
    reported = tuple(getattr(task, "metrics", ()) or ())
    if reported and metric not in reported:
        raise ConfigError(f"metric: {metric!r} is not reported by task {task.name!r}; choose one of "
                          f"{', '.join(reported)}")
    search = config.search
    if search.sampler == "tpe" and search.train_size is None:
        search = replace(search, train_size=getattr(task, "train_size", None))
        if search.coordinates == "timescale" and not search.train_size:
            raise ConfigError("search.train_size: missing; τ_epoch needs the training-set size B, e.g. "
                              "train_size = 1437")
    config = replace(config, task=task.name, metric=metric, search=search)
    _dry_resolve(task, config)
    return config


def _seeds(value: Any) -> tuple[int, ...]:
    if is_whole(value):
        if value < 1:
            raise ConfigError(f"seeds: {value}; give a count >= 1 or a list of seeds")
        return tuple(range(value))
    if isinstance(value, list) and value and all(is_whole(s) for s in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds: {value} repeats a seed; list each seed once")
        return tuple(value)
    raise ConfigError(f"seeds: {value!r}; give a count (seeds = 3) or a non-empty list of integers")


def _parse_arm(a: Any, at: str, default_wd: tuple[float, ...]) -> Arm:
    where = f"{at}."
    if not isinstance(a, dict):
        raise ConfigError(f"{at}: expected a table with optimizer and decay")
    _check_keys(a, _ARM_KEYS | {h.name for o in OPTIMIZERS.values() for h in o.hyperparameters}, where)
    optimizer = _typed(a, "optimizer", str, "adamw", where)
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"{where}optimizer: {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    info = get_optimizer(optimizer)
    decay = _typed(a, "decay", str, "torch", where)
    try:
        info.check_decay(decay)
    except UserError as exc:
        raise ConfigError(f"{where}decay: {exc}") from None
    wd = _grid_values(a["weight_decay"], f"{where}weight_decay") if "weight_decay" in a else default_wd
    # An option the arm's optimizer does not use would be dropped silently: refuse it instead.
    for key, users in unused_optimizer_options(optimizer, sorted(set(a) - _ARM_KEYS) +
                                               [k for k in ("betas", "momentum") if k in a]):
        raise ConfigError(f"{where}{key}: {optimizer} does not use {key} (only {', '.join(users)} "
                          f"{'does' if len(users) == 1 else 'do'}); remove it or set optimizer = \"{users[0]}\"")
    try:
        optimizer_options = info.check_hyperparameters({k: a[k] for k in set(a) - _ARM_KEYS})
    except UserError as exc:
        raise ConfigError(f"{where}{exc}") from None
    betas = tuple(_typed(a, "betas", list, list(info.defaults.get("betas", (0.9, 0.999))), where))
    if len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"{where}betas: {list(betas)!r}; give two numbers in [0, 1)")
    momentum = _typed(a, "momentum", (int, float), info.defaults.get("momentum", 0.9), where)
    if not 0 <= momentum < 1:
        raise ConfigError(f"{where}momentum: {momentum!r}; give a number in [0, 1)")
    wd_schedule = _typed(a, "wd_schedule", str, None, where)
    normalized_wd = _typed(a, "normalized_wd", bool, False, where)
    try:
        check_weight_decay_schedule(decay, wd_schedule, normalized_wd)
    except UserError as exc:
        key = "normalized_wd" if normalized_wd else "wd_schedule"
        raise ConfigError(f"{where}{key}: {exc}") from None
    return Arm(name=_typed(a, "name", str, f"{optimizer} {decay}", where), optimizer=optimizer, decay=decay,
               weight_decay=wd, momentum=float(momentum), betas=(float(betas[0]), float(betas[1])),
               extra=_typed(a, "extra", dict, {}, where), wd_schedule=wd_schedule, normalized_wd=normalized_wd,
               optimizer_options=optimizer_options)


def _parse_search(s: dict[str, Any], lr: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
    """The ``[search]`` table: what the grid needs, or TPE's budget and box (the grid/TPE split of the file)."""
    _check_keys(s, _SEARCH_KEYS, "search.")
    sampler = _typed(s, "sampler", str, "grid", "search.")
    if sampler not in SAMPLERS:
        raise ConfigError(f"search.sampler: {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sampler == "tpe":
        return _parse_tpe(s, lr, arms)
    if set(s) - {"sampler"}:
        extra_keys = sorted(set(s) - {"sampler"})
        raise ConfigError(f"search.{extra_keys[0]}: only used with sampler = \"tpe\"; remove it or set the sampler")
    if not lr:
        raise ConfigError("grid.lr: missing; give lr = { min = 1e-4, max = 1e-2, num = 5 } or a list")
    for i, arm in enumerate(arms):
        if not arm.weight_decay:
            raise ConfigError(f"arms[{i}].weight_decay: no λ grid; set grid.weight_decay or the arm's weight_decay")
    return SearchSpace()


def _workload(raw: dict[str, Any]) -> str:
    given = [key for key in WORKLOADS if key in raw]
    if not given:
        raise ConfigError("task: missing; name a task, e.g. task = \"ridge\" (see `weightdecay tasks`), or your "
                          "own script: command = \"python train.py --lr {lr} ...\" (docs/own_script.md)")
    if len(given) > 1:
        raise ConfigError(f"{given[1]}: a sweep runs one of task, command or function; remove {given[1]} or "
                          f"{given[0]}")
    return given[0]


def _own_code(workload: str, raw: dict[str, Any], arms: list[Arm], search: SearchSpace, batch_size: int | None,
              base_dir: Path) -> dict[str, Any]:
    """The checks of a command or function sweep (its own code trains; the sweep only passes values on)."""
    what = "your command" if workload == "command" else "your function"
    if "schedule" in raw:
        raise ConfigError(f"schedule: {what} sets its own learning-rate schedule; pass a choice to it through "
                          f"[extra] instead")
    for i, a in enumerate(raw["arms"]):
        for key in ("momentum", "betas"):
            if key in a:
                raise ConfigError(f"arms[{i}].{key}: {what} builds its own optimizer; pass {key} through the "
                                  f"arm's extra instead")
    if search.coordinates == "timescale" and batch_size is None:
        raise ConfigError("batch_size: τ_epoch coordinates need the batch size b (s = b / (B·τ_epoch)); set "
                          "batch_size = N")
    if workload == "command":
        from weightdecay.sweeps.command import check_command

        timeout = _typed(raw, "timeout", (int, float), None)
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout: {timeout!r}; give the seconds one trial may run, e.g. timeout = 600")
        return {"command": check_command(raw, arms, base_dir),
                "timeout": float(timeout) if timeout is not None else None}
    from weightdecay.sweeps.objective import check_function

    if "timeout" in raw:
        raise ConfigError("timeout: a function runs inside the worker and cannot be timed out; use a command "
                          "sweep for a per-trial timeout")
    return {"function": check_function(raw, arms, base_dir)}


def _parse_tpe(s: dict[str, Any], lr_grid: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
    trials = _positive_int(s, "trials", None, "search.")
    if trials is None:
        raise ConfigError("search.trials: missing; TPE needs a trial budget per arm, e.g. trials = 30")
    coordinates = _typed(s, "coordinates", str, "raw", "search.")
    if coordinates not in COORDINATES:
        raise ConfigError(f"search.coordinates: {coordinates!r}; choose one of {', '.join(COORDINATES)}")
    lr = _range(s["lr"], "search.lr") if "lr" in s else ((min(lr_grid), max(lr_grid)) if lr_grid else None)
    if lr is None:
        raise ConfigError("search.lr: missing; give lr = { min = 1e-4, max = 1e-2 }")
    key = {"raw": "weight_decay", "decoupled": "shrink", "timescale": "tau_epoch"}[coordinates]
    for other in {"weight_decay", "shrink", "tau_epoch"} - {key}:
        if other in s:
            raise ConfigError(f"search.{other}: not used with coordinates = {coordinates!r}; give search.{key}")
    if key in s:
        second = _range(s[key], f"search.{key}")
    elif coordinates == "raw" and arms[0].weight_decay and min(arms[0].weight_decay) > 0:
        second = (min(arms[0].weight_decay), max(arms[0].weight_decay))
    else:
        raise ConfigError(f"search.{key}: missing; give {key} = {{ min = ..., max = ... }}")
    if coordinates != "raw":
        for a in arms:
            if not get_mode(a.decay).decoupled or get_mode(a.decay).statistic is not None:
                raise ConfigError(f"search.coordinates: {coordinates!r} needs a decay mode whose shrink is "
                                  f"linear in λ; arm {a.name!r} uses {a.decay!r}: use coordinates = \"raw\"")
    train_size = _positive_int(s, "train_size", None, "search.")
    return SearchSpace(sampler="tpe", trials=trials, coordinates=coordinates, lr=lr, second=second,
                       train_size=train_size)


def _dry_resolve(task: Task, config: SweepConfig) -> None:
    # The task's own checks (unknown options, bad epochs or batch size), run once per arm before any trial.
    resolve = getattr(task, "resolve", None)
    if resolve is None:
        return
    for i, arm in enumerate(config.arms):
        run = config.train_config(arm, lr=config.lr[0] if config.lr else 1e-3,
                                  weight_decay=arm.weight_decay[0] if arm.weight_decay else 0.0)
        try:
            resolve(run)
        except UserError as exc:
            where = f"arms[{i}].extra" if set(arm.extra) - set(config.extra) else "extra"
            raise ConfigError(f"{where}: {exc}") from None


def _check_keys(d: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{where}{key}: unknown key; valid keys here: {', '.join(sorted(allowed))}")


def _typed(d: dict[str, Any], key: str, types: Any, default: Any = None, where: str = "") -> Any:
    if key not in d:
        return default
    value = d[key]
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}{key}: {value!r} is not a {names}")
    return value


def _positive_int(d: dict[str, Any], key: str, default: Any, where: str = "") -> Any:
    value = _typed(d, key, int, default, where)
    if value is not None and value < 1:
        raise ConfigError(f"{where}{key}: {value}; give a positive integer")
    return value


def _range(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, dict) or set(value) != {"min", "max"}:
        raise ConfigError(f"{where}: {value!r}; give a range {{ min = ..., max = ... }}")
    low, high = value["min"], value["max"]
    if not all(is_number(v, finite=False) for v in (low, high)) or not 0 < low < high:
        raise ConfigError(f"{where}: min={low!r}, max={high!r}; need 0 < min < max (log scale)")
    return float(low), float(high)


def _grid_values(value: Any, where: str) -> tuple[float, ...]:
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
            return log_grid(*_range({"min": value.get("min"), "max": value.get("max")}, where), num)
        low = value.get("min")
        if not is_number(low) or not low > 0:
            raise ConfigError(f"{where}.min: {low!r}; a one-point grid needs min, a finite number > 0")
        return log_grid(float(low), float(low), 1)
    raise ConfigError(f"{where}: {value!r}; give a list of values or {{ min = ..., max = ..., num = ... }}")
