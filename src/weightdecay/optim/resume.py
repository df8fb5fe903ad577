"""Resuming with a new learning rate: make it the reference ``peak_lr`` of ``paper`` and ``corrected``.

A loaded state dict keeps its ``peak_lr`` (and lr), as torch.optim's load does; ``load_state_dict`` warns when
it differs from the lr the optimizer was built with. :func:`rebase_peak_lr` is the explicit way to move it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from weightdecay.errors import UserError
from weightdecay.optim._base import _number

__all__ = ["rebase_peak_lr"]


def rebase_peak_lr(optimizer: torch.optim.Optimizer, peak_lr: float | Sequence[float], *,
                   rescale_lr: bool = True, scheduler: Any = None) -> list[float]:
    """Set each group's ``peak_lr`` to a new value and return the old ones.

    ``peak_lr`` is one number, multiplied by each group's ``lr_scale`` where :func:`weightdecay.param_groups`
    left one (layer-wise lr decay keeps its ratios), or one number per group. With ``rescale_lr`` (default) each
    group's ``lr`` moves by the factor ``new/old``, so ``η_t = lr_t/peak_lr``, the schedule's position, is kept,
    and the base lr a PyTorch scheduler scales (``initial_lr``, and a ``scheduler``'s ``base_lrs``, which a loaded
    scheduler state holds from the old run) becomes the new peak; without it only the reference moves. Under ``paper`` and ``corrected`` the shrink then reads the new peak; ``torch`` and
    ``constant`` never read ``peak_lr`` (with ``rescale_lr`` the lr itself, and so ``torch``'s shrink, moves).

    >>> import torch, weightdecay
    >>> opt = weightdecay.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3, decay="paper")
    >>> rebase_peak_lr(opt, 2e-3), opt.param_groups[0]["peak_lr"], opt.param_groups[0]["lr"]
    ([0.001], 0.002, 0.002)
    """
    groups = optimizer.param_groups
    if isinstance(peak_lr, (int, float)) and not isinstance(peak_lr, bool):
        new = [float(peak_lr) * float(g.get("lr_scale", 1.0)) for g in groups]
    elif isinstance(peak_lr, Sequence) and len(peak_lr) == len(groups):
        new = [float(v) for v in peak_lr]
    else:
        raise UserError(f"Invalid peak_lr: {peak_lr!r}; give one number, or one per parameter group "
                        f"({len(groups)})")
    for i, value in enumerate(new):
        if not (value > 0 and math.isfinite(value)):
            raise UserError(f"Invalid peak_lr for param_groups[{i}]: {value} (must be a finite number > 0)")
        if "peak_lr" not in groups[i]:
            raise UserError(f"param_groups[{i}] has no peak_lr: rebase_peak_lr is for weightdecay's optimizers")
    old = [g["peak_lr"] for g in groups]
    if rescale_lr and scheduler is not None:
        scheduler.base_lrs = list(new)
    for group, before, after in zip(groups, old, new):
        if rescale_lr:
            factor = after / before
            lr = group["lr"]
            group["lr"] = lr.mul_(factor) if torch.is_tensor(lr) else _number(lr) * factor
            if "initial_lr" in group:
                group["initial_lr"] = after
        group["peak_lr"], group["peak_lr_explicit"] = after, True
    return old
