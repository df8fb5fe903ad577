"""weightdecay: weight decay that does what you believe it does.

PyTorch optimizers where the decay convention is an explicit choice (``decay="torch" | "paper" | "constant" |
"corrected" | "stable" | "l2"``), the tuning rules of the literature as code, and lr×wd sweeps that show them.
"""

from weightdecay.decay import DECAY_MODES, MODE_NAMES, shrink
from weightdecay.optim import Adam, AdamW, SGDW, param_groups

__version__ = "0.1.0"
__all__ = ["Adam", "AdamW", "SGDW", "param_groups", "DECAY_MODES", "MODE_NAMES", "shrink", "__version__"]
