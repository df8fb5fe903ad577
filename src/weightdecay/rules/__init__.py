"""The literature's weight-decay rules as plain functions (docs/math.md, "Hyperparameter rules").

Conversions between conventions and frameworks (:func:`convert`), transfer to a new setup (:func:`transfer`),
normalized weight decay, EMA timescales, rotational equilibrium and AdamC's target, :func:`advise`, which
puts them together for one setting, and :func:`suggest_weight_decay`, a value with its interval and measured accuracy.
"""

from weightdecay.rules.advice import Advice, advise
from weightdecay.rules.conventions import (
    CONVENTION_NAMES,
    CONVENTIONS,
    FRAMEWORK_NAMES,
    Convention,
    Conversion,
    convert,
    convert_all,
    get_convention,
)
from weightdecay.rules.precision import canonical_dtype, resolution, rounding_warning
from weightdecay.rules.suggestion import Suggestion, suggest_weight_decay
from weightdecay.rules.equilibrium import OPTIMIZERS, adamc_target_ratio, equilibrium_norm, equilibrium_rotation
from weightdecay.rules.timescales import (
    Timescale,
    ema_timescale,
    normalized_weight_decay,
    weight_decay_for_timescale,
    weight_decay_norm,
)
from weightdecay.rules.transfer import TRANSFER_RULES, Transfer, transfer, transfer_muon

__all__ = [
    "Advice", "advise",
    "CONVENTION_NAMES", "CONVENTIONS", "FRAMEWORK_NAMES", "Convention", "Conversion", "convert", "convert_all",
    "get_convention",
    "OPTIMIZERS", "adamc_target_ratio", "equilibrium_norm", "equilibrium_rotation",
    "Suggestion", "suggest_weight_decay",
    "Timescale", "ema_timescale", "normalized_weight_decay", "weight_decay_for_timescale", "weight_decay_norm",
    "TRANSFER_RULES", "Transfer", "transfer", "transfer_muon",
    "canonical_dtype", "resolution", "rounding_warning",
]
