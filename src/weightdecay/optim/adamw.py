"""AdamW whose weight-decay convention is a named choice (``decay=``), at torch's fused speed."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.optim.adam import adam as _torch_adam
from torch.optim.optimizer import _default_to_fused_or_foreach, _device_dtype_check_for_fused, _get_scalar_dtype

from weightdecay.decay import DECAY_MODES, coupled_weight_decay, lr_coefficient, shrink
from weightdecay.errors import UserError
from weightdecay.optim import _kernels, _precision
from weightdecay.optim._base import (DecayOptimizer, _number, _skipped_by_scaler, check_flag, check_nonnegative,
                                     check_number, check_step_decay, evaluate_closure)
from weightdecay.optim._distributed import global_sum_and_count, is_sharded, local_shard
from weightdecay.optim.cautious import cautious_decay_, cautious_decay_after_step_

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
        decay: the convention, one of ``torch``, ``paper``, ``constant``, ``corrected``, ``stable``, ``l2``.
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
        """mean(v̂_t) over every element updated this step, all groups, as it will be after the moment update.

        Computed before the update from ``sum(v_t) = β2·sum(v_{t-1}) + (1-β2)·sum(g²)`` so the fused kernel can
        then take the step in one pass; one host sync per step (by the caller), none per tensor.
        """
        grad_scale = getattr(self, "grad_scale", None)  # a GradScaler's gradients arrive scaled (fused path)
        params, sums = [], []
        fast_total, fast_numel = 0.0, 0
        for group, t in groups:
            if not t["params"]:
                continue
            fast = (_kernels.v_hat_sum(t, group, grad_scale=grad_scale, plans=_kernels.plans_of(self))
                    if group["fused"] else None)
            if fast is not None:  # one pass over g (and v) on the CPU (plain tensors only: nothing to reduce)
                fast_total, fast_numel = fast_total + fast[0], fast_numel + fast[1]
                continue
            # Sums over this rank's shards (all of each tensor outside FSDP2); global_sum_and_count adds the rest.
            grads = [local_shard(g) for g in t["grads"]]
            if grad_scale is not None:  # unscaled before l2's λ·p joins them, as the kernel will do
                grads = torch._foreach_div(grads, grad_scale)
            coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
            if coupled != 0:  # the moments see (-g if maximize) + λ·p, torch.optim.Adam's order; so must the mean
                grads = torch._foreach_add(torch._foreach_neg(grads) if group["maximize"] else grads,
                                           [local_shard(p) for p in t["params"]], alpha=coupled)
            beta2 = _number(group["betas"][1])
            v_sum = torch.stack([local_shard(v).sum() for v in t["exp_avg_sqs"]]).to(torch.float64)
            g_sq = torch.stack(torch._foreach_norm(grads, 2)).to(torch.float64).square()
            new_sum = beta2 * v_sum + (1 - beta2) * g_sq
            if group["bias_correction"]:
                steps = torch.stack(t["steps"]).to(device=v_sum.device, dtype=torch.float64) + 1
                new_sum = new_sum / (1 - beta2 ** steps)
            params += t["params"]
            sums.append(new_sum)
        if is_sharded(params):  # FSDP2: one all_reduce of [sum, count] over the shards
            total, numel = global_sum_and_count(params, torch.cat(sums))
        else:  # a tensor, so a compiled step reads it without a host sync
            total = torch.cat(sums).sum() if sums else 0.0
            numel = sum(p.numel() for p in params)
        total, numel = total + fast_total, numel + fast_numel
        return total / numel if numel else 0.0

    # --- the step -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = evaluate_closure(closure)
        groups = []
        for group in self.param_groups:
            t: dict[str, list] = {k: [] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs",
                                                  "steps")}
            self._init_group(group, t["params"], t["grads"], t["exp_avgs"], t["exp_avg_sqs"], t["max_exp_avg_sqs"],
                             t["steps"])
            groups.append((group, t))
        mean_v_hat = self._mean_v_hat(groups) if any(g["decay"] == "stable" for g, _ in groups) else None
        check_step_decay(self, mean_v_hat)
        for group, t in groups:
            # Low precision: bfloat16/float16 tensors of a group that keeps their change step apart (issue 21's
            # one integration point in AdamW; the rest of the group steps exactly as before).
            kept, t = _precision.split_kept(group, t)
            if kept is not None and kept["params"]:
                self._step_group_kept(group, kept, mean_v_hat)
            if t["params"]:
                self._step_group(group, t, mean_v_hat)
        return loss

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """As torch.optim.AdamW(fused=True): a GradScaler hands the fused kernel ``grad_scale`` and ``found_inf``
        (no separate unscale pass); with any group off the fused path it unscales first, as for other optimizers."""
        return bool(self.param_groups) and all(g["fused"] for g in self.param_groups)

    def _step_group(self, group: dict[str, Any], t: dict[str, list], mean_v_hat: Tensor | float | None) -> None:
        if torch.compiler.is_compiling():
            return self._step_group_traced(group, t, mean_v_hat)
        if mean_v_hat is not None:
            mean_v_hat = _number(mean_v_hat)
        lr = _number(group["lr"])
        mode, wd = group["decay"], group["weight_decay"]
        fused, foreach = group["fused"], group["foreach"]
        if fused is None and foreach is None:
            fused, foreach = _default_to_fused_or_foreach(t["params"], differentiable=False, use_fused=False)
            # As torch.optim.adam: foreach takes Tensor lr/betas only when capturable, so those run the loop.
            foreach = foreach and not torch.is_tensor(group["lr"]) and not torch.is_tensor(group["betas"][0])
        if not fused and not foreach:
            _single_tensor_adamw(t, group, lr=lr, shrink_t=shrink(mode, wd, lr, group["peak_lr"], mean_v_hat))
            return

        masked = group["cautious"] and DECAY_MODES[mode].decoupled
        # The one-pass kernel (CPU; else torch's kernel below) takes the masked shrink inside the Adam step, and
        # every group of a step that needs mean v̂: it leaves each tensor's Σv for the next step's mean.
        if fused and (masked or mean_v_hat is not None) and _kernels.adamw_step(
                t, group, lr=lr, shrink_t=shrink(mode, wd, lr, group["peak_lr"], mean_v_hat), cautious=masked,
                grad_scale=getattr(self, "grad_scale", None), found_inf=getattr(self, "found_inf", None),
                plans=_kernels.plans_of(self)):
            return
        # Fast paths: torch's own kernels, told the decay through a per-step coefficient c_t with s_t = lr_t·c_t.
        coefficient = lr_coefficient(mode, wd, lr, group["peak_lr"], mean_v_hat)
        cautious = None
        if group["cautious"] and DECAY_MODES[mode].decoupled:
            # The kernels step with no decay; the masked shrink follows at the weights before the step.
            cautious = ([p.clone() for p in t["params"]], shrink(mode, wd, lr, group["peak_lr"], mean_v_hat))
            coefficient = 0.0
        if coefficient is None:  # lr_t = 0 with a shrink (constant, or stable): no c_t exists; shrink here.
            self._shrink_outside_kernel(t["params"], shrink(mode, wd, lr, group["peak_lr"], mean_v_hat))
            coefficient = 0.0
        self._run_torch_adam(group, t, foreach=bool(foreach), fused=bool(fused), capturable=False,
                             weight_decay=coefficient if DECAY_MODES[mode].decoupled else coupled_weight_decay(mode, wd))
        if cautious is not None and not _skipped_by_scaler(self):
            cautious_decay_after_step_(t["params"], *cautious)

    def _step_group_kept(self, group: dict[str, Any], t: dict[str, list], mean_v_hat: Tensor | float | None) -> None:
        """The step of a group's bfloat16/float16 tensors: ``Δ = -s_t·p - lr_t·u_t`` in float32, written back
        compensated or stochastically rounded (:mod:`weightdecay.optim._precision`); the one-pass kernel on the
        CPU with ``fused=True``, torch's ops elsewhere (CUDA, traced under torch.compile)."""
        rounding = _precision.kept_by(group)
        buffers = _precision.compensation_buffers(self.state, t["params"], rounding)
        mode, wd = group["decay"], group["weight_decay"]
        masked = group["cautious"] and DECAY_MODES[mode].decoupled
        grad_scale = getattr(self, "grad_scale", None)
        if torch.compiler.is_compiling():
            _adamw_kept(t, group, lr=group["lr"], shrink_t=self._traced_shrink(group, mean_v_hat), cautious=masked,
                        rounding=rounding, buffers=buffers, grad_scale=grad_scale)
            return
        if _skipped_by_scaler(self):  # AMP found inf/NaN gradients: nothing moves, the buffers included
            return
        lr = _number(group["lr"])
        s_t = shrink(mode, wd, lr, group["peak_lr"], None if mean_v_hat is None else _number(mean_v_hat))
        if group["fused"] and rounding == "compensated" and _kernels.adamw_step_kept(
                t, group, buffers, lr=lr, shrink_t=s_t, cautious=masked, grad_scale=grad_scale,
                plans=_kernels.plans_of(self)):
            return
        _adamw_kept(t, group, lr=lr, shrink_t=s_t, cautious=masked, rounding=rounding, buffers=buffers,
                    grad_scale=grad_scale)

    @staticmethod
    def _traced_shrink(group: dict[str, Any], mean_v_hat: Tensor | float | None) -> Tensor | float:
        """s_t as a tensor expression of lr_t (lr as a Tensor), with no host read: what a traced step multiplies."""
        mode, wd, peak, lr = group["decay"], group["weight_decay"], group["peak_lr"], group["lr"]
        if not DECAY_MODES[mode].decoupled or wd == 0:
            return 0.0
        if mode == "stable":
            mean_v_hat = torch.as_tensor(mean_v_hat, dtype=torch.float64)
            return lr * wd * torch.where(mean_v_hat > 0, mean_v_hat.clamp(min=1e-300).rsqrt(), 0.0)
        return shrink(mode, wd, lr, peak)

    def _step_group_traced(self, group: dict[str, Any], t: dict[str, list], mean_v_hat: Tensor | None) -> None:
        """The step as torch.compile traces it: every path through torch's Adam, with no host read of lr_t.

        A host read (``lr.item()``) would break the graph, and a float lr_t would be baked into the graph and
        recompile it at every change; so s_t stays a tensor here (lr as a Tensor, torch's advice for compiled
        optimizers) and the decoupled shrink is one more in-place multiply, which inductor fuses with the update.
        ``check_step_decay`` has already run, outside the graph. torch keeps its fused kernel out of the graph
        (``torch.compiler.disable``), so a fused group takes its eager step there, as torch.optim.AdamW does.
        """
        if group["fused"] or group["cautious"]:  # the cautious mask is not traced either: an eager step
            # Wrapped here, not at import: torch.compiler.disable imports torch._dynamo (over a second).
            return torch.compiler.disable(_eager_step, reason="torch's fused Adam kernel and the cautious mask are "
                                          "not traced; the group steps eagerly")(self, group, t, mean_v_hat)
        mode, wd, peak, lr = group["decay"], group["weight_decay"], group["peak_lr"], group["lr"]
        fused, foreach = group["fused"], group["foreach"]
        if fused is None and foreach is None:
            fused, foreach = _default_to_fused_or_foreach(t["params"], differentiable=False, use_fused=False)
        decoupled = DECAY_MODES[mode].decoupled
        if decoupled and wd != 0:
            self._shrink_outside_kernel(t["params"], self._traced_shrink(group, mean_v_hat))
        self._run_torch_adam(group, t, foreach=bool(foreach), fused=bool(fused), capturable=not fused,
                             weight_decay=0.0 if decoupled else coupled_weight_decay(mode, wd))

    def _shrink_outside_kernel(self, params: list[Tensor], shrink_t: float | Tensor) -> None:
        """``p ← p·(1 - s_t)`` as a pass of its own, skipped on a step a GradScaler skips (found_inf = 1)."""
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None:  # no host sync: the factor is exactly 1 on a skipped step
            shrink_t = shrink_t * (1 - found_inf)
        torch._foreach_mul_(params, 1 - shrink_t)

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


def _eager_step(opt: AdamW, group: dict[str, Any], t: dict[str, list], mean_v_hat: Tensor | None) -> None:
    opt._step_group(group, t, mean_v_hat)


def _single_tensor_adamw(t: dict[str, list], group: dict[str, Any], *, lr: float, shrink_t: float) -> None:
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
        if shrink_t != 0 and not group["cautious"]:
            param.mul_(1 - shrink_t)  # decoupled: p ← p·(1 - s_t), before the gradient step
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
        if shrink_t != 0 and group["cautious"]:  # the mask needs u_t, at the same p_t as the step
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
