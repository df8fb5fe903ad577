"""peak_lr under schedulers whose peak is not the constructor's lr, and the refusal of a shrink s_t >= 1.

OneCycleLR with ``lr=1e-3, max_lr=1e-2`` used to leave ``peak_lr`` at 1e-3, so ``paper`` mode with λ=0.1 reached
s_t = 1 at the peak and zeroed the weights (then NaN). The oracle: ``paper(λ)`` equals torch.optim.AdamW with
``λ/peak_lr`` (docs/math.md, 'Decay conventions'), with the schedule's real peak.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

import weightdecay
from optimizer_cases import ADAMW, NATIVE, PATH_KWARGS

STEPS = 20


def _run(opt, sched, params, steps=STEPS, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
        sched.step()


def _params(seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=gen).requires_grad_(), torch.randn(5, generator=gen).requires_grad_()]


@pytest.mark.parametrize("path", ADAMW.paths)
def test_onecycle_peak_is_followed_and_matches_torch(path):
    # The case: paper mode, λ = 0.1, OneCycleLR peaking 10x above the constructor's lr.
    ours, theirs = _params(), _params()
    opt = weightdecay.AdamW(ours, lr=1e-3, weight_decay=0.1, decay="paper", **PATH_KWARGS[path])
    ref = torch.optim.AdamW(theirs, lr=1e-3, weight_decay=0.1 / 1e-2, **PATH_KWARGS[path])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # following the scheduler's peak, lr_t never exceeds peak_lr: no warning
        _run(opt, OneCycleLR(opt, max_lr=1e-2, total_steps=STEPS), ours)
    _run(ref, OneCycleLR(ref, max_lr=1e-2, total_steps=STEPS), theirs)
    assert opt.param_groups[0]["peak_lr"] == 1e-2
    assert opt.state_dict()["param_groups"][0]["peak_lr"] == 1e-2  # the value used is saved
    for p, q in zip(ours, theirs):
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [case.cls for case in NATIVE])
def test_explicit_peak_lr_wins_and_warns_once_per_group(cls):
    params = _params()
    groups = [{"params": [params[0]]}, {"params": [params[1]], "peak_lr": 2e-2}]
    opt = cls(groups, lr=1e-3, weight_decay=0.1, decay="corrected", peak_lr=5e-3)
    sched = OneCycleLR(opt, max_lr=1e-2, total_steps=STEPS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(opt, sched, params)
    assert [g["peak_lr"] for g in opt.param_groups] == [5e-3, 2e-2]
    messages = [str(w.message) for w in caught if "peak_lr" in str(w.message)]
    # Only group 0's lr (up to 1e-2) passes its peak (5e-3), and it is said once, naming the group and the fix.
    assert len(messages) == 1, messages
    assert "param_groups[0]" in messages[0] and "peak_lr=" in messages[0] and "'corrected'" in messages[0]


def test_cyclic_lr_above_peak_warns():
    # torch's CyclicLR keeps max_lrs to itself; the warning is what tells the user to pass peak_lr.
    params = _params()
    opt = weightdecay.SGDW(params, lr=1e-3, weight_decay=0.1, decay="paper")
    sched = CyclicLR(opt, base_lr=1e-3, max_lr=1e-2, step_size_up=5)
    with pytest.warns(UserWarning, match=r"param_groups\[0\].*above peak_lr = 0\.001.*peak_lr="):
        _run(opt, sched, params, steps=4)


def test_torch_mode_never_warns_about_peak():
    params = _params()
    opt = weightdecay.AdamW(params, lr=1e-3, weight_decay=0.1, decay="torch", peak_lr=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(opt, OneCycleLR(opt, max_lr=1e-2, total_steps=STEPS), params)


# (optimizer, kwargs, the s_t that the message must state) for a first step with gradient 1 everywhere.
OVERSHRINK = [
    (weightdecay.AdamW, dict(lr=1.0, weight_decay=1.0, decay="torch"), r"s_t = 1 .*lr_t·λ = 1·1"),
    (weightdecay.AdamW, dict(lr=1e-3, weight_decay=1.0, decay="paper"), r"s_t = 1 .*\(lr_t/peak_lr\)·λ"),
    (weightdecay.AdamW, dict(lr=1e-3, weight_decay=1.5, decay="constant"), r"s_t = 1\.5 .*s_t = λ = 1\.5"),
    (weightdecay.AdamW, dict(lr=2.0, weight_decay=0.6, decay="corrected", peak_lr=1.0), r"s_t = 2\.4 .*lr_t²"),
    # v̂_1 = g² = 1e-6, so s_1 = lr·λ/sqrt(v̂) = 1e-3·2/1e-3 = 2.
    (weightdecay.AdamW, dict(lr=1e-3, weight_decay=2.0, decay="stable"), r"s_t = 2 .*sqrt\(mean v̂_t\)"),
    (weightdecay.SGDW, dict(lr=1e-3, weight_decay=1.5, decay="constant", momentum=0.9), r"s_t = 1\.5"),
    (weightdecay.SGDW, dict(lr=1e-2, weight_decay=0.2, decay="paper", peak_lr=1e-3), r"s_t = 2 "),
]


@pytest.mark.filterwarnings("ignore:param_groups")  # the lr > peak_lr warning of the corrected/paper cases
@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("cls, kwargs, stated", OVERSHRINK, ids=lambda x: getattr(x, "get", lambda k: None)("decay"))
def test_shrink_of_one_or_more_is_refused_before_any_tensor_moves(cls, kwargs, stated, path):
    p = torch.ones(6, requires_grad=True)
    grad = torch.full((6,), 1e-3 if kwargs["decay"] == "stable" else 1.0)
    opt = cls([p], **kwargs, **PATH_KWARGS[path])
    with torch.no_grad():
        p.grad = grad.clone()
    before = p.detach().clone()
    with pytest.raises(ValueError, match=stated) as info:
        opt.step()
    message = str(info.value)
    assert "param_groups[0]" in message and f"decay={kwargs['decay']!r}" in message and "λ is" in message
    assert torch.equal(p, before)
    assert all(not torch.is_tensor(v) or not v.any() for v in opt.state[p].values())  # state untouched (zeros)


def test_shrink_just_below_one_is_allowed():
    p = torch.ones(3, requires_grad=True)
    opt = weightdecay.AdamW([p], lr=1e-3, weight_decay=0.999, decay="constant")
    p.grad = torch.zeros(3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.001))  # p·(1 - s_t), exactly the formula
