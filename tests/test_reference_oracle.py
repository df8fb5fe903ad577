"""The oracle itself: tests/reference.py against torch.optim in float64 where they overlap, and against docs/math.md's
closed forms where they do not (a wrong oracle would make every optimizer test meaningless)."""

from __future__ import annotations

import math

import pytest
import torch

from optimizer_cases import DECOUPLED, mode_options
from reference import ReferenceAdamW, ReferenceSGDW, gradient_stream, random_tensors
from weightdecay.decay import lr_coefficient

F64 = torch.float64
SHAPES = [[(4, 3), (5,)], [(3, 2)]]
STEPS = 12
TIGHT = dict(rtol=1e-12, atol=1e-14)


def _torch_run(cls, groups_kwargs, defaults, grads, weight_decays=None):
    """Run a torch.optim optimizer on float64 copies; ``weight_decays(t)`` may rewrite each group's λ per step."""
    params = [random_tensors(shapes, seed=7 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]
    opt = cls([{"params": ps, **kw} for ps, kw in zip(params, groups_kwargs)], foreach=False, **defaults)
    for t, step_grads in enumerate(grads):
        if weight_decays is not None:
            for group, wd in zip(opt.param_groups, weight_decays(t)):
                group["weight_decay"] = wd
        for ps, gs in zip(params, step_grads):
            for p, g in zip(ps, gs):
                p.grad = g.clone()
        opt.step()
    return params, opt


def _ref_run(cls, groups_kwargs, defaults, grads, lrs=None):
    params = [random_tensors(shapes, seed=7 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]
    ref = cls([{"params": ps, **kw} for ps, kw in zip(params, groups_kwargs)], **defaults)
    for t, step_grads in enumerate(grads):
        ref.step(step_grads, lrs=None if lrs is None else lrs(t))
    return ref


def _assert_same(torch_params, torch_opt, ref, keys):
    for gi, ps in enumerate(torch_params):
        for pi, p in enumerate(ps):
            torch.testing.assert_close(p, ref.params[gi][pi], **TIGHT)
            for key in keys:
                if key == "step":
                    assert float(torch_opt.state[p]["step"]) == ref.state[gi][pi]["step"]
                else:
                    torch.testing.assert_close(torch_opt.state[p][key], ref.state[gi][pi][key], **TIGHT)


ADAM_PEER_CASES = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(amsgrad=True), id="amsgrad"),
    pytest.param(dict(maximize=True), id="maximize"),
    pytest.param(dict(amsgrad=True, maximize=True, betas=(0.8, 0.95), eps=1e-6), id="amsgrad-maximize-betas"),
]


@pytest.mark.parametrize("kwargs", ADAM_PEER_CASES)
@pytest.mark.parametrize("peer, mode", [(torch.optim.AdamW, "torch"), (torch.optim.Adam, "l2")])
def test_adam_oracle_matches_torch(peer, mode, kwargs):
    grads = gradient_stream(SHAPES, STEPS, seed=1, dtype=F64)
    groups = [dict(lr=0.05, weight_decay=0.3), dict(lr=0.02, weight_decay=0.0)]
    tp, topt = _torch_run(peer, groups, kwargs, grads)
    ref = _ref_run(ReferenceAdamW, groups, {**kwargs, "decay": mode}, grads)
    keys = ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if kwargs.get("amsgrad") else [])
    _assert_same(tp, topt, ref, keys)


