"""weightdecay's optimizers against their torch.optim peers, path by path (single-tensor, foreach, fused).

decay="torch" is torch.optim.AdamW; decay="l2" is torch.optim.Adam(weight_decay) and torch.optim.SGD(weight_decay);
any mode with weight_decay 0 is the undecayed peer. Same schedule, same gradients, 15 steps, params and state
held to torch.testing.assert_close's float32 defaults (about 1 ulp). State dicts load across in both directions.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

import weightdecay
from optimizer_cases import ADAMW, NATIVE, PATH_KWARGS, SGDW
from reference import gradient_stream, random_tensors

STEPS = 15
SHAPES = [[(8, 4), (4,)], [(3, 5)]]


def _params() -> list[list[torch.Tensor]]:
    return [random_tensors(shapes, seed=40 + i) for i, shapes in enumerate(SHAPES)]


def _build(cls, group_kwargs: list[dict], **kwargs) -> torch.optim.Optimizer:
    return cls([{"params": ps, **kw} for ps, kw in zip(_params(), group_kwargs)], **kwargs)


def _schedule(opt):
    return SequentialLR(opt, [LinearLR(opt, 0.25, total_iters=3), CosineAnnealingLR(opt, T_max=STEPS - 3)],
                        milestones=[3])


def _set_grads(opt, step_grads):
    for group, gs in zip(opt.param_groups, step_grads):
        for p, g in zip(group["params"], gs):
            p.grad = g.clone()


def _assert_same_trajectory(ours, theirs, steps=STEPS, seed=3, schedule=True):
    grads = gradient_stream(SHAPES, steps, seed=seed)
    scheds = [_schedule(ours), _schedule(theirs)] if schedule else []
    for t in range(steps):
        for opt in (ours, theirs):
            _set_grads(opt, grads[t])
            opt.step()
        for s in scheds:
            s.step()
        for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups):
            for p, q in zip(g_ours["params"], g_theirs["params"]):
                torch.testing.assert_close(p, q, msg=lambda m: f"param after step {t + 1}: {m}")
    _assert_same_state(ours, theirs)


def _assert_same_state(ours, theirs):
    for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups):
        for p, q in zip(g_ours["params"], g_theirs["params"]):
            s, r = ours.state[p], theirs.state[q]
            assert set(s) == set(r), f"state keys {sorted(s)} != torch's {sorted(r)}"
            for key in r:
                torch.testing.assert_close(s[key], r[key], check_device=False, msg=lambda m: f"state[{key!r}]: {m}")


ADAM_CASES = [
    pytest.param("torch", torch.optim.AdamW, {}, id="torch"),
    pytest.param("torch", torch.optim.AdamW, {"amsgrad": True}, id="torch-amsgrad"),
    pytest.param("torch", torch.optim.AdamW, {"maximize": True, "betas": (0.85, 0.99)}, id="torch-maximize"),
    pytest.param("torch", torch.optim.AdamW, {"amsgrad": True, "maximize": True, "eps": 1e-6},
                 id="torch-amsgrad-maximize"),
    pytest.param("l2", torch.optim.Adam, {}, id="l2"),
    pytest.param("l2", torch.optim.Adam, {"amsgrad": True}, id="l2-amsgrad"),
    pytest.param("l2", torch.optim.Adam, {"maximize": True}, id="l2-maximize"),
    pytest.param("l2", torch.optim.Adam, {"amsgrad": True, "maximize": True}, id="l2-amsgrad-maximize"),
]


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode, peer, kwargs", ADAM_CASES)
def test_adamw_equals_torch_peer(mode, peer, kwargs, path):
    groups = [{"lr": 0.01, "weight_decay": 0.3}, {"lr": 0.004, "weight_decay": 0.0}]
    ours = _build(weightdecay.AdamW, [{**g, "decay": mode} for g in groups], **kwargs, **PATH_KWARGS[path])
    theirs = _build(peer, groups, **kwargs, **PATH_KWARGS[path])
    _assert_same_trajectory(ours, theirs)


SGD_CASES = [
    pytest.param({}, id="plain"),
    pytest.param({"momentum": 0.9}, id="momentum"),
    pytest.param({"momentum": 0.9, "dampening": 0.4}, id="dampening"),
    pytest.param({"momentum": 0.9, "nesterov": True}, id="nesterov"),
    pytest.param({"momentum": 0.9, "maximize": True}, id="maximize"),
]


@pytest.mark.parametrize("path", SGDW.paths)
@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgdw_l2_equals_torch_sgd(kwargs, path):
    groups = [{"lr": 0.05, "weight_decay": 0.2}, {"lr": 0.02, "weight_decay": 0.0}]
    ours = _build(weightdecay.SGDW, [{**g, "decay": "l2"} for g in groups], **kwargs, **PATH_KWARGS[path])
    theirs = _build(torch.optim.SGD, groups, **kwargs, **PATH_KWARGS[path])
    _assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", ADAMW.modes)
def test_every_adam_mode_without_decay_is_torch_adam(mode, path):
    ours = _build(weightdecay.AdamW, [{"decay": mode}, {"decay": mode}], lr=0.01, weight_decay=0.0, **PATH_KWARGS[path])
    theirs = _build(torch.optim.Adam, [{}, {}], lr=0.01, weight_decay=0.0, **PATH_KWARGS[path])
    _assert_same_trajectory(ours, theirs, steps=8)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", SGDW.modes)
def test_every_sgd_mode_without_decay_is_torch_sgd(mode, path):
    ours = _build(weightdecay.SGDW, [{"decay": mode}, {}], lr=0.05, momentum=0.9, **PATH_KWARGS[path])
    theirs = _build(torch.optim.SGD, [{}, {}], lr=0.05, momentum=0.9, **PATH_KWARGS[path])
    _assert_same_trajectory(ours, theirs, steps=8)


def test_defaults_are_torch_defaults():
    # decay="torch" by default, so weightdecay.AdamW is a drop-in for torch.optim.AdamW (weight_decay 1e-2 included).
    ours = _build(weightdecay.AdamW, [{}, {}])
    theirs = _build(torch.optim.AdamW, [{}, {}])
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
        assert ours.defaults[key] == theirs.defaults[key], key
    assert ours.defaults["decay"] == "torch"
    _assert_same_trajectory(ours, theirs, steps=5, schedule=False)


def _continue_both(first, second, steps=6, seed=11):
    """Step two optimizers on the same gradients and require identical params and state."""
    grads = gradient_stream(SHAPES, steps, seed=seed)
    for t in range(steps):
        for opt in (first, second):
            _set_grads(opt, grads[t])
            opt.step()
        for g1, g2 in zip(first.param_groups, second.param_groups):
            for p, q in zip(g1["params"], g2["params"]):
                torch.testing.assert_close(p, q)
    _assert_same_state(first, second)


def _copy_params(src: torch.optim.Optimizer, dst: torch.optim.Optimizer):
    with torch.no_grad():
        for g1, g2 in zip(src.param_groups, dst.param_groups):
            for p, q in zip(g1["params"], g2["params"]):
                q.copy_(p)


STATE_DICT_CASES = [
    pytest.param(weightdecay.AdamW, torch.optim.AdamW, "torch", {"amsgrad": True}, id="adamw"),
    pytest.param(weightdecay.AdamW, torch.optim.Adam, "l2", {"weight_decay": 0.1}, id="adam-l2"),
    pytest.param(weightdecay.SGDW, torch.optim.SGD, "l2", {"momentum": 0.9, "weight_decay": 0.1}, id="sgd-l2"),
]


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("ours_cls, peer_cls, mode, kwargs", STATE_DICT_CASES)
def test_torch_state_dict_loads_into_ours_and_back(ours_cls, peer_cls, mode, kwargs, path):
    groups = [{"lr": 0.01}, {"lr": 0.005, "weight_decay": 0.0}]
    # torch -> ours: train torch's optimizer, load its state dict into ours, then both continue in lockstep.
    theirs = _build(peer_cls, groups, **kwargs, **PATH_KWARGS[path])
    _continue_both(theirs, _build(peer_cls, groups, **kwargs, **PATH_KWARGS[path]), steps=4, seed=5)
    ours = _build(ours_cls, groups, decay=mode, **kwargs, **PATH_KWARGS[path])
    _copy_params(theirs, ours)
    # deepcopy, as a save/load would: torch's load_state_dict may keep the very tensors it is given.
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert [g["decay"] for g in ours.param_groups] == [mode, mode]
    _continue_both(ours, theirs)
    # ours -> torch: a fresh torch optimizer takes our state dict (extra group keys and all) and keeps in step.
    back = _build(peer_cls, groups, **kwargs, **PATH_KWARGS[path])
    _copy_params(ours, back)
    back.load_state_dict(copy.deepcopy(ours.state_dict()))
    _continue_both(ours, back, seed=12)


@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.name)
def test_step_with_a_closure_is_torchs(case):
    # The closure runs with gradients on (step itself is under no_grad), once, and step returns its loss.
    mode, extra = ("torch", case.torch_kwargs) if case.shrinks_by_lr else ("l2", case.l2_kwargs)
    target = random_tensors([(3, 4)], seed=9)[0]
    params = [random_tensors([(3, 4)], seed=8)[0].requires_grad_() for _ in range(2)]
    ours = case.cls([params[0]], lr=0.01, weight_decay=0.1, decay=mode, **case.kwargs)
    theirs = case.base([params[1]], lr=0.01, weight_decay=0.1, **case.kwargs, **extra)
    losses = []
    for opt, p in ((ours, params[0]), (theirs, params[1])):
        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = (p - target).square().sum()
            loss.backward()
            return loss

        losses.append([float(opt.step(closure).detach()) for _ in range(3)])
    assert losses[0] == losses[1]
    torch.testing.assert_close(params[0], params[1])
