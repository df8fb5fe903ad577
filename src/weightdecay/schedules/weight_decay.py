"""Weight-decay schedules: set each group's ``weight_decay`` every step, as an LR scheduler sets ``lr``.

PyTorch has no weight-decay scheduler (an open request since 2019, pytorch/pytorch#30396 and its duplicates), so
this is one, with the same protocol as ``torch.optim.lr_scheduler.LRScheduler``: built after the optimizer, it
writes the value for the first update at once; ``step()`` once per batch after ``optimizer.step()``; state dicts
that resume exactly. Two kinds:

- :class:`WeightDecayScheduler`: ``λ_k = λ_0 · m(k)``, ``λ_0`` each group's ``weight_decay`` when the scheduler is
  built and ``m`` any multiplier (e.g. a schedule from :func:`weightdecay.schedules.make_multiplier`).
- :class:`NormalizedWeightDecay`: Loshchilov & Hutter's normalized weight decay, ``λ = λ_norm·sqrt(b/(B·T_i))``
  in ``paper`` units with ``T_i`` the current warm-restart period (docs/math.md, "Hyperparameter rules"), written in each group's own
  convention.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any, Mapping

import torch

from weightdecay.checks import is_number, nonnegative, positive, positive_int
from weightdecay.decay import get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.schedules.lr import make_multiplier
from weightdecay.schedules.multipliers import restart_period

__all__ = ["WeightDecayScheduler", "NormalizedWeightDecay", "make_wd_schedule", "normalized_weight_decay",
           "paper_units_factor", "fixed_shrink_ratio"]


def normalized_weight_decay(weight_decay_norm: float, batch_size: int, dataset_size: int, epochs: float) -> float:
    """Per-step weight decay in ``paper`` units from the normalized one: ``λ = λ_norm · sqrt(b / (B·T))``.

    Loshchilov & Hutter (ICLR 2019), "normalized weight decay"; under warm restarts ``T`` is the current period
    ``T_i``. Best ``λ_norm`` is about 0.025–0.05.

    Args:
        weight_decay_norm: ``λ_norm``.
        batch_size: ``b``.
        dataset_size: ``B``, training examples.
        epochs: ``T``, epochs of the run (or of the current restart period), may be fractional.

    >>> round(normalized_weight_decay(0.05, batch_size=128, dataset_size=50_000, epochs=100), 7)
    0.000253
    """
    nonnegative("weight_decay_norm", weight_decay_norm)
    for name, value in (("batch_size", batch_size), ("dataset_size", dataset_size), ("epochs", epochs)):
        positive(name, value)
    return weight_decay_norm * math.sqrt(batch_size / (dataset_size * epochs))


def fixed_shrink_ratio(source: str, target: str, peak_lr: float, options: Mapping[str, Any] | None = None
                       ) -> float | None:
    """``shrink(source, 1, lr_t) / shrink(target, 1, lr_t)`` if it is the same at every ``lr_t``, else ``None``.

    A λ in ``source`` and ``c·λ`` in ``target`` then shrink alike through any lr schedule peaking at ``peak_lr``
    (docs/math.md, "Decay conventions"). Each row's factor is ``lr_t^a / peak_lr^b``, so the ratio is fixed
    exactly when both rows have the same power ``a`` of ``lr_t`` (an exponent set per group is read from
    ``options``, the target's group; the row's default without it). A mode that reads a training state (``stable``) has a fixed ratio only to a mode reading the same
    state; coupled ``l2``, which never shrinks, has none.

    Args:
        source: a decay mode of :data:`weightdecay.decay.DECAY_MODES`.
        target: another (or the same) decay mode.
        peak_lr: the schedule's reference lr.
        options: the group keys the target's row reads (the parameter group itself will do).

    >>> fixed_shrink_ratio("paper", "torch", peak_lr=1e-3), fixed_shrink_ratio("torch", "constant", peak_lr=1e-3)
    (1000.0, None)
    """
    src, tgt = get_mode(source), get_mode(target)
    if (not (src.decoupled and tgt.decoupled) or src.statistic != tgt.statistic
            or src.exponent() != tgt.exponent(options)):
        return None
    # statistic = 1: it divides both sides alike when both read it, and neither side reads it otherwise
    return shrink(src, 1.0, peak_lr, peak_lr, 1.0) / shrink(tgt, 1.0, peak_lr, peak_lr, 1.0, options)


def paper_units_factor(mode: str, peak_lr: float, options: Mapping[str, Any] | None = None) -> float:
    """What a ``paper``-units λ is multiplied by to give the same shrink in ``mode``, at every lr.

    From the decay table: ``shrink("paper", λ) = shrink(mode, c·λ)`` for all ``lr_t`` needs the two factors to
    differ by a constant ``c``: the rows with ``lr_t``'s power 1 and no statistic, as ``paper`` (c = 1) and
    ``torch`` (c = 1/peak_lr) (:func:`fixed_shrink_ratio`; ``options``: the group's keys its row reads). Other
    modes raise a :class:`UserError`, since no fixed λ in them follows a ``paper``-units decay through a schedule.

    >>> paper_units_factor("torch", peak_lr=1e-3)
    1000.0
    """
    ratio = fixed_shrink_ratio("paper", mode, peak_lr, options)
    if ratio is None:
        raise UserError(f"A paper-units weight decay has no fixed equivalent in decay mode {mode!r}; build the "
                        "optimizer with decay='paper' or decay='torch'")
    return ratio


class WeightDecayScheduler:
    """Sets every group's weight decay per step from a multiplier: ``λ_k = λ_0 · m(k)``.

    ``λ_0`` is the group's ``weight_decay`` when the scheduler is built (kept as ``initial_weight_decay`` in the
    group, as LR schedulers keep ``initial_lr``); ``k`` counts ``step()`` calls, one per optimizer step.

    Args:
        optimizer: any optimizer whose groups have ``weight_decay``.
        multiplier: ``m(k)``; a :class:`weightdecay.schedules.multipliers.Multiplier` is saved in the state dict.
        last_epoch: the last step already taken, -1 for a fresh run (as in torch's schedulers).

    >>> import weightdecay
    >>> opt = weightdecay.AdamW([torch.nn.Parameter(torch.ones(2))], lr=1e-3, weight_decay=0.1)
    >>> wd = WeightDecayScheduler(opt, lambda k: 0.5 ** k)
    >>> opt.step(); wd.step(); wd.get_last_wd()
    [0.05]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: Callable[[int], float],
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise UserError(f"{type(optimizer).__name__} is not a torch optimizer; pass the optimizer to schedule")
        if not callable(multiplier):
            raise UserError(f"Invalid multiplier: {multiplier!r}; give a function of the step k")
        self.optimizer = optimizer
        self.multiplier = multiplier
        for group in optimizer.param_groups:
            if "weight_decay" not in group:
                raise UserError("An optimizer group has no weight_decay; schedule an optimizer that decays weights")
            if last_epoch == -1:
                group.setdefault("initial_weight_decay", group["weight_decay"])
            elif "initial_weight_decay" not in group:
                raise UserError("last_epoch was given but the groups have no initial_weight_decay; build the "
                                "scheduler with last_epoch=-1 or load its state dict")
        self.base_weight_decays = [group["initial_weight_decay"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch + 1
        self._apply()

    def values(self, k: int) -> list[float]:
        """``λ`` of every group at step ``k``."""
        m = self.multiplier(k)
        return [base * m for base in self.base_weight_decays]

    def _apply(self) -> None:
        for group, value in zip(self.optimizer.param_groups, self.values(self.last_epoch), strict=True):
            group["weight_decay"] = value
        self._last_wd = [group["weight_decay"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one optimizer step and write the next ``λ`` into every group."""
        self.last_epoch += 1
        self._apply()

    def get_last_wd(self) -> list[float]:
        """The weight decay this scheduler last wrote, per group."""
        return list(self._last_wd)

    def state_dict(self) -> dict[str, Any]:
        """``last_epoch``, the groups' ``λ_0`` and, for a dataclass multiplier, its fields."""
        m = self.multiplier
        return {"last_epoch": self.last_epoch, "base_weight_decays": list(self.base_weight_decays),
                "multiplier": asdict(m) if is_dataclass(m) else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and the multiplier, then write that step's ``λ`` into the groups."""
        self.last_epoch = state_dict["last_epoch"]
        self.base_weight_decays = list(state_dict["base_weight_decays"])
        for group, base in zip(self.optimizer.param_groups, self.base_weight_decays, strict=True):
            group["initial_weight_decay"] = base
        if state_dict.get("multiplier") is not None and is_dataclass(self.multiplier):
            self.multiplier = type(self.multiplier)(**state_dict["multiplier"])
        self._apply()


class NormalizedWeightDecay(WeightDecayScheduler):
    """Normalized weight decay: each group's ``weight_decay`` at build time is ``λ_norm``, and every step writes
    ``λ = λ_norm · sqrt(b / (B·T_i))`` (``paper`` units) converted to the group's convention.

    ``T_i`` is the warm-restart period holding step ``k`` (``restart_period(k/steps_per_epoch, T_0, T_mult)``),
    or the whole run's ``epochs`` without restarts. Groups of :class:`weightdecay.AdamW` / ``SGDW`` in ``paper``
    mode get ``λ``, in ``torch`` mode ``λ/peak_lr`` (:func:`paper_units_factor`); a plain ``torch.optim.AdamW``
    counts as ``torch`` mode with its initial lr as peak.

    Args:
        optimizer: the optimizer; its groups' ``weight_decay`` are the ``λ_norm`` (0 stays 0).
        batch_size: ``b``.
        dataset_size: ``B``.
        steps_per_epoch: batches per epoch, to count epochs per step.
        epochs: ``T`` without restarts.
        T_0: first restart period in epochs (with ``T_mult``, as in the ``sgdr`` schedule); overrides ``epochs``.
        T_mult: period growth under restarts.

    >>> import weightdecay
    >>> p = torch.nn.Parameter(torch.ones(2))
    >>> opt = weightdecay.AdamW([p], lr=1e-3, weight_decay=0.05, decay="paper")
    >>> s = NormalizedWeightDecay(opt, batch_size=128, dataset_size=50_000, steps_per_epoch=391, epochs=100)
    >>> round(s.get_last_wd()[0], 7)
    0.000253
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, batch_size: int, dataset_size: int,
                 steps_per_epoch: int, epochs: float | None = None, T_0: float | None = None,
                 T_mult: float = 1.0, last_epoch: int = -1) -> None:
        if T_0 is None and epochs is None:
            raise UserError("Normalized weight decay needs the run's epochs (or T_0 and T_mult under warm restarts)")
        positive_int("steps_per_epoch", steps_per_epoch)
        if T_0 is not None and not (is_number(T_mult) and T_mult >= 1 and is_number(T_0) and T_0 > 0):
            raise UserError(f"Invalid warm restarts T_0={T_0!r}, T_mult={T_mult!r}; give T_0 > 0 and T_mult >= 1")
        normalized_weight_decay(1.0, batch_size, dataset_size, epochs if T_0 is None else T_0)  # validates
        self.batch_size, self.dataset_size, self.steps_per_epoch = batch_size, dataset_size, steps_per_epoch
        self.epochs, self.T_0, self.T_mult = epochs, T_0, T_mult
        self.factors = [self._factor(optimizer, group) for group in optimizer.param_groups]
        super().__init__(optimizer, self.period_multiplier, last_epoch=last_epoch)

    @staticmethod
    def _factor(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> float:
        if "decay" in group:
            return paper_units_factor(group["decay"], group["peak_lr"], group)
        if isinstance(optimizer, torch.optim.AdamW):
            return paper_units_factor("torch", group.get("initial_lr", group["lr"]))
        raise UserError(f"Cannot tell the decay convention of {type(optimizer).__name__}; use weightdecay.AdamW or "
                        "weightdecay.SGDW with decay='paper' or decay='torch'")

    def period(self, k: int) -> float:
        """``T_i`` in epochs at step ``k`` (the run's ``epochs`` without restarts)."""
        if self.T_0 is None:
            return float(self.epochs)
        return restart_period(k / self.steps_per_epoch, self.T_0, self.T_mult)[2]

    def period_multiplier(self, k: int) -> float:
        """``sqrt(b / (B·T_i))`` at step ``k``: the per-step λ of a unit ``λ_norm``, in ``paper`` units."""
        return normalized_weight_decay(1.0, self.batch_size, self.dataset_size, self.period(k))

    def values(self, k: int) -> list[float]:
        m = self.period_multiplier(k)
        return [base * m * factor for base, factor in zip(self.base_weight_decays, self.factors, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(multiplier=None, batch_size=self.batch_size, dataset_size=self.dataset_size,
                     steps_per_epoch=self.steps_per_epoch, epochs=self.epochs, T_0=self.T_0, T_mult=self.T_mult,
                     factors=list(self.factors))
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key in ("batch_size", "dataset_size", "steps_per_epoch", "epochs", "T_0", "T_mult", "factors"):
            setattr(self, key, state_dict[key])
        super().load_state_dict(state_dict)


def make_wd_schedule(name: str, optimizer: torch.optim.Optimizer, *, total_steps: int, steps_per_epoch: int,
                     warmup_steps: int | None = None, **options: Any) -> WeightDecayScheduler:
    """A weight-decay scheduler that follows the named schedule: ``λ_k = λ_0 · η(k)``.

    Takes the names and options of :func:`weightdecay.schedules.make_lr_schedule`. With the same schedule on the
    lr, a ``constant``-mode optimizer with ``λ_0 = λ·peak_lr`` decays exactly as a ``torch``-mode one with ``λ``
    (TF Addons' advice to schedule its weight decay like the lr).

    >>> import weightdecay
    >>> opt = weightdecay.AdamW([torch.nn.Parameter(torch.ones(2))], lr=1e-3, weight_decay=0.1)
    >>> wd = make_wd_schedule("cosine", opt, total_steps=10, steps_per_epoch=5)
    >>> for _ in range(5): opt.step(); wd.step()
    >>> round(wd.get_last_wd()[0], 6)
    0.05
    """
    multiplier = make_multiplier(name, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                                 warmup_steps=warmup_steps, **options)
    return WeightDecayScheduler(optimizer, multiplier)
