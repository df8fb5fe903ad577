"""AdamW whose weight-decay convention is a named choice (``decay=``), at torch's fused speed."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.optim.adam import adam as _torch_adam
from torch.optim.optimizer import _default_to_fused_or_foreach, _device_dtype_check_for_fused, _get_scalar_dtype

from weightdecay.decay import DECAY_MODES, coupled_weight_decay
from weightdecay.errors import UserError
from weightdecay.optim import _kernels, _precision
from weightdecay.optim._base import (DecayOptimizer, _number, check_flag, check_nonnegative, check_number,
                                     evaluate_closure)
from weightdecay.optim.cautious import cautious_decay_
from weightdecay.optim.delivery import (GroupPlan, Route, plan_step, reads_statistic, shrink_, skipped_by_scaler,
                                        traced_shrink, traced_shrink_)
from weightdecay.optim.statistics import predicted_mean_v_hat

__all__ = ["Adam", "AdamW"]


class AdamW(DecayOptimizer):
    r"""Adam with weight decay whose convention you name: ``decay="torch"`` (default) behaves as torch.optim.AdamW.

    Decoupled modes shrink the weights by ``(1 - s_t)`` before the Adam step, with ``s_t`` from
    :mod:`weightdecay.decay` (``docs/math.md``, "Decay conventions")::

        m_t = β1·m_{t-1} + (1-β1)·g          v_t = β2·v_{t-1} + (1-β2)·g²
        u_t = m̂_t / (sqrt(v̂_t) + ε)
        p ← p·(1 - s_t) - lr_t·u_t

    ``torch``: s_t = lr_t·λ; ``paper``: s_t = (lr_t/peak_lr)·λ; ``constant``: s_t = λ; ``corrected``:
    s_t = (lr_t²/peak_lr)·λ; ``stable``: s_t = lr_t·λ/sqrt(mean v̂_t) over every element updated this step.
    ``l2`` is Adam with an L2 penalty (torch.optim.Adam's ``weight_decay``): ``g ← g + λ·p`` before the moments.

    Args:
        params: parameters or parameter groups; ``decay``, ``peak_lr`` and ``bias_correction`` may be set per group.
        lr: learning rate ``lr_t`` (schedulers write it).
        betas: ``(β1, β2)``, each in [0, 1).
        eps: ε added to the denominator.
        weight_decay: λ, in the units of ``decay``.
        amsgrad: use the running maximum of ``v_t`` in the denominator.
        maximize: maximize the objective.
        foreach, fused: the implementation; both None picks torch's default for the device (on CPU the
            readable single-tensor loop). ``fused=True`` runs every mode through torch's fused kernel.
        decay: the convention, a name of :data:`weightdecay.decay.DECAY_MODES` (``torch``, ``paper``, … ``l2``);
            a mode whose shrink reads a per-group key (its lr exponent) takes it from the group.
        peak_lr: reference learning rate for ``paper`` and ``corrected``; defaults to each group's ``lr`` at
            construction.
        bias_correction: False gives BERT's AdamWeightDecay arithmetic (no bias correction of m and v).
        cautious: decay only where ``u_t`` and ``p`` agree in sign (:mod:`weightdecay.optim.cautious`).
        rounding: how bfloat16 and float16 weights take the step (:mod:`weightdecay.optim._precision`):
            ``"compensated"`` (default) computes the change ``-s_t·p - lr_t·u_t`` in float32 and keeps what
            rounding drops in a buffer of the weights' format (2 bytes per parameter), so the decay acts as in
            float32; ``"stochastic"`` rounds at random, unbiased, with no buffer; ``"nearest"`` is torch.optim's
            arithmetic, bit for bit (the decay is then lost whenever ``s_t < 2^-9`` in bfloat16). Float32 and
            float64 weights are unaffected.

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = weightdecay.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, decay="paper", fused=True)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019; Defazio et al. 2025 (AdamC);
        Xie et al., NeurIPS 2023 (AdamS).
    """

    _adam = True
    _group_defaults = {"amsgrad": False, "maximize": False, "foreach": None, "fused": None,
                       "capturable": False, "differentiable": False, "bias_correction": True,
                       "cautious": False, "rounding": _precision.DEFAULT_ROUNDING}

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        decay: str = "torch",
        peak_lr: float | None = None,
        bias_correction: bool = True,
        capturable: bool = False,
        differentiable: bool = False,
        cautious: bool = False,
        rounding: str = _precision.DEFAULT_ROUNDING,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, fused=fused, capturable=capturable,
                        differentiable=differentiable, decay=decay, peak_lr=peak_lr, bias_correction=bias_correction,
                        cautious=cautious, rounding=rounding)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any], explicit_peak: Any) -> None:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise UserError(f"Invalid betas: {betas!r} (must be a pair (beta1, beta2), each in [0, 1))")
        for i, beta in enumerate(betas):
            check_number(f"betas[{i}]", beta, tensor_ok=True)
            b = _number(beta)
            if not 0.0 <= b < 1.0:
                raise UserError(f"Invalid beta parameter at index {i}: {b} (must be in [0, 1))")
        if torch.is_tensor(betas[0]) != torch.is_tensor(betas[1]):
            raise UserError(f"Invalid betas: {betas!r}; betas must be either both floats or both Tensors")
        # torch's foreach Adam takes Tensor lr/betas only when capturable: refuse them now, as torch.optim does,
        # rather than inside the first step.
        if group["foreach"] and torch.is_tensor(group["lr"]):
            raise UserError("lr as a Tensor is not supported for capturable=False and foreach=True; give lr as a "
                            "float, or leave foreach unset (a Tensor lr then runs the single-tensor or fused path)")
        if group["foreach"] and torch.is_tensor(betas[0]):
            raise UserError("betas[0] as a Tensor is not supported for capturable=False and foreach=True; give "
                            "betas as floats, or leave foreach unset")
        check_nonnegative("eps", group["eps"], "epsilon value")
        check_flag("amsgrad", group["amsgrad"])
        check_flag("bias_correction", group["bias_correction"])
        super()._check_group(group, explicit_peak)

    def _saved_decay(self, saved_group: dict[str, Any]) -> str:
        # torch.optim.Adam and AdamW share one class; Adam's dict says decoupled_weight_decay=False (coupled L2).
        return "l2" if saved_group.get("decoupled_weight_decay") is False else "torch"

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                p_state = self.state.get(p, {})
                if p_state and not torch.is_tensor(p_state.get("step")):
                    dtype = _get_scalar_dtype(is_fused=group["fused"])
                    p_state["step"] = torch.tensor(float(p_state["step"]), dtype=dtype, device=p.device
                                                   if group["fused"] else "cpu")

    # --- collecting tensors -------------------------------------------------------------------------------

    def _init_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
                    exp_avg_sqs: list[Tensor], max_exp_avg_sqs: list[Tensor], state_steps: list[Tensor]) -> bool:
        """Fill the lists with this group's tensors (creating state on first sight); True if any is complex.

        torch.optim.Adam's signature, on purpose: torch.compile recognises an optimizer's ``_init_group`` by it and
        runs it once, eagerly, instead of tracing the state initialisation.
        """
        has_complex = False
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("AdamW does not support sparse gradients, please consider SparseAdam instead")
            has_complex |= torch.is_complex(p)
            state = self.state[p]
            if len(state) == 0:
                if group["fused"]:
                    _device_dtype_check_for_fused(p)  # torch's own message for meta or integer parameters
                # As torch.optim: `step` on the parameter's device for fused, on the CPU otherwise.
                state["step"] = (torch.zeros((), dtype=_get_scalar_dtype(is_fused=group["fused"]), device=p.device)
                                 if group["fused"] else torch.tensor(0.0, dtype=_get_scalar_dtype()))
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(state["step"])
        return has_complex

    def _mean_v_hat(self, groups: list[tuple[dict[str, Any], dict[str, list]]]) -> Tensor | float:
        """mean(v̂_t) over every element updated this step, all groups, as it will be after the moment update
        (:func:`~weightdecay.optim.statistics.predicted_mean_v_hat`), so the fused kernel can then take the step in
        one pass; a fused group on the CPU sums its g (and v) in one pass of its own. One host sync per step (by
        the caller), none per tensor."""
        grad_scale = getattr(self, "grad_scale", None)  # a GradScaler's gradients arrive scaled (fused path)
        rest, fast_total, fast_numel = [], 0.0, 0
        for group, t in groups:
            fast = (_kernels.v_hat_sum(t, group, grad_scale=grad_scale, plans=_kernels.plans_of(self))
                    if group["fused"] and t["params"] else None)
            if fast is not None:  # plain tensors only: nothing to reduce over shards
                fast_total, fast_numel = fast_total + fast[0], fast_numel + fast[1]
            else:
                rest.append((group, {"params": t["params"], "grads": t["grads"], "exp_avg_sqs": t["exp_avg_sqs"],
                                     "steps": t["steps"]}))
        return predicted_mean_v_hat(rest, grad_scale=grad_scale, already=(fast_total, fast_numel))

    # --- the step -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = evaluate_closure(closure)
        # Refuse s_t >= 1 before any tensor or state moves; a step whose shrink reads mean v̂ can only be checked
        # once the moments it predicts from exist (their state is created below, as zeros, on first sight).
        reads = reads_statistic(self.param_groups)
        plans = None if reads else plan_step(self)
        groups = []
        for group in self.param_groups:
            t: dict[str, list] = {k: [] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs",
                                                  "steps")}
            self._init_group(group, t["params"], t["grads"], t["exp_avgs"], t["exp_avg_sqs"], t["max_exp_avg_sqs"],
                             t["steps"])
            groups.append((group, t))
        statistic = self._mean_v_hat(groups) if reads else None
        if plans is None:
            plans = plan_step(self, statistic)
        for (group, t), plan in zip(groups, plans):
            # Low precision: bfloat16/float16 tensors of a group that keeps their change step apart, with the
            # plan's s_t folded into the float32 change they write back (the rest steps exactly as before).
            kept, t = _precision.split_kept(group, t)
            if kept is not None and kept["params"]:
                self._step_group_kept(group, kept, plan, statistic)
            if t["params"]:
                self._step_group(group, t, plan, statistic)
        return loss

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """As torch.optim.AdamW(fused=True): a GradScaler hands the fused kernel ``grad_scale`` and ``found_inf``
        (no separate unscale pass); with any group off the fused path it unscales first, as for other optimizers."""
        return bool(self.param_groups) and all(g["fused"] for g in self.param_groups)

    def _step_group(self, group: dict[str, Any], t: dict[str, list], plan: GroupPlan, statistic: Any) -> None:
        if torch.compiler.is_compiling():
            return self._step_group_traced(group, t, plan, statistic)
        fused, foreach = group["fused"], group["foreach"]
        if fused is None and foreach is None:
            fused, foreach = _default_to_fused_or_foreach(t["params"], differentiable=False, use_fused=False)
            # As torch.optim.adam: foreach takes Tensor lr/betas only when capturable, so those run the loop.
            foreach = foreach and not torch.is_tensor(group["lr"]) and not torch.is_tensor(group["betas"][0])
        if not fused and not foreach:
            _single_tensor_adamw(t, group, lr=plan.lr, shrink_t=plan.shrink, masked=plan.masked)
            return
        # torch's Adam kernels shrink by lr·wd; the one-pass kernel (CPU, fused) takes the mask and the
        # statistic-reading modes inside the Adam step, else torch's kernel below.
        route = plan.route(kernel_shrinks=True, one_pass=bool(fused))
        if route is Route.ONE_PASS:
            if _kernels.adamw_step(t, group, lr=plan.lr, shrink_t=plan.shrink, cautious=plan.masked,
                                   grad_scale=getattr(self, "grad_scale", None),
                                   found_inf=getattr(self, "found_inf", None), plans=_kernels.plans_of(self)):
                return
            route = plan.route(kernel_shrinks=True, one_pass=False)
        weight_decay = plan.start(self, t["params"], route)
        self._run_torch_adam(group, t, foreach=bool(foreach), fused=bool(fused), capturable=False,
                             weight_decay=weight_decay)
        plan.finish(self, t["params"])

    def _step_group_kept(self, group: dict[str, Any], t: dict[str, list], plan: GroupPlan, statistic: Any) -> None:
        """The step of a group's bfloat16/float16 tensors: ``Δ = -s_t·p - lr_t·u_t`` in float32 (``s_t`` the
        plan's), written back compensated or stochastically rounded (:mod:`weightdecay.optim._precision`); the
        one-pass kernel on the CPU with ``fused=True``, torch's ops elsewhere (CUDA, traced under torch.compile)."""
        rounding = _precision.kept_by(group)
        buffers = _precision.compensation_buffers(self.state, t["params"], rounding)
        grad_scale = getattr(self, "grad_scale", None)
        if torch.compiler.is_compiling():
            _adamw_kept(t, group, lr=group["lr"], shrink_t=traced_shrink(group, statistic), cautious=plan.masked,
                        rounding=rounding, buffers=buffers, grad_scale=grad_scale)
            return
        if skipped_by_scaler(self):  # AMP found inf/NaN gradients: nothing moves, the buffers included
            return
        if group["fused"] and rounding == "compensated" and _kernels.adamw_step_kept(
                t, group, buffers, lr=plan.lr, shrink_t=plan.shrink, cautious=plan.masked, grad_scale=grad_scale,
                plans=_kernels.plans_of(self)):
            return
        _adamw_kept(t, group, lr=plan.lr, shrink_t=plan.shrink, cautious=plan.masked, rounding=rounding,
                    buffers=buffers, grad_scale=grad_scale)

    def _step_group_traced(self, group: dict[str, Any], t: dict[str, list], plan: GroupPlan, statistic: Any) -> None:
        """The step as torch.compile traces it: every path through torch's Adam, with no host read of ``lr_t``
        (lr as a Tensor, torch's advice for compiled optimizers), the shrink :func:`~.delivery.traced_shrink_`.

        torch keeps its fused kernel out of the graph (``torch.compiler.disable``), so a fused group takes its eager
        step there, as torch.optim.AdamW does; the cautious mask is not traced either.
        """
        if group["fused"] or plan.masked:
            # Wrapped here, not at import: torch.compiler.disable imports torch._dynamo (over a second).
            return torch.compiler.disable(_eager_step, reason="torch's fused Adam kernel and the cautious mask are "
                                          "not traced; the group steps eagerly")(self, group, t, plan, statistic)
        fused, foreach = group["fused"], group["foreach"]
        if fused is None and foreach is None:
            fused, foreach = _default_to_fused_or_foreach(t["params"], differentiable=False, use_fused=False)
        traced_shrink_(self, group, t["params"], statistic)
        self._run_torch_adam(group, t, foreach=bool(foreach), fused=bool(fused), capturable=not fused,
                             weight_decay=plan.coupled)

    def _run_torch_adam(self, group: dict[str, Any], t: dict[str, list], *, foreach: bool, fused: bool,
                        capturable: bool, weight_decay: float) -> None:
        """torch's functional Adam on this group, told the decay through ``weight_decay`` (s_t = lr_t·c_t)."""
        steps = t["steps"]
        if not group["bias_correction"]:
            # The kernels compute 1 - β^step; at step = inf that is exactly 1: no bias correction. The real
            # counts are advanced here (not on a step a GradScaler skips), the kernels advance throwaway copies.
            found_inf = getattr(self, "found_inf", None)
            torch._foreach_add_(steps, 1 if found_inf is None else 1 - found_inf)
            steps = [torch.full_like(s, float("inf")) for s in steps]
        beta1, beta2 = group["betas"]
        _torch_adam(
            t["params"], t["grads"], t["exp_avgs"], t["exp_avg_sqs"], t["max_exp_avg_sqs"], steps,
            foreach=foreach, fused=fused, capturable=capturable, differentiable=False,
            grad_scale=getattr(self, "grad_scale", None), found_inf=getattr(self, "found_inf", None),
            has_complex=any(torch.is_complex(p) for p in t["params"]),
            decoupled_weight_decay=DECAY_MODES[group["decay"]].decoupled,
            amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=group["lr"],
            weight_decay=weight_decay, eps=group["eps"], maximize=group["maximize"],
        )


