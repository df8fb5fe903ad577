"""Amos against pytorch_optimizer's Amos (an independent implementation) and the paper's code, step by step.

pytorch_optimizer 4.1's choices that differ from the paper (arXiv 2210.11693) and its code (jestimator amos.py):
one second-moment scalar per tensor always (the paper keeps one per element unless ``shape_fn`` reduces axes;
here ``scalar_v=True``); the target scale η from the shape alone (0.5 for ≤1-D, sqrt(2/size(1)) for 2-D,
sqrt(1/size(1)) for ≥3-D, ignoring the kernel size, where the paper's example uses fan_in); ``v + 1e-18`` instead of
``max(v, 2^-125)``; an ``extra_l2`` the paper does not have (entering halved, as ``(γ - extra_l2)/2``); and separate
``c_coef``/``d_coef`` for the paper's single ζ.
"""

from __future__ import annotations

import math

import pytest
import torch

from weightdecay.optim.amos import Amos, default_eta

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

F64 = torch.float64
SHAPES = [(5, 3), (4,), (2, 3)]


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=F64) * 0.3) for s in SHAPES]


def _grads(step):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(s, generator=g, dtype=F64) * (2.0 if step % 3 else 0.05) for s in SHAPES]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("foreach", [False, True])
def test_matches_pytorch_optimizer_step_by_step(momentum, foreach):
    ours, theirs = _params(), _params()
    mine = Amos(ours, lr=0.05, momentum=momentum, scalar_v=True, eta=pytorch_optimizer.Amos.get_scale)
    peer = pytorch_optimizer.Amos(theirs, lr=0.05, momentum=momentum, foreach=foreach)
    for step in range(8):
        for a, b, g in zip(ours, theirs, _grads(step)):
            a.grad, b.grad = g.clone(), g.clone()
        mine.step()
        peer.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12, msg=f"step {step}")
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(mine.state[a]["b"], peer.state[b]["decay"], rtol=1e-10, atol=1e-14)


def _paper_step(theta, g, st, *, xi, eta, beta=0.999, zeta=0.25):
    # jestimator/amos.py update_fn with shape_fn=None (v per element), finetune_rate 1, written out in float64
    st["count"] += 1
    bias_correction = 1 - beta ** st["count"]
    g2 = g * g
    st["v"] = st["v"] * beta + g2 * (1 - beta)
    r = bias_correction / torch.clamp(st["v"], min=2.0 ** -125)
    b = st["b"]
    gamma = (1 / torch.sqrt(1 + zeta * math.sqrt(xi) * b)) * (xi ** 2 * r * g2)
    init_lr = xi * eta
    update = (1 / (1 + zeta * math.sqrt(init_lr) * b)) * (-init_lr * torch.sqrt(r) * g - 0.5 * gamma * theta)
    st["b"] = b + gamma * (1 + b)
    return theta + update


def test_per_element_default_matches_the_paper_code():
    params = _params()
    ref = [p.detach().clone() for p in params]
    states = [{"count": 0, "v": torch.zeros_like(p), "b": torch.zeros_like(p)} for p in ref]
    opt = Amos(params, lr=0.05)
    for step in range(8):
        grads = _grads(step)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        ref = [_paper_step(t, g, s, xi=0.05, eta=default_eta(p)) for t, g, s, p in zip(ref, grads, states, params)]
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.detach(), r, rtol=1e-12, atol=1e-14)
    assert [default_eta(p) for p in params] == [math.sqrt(2 / 3), 0.5, math.sqrt(2 / 3)]


def test_decay_pulls_toward_scale_without_a_weight_decay():
    # With noise-only gradients, a tensor far above its scale η shrinks: Amos's own decay, no λ anywhere.
    p = torch.nn.Parameter(torch.full((50, 4), 5.0, dtype=F64))
    opt = Amos([p], lr=0.1, eta=0.5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        p.grad = torch.randn(p.shape, generator=gen, dtype=F64)
        opt.step()
    assert float(p.detach().abs().mean()) < 2.5
