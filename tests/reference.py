"""A deliberately simple float64 reference of docs/math.md, "Decay conventions": the oracle the optimizer tests compare against.

Written straight from ``docs/math.md``, not from ``weightdecay.optim`` nor ``weightdecay.decay``: a test that asked the
code under test what ``s_t`` is could not catch a wrong ``s_t``. One loop per parameter, no fast paths, no in-place
tricks. The caller hands in each step's gradients and reads each group's ``lr_t`` from the optimizer under test
(what a PyTorch scheduler wrote into ``group["lr"]``), so both see the same schedule.

AdamW, per parameter of a group (decoupled modes)::

    g ← -g if maximize;  g ← g + λ·p if decay == "l2"
    m_t = β1·m + (1-β1)·g;  v_t = β2·v + (1-β2)·g²
    m̂_t = m_t / (1-β1^t),  v̂_t = v_t / (1-β2^t)        (m̂ = m, v̂ = v when bias_correction is False: BERT)
    u_t = m̂_t / (sqrt(v̂_t) + ε)                         (amsgrad: v̂_t → max_{k≤t} v_k / (1-β2^t))
    p ← p·(1 - s_t) - lr_t·u_t

SGDW: ``b ← μ·b + (1-dampening)·g`` (``b = g`` at the first step), ``d = g + μ·b`` if nesterov else ``b``
(``d = g`` without momentum), ``p ← p·(1 - s_t) - lr_t·d``.

Example:
    >>> import torch
    >>> ref = ReferenceAdamW([{"params": [torch.ones(2)], "lr": 0.1, "weight_decay": 0.5, "decay": "paper"}])
    >>> ref.step([[torch.ones(2)]])
    >>> round(ref.params[0][0][0].item(), 6)  # 1·(1 - 0.5) - 0.1·1/(1 + 1e-8)
    0.4
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["shrink_factor", "ReferenceAdamW", "ReferenceSGDW"]  # the modes each class runs: tests/optimizer_cases.py

_F64 = torch.float64


def shrink_factor(mode: str, weight_decay: float, lr: float, peak_lr: float, mean_v_hat: float | None = None,
                  group: dict | None = None) -> float:
    """The per-step shrink ``s_t`` of docs/math.md's table (0 for ``l2``, which decays through the gradient).

    ``group`` holds any per-group key a mode reads besides λ, lr and peak_lr."""
    group = group or {}
    if mode == "torch":
        return lr * weight_decay
    if mode == "paper":
        return lr / peak_lr * weight_decay
    if mode == "constant":
        return weight_decay
    if mode == "corrected":
        return lr**2 / peak_lr * weight_decay
    if mode == "power":  # AXLearn's learning-rate exponent: p = group["lr_exponent"], default 1
        return weight_decay * lr ** group.get("lr_exponent", 1.0)
    if mode == "stable":
        return lr * weight_decay / math.sqrt(mean_v_hat)
    if mode == "l2":
        return 0.0
    raise KeyError(mode)


def _groups(groups: Sequence[dict], defaults: dict) -> list[dict]:
    """Copy each group with defaults filled in and its params as detached float64 clones."""
    out = []
    for spec in groups:
        group = {**defaults, **{k: v for k, v in spec.items() if k != "params"}}
        if group.get("peak_lr") is None:
            group["peak_lr"] = group["lr"]  # docs/math.md: the group's lr when the optimizer is built
        group["params"] = [p.detach().to(_F64).clone() for p in spec["params"]]
        out.append(group)
    return out


class _Reference:
    defaults: dict = {}

    def __init__(self, groups: Sequence[dict], **defaults):
        self.param_groups = _groups(groups, {**self.defaults, **defaults})
        self.state: list[list[dict]] = [[{} for _ in g["params"]] for g in self.param_groups]

    @property
    def params(self) -> list[list[torch.Tensor]]:
        return [g["params"] for g in self.param_groups]

    def _lrs(self, lrs: Sequence[float] | None) -> list[float]:
        if lrs is None:
            return [g["lr"] for g in self.param_groups]
        if len(lrs) != len(self.param_groups):
            raise ValueError("one lr per group")
        for g, lr in zip(self.param_groups, lrs):
            g["lr"] = float(lr)
        return [float(lr) for lr in lrs]

    @staticmethod
    def _grad(g: torch.Tensor, p: torch.Tensor, group: dict) -> torch.Tensor:
        g = g.detach().to(_F64)
        if group["maximize"]:
            g = -g
        if group["decay"] == "l2":
            g = g + group["weight_decay"] * p
        return g


class ReferenceAdamW(_Reference):
    """float64 AdamW with every decay mode of docs/math.md, "Decay conventions", one mode per group.

    Args:
        groups: dicts with ``params`` (tensors, copied) and any of the keys below, overriding the defaults.
        lr, betas, eps, weight_decay, amsgrad, maximize, decay, peak_lr, bias_correction: as ``weightdecay.AdamW``.

    Example:
        >>> ref = ReferenceAdamW([{"params": [torch.zeros(3)]}], lr=0.1, decay="torch")
        >>> ref.step([[torch.ones(3)]], lrs=[0.05])
        >>> ref.state[0][0]["step"]
        1
    """

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False,
                    decay="torch", peak_lr=None, bias_correction=True)

    def step(self, grads: Sequence[Sequence[torch.Tensor | None]], lrs: Sequence[float] | None = None) -> None:
        """One step; ``grads[i][j]`` is the gradient of group i's param j (None: not updated this step)."""
        lrs = self._lrs(lrs)
        directions = []  # (group, index, u_t) for every param updated this step
        v_hat_sum, v_hat_count = 0.0, 0
        # 1. Moments of every param first: `stable` needs mean(v̂_t) over all of them before any shrink.
        for gi, (group, group_grads) in enumerate(zip(self.param_groups, grads)):
            beta1, beta2 = group["betas"]
            for pi, (p, grad) in enumerate(zip(group["params"], group_grads)):
                if grad is None:
                    continue
                g = self._grad(grad, p, group)
                st = self.state[gi][pi]
                if not st:
                    st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                    if group["amsgrad"]:
                        st["max_exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                t = st["step"]
                st["exp_avg"] = beta1 * st["exp_avg"] + (1 - beta1) * g
                st["exp_avg_sq"] = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
                bc1, bc2 = (1 - beta1**t, 1 - beta2**t) if group["bias_correction"] else (1.0, 1.0)
                v_hat = st["exp_avg_sq"] / bc2
                v_hat_sum += v_hat.sum().item()
                v_hat_count += v_hat.numel()
                if group["amsgrad"]:
                    st["max_exp_avg_sq"] = torch.maximum(st["max_exp_avg_sq"], st["exp_avg_sq"])
                    v_hat = st["max_exp_avg_sq"] / bc2
                u = (st["exp_avg"] / bc1) / (v_hat.sqrt() + group["eps"])
                directions.append((gi, pi, u))
        mean_v_hat = v_hat_sum / v_hat_count if v_hat_count else None
        # 2. Shrink, then step: p ← p·(1 - s_t) - lr_t·u_t.
        for gi, pi, u in directions:
            group = self.param_groups[gi]
            s = shrink_factor(group["decay"], group["weight_decay"], lrs[gi], group["peak_lr"], mean_v_hat, group)
            p = group["params"][pi]
            group["params"][pi] = p * (1 - s) - lrs[gi] * u


class ReferenceSGDW(_Reference):
    """float64 SGD with momentum/dampening/nesterov and every decay mode of docs/math.md but ``stable``.

    Args:
        groups: dicts with ``params`` (tensors, copied) and any of the keys below, overriding the defaults.
        lr, momentum, dampening, weight_decay, nesterov, maximize, decay, peak_lr: as ``weightdecay.SGDW``.

    Example:
        >>> ref = ReferenceSGDW([{"params": [torch.ones(1)]}], lr=0.1, weight_decay=0.5, decay="constant")
        >>> ref.step([[torch.ones(1)]])
        >>> round(ref.params[0][0].item(), 6)  # 1·(1 - 0.5) - 0.1·1
        0.4
    """

    defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                    decay="torch", peak_lr=None)

    def step(self, grads: Sequence[Sequence[torch.Tensor | None]], lrs: Sequence[float] | None = None) -> None:
        """One step; ``grads[i][j]`` is the gradient of group i's param j (None: not updated this step)."""
        lrs = self._lrs(lrs)
        for gi, (group, group_grads) in enumerate(zip(self.param_groups, grads)):
            mu, damp = group["momentum"], group["dampening"]
            s = shrink_factor(group["decay"], group["weight_decay"], lrs[gi], group["peak_lr"], None, group)
            for pi, (p, grad) in enumerate(zip(group["params"], group_grads)):
                if grad is None:
                    continue
                g = self._grad(grad, p, group)
                d = g
                if mu != 0:
                    st = self.state[gi][pi]
                    b = g.clone() if "momentum_buffer" not in st else mu * st["momentum_buffer"] + (1 - damp) * g
                    st["momentum_buffer"] = b
                    d = g + mu * b if group["nesterov"] else b
                group["params"][pi] = p * (1 - s) - lrs[gi] * d


def random_tensors(shapes: Sequence[tuple[int, ...]], *, seed: int, dtype: torch.dtype = torch.float32,
                   scale: float = 1.0) -> list[torch.Tensor]:
    """Standard-normal tensors of the given shapes (times ``scale``) from a private, seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(shape, generator=gen, dtype=_F64).to(dtype) for shape in shapes]


def gradient_stream(shapes: Sequence[Sequence[tuple[int, ...]]], steps: int, *, seed: int,
                    dtype: torch.dtype = torch.float32) -> list[list[list[torch.Tensor]]]:
    """``stream[t][i][j]``: a fixed random gradient for group i's param j at step t (the same for every run)."""
    return [[random_tensors(group, seed=seed + 1000 * t + 31 * i, dtype=dtype) for i, group in enumerate(shapes)]
            for t in range(steps)]
