"""Lion (Chen et al. 2023): the sign of an interpolated momentum, with a named decay convention.

This file is the worked example of docs/optimizers.md ("Adding an optimizer"): the optimizer's own update, written
as a plain torch optimizer whose ``weight_decay`` shrinks by ``lr_t·wd`` as the paper's does, then
:func:`weightdecay.with_decay` and one registry row give it every convention, the cautious mask, the refusal of
``s_t ≥ 1``, AMP, state dicts and the sweeps.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from weightdecay.optim._base import evaluate_closure
from weightdecay.optim.wrap import BaseDecay, with_decay

__all__ = ["Lion", "LionUpdate"]


class LionUpdate(torch.optim.Optimizer):
    r"""Lion's own update, with the paper's decay ``p ← p·(1 - lr_t·wd)``; use :class:`Lion` to name a convention.

    Per tensor, with gradient g (``-g`` with ``maximize``) and momentum m::

        c = β1·m + (1-β1)·g
        p ← p·(1 - lr_t·wd) - lr_t·sign(c)
        m ← β2·m + (1-β2)·g

    Args:
        params: parameters or parameter groups.
        lr: ``lr_t``; Lion's sign update has unit size, so it is typically 3-10x below AdamW's.
        betas: ``(β1, β2)``: β1 interpolates the update, β2 the momentum kept.
        weight_decay: ``wd``, shrinking by ``lr_t·wd`` each step.
        maximize: maximize the objective.
        foreach: one foreach call per operation over the group (default), or the readable loop (False).

    References:
        X. Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023 (Algorithm 2).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None) -> None:
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"Invalid betas: {betas!r} (must be a pair, each in [0, 1))")
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params, grads, moments = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lion does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(torch.view_as_real(p) if p.is_complex() else p)
                grads.append(torch.view_as_real(p.grad) if p.is_complex() else p.grad)
                moments.append(torch.view_as_real(state["exp_avg"]) if p.is_complex() else state["exp_avg"])
            if params:
                step = _lion_loop if group["foreach"] is False else _lion_foreach
                step(params, grads, moments, group)
        return loss


def _lion_loop(params: list[Tensor], grads: list[Tensor], moments: list[Tensor], group: dict[str, Any]) -> None:
    """The readable path, one tensor at a time."""
    lr, wd, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
    for p, g, m in zip(params, grads, moments):
        g = -g if group["maximize"] else g
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.add_(m.lerp(g, 1 - beta1).sign_(), alpha=-lr)
        m.lerp_(g, 1 - beta2)


def _lion_foreach(params: list[Tensor], grads: list[Tensor], moments: list[Tensor], group: dict[str, Any]) -> None:
    """The same arithmetic, one foreach call per operation over the group."""
    lr, wd, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
    if group["maximize"]:
        grads = torch._foreach_neg(grads)
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    update = torch._foreach_lerp(moments, grads, 1 - beta1)
    torch._foreach_sign_(update)
    torch._foreach_add_(params, update, alpha=-lr)
    torch._foreach_lerp_(moments, grads, 1 - beta2)


# Lion's own decay shrinks by lr·wd and it has no coupled L2: each convention reaches it as wd = c_t, and decay="l2"
# adds λ·p to the gradient it sees.
Lion = with_decay(LionUpdate, base_decay=BaseDecay(shrinks_by_lr=True, coupled=False), name="Lion")
