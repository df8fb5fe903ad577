"""The columns of a monitor's records: what :class:`~weightdecay.monitors.Monitor` writes and every reader reads."""

from __future__ import annotations

__all__ = ["FIELDS", "GROUP_FACTORS", "PRECISION_FIELDS", "TEXT_FIELDS"]

# The columns of every record, in order (``lr`` and ``decay`` are the group's, so that a saved log can be read
# on its own: the flags need the schedule and the convention).
FIELDS: tuple[str, ...] = (
    "step", "group", "name", "lr", "decay", "weight_norm", "grad_norm", "update_norm", "grad_to_weight",
    "rotation", "shrink", "tau_iter", "tau_epoch", "predicted_rotation", "predicted_grad_to_weight",
    "weight_decay", "wd_mult", "lr_scale", "realized_shrink", "shrink_kept", "dtype",
)
# Added after the first logs were written: a file without them still reads.
GROUP_FACTORS: tuple[str, ...] = ("weight_decay", "wd_mult", "lr_scale")
# The low-precision columns (the realized shrink, the fraction of s_t rounding keeps, the weight's format), added
# later still: a file without them reads too.
PRECISION_FIELDS: tuple[str, ...] = ("realized_shrink", "shrink_kept", "dtype")
# The columns that hold text, not numbers (every other column reads back as a float or None).
TEXT_FIELDS: tuple[str, ...] = ("name", "decay", "dtype")