class Adam(AdamW):
    r"""torch.optim.Adam's twin: Adam with an L2 penalty, ``decay="l2"`` and ``weight_decay=0`` by default.

    ``weightdecay.AdamW(params, decay="l2")`` keeps AdamW's ``weight_decay=1e-2``, so it is *not*
    ``torch.optim.Adam(params)``; this class is, with torch.optim.Adam's defaults::

        g ← g + λ·p          (coupled: the penalty's gradient enters the moments)
        p ← p - lr_t·m̂_t / (sqrt(v̂_t) + ε)

    Any other ``decay=`` may still be named. Args as :class:`AdamW`.

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = weightdecay.Adam(model.parameters(), lr=1e-3)   # = torch.optim.Adam(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float | Tensor = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, decay: str = "l2", **kwargs: Any) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, decay=decay, **kwargs)


def _eager_step(opt: AdamW, group: dict[str, Any], t: dict[str, list], plan: GroupPlan, statistic: Any) -> None:
    opt._step_group(group, t, plan, statistic)


def _single_tensor_adamw(t: dict[str, list], group: dict[str, Any], *, lr: float, shrink_t: float,
                         masked: bool) -> None:
    """The readable path: one tensor at a time, in torch.optim.Adam's arithmetic order (docs/math.md, "Decay conventions")."""
    beta1, beta2 = (_number(b) for b in group["betas"])
    eps, amsgrad = group["eps"], group["amsgrad"]
    coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
    for i, param in enumerate(t["params"]):
        grad = t["grads"][i] if not group["maximize"] else -t["grads"][i]
        exp_avg, exp_avg_sq, step_t = t["exp_avgs"][i], t["exp_avg_sqs"][i], t["steps"][i]
        step_t += 1
        if coupled != 0:
            grad = grad.add(param, alpha=coupled)  # l2: the penalty enters the moments
        if shrink_t != 0 and not masked:
            shrink_([param], shrink_t)  # decoupled: p ← p·(1 - s_t), before the gradient step
        if torch.is_complex(param):
            grad, exp_avg, exp_avg_sq = (torch.view_as_real(x) for x in (grad, exp_avg, exp_avg_sq))
            param = torch.view_as_real(param)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["bias_correction"]:
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        else:
            bias_correction1 = bias_correction2_sqrt = 1.0
        if amsgrad:
            max_exp_avg_sq = t["max_exp_avg_sqs"][i]
            if torch.is_complex(max_exp_avg_sq):
                max_exp_avg_sq = torch.view_as_real(max_exp_avg_sq)
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            second = max_exp_avg_sq
        else:
            second = exp_avg_sq
        denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
        if shrink_t != 0 and masked:  # the mask needs u_t, at the same p_t as the step
            cautious_decay_([param], [exp_avg / denom], [param], shrink_t)
        param.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))


