"""Optimizers whose weight-decay convention is a named choice; each asks :mod:`weightdecay.decay` for it."""

from weightdecay.optim.adamw import Adam, AdamW
from weightdecay.optim.amos import Amos
from weightdecay.optim.cautious import cautious_decay_
from weightdecay.optim.combined import CombinedOptimizer
from weightdecay.optim.lion import Lion
from weightdecay.optim.muon import muon_param_groups, muon_with_adamw
from weightdecay.optim.param_groups import param_groups
from weightdecay.optim.registry import OPTIMIZERS, OptimizerInfo, get_optimizer, register_optimizer
from weightdecay.optim.resume import rebase_peak_lr
from weightdecay.optim.schedule_free import ScheduleFreeAdamW
from weightdecay.optim.target import decay_toward
from weightdecay.optim.sgdw import SGDW
from weightdecay.optim.wrap import Adafactor, Muon, NAdam, RAdam, with_decay

__all__ = ["Adam", "AdamW", "SGDW", "Amos", "Lion", "param_groups", "with_decay", "Muon", "NAdam", "RAdam", "Adafactor",
           "muon_param_groups", "muon_with_adamw", "CombinedOptimizer", "cautious_decay_", "OPTIMIZERS",
           "OptimizerInfo", "get_optimizer", "register_optimizer", "ScheduleFreeAdamW",
           "rebase_peak_lr", "decay_toward"]
