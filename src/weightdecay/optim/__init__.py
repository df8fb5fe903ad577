"""Optimizers whose weight-decay convention is a named choice; each asks :mod:`weightdecay.decay` for it."""

from weightdecay.optim.adamw import Adam, AdamW
from weightdecay.optim.param_groups import param_groups
from weightdecay.optim.sgdw import SGDW

__all__ = ["Adam", "AdamW", "SGDW", "param_groups"]
