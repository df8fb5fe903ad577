"""Learning-rate schedules stepped once per batch, built by name.

Every schedule here is torch's own ``LambdaLR`` driven by a closed-form multiplier from
:mod:`weightdecay.schedules.multipliers`: ``lr_k = base_lr · η(k)`` for each group, ``k`` the number of optimizer
steps taken so far. Torch's chained schedulers (``CosineAnnealingLR``'s recursive form, ``SequentialLR``) do most
of these too, but a closed form of ``k`` alone is what makes "resume mid-period, continue exactly" hold; torch's
schedulers are kept as the test oracles instead (``tests/test_schedules.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from weightdecay.checks import fraction, is_whole, positive, positive_int
from weightdecay.errors import UserError
from weightdecay.schedules import multipliers as mul

__all__ = ["ScheduleLR", "SCHEDULE_NAMES", "SCHEDULE_HELP", "make_multiplier", "make_lr_schedule"]

# name -> (the options it accepts, one sentence for error messages and docs)
_SCHEDULES: dict[str, tuple[tuple[str, ...], str]] = {
    "constant": ((), "η = 1 (after an optional warm-up)"),
    "cosine": (("floor",), "cosine decay from the peak to floor·peak over total_steps"),
    "warmup-cosine": (("floor",), "linear warm-up (default one epoch), then cosine decay to floor·peak"),
    "linear": (("floor",), "linear decay from the peak to floor·peak over total_steps"),
    "wsd": (("floor", "decay_fraction", "decay_steps", "decay_shape"),
            "warmup-stable-decay: flat at the peak, then a decay over the last decay_fraction of the run"),
    "step": (("milestones", "gamma"), "multiply by gamma at each milestone (in epochs, may be fractional)"),
    "sgdr": (("T_0", "T_mult", "floor"), "cosine warm restarts per batch, periods T_0·T_mult^i epochs"),
    "keras-decay": (("decay",), "legacy Keras decay: lr/(1 + decay·k)"),
    "onecycle": (("pct_start", "div_factor", "final_div_factor", "anneal"),
                 "torch's OneCycleLR: from lr/div_factor up to lr over pct_start of the run, then down to "
                 "lr/(div_factor·final_div_factor)"),
}

SCHEDULE_NAMES: tuple[str, ...] = tuple(_SCHEDULES)


def schedule_options_of(name: str) -> tuple[str, ...]:
    """The options (besides ``warmup_steps``) the schedule called ``name`` accepts.

    >>> schedule_options_of("sgdr")
    ('T_0', 'T_mult', 'floor')
    """
    if name not in _SCHEDULES:
        raise UserError(f"Unknown schedule: {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    return _SCHEDULES[name][0]
# One sentence per schedule, for help texts and reports.
SCHEDULE_HELP: dict[str, str] = {name: sentence for name, (_, sentence) in _SCHEDULES.items()}


class ScheduleLR(LambdaLR):
    """A ``LambdaLR`` whose multiplier is a named closed form: ``lr_k = base_lr · η(k)`` for every group.

    Its state dict holds ``last_epoch`` (the step ``k``) and the multiplier's fields, so loading it into a
    scheduler of the same name resumes exactly.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        multiplier: a :class:`weightdecay.schedules.multipliers.Multiplier`.
        name: the schedule's name, kept for reports.

    >>> p = torch.nn.Parameter(torch.zeros(1))
    >>> s = ScheduleLR(torch.optim.SGD([p], lr=0.1), mul.KerasDecay(decay=1.0))
    >>> s.optimizer.step(); s.step(); s.get_last_lr()
    [0.05]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: mul.Multiplier, name: str = "",
                 last_epoch: int = -1) -> None:
        self.multiplier = multiplier
        self.name = name or type(multiplier).__name__
        super().__init__(optimizer, multiplier, last_epoch=last_epoch)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.pop("multiplier", None)  # saved once, in lr_lambdas
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.multiplier = self.lr_lambdas[0]
        # The lr is a closed form of the step, so write it back: resuming is exact whether the optimizer's
        # state was loaded before or after this scheduler was built.
        eta = self.multiplier(self.last_epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base_lr * eta
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def make_multiplier(name: str, *, total_steps: int, steps_per_epoch: int, warmup_steps: int | None = None,
                    **options: Any) -> mul.Multiplier:
    """The closed-form multiplier ``η(k)`` of the schedule called ``name`` (see :data:`SCHEDULE_NAMES`).

    Args and options are those of :func:`make_lr_schedule`.

    >>> round(make_multiplier("cosine", total_steps=100, steps_per_epoch=10)(50), 12)
    0.5
    """
    if name not in _SCHEDULES:
        raise UserError(f"Unknown schedule: {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    allowed, _ = _SCHEDULES[name]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepts = ", ".join(allowed) if allowed else "no options"
        raise UserError(f"Schedule {name!r} does not take {', '.join(unknown)}; it accepts {accepts}")
    total_steps = positive_int("total_steps", total_steps)
    steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
    if warmup_steps is None:
        # One epoch of warm-up (Goyal et al. 2017) for the schedule named after it, none otherwise.
        warmup_steps = min(steps_per_epoch, total_steps // 2) if name == "warmup-cosine" else 0
    if not is_whole(warmup_steps, minimum=0) or not warmup_steps < total_steps:
        raise UserError(f"Invalid warmup_steps: {warmup_steps!r}; give a whole number in [0, total_steps="
                        f"{total_steps})")
    floor = fraction("floor", options.get("floor", 0.0), include_one=True)

    if name == "constant":
        return mul.Constant(warmup_steps=warmup_steps)
    if name in ("cosine", "warmup-cosine"):
        return mul.Cosine(warmup_steps=warmup_steps, total_steps=total_steps, floor=floor)
    if name == "linear":
        return mul.Linear(warmup_steps=warmup_steps, total_steps=total_steps, floor=floor)
    if name == "wsd":
        if "decay_steps" in options and "decay_fraction" in options:
            raise UserError("Schedule 'wsd' takes decay_steps or decay_fraction, not both; keep one")
        if "decay_steps" in options:
            decay_steps = positive_int("decay_steps", options["decay_steps"])
        else:
            share = fraction("decay_fraction", options.get("decay_fraction", 0.2), include_one=True)
            decay_steps = max(1, round(share * total_steps))
        if total_steps - decay_steps < warmup_steps:
            raise UserError(f"Schedule 'wsd': the decay ({decay_steps} steps) overlaps the warm-up ({warmup_steps}"
                            f" steps) in a run of {total_steps}; shorten one of them")
        decay_shape = options.get("decay_shape", "linear")
        if decay_shape not in ("linear", "cosine", "sqrt"):
            raise UserError(f"Invalid decay_shape: {decay_shape!r}; choose one of linear, cosine, sqrt")
        return mul.WarmupStableDecay(warmup_steps=warmup_steps, total_steps=total_steps, decay_steps=decay_steps,
                                     floor=floor, decay_shape=decay_shape)
    if name == "step":
        if "milestones" not in options:
            raise UserError("Schedule 'step' needs milestones: the epochs at which the lr drops, e.g. [30, 60, 90]")
        milestones = options["milestones"]
        if isinstance(milestones, (int, float)):
            milestones = [milestones]
        if not isinstance(milestones, Iterable):
            raise UserError(f"Invalid milestones: {milestones!r}; give a list of epochs, e.g. [30, 60, 90]")
        epochs = [positive("milestone", m) for m in milestones]
        if epochs != sorted(epochs):
            raise UserError(f"Invalid milestones: {list(milestones)!r}; list them in increasing order")
        gamma = positive("gamma", options.get("gamma", 0.1))
        steps = tuple(round(e * steps_per_epoch) for e in epochs)
        return mul.StepDrop(warmup_steps=warmup_steps, milestone_steps=steps, gamma=gamma)
    if name == "sgdr":
        t_0 = positive("T_0", options.get("T_0", 1.0))
        t_mult = positive("T_mult", options.get("T_mult", 2.0))
        if t_mult < 1:
            raise UserError(f"Invalid T_mult: {t_mult!r}; periods cannot shrink, give T_mult >= 1")
        return mul.WarmRestarts(warmup_steps=warmup_steps, steps_per_epoch=steps_per_epoch, T_0=t_0,
                                T_mult=t_mult, floor=floor)
    if name == "onecycle":
        if warmup_steps:
            raise UserError("Schedule 'onecycle' warms up by itself (pct_start); drop warmup_steps")
        pct_start = fraction("pct_start", options.get("pct_start", 0.3))
        if not 0 < pct_start * total_steps - 1 < total_steps - 1:
            raise UserError(f"Schedule 'onecycle': pct_start={pct_start} leaves no room for both phases in "
                            f"{total_steps} steps; give 0 < pct_start < 1 and a longer run")
        anneal = options.get("anneal", "cos")
        if anneal not in ("cos", "linear"):
            raise UserError(f"Invalid anneal: {anneal!r}; choose cos or linear")
        return mul.OneCycle(total_steps=total_steps, pct_start=pct_start,
                            div_factor=positive("div_factor", options.get("div_factor", 25.0)),
                            final_div_factor=positive("final_div_factor", options.get("final_div_factor", 1e4)),
                            anneal=anneal)
    # keras-decay
    if "decay" not in options:
        raise UserError("Schedule 'keras-decay' needs decay: lr_k = lr/(1 + decay·k), e.g. decay=1e-4")
    return mul.KerasDecay(warmup_steps=warmup_steps, decay=positive("decay", options["decay"]))


def make_lr_schedule(name: str, optimizer: torch.optim.Optimizer, *, total_steps: int, steps_per_epoch: int,
                     warmup_steps: int | None = None, **options: Any) -> ScheduleLR:
    """A learning-rate scheduler by name, to be stepped once per batch: ``lr_k = base_lr · η(k)``.

    ``base_lr`` is each group's lr when the scheduler is built (its ``initial_lr``), which is also the default
    ``peak_lr`` of :class:`weightdecay.AdamW`; ``η`` follows the named closed form (docs/math.md, "Hyperparameter rules").

    Args:
        name: one of :data:`SCHEDULE_NAMES`: ``constant``, ``cosine``, ``warmup-cosine``, ``linear``, ``wsd``,
            ``step``, ``sgdr``, ``keras-decay``, ``onecycle``.
        optimizer: any ``torch.optim.Optimizer``.
        total_steps: optimizer steps in the run (the horizon of cosine, linear and WSD decays).
        steps_per_epoch: batches per epoch, to turn epochs (milestones, ``T_0``) into steps.
        warmup_steps: linear warm-up steps; default one epoch for ``warmup-cosine``, none otherwise.
        **options: ``floor`` (fraction of the peak, default 0) for cosine/linear/wsd/sgdr; ``decay_fraction``
            (0.2) or ``decay_steps``, ``decay_shape`` (linear|cosine|sqrt) for wsd; ``milestones`` (epochs) and
            ``gamma`` (0.1) for step; ``T_0`` (epochs, 1.0) and ``T_mult`` (2.0) for sgdr; ``decay`` for
            keras-decay; ``pct_start`` (0.3), ``div_factor`` (25), ``final_div_factor`` (1e4) and ``anneal``
            (cos|linear) for onecycle, torch's OneCycleLR with the optimizer's lr as ``max_lr``.

    >>> p = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([p], lr=0.1)
    >>> sched = make_lr_schedule("step", opt, total_steps=30, steps_per_epoch=10, milestones=[1, 2])
    >>> for _ in range(10): opt.step(); sched.step()
    >>> round(sched.get_last_lr()[0], 6)
    0.01
    """
    multiplier = make_multiplier(name, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                                 warmup_steps=warmup_steps, **options)
    return ScheduleLR(optimizer, multiplier, name=name)
