"""An arm of a sweep: one optimizer and decay convention with its own λ grid, read from an ``[[arms]]`` table.

:func:`train_config` is the one place that turns an arm and a point ``(lr, λ, seed)`` into a
:class:`weightdecay.tasks.TrainConfig`; the optimizer registry says which hyperparameters an arm may set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from weightdecay.checks import is_number
from weightdecay.errors import ConfigError, UserError
from weightdecay.optim.registry import OPTIMIZERS, get_optimizer
from weightdecay.sweeps._toml import check_keys, grid_values, typed
from weightdecay.tasks import TrainConfig
from weightdecay.tasks.training import check_weight_decay_schedule

__all__ = ["Arm", "LATER_ARM_FIELDS", "ARM_KEYS", "train_config", "unused_optimizer_options", "parse_arm"]

ARM_KEYS = frozenset({"name", "optimizer", "decay", "weight_decay", "momentum", "betas", "wd_schedule",
                      "normalized_wd", "extra"})


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
LATER_ARM_FIELDS = {"wd_schedule": None, "normalized_wd": False, "optimizer_options": {}}


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


def parse_arm(a: Any, at: str, default_wd: tuple[float, ...]) -> Arm:
    """The arm of an ``[[arms]]`` table (``at`` is its place, ``arms[0]``), checked against the registry."""
    where = f"{at}."
    if not isinstance(a, dict):
        raise ConfigError(f"{at}: expected a table with optimizer and decay")
    check_keys(a, ARM_KEYS | {h.name for o in OPTIMIZERS.values() for h in o.hyperparameters}, where)
    optimizer = typed(a, "optimizer", str, "adamw", where)
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"{where}optimizer: {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    info = get_optimizer(optimizer)
    decay = typed(a, "decay", str, "torch", where)
    try:
        info.check_decay(decay)
    except UserError as exc:
        raise ConfigError(f"{where}decay: {exc}") from None
    wd = grid_values(a["weight_decay"], f"{where}weight_decay") if "weight_decay" in a else default_wd
    # An option the arm's optimizer does not use would be dropped silently: refuse it instead.
    for key, users in unused_optimizer_options(optimizer, sorted(set(a) - ARM_KEYS) +
                                               [k for k in ("betas", "momentum") if k in a]):
        raise ConfigError(f"{where}{key}: {optimizer} does not use {key} (only {', '.join(users)} "
                          f"{'does' if len(users) == 1 else 'do'}); remove it or set optimizer = \"{users[0]}\"")
    try:
        optimizer_options = info.check_hyperparameters({k: a[k] for k in set(a) - ARM_KEYS})
    except UserError as exc:
        raise ConfigError(f"{where}{exc}") from None
    betas = tuple(typed(a, "betas", list, list(info.defaults.get("betas", (0.9, 0.999))), where))
    if len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"{where}betas: {list(betas)!r}; give two numbers in [0, 1)")
    momentum = typed(a, "momentum", (int, float), info.defaults.get("momentum", 0.9), where)
    if not 0 <= momentum < 1:
        raise ConfigError(f"{where}momentum: {momentum!r}; give a number in [0, 1)")
    wd_schedule = typed(a, "wd_schedule", str, None, where)
    normalized_wd = typed(a, "normalized_wd", bool, False, where)
    try:
        check_weight_decay_schedule(decay, wd_schedule, normalized_wd)
    except UserError as exc:
        key = "normalized_wd" if normalized_wd else "wd_schedule"
        raise ConfigError(f"{where}{key}: {exc}") from None
    return Arm(name=typed(a, "name", str, f"{optimizer} {decay}", where), optimizer=optimizer, decay=decay,
               weight_decay=wd, momentum=float(momentum), betas=(float(betas[0]), float(betas[1])),
               extra=typed(a, "extra", dict, {}, where), wd_schedule=wd_schedule, normalized_wd=normalized_wd,
               optimizer_options=optimizer_options)
