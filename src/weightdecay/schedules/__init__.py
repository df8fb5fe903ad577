"""Schedules stepped once per batch: learning-rate schedules by name and weight-decay schedules.

``make_lr_schedule(name, optimizer, total_steps=…, steps_per_epoch=…)`` returns a torch ``LRScheduler``; the
multipliers behind it are pure functions of the step (:mod:`weightdecay.schedules.multipliers`).
"""

from weightdecay.schedules.lr import SCHEDULE_NAMES, ScheduleLR, make_lr_schedule, make_multiplier
from weightdecay.schedules.multipliers import restart_period

__all__ = ["SCHEDULE_NAMES", "ScheduleLR", "make_lr_schedule", "make_multiplier", "restart_period"]
