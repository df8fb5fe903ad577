"""Schedules stepped once per batch: learning-rate schedules by name and weight-decay schedules.

``make_lr_schedule(name, optimizer, total_steps=…, steps_per_epoch=…)`` returns a torch ``LRScheduler``;
``make_wd_schedule`` / :class:`WeightDecayScheduler` / :class:`NormalizedWeightDecay` set ``weight_decay`` the same
way. The multipliers behind them are pure functions of the step (:mod:`weightdecay.schedules.multipliers`).
"""

from weightdecay.schedules.lr import SCHEDULE_HELP, SCHEDULE_NAMES, ScheduleLR, make_lr_schedule, make_multiplier
from weightdecay.schedules.multipliers import restart_period
from weightdecay.schedules.weight_decay import (
    NormalizedWeightDecay,
    WeightDecayScheduler,
    fixed_shrink_ratio,
    make_wd_schedule,
    normalized_weight_decay,
    paper_units_factor,
)

__all__ = [
    "SCHEDULE_NAMES",
    "SCHEDULE_HELP",
    "ScheduleLR",
    "make_lr_schedule",
    "make_multiplier",
    "restart_period",
    "WeightDecayScheduler",
    "NormalizedWeightDecay",
    "make_wd_schedule",
    "normalized_weight_decay",
    "paper_units_factor",
    "fixed_shrink_ratio",
]
