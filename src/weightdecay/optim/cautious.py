"""Cautious weight decay: decay only the coordinates where the update and the weight point the same way.

Chen et al. 2025 (arXiv 2510.12402). A modifier of every decoupled convention, not a mode: the table of
:mod:`weightdecay.decay` says *how much* (``s_t``), the mask says *where* (docs/math.md, "Decay conventions")::

    p ← p - s_t·𝟙[u_t ⊙ p ≥ 0] ⊙ p - lr_t·u_t        (elementwise, both terms at the same p_t)

with ``u_t`` the direction the optimizer subtracts. Every optimizer of this package calls
:func:`cautious_decay_` for it, so a faster kernel replaces this one function.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["cautious_decay_", "cautious_decay_after_step_"]


@torch.no_grad()
def cautious_decay_(params: Sequence[Tensor], updates: Sequence[Tensor], weights: Sequence[Tensor],
                    shrink_t: float) -> None:
    """``p ← p - s_t·𝟙[u ⊙ w ≥ 0] ⊙ w`` in place, for each (p, u, w), in one foreach pass per operation.

    Args:
        params: the tensors to change.
        updates: ``u_t``, or anything with its sign (``lr_t·u_t``, or ``p_t - p_{t+1}`` of a step already taken).
        weights: ``p_t``, the weights at which the update was computed (``params`` themselves when the step
            is still to come; a copy taken before the step otherwise).
        shrink_t: ``s_t`` of the group's decay mode.

    Example:
        >>> p = torch.tensor([1.0, -1.0, 2.0])
        >>> cautious_decay_([p], [torch.tensor([0.5, 0.5, -0.5])], [p.clone()], 0.1)
        >>> p
        tensor([ 0.9000, -1.0000,  2.0000])
    """
    if shrink_t == 0 or not params:
        return
    # 𝟙[x ≥ 0] = min(sign(x) + 1, 1): foreach has sign and clamp but no comparison; NaN stays NaN.
    mask = torch._foreach_mul(list(updates), list(weights))
    torch._foreach_sign_(mask)
    torch._foreach_add_(mask, 1.0)
    torch._foreach_clamp_max_(mask, 1.0)
    torch._foreach_mul_(mask, list(weights))
    torch._foreach_add_(list(params), mask, alpha=-shrink_t)


@torch.no_grad()
def cautious_decay_after_step_(params: Sequence[Tensor], before: Sequence[Tensor], shrink_t: float) -> None:
    """Cautious decay for a step already taken with no decay: ``u_t`` has the sign of ``p_t - p_{t+1}``.

    This is how any base optimizer gets the flag without knowing its update (the base steps, then the decay
    is added at the weights ``before`` it). At ``lr_t = 0`` there is no observable direction: every coordinate
    is then decayed (``0 ≥ 0``); where a step rounds to nothing the same holds for that coordinate.
    """
    if shrink_t == 0 or not params:
        return
    cautious_decay_(params, torch._foreach_sub(list(before), list(params)), before, shrink_t)
