"""State dicts, peak_lr, zero-size parameters and parameters without gradients.

A run saved mid-training (through torch.save, optimizer and scheduler together) and resumed in a fresh optimizer
matches an uninterrupted run bit for bit; old state dicts without ``decay``/``peak_lr`` load with defaults;
``peak_lr`` survives save/load and schedulers; skipped and empty parameters behave as in torch.optim.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

import weightdecay
from optimizer_cases import ADAMW, NATIVE, PATH_KWARGS, SGDW
from reference import ReferenceAdamW, ReferenceSGDW, gradient_stream, random_tensors

STEPS, SAVE_AT = 12, 5
SHAPES = [[(5, 4), (4,)], [(3, 3)]]


def _schedule(opt):
    return SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=4), CosineAnnealingLR(opt, T_max=STEPS - 4)],
                        milestones=[4])


def _build(cls, kwargs, group_extra=None):
    params = [random_tensors(shapes, seed=80 + i) for i, shapes in enumerate(SHAPES)]
    groups = [{"params": params[0], **(group_extra or {})}, {"params": params[1], "lr": 0.004, "weight_decay": 0.0}]
    return cls(groups, **kwargs)


def _step(opt, step_grads):
    for group, gs in zip(opt.param_groups, step_grads):
        for p, g in zip(group["params"], gs):
            p.grad = g.clone()
    opt.step()


def _assert_identical(a, b):
    for ga, gb in zip(a.param_groups, b.param_groups):
        assert {k: v for k, v in ga.items() if k != "params"} == {k: v for k, v in gb.items() if k != "params"}
        for p, q in zip(ga["params"], gb["params"]):
            assert torch.equal(p, q)
            assert set(a.state[p]) == set(b.state[q])
            for key in a.state[p]:
                assert torch.equal(torch.as_tensor(a.state[p][key]), torch.as_tensor(b.state[q][key])), key


RESUME_CASES = [
    pytest.param(weightdecay.AdamW, {"lr": 0.01, "weight_decay": 2.0, "decay": "torch"}, None, id="adamw-torch"),
    pytest.param(weightdecay.AdamW, {"lr": 0.01, "weight_decay": 0.05, "decay": "paper", "amsgrad": True},
                 {"peak_lr": 0.03}, id="adamw-paper-own-peak"),
    pytest.param(weightdecay.AdamW, {"lr": 0.01, "weight_decay": 2.0, "decay": "corrected"}, None,
                 id="adamw-corrected"),
    pytest.param(weightdecay.AdamW, {"lr": 0.01, "weight_decay": 2.0, "decay": "stable"}, None, id="adamw-stable"),
    pytest.param(weightdecay.AdamW, {"lr": 0.01, "weight_decay": 0.01, "decay": "constant",
                                     "bias_correction": False}, None, id="adamw-constant-bert"),
    pytest.param(weightdecay.SGDW, {"lr": 0.05, "weight_decay": 0.05, "decay": "paper", "momentum": 0.9},
                 {"peak_lr": 0.1}, id="sgdw-paper-own-peak"),
]


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("cls, kwargs, group_extra", RESUME_CASES)
def test_resume_mid_training_is_bitwise_the_uninterrupted_run(cls, kwargs, group_extra, path):
    grads = gradient_stream(SHAPES, STEPS, seed=9)
    straight = _build(cls, {**kwargs, **PATH_KWARGS[path]}, group_extra)
    straight_sched = _schedule(straight)
    first = _build(cls, {**kwargs, **PATH_KWARGS[path]}, group_extra)
    first_sched = _schedule(first)
    for t in range(STEPS):
        _step(straight, grads[t])
        straight_sched.step()
        if t < SAVE_AT:
            _step(first, grads[t])
            first_sched.step()
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for g in first.param_groups for p in g["params"]],
                "opt": first.state_dict(), "sched": first_sched.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    # The fresh optimizer is built without the user's own peak_lr: it must come back from the state dict.
    resumed = _build(cls, {**kwargs, **PATH_KWARGS[path]})
    with torch.no_grad():
        for p, q in zip([p for g in resumed.param_groups for p in g["params"]], saved["params"]):
            p.copy_(q)
    resumed_sched = _schedule(resumed)
    resumed.load_state_dict(saved["opt"])
    resumed_sched.load_state_dict(saved["sched"])
    if group_extra:
        assert resumed.param_groups[0]["peak_lr"] == group_extra["peak_lr"]
    for t in range(SAVE_AT, STEPS):
        _step(resumed, grads[t])
        resumed_sched.step()
    _assert_identical(straight, resumed)


@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_peak_lr_defaults_to_each_groups_lr_and_schedulers_leave_it(case):
    opt = _build(case.cls, {"lr": 0.02, **case.kwargs}, {"peak_lr": 0.5})
    assert [g["peak_lr"] for g in opt.param_groups] == [0.5, 0.004]
    sched = _schedule(opt)  # LinearLR has already scaled group["lr"] by 0.1 here
    assert opt.param_groups[0]["lr"] == pytest.approx(0.002)
    for _ in range(STEPS):
        _step(opt, [[torch.ones_like(p) for p in g["params"]] for g in opt.param_groups])
        sched.step()
        assert [g["peak_lr"] for g in opt.param_groups] == [0.5, 0.004]
    assert "peak_lr" in opt.state_dict()["param_groups"][0]


@pytest.mark.parametrize("cls, kwargs", [(weightdecay.AdamW, {"decay": "paper"}), (weightdecay.AdamW, {}),
                                         (weightdecay.SGDW, {"momentum": 0.9, "decay": "corrected"})])
def test_state_dict_without_new_group_keys_loads_with_defaults(cls, kwargs):
    # An old (or torch.optim) state dict has neither decay nor peak_lr. Taken mid-warm-up, its group lr is the
    # scaled one; the base lr the schedulers scale is initial_lr, and that is the peak.
    grads = gradient_stream(SHAPES, 3, seed=10)
    opt = _build(cls, {"lr": 0.01, **kwargs})
    sched = LinearLR(opt, 0.1, total_iters=10)
    for t in range(3):
        _step(opt, grads[t])
        sched.step()
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        for key in ("decay", "peak_lr", "bias_correction"):
            group.pop(key, None)
    fresh = _build(cls, {"lr": 0.01, **kwargs})
    fresh.load_state_dict(old)
    for group, saved in zip(fresh.param_groups, opt.param_groups):
        assert group["decay"] == kwargs.get("decay", "torch")
        assert group["peak_lr"] == pytest.approx(saved["initial_lr"], rel=1e-12)
        assert group["lr"] == saved["lr"] < group["peak_lr"]
        if cls is weightdecay.AdamW:
            assert group["bias_correction"] is True
    # and it steps exactly like the optimizer the state came from
    with torch.no_grad():
        for group, saved in zip(fresh.param_groups, opt.param_groups):
            for p, q in zip(group["params"], saved["params"]):
                p.copy_(q)
    _step(opt, grads[0])
    _step(fresh, grads[0])
    for p, q in zip(opt.param_groups[0]["params"], fresh.param_groups[0]["params"]):
        assert torch.equal(p, q)


def _skip_and_empty_params():
    # group 0: a normal tensor, a zero-size tensor, a tensor that gets a gradient only on even steps;
    # group 1: a tensor that never gets one.
    return [[torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), torch.empty(0),
             torch.randn(5, generator=torch.Generator().manual_seed(2))],
            [torch.randn(2, 2, generator=torch.Generator().manual_seed(3))]]


def _grads_with_gaps(t):
    gen = torch.Generator().manual_seed(500 + t)
    return [[torch.randn(4, 3, generator=gen), torch.empty(0), torch.randn(5, generator=gen) if t % 2 == 0 else None],
            [None]]


def _set_grads(opt, grads):
    for group, gs in zip(opt.param_groups, grads):
        for p, g in zip(group["params"], gs):
            p.grad = None if g is None else g.clone()


PEERS = [
    pytest.param(weightdecay.AdamW, torch.optim.AdamW, {"decay": "torch", "amsgrad": True}, {"amsgrad": True},
                 id="adamw"),
    pytest.param(weightdecay.AdamW, torch.optim.Adam, {"decay": "l2", "weight_decay": 0.1}, {"weight_decay": 0.1},
                 id="adam-l2"),
    pytest.param(weightdecay.SGDW, torch.optim.SGD, {"decay": "l2", "weight_decay": 0.1, "momentum": 0.9},
                 {"weight_decay": 0.1, "momentum": 0.9}, id="sgd-l2"),
]


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("ours_cls, peer_cls, ours_kw, peer_kw", PEERS)
def test_zero_size_and_gradless_params_as_torch_optim(ours_cls, peer_cls, ours_kw, peer_kw, path):
    ours_params, peer_params = _skip_and_empty_params(), _skip_and_empty_params()
    ours = ours_cls([{"params": ps} for ps in ours_params], lr=0.01, **ours_kw, **PATH_KWARGS[path])
    peer = peer_cls([{"params": ps} for ps in peer_params], lr=0.01, **peer_kw, **PATH_KWARGS[path])
    for t in range(6):
        for opt in (ours, peer):
            _set_grads(opt, _grads_with_gaps(t))
            opt.step()
    for ps, qs in zip(ours_params, peer_params):
        for p, q in zip(ps, qs):
            torch.testing.assert_close(p, q, rtol=0, atol=0) if p.numel() == 0 else torch.testing.assert_close(p, q)
            assert set(ours.state.get(p, {})) == set(peer.state.get(q, {}))
            for key, value in peer.state.get(q, {}).items():
                torch.testing.assert_close(ours.state[p][key], value, check_device=False)
    assert ours_params[1][0].equal(peer_params[1][0])  # never had a gradient: untouched


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", ["paper", "constant", "corrected", "stable"])
def test_zero_size_and_gradless_params_in_every_mode_match_the_oracle(mode, path):
    # For stable, the mean of v̂_t runs over the tensors updated this step only (the skipped one drops out).
    lam = {"paper": 0.05, "constant": 0.01, "corrected": 2.0, "stable": 2.0}[mode]
    for case, ref_cls in ((ADAMW, ReferenceAdamW), (SGDW, ReferenceSGDW)):
        if mode not in case.modes:
            continue
        cls, kw = case.cls, case.kwargs
        params = _skip_and_empty_params()
        ref = ref_cls([{"params": ps} for ps in params], lr=0.02, weight_decay=lam, decay=mode, **kw)
        opt = cls([{"params": ps} for ps in params], lr=0.02, weight_decay=lam, decay=mode, **kw, **PATH_KWARGS[path])
        for t in range(6):
            _set_grads(opt, _grads_with_gaps(t))
            opt.step()
            ref.step(_grads_with_gaps(t))
        for gi, ps in enumerate(params):
            for pi, p in enumerate(ps):
                torch.testing.assert_close(p, ref.params[gi][pi].float(), rtol=2e-5, atol=2e-6)
