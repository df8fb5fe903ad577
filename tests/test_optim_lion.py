"""Lion, the worked example of docs/optimizers.md: its own update against a float64 reference written from the
paper, and against a peer (pytorch_optimizer's Lion). Every convention, the cautious mask and the refusal of
``s_t ≥ 1`` come from the generic tests (its row in tests/optimizer_cases.py, test_optim_guarantees.py).
"""

from __future__ import annotations

import pytest
import torch
from pytorch_optimizer import Lion as PeerLion

import weightdecay
from weightdecay.optim.lion import LionUpdate
from reference import random_tensors

F64 = torch.float64
SHAPES = [(4, 3), (7,)]
STEPS = 8
LRS = [0.01, 0.02, 0.015, 0.005, 0.0, 0.01, 0.02, 0.01]  # a changing lr_t, with one step at lr_t = 0


def _reference_lion(p0, grads, lrs, *, betas, weight_decay, maximize=False):
    """Chen et al. 2023, Algorithm 2, in float64: c = β1·m + (1-β1)·g; p ← p - lr·(sign(c) + λ·p); m ← β2·m + (1-β2)·g."""
    b1, b2 = betas
    ps = [p.to(F64).clone() for p in p0]
    ms = [torch.zeros_like(p) for p in ps]
    for gs, lr in zip(grads, lrs):
        for i, g in enumerate(gs):
            g = -g.to(F64) if maximize else g.to(F64)
            c = b1 * ms[i] + (1 - b1) * g
            ps[i] = ps[i] - lr * (torch.sign(c) + weight_decay * ps[i])
            ms[i] = b2 * ms[i] + (1 - b2) * g
    return ps


def _run(opt, params, grads, lrs):
    for gs, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()


def _stream(dtype):
    return [random_tensors(SHAPES, seed=40 + t, dtype=dtype) for t in range(STEPS)]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("dtype, tol", [(F64, dict(rtol=1e-12, atol=1e-14)), (torch.float32, dict(rtol=1e-6, atol=1e-7))])
def test_lion_update_matches_the_float64_reference(foreach, maximize, dtype, tol):
    p0 = random_tensors(SHAPES, seed=3, dtype=dtype)
    params = [torch.nn.Parameter(p.clone()) for p in p0]
    grads = _stream(dtype)
    _run(LionUpdate(params, betas=(0.9, 0.99), weight_decay=0.5, maximize=maximize, foreach=foreach), params, grads,
         LRS)
    want = _reference_lion(p0, grads, LRS, betas=(0.9, 0.99), weight_decay=0.5, maximize=maximize)
    for got, w in zip(params, want):
        torch.testing.assert_close(got.detach().to(F64), w, **tol)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("decay, peer_kwargs", [("torch", {}), ("constant", dict(fixed_decay=True))])
def test_lion_matches_pytorch_optimizer(foreach, decay, peer_kwargs):
    # torch: pytorch_optimizer's decoupled decay shrinks by lr·λ, bit for bit; constant: its fixed_decay shrinks by λ.
    lam = 0.5 if decay == "torch" else 0.004
    p0 = random_tensors(SHAPES, seed=5)
    ours = [torch.nn.Parameter(p.clone()) for p in p0]
    peer = [torch.nn.Parameter(p.clone()) for p in p0]
    grads = _stream(torch.float32)
    _run(weightdecay.Lion(ours, betas=(0.9, 0.99), weight_decay=lam, decay=decay, foreach=foreach), ours, grads, LRS)
    _run(PeerLion(peer, betas=(0.9, 0.99), weight_decay=lam, weight_decouple=True, foreach=foreach, **peer_kwargs),
         peer, grads, LRS)
    for a, b in zip(ours, peer):
        if decay == "torch":
            assert torch.equal(a, b)
        else:  # λ reaches our kernel as c_t = λ/lr_t, so lr_t·c_t rounds once more than the peer's λ
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_lion_is_registered_with_its_own_hyperparameters():
    info = weightdecay.get_optimizer("lion")
    opt = info.build([torch.nn.Parameter(torch.ones(3))], lr=1e-4, weight_decay=0.1, decay="paper",
                     betas=(0.95, 0.98))
    assert type(opt).__name__ == "Lion" and opt.param_groups[0]["betas"] == (0.95, 0.98)
    assert opt.param_groups[0]["decay"] == "paper" and "stable" not in info.decay_modes
