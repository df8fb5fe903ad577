"""SGD with momentum and decoupled weight decay (SGDW) whose convention is a named choice (``decay=``)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.optim.optimizer import _default_to_fused_or_foreach, _device_dtype_check_for_fused
from torch.optim.sgd import sgd as _torch_sgd

from weightdecay.decay import coupled_weight_decay
from weightdecay.errors import UserError
from weightdecay.optim import _kernels, _precision
from weightdecay.optim._base import DecayOptimizer, check_flag, check_nonnegative, check_number, evaluate_closure
from weightdecay.optim._distributed import check_fused_kernel
from weightdecay.optim.cautious import cautious_decay_
from weightdecay.optim.delivery import (GroupPlan, Route, plan_step, shrink_, skipped_by_scaler, traced_shrink,
                                        traced_shrink_)

__all__ = ["SGDW"]


class SGDW(DecayOptimizer):
    r"""SGD with momentum where the weight decay's convention is named: ``decay="torch"`` by default.

    PyTorch's momentum form, with the decoupled shrink of :mod:`weightdecay.decay` (``docs/math.md``, "Decay conventions")::

        b ← μ·b + (1-dampening)·g        (b = g at the first step)
        d = g + μ·b if nesterov else b
        p ← p·(1 - s_t) - lr_t·d

    ``decay="l2"`` is torch.optim.SGD's ``weight_decay`` (``g ← g + λ·p``, which then enters the momentum).
    Without momentum, SGD-L2 with λ equals SGDW ``torch`` with λ (Loshchilov & Hutter, Prop. 1).

    Args:
        params: parameters or parameter groups; ``decay`` and ``peak_lr`` may be set per group.
        lr: learning rate ``lr_t``.
        momentum: μ.
        dampening: dampening of the momentum.
        weight_decay: λ, in the units of ``decay``.
        nesterov: Nesterov momentum (needs momentum > 0 and zero dampening).
        maximize: maximize the objective.
        foreach, fused: the implementation; both None picks torch's default for the device.
        decay: a name of :data:`weightdecay.decay.DECAY_MODES` whose shrink reads no Adam statistic (``stable``
            needs Adam's second moment).
        peak_lr: reference learning rate for ``paper`` and ``corrected``; defaults to each group's ``lr``.
        cautious: decay only where ``d`` and ``p`` agree in sign (:mod:`weightdecay.optim.cautious`).
        rounding: how bfloat16 and float16 weights take the step, as :class:`weightdecay.AdamW`'s: ``"compensated"``
            (default: the change ``-s_t·p - lr_t·d`` in float32, what rounding drops kept in a buffer),
            ``"stochastic"``, or ``"nearest"`` (torch.optim.SGD's bits; the decay is lost in bfloat16).

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = weightdecay.SGDW(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, decay="paper")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (Alg. 1, SGDW).
    """

    _adam = False
    _group_defaults = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "maximize": False,
                       "foreach": None, "fused": None, "differentiable": False, "cautious": False,
                       "rounding": _precision.DEFAULT_ROUNDING}

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | Tensor = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        decay: str = "torch",
        peak_lr: float | None = None,
        differentiable: bool = False,
        cautious: bool = False,
        rounding: str = _precision.DEFAULT_ROUNDING,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused,
                        differentiable=differentiable, decay=decay, peak_lr=peak_lr, cautious=cautious,
                        rounding=rounding)
        super().__init__(params, defaults)

    def _saved_decay(self, saved_group: dict[str, Any]) -> str:
        return "l2"  # torch.optim.SGD's weight_decay is coupled: g ← g + λ·p

    def _check_group(self, group: dict[str, Any], explicit_peak: Any) -> None:
        check_nonnegative("momentum", group["momentum"], "momentum value")
        check_number("dampening", group["dampening"])
        check_flag("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise UserError(
                f"Nesterov momentum requires a momentum and zero dampening (got momentum={group['momentum']}, "
                f"dampening={group['dampening']}); set momentum > 0 and dampening=0, or nesterov=False"
            )
        super()._check_group(group, explicit_peak)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = evaluate_closure(closure)
        plans = plan_step(self)  # refuses s_t >= 1 before any tensor moves
        for group, plan in zip(self.param_groups, plans):
            params, grads, buffers = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["fused"] and getattr(self, "_need_device_dtype_check_for_fused", True):
                    _device_dtype_check_for_fused(p)  # torch's own message for meta or integer parameters
                params.append(p)
                grads.append(p.grad)
                if group["momentum"] != 0:
                    buffers.append(self.state[p].get("momentum_buffer"))
            if not params:
                continue
            if group["fused"]:
                self._need_device_dtype_check_for_fused = False  # as torch.optim.SGD: once, at the first step
            # Low precision: the group's bfloat16/float16 tensors step apart when it keeps their change, with the
            # plan's s_t folded into the float32 change they write back (the rest steps exactly as before).
            kept, rest = _precision.split_kept(group, {"params": params, "grads": grads, "buffers": buffers})
            for part, step_part in ((kept, self._step_group_kept), (rest, self._step_group)):
                if part is None or not part["params"]:
                    continue
                step_part(group, plan, part["params"], part["grads"], part["buffers"])
                if group["momentum"] != 0:
                    for p, buf in zip(part["params"], part["buffers"]):
                        self.state[p]["momentum_buffer"] = buf
        return loss

    def _step_group_kept(self, group: dict[str, Any], plan: GroupPlan, params: list[Tensor], grads: list[Tensor],
                         buffers: list[Tensor | None]) -> None:
        """The step of a group's bfloat16/float16 tensors: ``Δ = -s_t·p - lr_t·d`` in float32 (``s_t`` the
        plan's), written back compensated or stochastically rounded (:mod:`weightdecay.optim._precision`); the
        one-pass kernel on the CPU with ``fused=True``, torch's ops elsewhere."""
        rounding = _precision.kept_by(group)
        compensations = _precision.compensation_buffers(self.state, params, rounding)
        grad_scale = getattr(self, "grad_scale", None)
        if torch.compiler.is_compiling():
            _sgdw_kept(params, grads, buffers, group, lr=group["lr"], shrink_t=traced_shrink(group), rounding=rounding,
                       compensations=compensations, grad_scale=grad_scale)
            return
        if skipped_by_scaler(self):  # AMP found inf/NaN gradients: nothing moves, the buffers included
            return
        if group["fused"] and rounding == "compensated" and _kernels.sgdw_step_kept(
                params, grads, buffers, compensations, group, lr=plan.lr, shrink_t=plan.shrink, cautious=plan.masked,
                grad_scale=grad_scale, plans=_kernels.plans_of(self)):
            return
        _sgdw_kept(params, grads, buffers, group, lr=plan.lr, shrink_t=plan.shrink, rounding=rounding,
                   compensations=compensations, grad_scale=grad_scale)

    def _step_group(self, group: dict[str, Any], plan: GroupPlan, params: list[Tensor], grads: list[Tensor],
                    buffers: list[Tensor | None]) -> None:
        fused, foreach, has_sparse = _implementation(group, params, grads)
        if torch.compiler.is_compiling():
            # The step as torch.compile traces it: s_t a tensor (lr as a Tensor), no host read of lr_t.
            traced_shrink_(self, group, params)
            self._run_torch_sgd(group, params, grads, buffers, foreach=bool(foreach), fused=bool(fused),
                                has_sparse=has_sparse, weight_decay=plan.coupled)
            return
        if fused:
            check_fused_kernel(params, torch.ops.aten._fused_sgd_.default, type(self).__name__)
        if not fused and not foreach:
            _single_tensor_sgdw(params, grads, buffers, group, lr=plan.lr, shrink_t=plan.shrink, masked=plan.masked)
            return
        # SGD's kernels know only coupled decay: without momentum, p - lr·(g + c·p) = p·(1 - lr·c) - lr·g, so the
        # coupled kernel takes the decoupled shrink exactly (Loshchilov & Hutter, Prop. 1); with momentum the
        # one-pass kernel (CPU, fused) takes it inside the momentum step, else a pass of its own.
        kernel_shrinks = group["momentum"] == 0
        route = plan.route(kernel_shrinks=kernel_shrinks, one_pass=bool(fused))
        if route is Route.ONE_PASS:
            if _kernels.sgdw_step(params, grads, buffers, group, lr=plan.lr, shrink_t=plan.shrink,
                                  cautious=plan.masked, grad_scale=getattr(self, "grad_scale", None),
                                  found_inf=getattr(self, "found_inf", None), plans=_kernels.plans_of(self)):
                return
            route = plan.route(kernel_shrinks=kernel_shrinks, one_pass=False)
        weight_decay = plan.start(self, params, route)
        self._run_torch_sgd(group, params, grads, buffers, foreach=bool(foreach), fused=bool(fused),
                            has_sparse=has_sparse, weight_decay=weight_decay)
        plan.finish(self, params)

    def _run_torch_sgd(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor],
                       buffers: list[Tensor | None], *, foreach: bool, fused: bool, has_sparse: bool,
                       weight_decay: float) -> None:
        """torch's functional SGD on this group (coupled ``weight_decay`` only), with a GradScaler's scale."""
        _torch_sgd(
            params, grads, buffers, has_sparse_grad=has_sparse, foreach=foreach, fused=fused,
            grad_scale=getattr(self, "grad_scale", None), found_inf=getattr(self, "found_inf", None),
            weight_decay=weight_decay, momentum=group["momentum"], lr=group["lr"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
        )

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """As torch.optim.SGD(fused=True): a GradScaler hands the fused kernel ``grad_scale`` and ``found_inf``;
        with any group off the fused path it unscales first, as for other optimizers."""
        return bool(self.param_groups) and all(g["fused"] for g in self.param_groups)


def _implementation(group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> tuple[Any, Any, bool]:
    """``(fused, foreach, has_sparse)``: the group's choice, or torch's default for the device where it made none
    (as torch.optim.SGD: no foreach with a sparse gradient)."""
    fused, foreach = group["fused"], group["foreach"]
    has_sparse = any(g.is_sparse for g in grads)
    if fused is None and foreach is None:
        fused, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
        foreach = foreach and not has_sparse
    return fused, foreach, has_sparse


def _single_tensor_sgdw(params: list[Tensor], grads: list[Tensor], buffers: list[Tensor | None],
                        group: dict[str, Any], *, lr: float, shrink_t: float, masked: bool) -> None:
    """The readable path: one tensor at a time, in torch.optim.SGD's arithmetic order (docs/math.md, "Decay conventions")."""
    momentum, dampening, nesterov = group["momentum"], group["dampening"], group["nesterov"]
    coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
    for i, param in enumerate(params):
        grad = grads[i] if not group["maximize"] else -grads[i]
        if coupled != 0:
            grad = grad.add(param, alpha=coupled)  # l2: the penalty enters the momentum
        if momentum != 0:
            buf = buffers[i]
            if buf is None:
                buf = torch.clone(grad).detach()
                buffers[i] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        if shrink_t != 0 and masked:
            cautious_decay_([param], [grad], [param], shrink_t)  # the mask needs d, at the same p_t as the step
        elif shrink_t != 0:
            shrink_([param], shrink_t)  # decoupled: p ← p·(1 - s_t) - lr_t·d
        param.add_(grad, alpha=-lr)


def _sgdw_kept(params: list[Tensor], grads: list[Tensor], buffers: list[Tensor | None], group: dict[str, Any], *,
               lr: float | Tensor, shrink_t: float | Tensor, rounding: str, compensations: list[Tensor | None],
               grad_scale: Tensor | None = None) -> None:
    """SGDW on bfloat16/float16 tensors with torch's ops: the momentum buffer kept in the weights' format (as
    torch.optim.SGD keeps it), the arithmetic in float32, and the full change ``Δ = -s_t·p - lr_t·d`` written back
    by :func:`weightdecay.optim._precision.write_back_`."""
    momentum, dampening, nesterov = group["momentum"], group["dampening"], group["nesterov"]
    coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
    decays = torch.is_tensor(shrink_t) or shrink_t != 0
    changes = []
    for i, param in enumerate(params):
        p32 = param.float()
        grad = _precision.float32_gradient(grads[i], p32, grad_scale=grad_scale, maximize=group["maximize"],
                                           coupled=coupled)
        direction = grad
        if momentum != 0:
            if buffers[i] is None:  # b = g at the first step
                kept = grad.clone()
                buffers[i] = kept.to(param.dtype)
            else:
                kept = buffers[i].float().mul_(momentum).add_(grad, alpha=1 - dampening)
                buffers[i].copy_(kept)
            direction = grad.add(kept, alpha=momentum) if nesterov else kept
        delta = direction * -lr
        if decays:
            decay = p32 * shrink_t
            if group["cautious"]:  # the shrink where d·p_t >= 0
                decay = decay * (direction * p32 >= 0)
            delta = delta - decay
        changes.append(delta)
    _precision.write_back_(params, changes, rounding, compensations)
