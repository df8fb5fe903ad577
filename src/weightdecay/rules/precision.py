"""Whether a weight format can hold a shrink: the decay a rounded ``p·(1 - s_t)`` loses (docs/math.md, "Low
precision").

A weight ``p = m·2^e`` (``1 ≤ m < 2``) in a format of ``k`` significant bits lies ``2^(e+1-k)`` from its
neighbours, so ``p·(1 - s_t)`` rounds back to ``p`` when ``s_t·|p|`` is below half of that: ``s_t < 2^(-k)/m``.
That holds at every weight for ``s_t < 2^(-k-1)`` and at some for ``s_t < 2^(-k)``: bfloat16 (8 bits) loses any
``s_t < 2^-9 ≈ 1.95e-3``, float16 (11 bits) any ``s_t < 2^-12 ≈ 2.4e-4``.

>>> resolution("bfloat16")
(0.001953125, 0.00390625)
>>> print(rounding_warning(1e-5, "bf16")[:47])
s_t = 1e-05 is below bfloat16's resolution 2^-9
>>> rounding_warning(1e-5, "float32") is None
True
"""

from __future__ import annotations

from weightdecay.errors import UserError

__all__ = ["SIGNIFICANT_BITS", "canonical_dtype", "resolution", "rounding_warning"]

SIGNIFICANT_BITS = {"bfloat16": 8, "float16": 11, "float32": 24, "float64": 53}
_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32",
            "fp64": "float64", "double": "float64"}


def canonical_dtype(dtype: str) -> str:
    """``bfloat16``, ``float16``, ``float32`` or ``float64`` from a name (``bf16``, ``torch.float16``, ``half``…)."""
    name = str(dtype).removeprefix("torch.").lower()
    name = _ALIASES.get(name, name)
    if name not in SIGNIFICANT_BITS:
        raise UserError(f"Unknown weight dtype {dtype!r}; choose one of {', '.join(SIGNIFICANT_BITS)} "
                        "(or bf16, fp16, fp32)")
    return name


def resolution(dtype: str) -> tuple[float, float]:
    """``(everywhere, somewhere)``: a shrink below the first rounds away at every weight of ``dtype``, below the
    second at some (``2^(-k-1)`` and ``2^(-k)`` for ``k`` significant bits)."""
    bits = SIGNIFICANT_BITS[canonical_dtype(dtype)]
    return 2.0 ** (-bits - 1), 2.0 ** (-bits)


def rounding_warning(shrink: float, dtype: str) -> str | None:
    """A sentence when a per-step shrink ``s_t`` is too small for weights of ``dtype`` to hold, else None."""
    name = canonical_dtype(dtype)
    everywhere, somewhere = resolution(name)
    if not 0 < shrink < somewhere:
        return None
    bits = SIGNIFICANT_BITS[name]
    where = (f"every weight: p·(1 - s_t) rounds back to p, so an optimizer that rounds to nearest (torch.optim) "
             "loses the decay entirely" if shrink < everywhere else
             f"the weights whose mantissa is above {everywhere / shrink:.2f}: p·(1 - s_t) rounds back to p there, "
             "so an optimizer that rounds to nearest (torch.optim) loses part of the decay")
    return (f"s_t = {shrink:.3g} is below {name}'s resolution 2^-{bits + 1} = {everywhere:.3g} at {where}. "
            "weightdecay's optimizers keep it (rounding='compensated', their default for bfloat16/float16 "
            "weights); or keep float32 master weights.")
