"""weightdecay: weight decay that does what you believe it does.

PyTorch optimizers where the decay convention is an explicit choice (``decay="torch"``, ``"paper"``, … one row
each of :data:`DECAY_MODES`), the tuning rules of the literature as code, and lr×wd sweeps that show them.
``weightdecay.report(metrics)`` is the one line a training script adds to be swept by a ``command`` sweep, and
``weightdecay.sweep(objective, config)`` sweeps a Python function (docs/own_script.md).
"""

import importlib

from weightdecay.decay import DECAY_MODES, MODE_NAMES, shrink
from weightdecay.optim import (OPTIMIZERS, Adam, AdamW, Adafactor, Lion, Muon, NAdam, RAdam, SGDW, get_optimizer,
                               muon_param_groups, muon_with_adamw, param_groups, register_optimizer, with_decay)
from weightdecay.report_line import report

__version__ = "0.1.0"
__all__ = ["Adam", "AdamW", "SGDW", "param_groups", "DECAY_MODES", "MODE_NAMES", "shrink", "__version__",
           "with_decay", "Muon", "NAdam", "RAdam", "Adafactor", "Lion", "muon_param_groups", "muon_with_adamw",
           "OPTIMIZERS", "get_optimizer", "register_optimizer", "Monitor", "report", "sweep"]

_LAZY = {"Monitor": "weightdecay.monitors", "sweep": "weightdecay.sweeps.api"}


def __getattr__(name: str):
    # Higher layers load on first use, so `import weightdecay` stays light (optimizers and the decay table only).
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'weightdecay' has no attribute {name!r}")
