"""Schedule-free AdamW (Defazio et al. 2024) whose decay convention is a named choice, decay taken at y or at z.

Schedule-free keeps three sequences: ``z`` takes the Adam steps, ``x`` is a weighted average of the ``z`` (what
to evaluate), and ``y = β1·x + (1-β1)·z`` is where the gradient is taken (what the parameters hold in training).
With ``lr_t`` the group's lr times the built-in warm-up, ``c_{t+1} = w_t / Σ w`` (``w_t = t^r·max lr^power``)::

    v_t = β2·v_{t-1} + (1-β2)·g²           u_t = g / (sqrt(v_t / (1-β2^t)) + ε)
    z ← z - s_t·D - lr_t·u_t                D = y (default, as the schedulefree package) or z (decay_at="z")
    x ← (1 - c_{t+1})·x + c_{t+1}·z         y = β1·x + (1-β1)·z

with ``s_t`` from the decay table (docs/math.md, "Decay conventions"): ``torch`` is the package's
``AdamWScheduleFree(weight_decay=λ)`` (``s_t = lr_t·λ``, warm-up included), ``paper`` divides by ``peak_lr``,
``constant`` ignores the lr, ``corrected`` is AdamC's ``lr_t²/peak_lr`` scaling (the package repository's
AdamC variant scales by ``lr_t²`` without ``peak_lr``). The decay is decoupled: it enters ``z`` beside the Adam
direction, after the preconditioner, not through the moments (``l2`` adds ``λ·y`` to the gradient instead).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from weightdecay.decay import coupled_weight_decay, get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.optim._base import DecayOptimizer, _number, check_nonnegative, evaluate_closure
from weightdecay.optim.delivery import plan_step
from weightdecay.optim.registry import betas

__all__ = ["ScheduleFreeAdamW"]


class ScheduleFreeAdamW(DecayOptimizer):
    r"""Schedule-free AdamW with ``decay=`` of the table; ``decay="torch"`` is ``schedulefree.AdamWScheduleFree``.

    Call ``opt.train()`` before training and ``opt.eval()`` before evaluating or saving, as with the package:
    in train mode the parameters hold ``y``, in eval mode the average ``x``.

    Args:
        params: parameters or parameter groups.
        lr: the peak learning rate (schedule-free needs no schedule; a built-in linear warm-up over
            ``warmup_steps``).
        betas: ``(β1, β2)``: β1 the interpolation between ``x`` and ``z``, β2 Adam's second moment.
        eps: ε added to the denominator.
        weight_decay: λ, in the units of ``decay``.
        warmup_steps, r, weight_lr_power: the package's warm-up and averaging weights ``w_t = t^r·max lr^power``.
        decay: ``torch``, ``paper``, ``constant``, ``corrected`` or ``l2``.
        peak_lr: reference lr of ``paper``/``corrected``; defaults to each group's ``lr``.
        decay_at: ``"y"`` (the package's default: the point the gradient is taken at) or ``"z"`` (its reference
            implementation's ``decay_at_z=True``).

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = weightdecay.optim.ScheduleFreeAdamW(model.parameters(), lr=1e-3, weight_decay=0.1, decay="paper")
        >>> opt.train()
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()  # the parameters now hold x, the average to evaluate

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024; facebookresearch/schedule_free.
    """

    _group_defaults = {"cautious": False}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 0.0025,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0, decay: str = "torch",
                 peak_lr: float | None = None, decay_at: str = "y") -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
                        weight_lr_power=weight_lr_power, decay=decay, peak_lr=peak_lr, decay_at=decay_at,
                        k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any], explicit_peak: Any) -> None:
        group["betas"] = betas("betas", group["betas"])
        check_nonnegative("eps", group["eps"], "epsilon value")
        check_nonnegative("r", group["r"])
        check_nonnegative("weight_lr_power", group["weight_lr_power"])
        steps = group["warmup_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise UserError(f"Invalid warmup_steps: {steps!r} (must be an integer >= 0)")
        if group["decay_at"] not in ("y", "z"):
            raise UserError(f"Invalid decay_at: {group['decay_at']!r} (must be 'y', where the gradient is taken, as "
                            "the schedulefree package does, or 'z')")
        if get_mode(group["decay"]).statistic is not None:
            raise UserError(f"Invalid decay mode for ScheduleFreeAdamW: {group['decay']!r} is not implemented for "
                            "schedule-free; choose torch, paper, constant, corrected or l2")
        if group.get("cautious"):
            raise UserError("Invalid cautious=True: ScheduleFreeAdamW has no cautious decay; use cautious=False")
        super()._check_group(group, explicit_peak)

    @torch.no_grad()
    def train(self) -> None:
        """Parameters to ``y = β1·x + (1-β1)·z``, where gradients are taken."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    if "z" in self.state[p]:
                        p.lerp_(self.state[p]["z"], 1 - beta1)
                group["train_mode"] = True

    @torch.no_grad()
    def eval(self) -> None:
        """Parameters to the average ``x = (y - (1-β1)·z)/β1``, to evaluate or save."""
        for group in self.param_groups:
            if group["train_mode"]:
                beta1 = group["betas"][0]
                for p in group["params"]:
                    if "z" in self.state[p]:
                        p.lerp_(self.state[p]["z"], 1 - 1 / beta1)
                group["train_mode"] = False

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        if not all(group["train_mode"] for group in self.param_groups):
            raise UserError("ScheduleFreeAdamW.step() in eval mode: call opt.train() before training steps and "
                            "opt.eval() before evaluating or saving")
        loss = evaluate_closure(closure)
        plan_step(self)  # refuses s_t >= 1 in any group before a tensor moves
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        k, eps = group["k"], group["eps"]
        sched = (k + 1) / group["warmup_steps"] if k < group["warmup_steps"] else 1.0
        lr = _number(group["lr"]) * sched
        group["scheduled_lr"] = lr
        lr_max = group["lr_max"] = max(lr, group["lr_max"])
        weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
        weight_sum = group["weight_sum"] = group["weight_sum"] + weight
        ckp1 = weight / weight_sum if weight_sum else 0.0
        s = shrink(group["decay"], group["weight_decay"], lr, group["peak_lr"], options=group)
        coupled = coupled_weight_decay(group["decay"], group["weight_decay"])

        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if "z" not in self.state[p]:
                self.state[p]["z"] = p.detach().clone(memory_format=torch.preserve_format)
                self.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        group["k"] = k + 1
        if not params:
            return
        ys = params
        zs = [self.state[p]["z"] for p in params]
        vs = [self.state[p]["exp_avg_sq"] for p in params]
        grads = [p.grad for p in params]
        if coupled:
            grads = torch._foreach_add(grads, ys, alpha=coupled)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
        denom = torch._foreach_div(vs, 1 - beta2 ** (k + 1))
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        direction = torch._foreach_div(grads, denom)  # u_t, a new list: the user's gradients stay as they are
        if s:
            at = ys if group["decay_at"] == "y" else zs
            if lr > 0:  # the package's fold: z and y move along u_t + (s_t/lr_t)·D, one pass for both
                torch._foreach_add_(direction, at, alpha=s / lr)
            else:  # lr_t = 0 with a shrink (constant): z ← z - s_t·D alone, y follows by the same identity
                d = torch._foreach_mul(at, s)
                torch._foreach_lerp_(ys, zs, ckp1)
                torch._foreach_add_(ys, d, alpha=beta1 * (1 - ckp1) - 1)
                torch._foreach_sub_(zs, d)
                return
        # y_{t+1} = (1-c)·y + c·z - lr·(1 - β1·(1-c))·G and z_{t+1} = z - lr·G, without storing x.
        torch._foreach_lerp_(ys, zs, ckp1)
        torch._foreach_add_(ys, direction, alpha=lr * (beta1 * (1 - ckp1) - 1))
        torch._foreach_sub_(zs, direction, alpha=lr)
