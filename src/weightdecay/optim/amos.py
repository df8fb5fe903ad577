"""Amos (Tian & Parikh 2022): Adam-like scaling with an adaptive weight decay toward a model-oriented scale.

Its decay is none of the six conventions of docs/math.md ("Decay conventions"): each step shrinks θ by
``½·d_t·γ_t`` where ``γ_t = c_t·ξ²·M(g²)/v̂_t`` grows with the gradient's size relative to its running average,
and the decay factors ``c_t = (1 + ζ·sqrt(ξ)·b_t)^(-1/2)``, ``d_t = (1 + ζ·sqrt(ξ·η)·b_t)^(-1)`` shrink both the
decay and the step as the accumulated decay ``b_t`` grows: the weights settle at the scale ``η`` of each tensor,
and no λ is tuned.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from weightdecay.errors import UserError
from weightdecay.optim import _precision
from weightdecay.optim._base import evaluate_closure
from weightdecay.optim.delivery import refuse_shrink

__all__ = ["Amos", "default_eta"]

EPS = 2.0 ** -125  # the paper code's default: the smallest positive normal float32, guarding 1/v


def default_eta(p: Tensor) -> float:
    """The expected scale of a tensor's entries: 0.5 for vectors (biases, norm scales), sqrt(2/fan_in) else.

    As the paper's MNIST example sets it (bias 0.5, kernels ``sqrt(2/fan_in)`` before a ReLU); fan_in is
    ``prod(shape[1:])`` in torch's (out, in, kernel…) layout. Pass your own ``eta`` where a layer's init differs.
    """
    if p.ndim <= 1:
        return 0.5
    return math.sqrt(2.0 / math.prod(p.shape[1:]))


class Amos(torch.optim.Optimizer):
    r"""Amos: adaptive weight decay toward a model-oriented scale ``η``, with the paper's defaults.

    Per tensor θ with gradient g (``M`` the mean over the axes ``v`` reduces; all of them with
    ``scalar_v=True``, none by default), global learning rate ξ and ``v̂⁻¹ = (1-β^t)/max(v_t, ε)``::

        v_t = β·v + (1-β)·M(g²)
        γ_t = (1 + ζ·sqrt(ξ)·b)^(-1/2) · ξ² · v̂⁻¹ · M(g²)
        Δ   = (1 + ζ·sqrt(ξ·η)·b)^(-1) · (-ξ·η·sqrt(v̂⁻¹)·g - ½·γ_t·θ)
        b  ← b + γ_t·(1 + b)
        θ  ← θ + Δ              (with momentum μ: m ← μ·m + (1-μ)·Δ, θ ← θ + m)

    Args:
        params: parameters or parameter groups.
        lr: ξ; the paper recommends about ``1/sqrt(N)``, N the number of independent batches in the data.
        beta: β; ``1 - β`` of the order of ``lr`` (paper: 0.999).
        zeta: ζ, how fast the decay factors fall (paper: 0.25).
        momentum: μ of an optional moving average of the updates (paper: none, 0).
        eta: the target scale per tensor: a number, or a function of the tensor; default :func:`default_eta`.
        scalar_v: keep one second-moment scalar per tensor (memory of O(1)) instead of one per element.
        eps: ε, the floor of ``v`` (paper: 2^-125).
        maximize: maximize the objective.
        rounding: how bfloat16/float16 weights take ``Δ`` (:mod:`weightdecay.optim._precision`):
            ``"compensated"`` (default; its decay ``-½·γ_t·θ`` is far below bfloat16's spacing, and kept),
            ``"stochastic"`` or ``"nearest"`` (``θ.add_(Δ)`` in the weights' format).

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = Amos(model.parameters(), lr=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        R. Tian & A. P. Parikh, "Amos: An Adam-style Optimizer with Adaptive Weight Decay towards
        Model-Oriented Scale", arXiv 2210.11693 (2022); google-research/jestimator ``amos.py``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, *, beta: float = 0.999, zeta: float = 0.25,
                 momentum: float = 0.0, eta: float | Callable[[Tensor], float] | None = None,
                 scalar_v: bool = False, eps: float = EPS, maximize: bool = False,
                 rounding: str = _precision.DEFAULT_ROUNDING) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise UserError(f"Invalid learning rate: {lr!r} (must be a finite number > 0)")
        for name, value in (("beta", beta), ("momentum", momentum)):
            if not 0.0 <= value < 1.0:
                raise UserError(f"Invalid {name}: {value!r} (must be in [0, 1))")
        if not zeta >= 0 or not eps > 0:
            raise UserError(f"Invalid zeta {zeta!r} or eps {eps!r} (need zeta >= 0, eps > 0)")
        _precision.check_rounding(rounding)
        defaults = dict(lr=lr, beta=beta, zeta=zeta, momentum=momentum, eta=eta, scalar_v=scalar_v, eps=eps,
                        maximize=maximize, rounding=rounding)
        super().__init__(params, defaults)

    def _eta(self, group: dict[str, Any], p: Tensor) -> float:
        eta = group["eta"]
        value = default_eta(p) if eta is None else (eta(p) if callable(eta) else eta)
        if not (isinstance(value, (int, float)) and value > 0):
            raise UserError(f"Invalid eta {value!r} for a tensor of shape {tuple(p.shape)} (must be > 0)")
        return float(value)

    @torch.no_grad()
    def _refuse_large_shrink(self) -> None:
        """Refuse a step whose decay share ``s = ½·γ_t / (1 + ζ·sqrt(ξ·η)·b)`` is 1 or more anywhere, before any
        tensor or state moves (:func:`weightdecay.optim.delivery.refuse_shrink`): it would zero or flip weights.

        ``γ_t`` is computed as the step will compute it, from this step's ``v_t``, without writing it; one host read
        per step for all tensors together.
        """
        largest = []
        for group in self.param_groups:
            xi, beta, zeta = group["lr"], group["beta"], group["zeta"]
            for p in group["params"]:
                if p.grad is None or p.grad.is_sparse:
                    continue
                state = self.state.get(p, {})  # read only: a refused first step leaves no state behind
                g2 = p.grad.square().mean() if group["scalar_v"] else p.grad.square()
                v = state["v"].mul(beta).add_(g2, alpha=1 - beta) if state else (1 - beta) * g2
                b = state["b"] if state else torch.zeros_like(v)
                inv_v_hat = (1 - beta ** (state.get("step", 0) + 1)) / v.clamp(min=group["eps"])
                gamma = torch.rsqrt(1 + zeta * math.sqrt(xi) * b) * (xi * xi) * inv_v_hat * g2
                init_lr = xi * self._eta(group, p)
                largest.append((0.5 * gamma / (1 + zeta * math.sqrt(init_lr) * b)).max())
        if largest:
            refuse_shrink(float(torch.stack(largest).max()), "Amos: ",
                          "½·γ_t/(1 + ζ·sqrt(ξ·η)·b), with γ_t = ξ²·M(g²)/v̂_t at the first steps",
                          "lower lr (ξ): at the first step the shrink is ξ²/2, so ξ must stay well below sqrt(2)")

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step (``closure`` re-evaluates the model and returns the loss)."""
        loss = evaluate_closure(closure)
        self._refuse_large_shrink()
        for group in self.param_groups:
            xi, beta, zeta, mu = group["lr"], group["beta"], group["zeta"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Amos does not support sparse gradients")
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if not state:
                    moment = torch.zeros((), dtype=p.dtype) if group["scalar_v"] else torch.zeros_like(p)
                    state["step"] = 0
                    state["v"] = moment.to(p.device)
                    state["b"] = torch.zeros_like(state["v"])
                    if mu > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                g2 = g.square().mean() if group["scalar_v"] else g.square()
                v, b = state["v"], state["b"]
                v.mul_(beta).add_(g2, alpha=1 - beta)
                inv_v_hat = (1 - beta ** state["step"]) / v.clamp(min=group["eps"])
                init_lr = xi * self._eta(group, p)
                gamma = torch.rsqrt(1 + zeta * math.sqrt(xi) * b) * (xi * xi) * inv_v_hat * g2
                update = (-init_lr * inv_v_hat.sqrt() * g - 0.5 * gamma * p) / (1 + zeta * math.sqrt(init_lr) * b)
                b.add_(gamma * (1 + b))
                if mu > 0:
                    buf = state["momentum_buffer"]
                    buf.lerp_(update, 1 - mu)
                    update = buf
                rounding = _precision.kept_by(group) if _precision.is_low_precision(p) else None
                if rounding is None:
                    p.add_(update)
                else:  # issue 21's one integration point in Amos
                    buffers = _precision.compensation_buffers(self.state, [p], rounding)
                    _precision.write_back_([p], [update.float()], rounding, buffers)
        return loss

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("rounding", _precision.DEFAULT_ROUNDING)
