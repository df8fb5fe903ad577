"""The identities of docs/math.md, "Decay conventions", each as a test on weightdecay's optimizers (every fast path).

paper(λ) ≡ torch(λ/peak_lr) under any schedule; corrected(λ) ≡ torch(λ) while lr_t = peak_lr; constant(λ) ≡
torch(λ/lr_t) step by step; zero gradients give p_T = p_0·Π(1 - s_t); SGD-L2 without momentum ≡ SGDW torch with
the same λ; Adam-L2 ≠ AdamW. Identities are exact in real arithmetic, so float64 runs are held to 1e-12.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

import weightdecay
from optimizer_cases import ADAMW, DECOUPLED, NATIVE, PATH_KWARGS, SGDW, mode_lambda
from reference import gradient_stream, random_tensors, shrink_factor

F64 = torch.float64
STEPS = 12
SHAPES = [[(6, 5), (5,)], [(4, 3)]]
TIGHT = dict(rtol=1e-12, atol=1e-14)
EXTRA = {"sgdw": {"nesterov": True}}  # the identities must hold through SGDW's Nesterov look-ahead too


def _build(case, group_kwargs, path, **kwargs):
    params = [random_tensors(shapes, seed=60 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]
    return case.cls([{"params": ps, **kw} for ps, kw in zip(params, group_kwargs)],
                    **{**case.kwargs, **EXTRA.get(case.name, {}), **kwargs}, **PATH_KWARGS[path])


def _schedule(opt):
    return SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=4), CosineAnnealingLR(opt, T_max=STEPS - 4)],
                        milestones=[4])


def _params(opt):
    return [p for g in opt.param_groups for p in g["params"]]


def _run(opts, grads=None, schedule=True, before_step=None):
    """Step the optimizers on the same gradients (zeros if None); ``before_step(t)`` may edit their groups."""
    scheds = [_schedule(o) for o in opts] if schedule else []
    for t in range(STEPS):
        if before_step is not None:
            before_step(t)
        for opt in opts:
            for group, gs in zip(opt.param_groups, grads[t] if grads else [None] * len(opt.param_groups)):
                for j, p in enumerate(group["params"]):
                    p.grad = torch.zeros_like(p) if gs is None else gs[j].clone()
            opt.step()
        for s in scheds:
            s.step()


def _assert_params_equal(a, b, **tol):
    for p, q in zip(_params(a), _params(b)):
        torch.testing.assert_close(p, q, **(tol or TIGHT))


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_paper_is_torch_with_lambda_over_peak_lr(case, path):
    lrs, lam = (0.02, 0.005), 0.03
    paper = _build(case, [{"lr": lr, "weight_decay": lam, "decay": "paper"} for lr in lrs], path)
    torch_ = _build(case, [{"lr": lr, "weight_decay": lam / lr, "decay": "torch"} for lr in lrs], path)
    _run([paper, torch_], gradient_stream(SHAPES, STEPS, seed=1, dtype=F64))
    _assert_params_equal(paper, torch_)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_paper_with_explicit_peak_lr_is_torch_with_lambda_over_that_peak(case, path):
    lam, peak = 0.03, 0.08
    paper = _build(case, [{"lr": 0.02, "weight_decay": lam, "decay": "paper", "peak_lr": peak}, {"lr": 0.01}], path)
    torch_ = _build(case, [{"lr": 0.02, "weight_decay": lam / peak, "decay": "torch"}, {"lr": 0.01}], path)
    _run([paper, torch_], gradient_stream(SHAPES, STEPS, seed=2, dtype=F64))
    _assert_params_equal(paper, torch_)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_corrected_is_torch_at_constant_lr_and_not_under_a_schedule(case, path):
    lam = 0.5
    groups = [{"lr": 0.02, "weight_decay": lam}, {"lr": 0.01, "weight_decay": lam}]
    grads = gradient_stream(SHAPES, STEPS, seed=3, dtype=F64)
    corrected = _build(case, [{**g, "decay": "corrected"} for g in groups], path)
    torch_ = _build(case, [{**g, "decay": "torch"} for g in groups], path)
    _run([corrected, torch_], grads, schedule=False)
    _assert_params_equal(corrected, torch_)
    # Under warm-up + cosine lr_t < peak_lr, so corrected shrinks less: the two must part.
    corrected = _build(case, [{**g, "decay": "corrected"} for g in groups], path)
    torch_ = _build(case, [{**g, "decay": "torch"} for g in groups], path)
    _run([corrected, torch_], grads)
    gap = max((p - q).abs().max().item() for p, q in zip(_params(corrected), _params(torch_)))
    assert gap > 1e-4


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_constant_is_torch_with_lambda_over_current_lr(case, path):
    lam = 0.004
    constant = _build(case, [{"lr": 0.02, "weight_decay": lam, "decay": "constant"}, {"lr": 0.01, "decay": "constant",
                                                                                      "weight_decay": lam}], path)
    torch_ = _build(case, [{"lr": 0.02, "decay": "torch"}, {"lr": 0.01, "decay": "torch"}], path)

    def rescale(_t):  # λ' = λ / lr_t with the lr the scheduler has just written
        for group in torch_.param_groups:
            group["weight_decay"] = lam / group["lr"]

    _run([constant, torch_], gradient_stream(SHAPES, STEPS, seed=4, dtype=F64), before_step=rescale)
    _assert_params_equal(constant, torch_)


def _expected_shrink(mode, lam, lr, peak):
    return shrink_factor(mode, lam, lr, peak)  # the float64 oracle of docs/math.md's table


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", DECOUPLED)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_zero_gradients_give_the_product_of_shrinks(case, mode, path):
    lam = mode_lambda(mode, lr=0.03, shrink_t=0.06, peak_lr=0.03)  # s_t ≈ 0.06 at the first step
    opt = _build(case, [{"lr": 0.03, "weight_decay": lam, "decay": mode}, {"lr": 0.01, "weight_decay": lam,
                                                                           "decay": mode, "peak_lr": 0.02}], path)
    p0 = [p.clone() for p in _params(opt)]
    expected = [1.0 for _ in opt.param_groups]
    peaks = [0.03, 0.02]

    def record(_t):
        for i, group in enumerate(opt.param_groups):
            expected[i] *= 1 - _expected_shrink(mode, lam, group["lr"], peaks[i])

    _run([opt], before_step=record)
    assert 0.3 < expected[0] < 0.97  # the product moved the weights noticeably, and not to nothing
    for i, group in enumerate(opt.param_groups):
        start = p0[: len(opt.param_groups[0]["params"])] if i == 0 else p0[len(opt.param_groups[0]["params"]):]
        for p, q in zip(group["params"], start):
            torch.testing.assert_close(p, q * expected[i], **TIGHT)


@pytest.mark.parametrize("path", ADAMW.paths)
def test_double_the_lr_halve_the_weight_decay(path):
    # docs/math.md's rule of thumb: with torch's convention only lr·λ sets the shrink, so (2·lr, λ/2) decays as (lr, λ).
    a = _build(ADAMW, [{"lr": 0.01, "weight_decay": 4.0}, {"lr": 0.01, "weight_decay": 4.0}], path)
    b = _build(ADAMW, [{"lr": 0.02, "weight_decay": 2.0}, {"lr": 0.02, "weight_decay": 2.0}], path)
    _run([a, b])
    _assert_params_equal(a, b)


@pytest.mark.parametrize("path", SGDW.paths)
def test_sgd_l2_without_momentum_is_sgdw(path):
    # Loshchilov & Hutter Prop. 1: p - lr·(g + λp) = p·(1 - lr·λ) - lr·g.
    groups = [{"lr": 0.05, "weight_decay": 0.3}, {"lr": 0.02, "weight_decay": 0.0}]
    params = [random_tensors(shapes, seed=70 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]

    def make(cls, **kw):
        return cls([{"params": [p.clone() for p in ps], **g, **kw} for ps, g in zip(params, groups)], **PATH_KWARGS[path])

    l2, decoupled = make(weightdecay.SGDW, decay="l2"), make(weightdecay.SGDW, decay="torch")
    peer = make(torch.optim.SGD)
    _run([l2, decoupled, peer], gradient_stream(SHAPES, STEPS, seed=5, dtype=F64))
    _assert_params_equal(l2, decoupled)
    _assert_params_equal(decoupled, peer)


@pytest.mark.parametrize("path", SGDW.paths)
def test_sgd_l2_with_momentum_is_not_sgdw(path):
    groups = [{"lr": 0.05, "weight_decay": 0.3}, {"lr": 0.02, "weight_decay": 0.3}]
    l2 = _build(SGDW, [{**g, "decay": "l2"} for g in groups], path, nesterov=False)
    decoupled = _build(SGDW, [{**g, "decay": "torch"} for g in groups], path, nesterov=False)
    _run([l2, decoupled], gradient_stream(SHAPES, STEPS, seed=6, dtype=F64))
    assert max((p - q).abs().max().item() for p, q in zip(_params(l2), _params(decoupled))) > 1e-3


@pytest.mark.parametrize("path", ADAMW.paths)
def test_adam_l2_is_not_adamw(path):
    # The paper's point: with Adam, λ·p in the gradient is divided by sqrt(v̂); the decoupled shrink is not.
    groups = [{"lr": 0.01, "weight_decay": 0.5}, {"lr": 0.01, "weight_decay": 0.5}]
    grads = gradient_stream(SHAPES, STEPS, seed=7, dtype=F64)
    l2 = _build(ADAMW, [{**g, "decay": "l2"} for g in groups], path)
    adamw = _build(ADAMW, [{**g, "decay": "torch"} for g in groups], path)
    _run([l2, adamw], grads)
    gap = max((p - q).abs().max().item() for p, q in zip(_params(l2), _params(adamw)))
    assert gap > 1e-3
    # ... and Adam-L2 is not AdamW with any rescaled λ either: at step 1 the L2 term is λ·p/(|g + λp|), elementwise.
    l2 = _build(ADAMW, [{**g, "decay": "l2"} for g in groups], path)
    p0 = [p.clone() for p in _params(l2)]
    g0 = [g for gs in grads[0] for g in gs]
    for p, g in zip(_params(l2), g0):
        p.grad = g.clone()
    l2.step()
    for p, q, g in zip(_params(l2), p0, g0):
        full = g + 0.5 * q
        torch.testing.assert_close(p, q - 0.01 * full / (full.abs() + 1e-8), **TIGHT)


def test_stable_mode_uses_mean_second_moment_over_all_groups():
    # AdamS's s_t = lr·λ/sqrt(mean v̂_t) with the mean over every updated element of every group. With gradients
    # g·c_i (a constant c_i per group) at step 1, v̂ = g²c_i², so a tensor with a large gradient slows every
    # group's decay: compare two runs that differ only in the *other* group's gradient scale.
    lam, lr = 0.4, 0.05
    shrinks = []
    for other_scale in (1.0, 10.0):
        opt = weightdecay.AdamW([{"params": [torch.ones(4, dtype=F64)], "weight_decay": lam, "decay": "stable"},
                                 {"params": [torch.ones(4, dtype=F64)], "weight_decay": 0.0, "decay": "stable"}],
                                lr=lr, foreach=False)
        opt.param_groups[0]["params"][0].grad = torch.full((4,), 2.0, dtype=F64)
        opt.param_groups[1]["params"][0].grad = torch.full((4,), 2.0 * other_scale, dtype=F64)
        opt.step()
        # p = 1·(1 - s) - lr·u with u = g/(|g| + ε) ≈ 1: recover s.
        p = opt.param_groups[0]["params"][0]
        shrinks.append(1 - (p[0].item() + lr * 2.0 / (2.0 + 1e-8)))
    for scale, s in zip((1.0, 10.0), shrinks):
        mean_v = (4 * 4.0 + 4 * 4.0 * scale**2) / 8
        assert s == pytest.approx(lr * lam / math.sqrt(mean_v), rel=1e-9)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_constant_still_shrinks_at_zero_lr(case, path):
    # docs/math.md: constant(λ) ≡ torch(λ/lr_t) is undefined at lr_t = 0, but the shrink still happens: p ← p·(1 - λ).
    opt = _build(case, [{"lr": 0.1, "weight_decay": 0.1, "decay": "constant"}, {"lr": 0.1, "decay": "paper",
                                                                                "weight_decay": 0.1}], path)
    p0 = [p.clone() for p in _params(opt)]
    for group in opt.param_groups:
        group["lr"] = 0.0
    grads = gradient_stream(SHAPES, 1, seed=8, dtype=F64)[0]
    for group, gs in zip(opt.param_groups, grads):
        for p, g in zip(group["params"], gs):
            p.grad = g.clone()
    opt.step()
    n0 = len(opt.param_groups[0]["params"])
    for i, (p, q) in enumerate(zip(_params(opt), p0)):
        torch.testing.assert_close(p, q * (0.9 if i < n0 else 1.0), **TIGHT)  # paper: η_t = 0, no shrink
