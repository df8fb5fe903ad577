"""weightdecay: weight decay that does what you believe it does.

PyTorch optimizers where the decay convention is an explicit choice (``decay="torch" | "paper" | "constant" |
"corrected" | "stable" | "l2"``), the tuning rules of the literature as code, and lr×wd sweeps that show them.
``weightdecay.report(metrics)`` is the one line a training script adds to be swept by a ``command`` sweep, and
``weightdecay.sweep(objective, config)`` sweeps a Python function (docs/own_script.md).
"""

import importlib

from weightdecay.decay import DECAY_MODES, MODE_NAMES, shrink
from weightdecay.optim import AdamW, SGDW, param_groups
from weightdecay.report_line import report

__version__ = "0.1.0"
__all__ = ["AdamW", "SGDW", "param_groups", "DECAY_MODES", "MODE_NAMES", "shrink", "report", "__version__"]

# Exports from layers above the optimizers, imported on first use so that `import weightdecay` stays light.
_LAZY = {"sweep": "weightdecay.sweeps.objective"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'weightdecay' has no attribute {name!r}")
