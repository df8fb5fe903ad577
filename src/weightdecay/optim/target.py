"""Decay toward a target instead of zero: ``p ← p − s_t·(p − p_target)`` with ``s_t`` of the decay table.

L2-SP (Li et al. 2018) decays a fine-tuned model toward its pretrained weights; heavyball's
``weight_decay_to_init`` and ``weight_decay_to_ema`` toward the initial weights or an EMA of the weights
(docs/math.md, "Decay toward a target"). ``p_target = 0`` is ordinary decay.

It attaches to any optimizer from outside, through torch's step hooks, and leaves its step alone: the step shrinks
``p ← p·(1 − s_t) − lr_t·u_t`` as always, and the hook adds ``s_t·p_target`` after it, which gives
``p − s_t·(p − p_target) − lr_t·u_t`` exactly (both terms read the same ``p_t``). Under ``l2`` the hook subtracts
``λ·p_target`` from the gradient before the step, so the penalty's gradient is ``λ·(p − p_target)``.

Memory: one copy of each parameter (``decay_target`` in the optimizer's state, saved with its state dict and
sharded as the parameter is). Time: one more pass over the weights and the target per step (a ``foreach`` add),
outside the fused kernels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from weightdecay.decay import coupled_weight_decay, get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.optim._base import _number
from weightdecay.optim.delivery import skipped_by_scaler

__all__ = ["DecayTarget", "decay_toward"]

TARGETS = ("init", "ema")


class DecayTarget:
    """The hooks :func:`decay_toward` attached; ``remove()`` detaches them (the targets stay in the state)."""

    def __init__(self, optimizer: torch.optim.Optimizer, target: str, ema_beta: float) -> None:
        self.optimizer, self.target, self.ema_beta = optimizer, target, ema_beta
        # Until a parameter's first step, its target waits here: put in the state earlier, it would make the
        # optimizer skip its own state initialisation (torch.optim's `if len(state) == 0`).
        self._waiting: dict[Tensor, Tensor] = {}
        with torch.no_grad():
            for group in optimizer.param_groups:
                self._check(group, optimizer)
                for p in group["params"]:
                    if "decay_target" not in optimizer.state.get(p, {}):
                        self._waiting[p] = p.detach().clone(memory_format=torch.preserve_format)
        self._handles = [optimizer.register_step_pre_hook(self._before),
                         optimizer.register_step_post_hook(self._after)]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    @staticmethod
    def _mode(group: dict[str, Any], optimizer: torch.optim.Optimizer) -> str:
        """The group's convention: weightdecay's optimizers name it; torch.optim.AdamW's is ``torch``."""
        if "decay" in group:
            return group["decay"]
        if type(optimizer) is torch.optim.AdamW:
            return "torch"
        raise UserError(f"decay_toward needs the convention of {type(optimizer).__name__}'s weight_decay: use "
                        "weightdecay's optimizers (or weightdecay.with_decay(cls)), whose groups name it, or "
                        "torch.optim.AdamW")

    def _check(self, group: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
        if "decay_at" in group:
            raise UserError("decay_toward does not take ScheduleFreeAdamW: its decay acts on z, not on the "
                            "parameters the hook sees")
        mode = get_mode(self._mode(group, optimizer))
        if mode.statistic is not None:
            raise UserError(f"decay_toward does not take decay={mode.name!r}: its shrink reads the step's "
                            f"{mode.statistic.symbol}, "
                            "which a hook outside the step does not see; choose torch, paper, constant, corrected "
                            "or l2")
        if group.get("cautious"):
            raise UserError("decay_toward does not take cautious=True: the cautious mask is the step's own; use "
                            "cautious=False")

    def _target(self, p: Tensor) -> Tensor | None:
        state = self.optimizer.state.get(p)
        if state and "decay_target" in state:
            return state["decay_target"]
        return self._waiting.get(p)

    def _pairs(self, group: dict[str, Any]) -> tuple[list[Tensor], list[Tensor]]:
        params, targets = [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            target = self._target(p)
            if target is not None:
                params.append(p)
                targets.append(target)
        return params, targets

    @torch.no_grad()
    def _before(self, optimizer: torch.optim.Optimizer, *_args: Any) -> None:
        for group in optimizer.param_groups:
            self._check(group, optimizer)
            coupled = coupled_weight_decay(self._mode(group, optimizer), _number(group["weight_decay"]))
            if coupled:
                params, targets = self._pairs(group)
                if params:
                    torch._foreach_add_([p.grad for p in params], targets, alpha=-coupled)

    @torch.no_grad()
    def _after(self, optimizer: torch.optim.Optimizer, *_args: Any) -> None:
        skipped = skipped_by_scaler(optimizer)
        for group in optimizer.param_groups:
            params, targets = self._pairs(group)
            mode = self._mode(group, optimizer)
            s = shrink(mode, _number(group["weight_decay"]), _number(group["lr"]), group.get("peak_lr", 1.0),
                       options=group) \
                if get_mode(mode).decoupled else 0.0
            if params and s and not skipped:
                torch._foreach_add_(params, targets, alpha=s)
            if params and self.target == "ema" and not skipped:
                torch._foreach_lerp_(targets, [p.detach() for p in params], 1 - self.ema_beta)
            for p in params:  # its first step has made whatever state the optimizer keeps: the target joins it
                if p in self._waiting:
                    optimizer.state[p]["decay_target"] = self._waiting.pop(p)


def decay_toward(optimizer: torch.optim.Optimizer, target: str = "init", *, ema_beta: float = 0.999) -> DecayTarget:
    """Make ``optimizer``'s weight decay pull each weight toward a target instead of toward zero.

    Args:
        optimizer: an optimizer whose groups name their convention in ``decay`` (weightdecay's, and classes
            ``with_decay`` wraps), or torch.optim.AdamW (``torch``).
        target: ``"init"``, the weights now (the pretrained ones when fine-tuning: L2-SP), or ``"ema"``, an
            exponential moving average of the weights, updated after each step (heavyball's
            ``weight_decay_to_ema``), starting from the weights now.
        ema_beta: the EMA's β (``ema ← β·ema + (1 − β)·p``).

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = weightdecay.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, decay="paper")
        >>> handle = weightdecay.optim.decay_toward(opt, "init")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
    """
    if target not in TARGETS:
        raise UserError(f"Invalid target: {target!r}; choose 'init' (the weights now: pretrained, for L2-SP) or "
                        "'ema' (a moving average of the weights)")
    if isinstance(ema_beta, bool) or not isinstance(ema_beta, (int, float)) or not 0 <= ema_beta < 1:
        raise UserError(f"Invalid ema_beta: {ema_beta!r} (must be a number in [0, 1))")
    return DecayTarget(optimizer, target, float(ema_beta))
