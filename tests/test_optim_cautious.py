"""Cautious weight decay (Chen et al. 2025, arXiv 2510.12402) on AdamW and SGDW, every path, and its property.

docs/math.md ("Decay conventions"): ``p ← p - s_t·𝟙[u_t ⊙ p ≥ 0] ⊙ p - lr_t·u_t``, both terms at the same ``p_t``,
with ``u_t`` the direction the optimizer subtracts. The wrapped classes are tested in test_optim_wrapped.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import weightdecay
from weightdecay.errors import UserError
from optimizer_cases import ADAMW, DECOUPLED, PATH_KWARGS, SGDW, mode_lambda
from reference import shrink_factor

F64 = torch.float64
SHAPES = [(4, 3), (7,)]
MULTIPLIER = [1.0, 0.5, 0.8, 0.25, 1.0, 0.6]


def _shrink(mode, lam, lr, peak):
    return shrink_factor(mode, lam, lr, peak)  # the float64 oracle of docs/math.md's table


def _reference_adamw(p0, grads, lrs, *, lam, mode, betas=(0.9, 0.99), eps=1e-8, maximize=False):
    """float64 Adam direction written out, then the cautious step."""
    b1, b2 = betas
    ps = [p.to(F64).clone() for p in p0]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    for t, (gs, lr) in enumerate(zip(grads, lrs), start=1):
        s = _shrink(mode, lam, lr, lrs[0])
        for i, g in enumerate(gs):
            g = -g.to(F64) if maximize else g.to(F64)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            u = (m[i] / (1 - b1 ** t)) / ((v[i] / (1 - b2 ** t)).sqrt() + eps)
            mask = (u * ps[i] >= 0).to(F64)
            ps[i] = ps[i] - s * mask * ps[i] - lr * u
    return ps


def _reference_sgdw(p0, grads, lrs, *, lam, mode, momentum=0.9, nesterov=False):
    ps = [p.to(F64).clone() for p in p0]
    bufs = [None] * len(ps)
    for gs, lr in zip(grads, lrs):
        s = _shrink(mode, lam, lr, lrs[0])
        for i, g in enumerate(gs):
            g = g.to(F64)
            bufs[i] = g.clone() if bufs[i] is None else momentum * bufs[i] + g
            d = g + momentum * bufs[i] if nesterov else bufs[i]
            mask = (d * ps[i] >= 0).to(F64)
            ps[i] = ps[i] - s * mask * ps[i] - lr * d
    return ps


def _run(make, dtype, steps=6):
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in SHAPES]
    p0 = [p.detach().clone() for p in params]
    opt = make(params)
    sched = LambdaLR(opt, lambda k: MULTIPLIER[k % len(MULTIPLIER)])
    grads, lrs = [], []
    for step in range(steps):
        gs = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
        for p, gr in zip(params, gs):
            p.grad = gr.clone()
        lrs.append(opt.param_groups[0]["lr"])
        grads.append(gs)
        opt.step()
        sched.step()
    return params, p0, grads, lrs


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", DECOUPLED)
@pytest.mark.parametrize("maximize", [False, True])
def test_adamw_cautious_against_float64_reference(path, mode, maximize):
    lam = mode_lambda(mode, lr=0.05, shrink_t=0.025)
    for dtype, tol in ((F64, dict(rtol=1e-10, atol=1e-12)), (torch.float32, dict(rtol=2e-5, atol=2e-6))):
        params, p0, grads, lrs = _run(lambda p: weightdecay.AdamW(p, lr=0.05, betas=(0.9, 0.99), weight_decay=lam,
                                                                  decay=mode, cautious=True, maximize=maximize,
                                                                  **PATH_KWARGS[path]), dtype)
        want = _reference_adamw(p0, grads, lrs, lam=lam, mode=mode, maximize=maximize)
        for got, w in zip(params, want):
            torch.testing.assert_close(got.detach().to(F64), w, **tol)


@pytest.mark.parametrize("path", SGDW.paths)
@pytest.mark.parametrize("mode", DECOUPLED)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdw_cautious_against_float64_reference(path, mode, nesterov):
    lam = mode_lambda(mode, lr=0.05, shrink_t=0.025)
    for dtype, tol in ((F64, dict(rtol=1e-10, atol=1e-12)), (torch.float32, dict(rtol=2e-5, atol=2e-6))):
        params, p0, grads, lrs = _run(lambda p: weightdecay.SGDW(p, lr=0.05, momentum=0.9, nesterov=nesterov,
                                                                 weight_decay=lam, decay=mode, cautious=True,
                                                                 **PATH_KWARGS[path]), dtype)
        want = _reference_sgdw(p0, grads, lrs, lam=lam, mode=mode, nesterov=nesterov)
        for got, w in zip(params, want):
            torch.testing.assert_close(got.detach().to(F64), w, **tol)


def test_cautious_is_a_group_key_saved_and_checked():
    p = torch.nn.Parameter(torch.ones(3))
    opt = weightdecay.AdamW([{"params": [p], "cautious": True}], lr=1e-3)
    assert opt.param_groups[0]["cautious"] is True
    other = weightdecay.AdamW([torch.nn.Parameter(torch.ones(3))], lr=1e-3)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["cautious"] is True
    # a torch.optim.AdamW state dict has no such key: the current value stays
    torch_sd = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=1e-3).state_dict()
    other.load_state_dict(torch_sd)
    assert other.param_groups[0]["cautious"] is True
    with pytest.raises(UserError, match="Invalid cautious: 1"):
        weightdecay.SGDW([p], cautious=1)
    with pytest.raises(UserError, match="cautious=True with decay='l2'"):
        weightdecay.SGDW([p], decay="l2", cautious=True)


def test_least_squares_cautious_stays_on_the_minimizer_manifold():
    # Over-parameterized least squares (6 equations, 20 unknowns): the minimizers of the unregularized loss form
    # the affine set {w : Aw = y}. Plain decoupled decay converges to the ridge point, off that set by an amount
    # set by λ alone (the same residual at lr and lr/2); cautious decay's residual vanishes with lr (the paper's
    # sliding mode), at a point of smaller norm than the unregularized run reaches (it did decay).
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 20, generator=g, dtype=F64) / math.sqrt(20)
    y = torch.randn(6, generator=g, dtype=F64)
    w0 = torch.randn(20, generator=g, dtype=F64)
    unregularized = w0 - torch.linalg.pinv(A) @ (A @ w0 - y)  # where gradient descent from w0 converges

    def run(lr, cautious):
        w = torch.nn.Parameter(w0.clone())
        opt = weightdecay.SGDW([w], lr=lr, weight_decay=0.05, cautious=cautious)
        for _ in range(int(400 / lr)):
            w.grad = A.T @ (A @ w.detach() - y)
            opt.step()
        return w.detach(), float((A @ w.detach() - y).norm())

    (_, plain_big), (_, plain_small) = run(0.2, False), run(0.1, False)
    (w_big, cautious_big), (w_small, cautious_small) = run(0.2, True), run(0.1, True)
    assert plain_big == pytest.approx(plain_small, rel=1e-6) and plain_big > 0.1
    assert cautious_big < plain_big / 20 and cautious_small < cautious_big / 4
    assert float(w_small.norm()) < 0.8 * float(unregularized.norm())
