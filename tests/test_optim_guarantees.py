"""Guarantees every registered optimizer gets from the one delivery plan, tested over the registry, not per class.

docs/math.md ("Any base optimizer"): a step whose shrink is ``s_t ≥ 1`` would zero the weights or flip their sign, so
it is refused for every base, before any tensor or state is touched. Each row of the optimizer registry is built
the way ``train`` and the sweeps build it, for every decoupled mode it takes; an optimizer with a decay of its own
(Amos) is driven past ``s_t = 1`` by its learning rate instead.
"""

from __future__ import annotations

import copy

import pytest
import torch

from weightdecay.decay import DECAY_MODES, shrink
from weightdecay.errors import ShrinkTooLargeError
from weightdecay.optim.registry import OPTIMIZERS

SHAPES = ((4, 3), (5,))  # a matrix for the optimizers that update only matrices, a vector for their companion
SHRINK = 1.5  # s_t of the refused step


def _cases() -> list:
    cases = []
    for name, info in OPTIMIZERS.items():
        if info.own_decay:
            cases.append(pytest.param(name, None, id=f"{name}-own-decay"))
        for mode in info.decay_modes:
            if DECAY_MODES[mode].decoupled:
                cases.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return cases


def _snapshot(opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> tuple:
    state = copy.deepcopy(opt.state_dict())
    return [p.detach().clone() for p in params], state


def _assert_same(a, b, where: str) -> None:
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name, mode", _cases())
def test_every_registered_optimizer_refuses_a_shrink_of_one_or_more_untouched(name, mode):
    info = OPTIMIZERS[name]
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    if mode is None:  # Amos: its own shrink ½·γ_t, with γ_1 = lr² at the first step, reaches 1.125 at lr = 1.5
        opt = info.build(params, lr=SHRINK, weight_decay=0.0)
    else:
        # One good step first, so the refused step meets state that is there to be spoiled. Gradients of ones
        # give mean v̂ = 1, so a mode that divides by its square root shrinks by exactly lr_t·λ.
        lr = 0.5
        opt = info.build(params, lr=lr, weight_decay=0.01, decay=mode)
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        for group in opt.param_groups:
            group["weight_decay"] = SHRINK / shrink(mode, 1.0, lr, group["peak_lr"], 1.0, group)
    for p in params:
        p.grad = torch.ones_like(p)
    before, state = _snapshot(opt, params)
    with pytest.raises(ShrinkTooLargeError, match="s_t"):
        opt.step()
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b), f"{name} {mode}: the weights changed on a refused step"
    _assert_same(opt.state_dict(), state, f"{name} {mode}: state_dict")


@pytest.mark.parametrize("name, mode", [p for p in _cases() if p.values[1] is not None
                                        and DECAY_MODES[p.values[1]].statistic is None])
def test_a_refused_first_step_leaves_no_state_behind(name, mode):
    gen = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
    opt = OPTIMIZERS[name].build(params, lr=0.5, weight_decay=0.01, decay=mode)
    for group in opt.param_groups:
        group["weight_decay"] = SHRINK / shrink(mode, 1.0, 0.5, group["peak_lr"], None, group)
    for p in params:
        p.grad = torch.ones_like(p)
    before, state = _snapshot(opt, params)
    with pytest.raises(ShrinkTooLargeError):
        opt.step()
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))
    _assert_same(opt.state_dict(), state, f"{name} {mode}: state_dict")