def _adamw_kept(t: dict[str, list], group: dict[str, Any], *, lr: float | Tensor, shrink_t: float | Tensor,
                cautious: bool, rounding: str, buffers: list[Tensor | None], grad_scale: Tensor | None = None) -> None:
    """AdamW on bfloat16/float16 tensors with torch's ops: the moments kept in the weights' format (as torch.optim
    keeps them), the arithmetic in float32, and the full change ``Δ = -s_t·p - lr_t·u_t`` written back by
    :func:`weightdecay.optim._precision.write_back_`. ``lr`` and ``shrink_t`` may be tensors (a traced step)."""
    beta1, beta2 = group["betas"]
    eps, amsgrad = group["eps"], group["amsgrad"]
    coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
    decays = torch.is_tensor(shrink_t) or shrink_t != 0
    changes = []
    for i, param in enumerate(t["params"]):
        p32 = param.float()
        grad = _precision.float32_gradient(t["grads"][i], p32, grad_scale=grad_scale, maximize=group["maximize"],
                                           coupled=coupled)
        step_t = t["steps"][i]
        step_t += 1
        exp_avg = t["exp_avgs"][i].float().lerp_(grad, 1 - beta1)
        exp_avg_sq = t["exp_avg_sqs"][i].float().mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        t["exp_avgs"][i].copy_(exp_avg)
        t["exp_avg_sqs"][i].copy_(exp_avg_sq)
        second = exp_avg_sq
        if amsgrad:
            second = torch.maximum(t["max_exp_avg_sqs"][i].float(), exp_avg_sq)
            t["max_exp_avg_sqs"][i].copy_(second)
        if group["bias_correction"]:
            step = step_t.to(torch.float64)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = (1 - beta2 ** step).sqrt()
        else:
            bias_correction1 = bias_correction2_sqrt = 1.0
        u = exp_avg / ((second.sqrt() / bias_correction2_sqrt).add_(eps))
        agrees = u * p32 >= 0 if cautious and decays else None  # cautious: the shrink where u_t·p_t >= 0
        delta = u.mul_(-lr / bias_correction1)  # -lr_t·u_t
        if decays:
            decay = p32 * shrink_t
            delta = delta - (decay if agrees is None else decay * agrees)
        changes.append(delta)
    _precision.write_back_(t["params"], changes, rounding, buffers)