@pytest.mark.parametrize("options", [{}, "set"], ids=["defaults", "options"])
@pytest.mark.parametrize("mode", DECOUPLED)
def test_adam_oracle_rescaled_modes_match_torch_with_per_step_lambda(mode, options):
    # Each mode is torch's AdamW with λ' = s_t / lr_t rewritten every step, under a changing lr: the oracle's s_t
    # (written from docs/math.md) against the row's c_t (weightdecay.decay), run by torch.optim.AdamW.
    options = mode_options(mode) if options else {}
    lam, peak = 0.02, 0.1
    lr_at = [0.1 * (0.5 + 0.5 * math.cos(math.pi * t / STEPS)) + 1e-3 for t in range(STEPS)]

    def factor(lr: float) -> float:
        return lr_coefficient(mode, 1.0, lr, peak, None, options)

    grads = gradient_stream(SHAPES, STEPS, seed=2, dtype=F64)
    params = [random_tensors(shapes, seed=7 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]
    opt = torch.optim.AdamW([{"params": ps} for ps in params], lr=peak, weight_decay=0.0, foreach=False)
    for t in range(STEPS):
        for group in opt.param_groups:
            group["lr"], group["weight_decay"] = lr_at[t], lam * factor(lr_at[t])
        for ps, gs in zip(params, grads[t]):
            for p, g in zip(ps, gs):
                p.grad = g.clone()
        opt.step()
    ref = _ref_run(ReferenceAdamW, [{}, {}], dict(lr=peak, weight_decay=lam, decay=mode, **options), grads,
                   lrs=lambda t: [lr_at[t]] * 2)
    _assert_same(params, opt, ref, ["step", "exp_avg", "exp_avg_sq"])


def test_adam_oracle_stable_first_step_closed_form():
    # Step 1 from zero moments: m̂ = g, v̂ = g², so u = g/(|g|+ε) and s_1 = lr·λ/sqrt(mean over all params of g²).
    lr, lam, eps = 0.05, 0.2, 1e-8
    p0 = random_tensors([(4, 3), (5,)], seed=3, dtype=F64)
    g = random_tensors([(4, 3), (5,)], seed=4, dtype=F64)
    ref = ReferenceAdamW([{"params": p0[:1]}, {"params": p0[1:], "weight_decay": 0.0}], lr=lr, weight_decay=lam,
                         decay="stable", eps=eps)
    ref.step([g[:1], g[1:]])
    mean_sq = torch.cat([x.flatten() ** 2 for x in g]).mean().item()
    s = lr * lam / math.sqrt(mean_sq)
    torch.testing.assert_close(ref.params[0][0], p0[0] * (1 - s) - lr * g[0] / (g[0].abs() + eps), **TIGHT)
    torch.testing.assert_close(ref.params[1][0], p0[1] - lr * g[1] / (g[1].abs() + eps), **TIGHT)


def test_adam_oracle_without_bias_correction_closed_form():
    # BERT arithmetic: two steps by hand with raw m, v (no division by 1-β^t).
    lr, lam, b1, b2, eps = 0.05, 0.1, 0.9, 0.999, 1e-6
    p = random_tensors([(7,)], seed=5, dtype=F64)[0]
    g1, g2 = random_tensors([(7,), (7,)], seed=6, dtype=F64)
    ref = ReferenceAdamW([{"params": [p]}], lr=lr, weight_decay=lam, eps=eps, bias_correction=False)
    ref.step([[g1]])
    ref.step([[g2]])
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    p1 = p * (1 - lr * lam) - lr * m1 / (v1.sqrt() + eps)
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2**2
    p2 = p1 * (1 - lr * lam) - lr * m2 / (v2.sqrt() + eps)
    torch.testing.assert_close(ref.params[0][0], p2, **TIGHT)


SGD_PEER_CASES = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(momentum=0.9), id="momentum"),
    pytest.param(dict(momentum=0.9, dampening=0.3), id="dampening"),
    pytest.param(dict(momentum=0.8, nesterov=True), id="nesterov"),
    pytest.param(dict(momentum=0.9, maximize=True), id="maximize"),
]


@pytest.mark.parametrize("kwargs", SGD_PEER_CASES)
def test_sgd_oracle_l2_matches_torch_sgd(kwargs):
    grads = gradient_stream(SHAPES, STEPS, seed=8, dtype=F64)
    groups = [dict(lr=0.05, weight_decay=0.3), dict(lr=0.02, weight_decay=0.0)]
    tp, topt = _torch_run(torch.optim.SGD, groups, kwargs, grads)
    ref = _ref_run(ReferenceSGDW, groups, {**kwargs, "decay": "l2"}, grads)
    _assert_same(tp, topt, ref, ["momentum_buffer"] if kwargs.get("momentum") else [])


@pytest.mark.parametrize("kwargs", SGD_PEER_CASES)
def test_sgd_oracle_decoupled_matches_torch_sgd_plus_shrink(kwargs):
    # SGDW torch mode = torch.optim.SGD(weight_decay=0) on p·(1 - lr·λ): shrink applied to p before the step.
    lr, lam = 0.05, 0.3
    grads = gradient_stream(SHAPES, STEPS, seed=9, dtype=F64)
    params = [random_tensors(shapes, seed=7 + i, dtype=F64) for i, shapes in enumerate(SHAPES)]
    opt = torch.optim.SGD([{"params": ps} for ps in params], lr=lr, foreach=False, **kwargs)
    for t in range(STEPS):
        with torch.no_grad():
            for ps, gs in zip(params, grads[t]):
                for p, g in zip(ps, gs):
                    p.grad = g.clone()
                    p.mul_(1 - lr * lam)
        opt.step()
    ref = _ref_run(ReferenceSGDW, [{}, {}], {**kwargs, "lr": lr, "weight_decay": lam, "decay": "torch"}, grads)
    _assert_same(params, opt, ref, ["momentum_buffer"] if kwargs.get("momentum") else [])


def test_oracle_skips_params_without_grad():
    p = random_tensors([(3,), (2,)], seed=10, dtype=F64)
    ref = ReferenceAdamW([{"params": p}], lr=0.1, weight_decay=0.5)
    ref.step([[torch.ones(3, dtype=F64), None]])
    torch.testing.assert_close(ref.params[0][1], p[1], rtol=0, atol=0)
    assert ref.state[0][1] == {} and ref.state[0][0]["step"] == 1
