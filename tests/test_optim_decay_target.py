"""Decay toward a target (L2-SP, heavyball's weight_decay_to_init / weight_decay_to_ema):
``p ← p − s_t·(p − p_target) − lr_t·u_t``, checked against float64 recurrences of that formula, with zero
gradients (the decay alone) and with real ones (beside the same optimizer decaying toward zero)."""

from __future__ import annotations

import copy

import pytest
import torch

import weightdecay
from weightdecay.errors import UserError
from weightdecay.optim import decay_toward

F64 = torch.float64
LRS = [0.1 * 0.9 ** t for t in range(6)]


def _param(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Parameter(torch.randn(5, 3, dtype=F64))


def _steps(opt, params, lrs=LRS, grads=None):
    for t, lr in enumerate(lrs):
        for g in opt.param_groups:
            g["lr"] = lr
        for i, p in enumerate(params):
            p.grad = torch.zeros_like(p) if grads is None else grads[t][i].clone()
        opt.step()


@pytest.mark.parametrize("mode, lam", [("torch", 0.5), ("paper", 0.05), ("corrected", 0.3), ("constant", 0.02)])
@pytest.mark.parametrize("make", [
    lambda ps, mode, lam: weightdecay.AdamW(ps, lr=0.1, weight_decay=lam, decay=mode),
    lambda ps, mode, lam: weightdecay.SGDW(ps, lr=0.1, momentum=0.9, weight_decay=lam, decay=mode),
    lambda ps, mode, lam: weightdecay.NAdam(ps, lr=0.1, weight_decay=lam, decay=mode),
], ids=["adamw", "sgdw", "nadam"])
def test_zero_gradients_pull_toward_the_initial_weights(mode, lam, make):
    """With g = 0: p_T − p_0' = (p_0 − p_0')·Π(1 − s_t); here p_0' is where the weights were when attached and
    they are moved away before training, as a fine-tuned model leaves its pretrained weights."""
    p = _param()
    opt = make([p], mode, lam)
    decay_toward(opt, "init")
    anchor = p.detach().clone()
    with torch.no_grad():
        p.add_(1.0)
    start = p.detach().clone()
    _steps(opt, [p])
    factor = torch.tensor([1 - weightdecay.shrink(mode, lam, lr, 0.1) for lr in LRS], dtype=F64).prod()
    torch.testing.assert_close(p.detach(), anchor + (start - anchor) * factor)


def test_with_gradients_the_target_adds_its_share_beside_the_same_adam_steps():
    """AdamW's moments read only the gradients, so a twin decaying toward 0, fed the same gradients, takes the same
    ``u_t``; the difference d = p − q then follows d ← d·(1 − s_t) + s_t·p_0, i.e. d_T = p_0·(1 − Π(1 − s_t))."""
    torch.manual_seed(1)
    grads = [[torch.randn(5, 3, dtype=F64)] for _ in LRS]
    p, q = _param(), _param()
    target = p.detach().clone()
    opt = weightdecay.AdamW([p], lr=0.1, weight_decay=0.4, decay="paper")
    decay_toward(opt, "init")
    plain = weightdecay.AdamW([q], lr=0.1, weight_decay=0.4, decay="paper")
    _steps(opt, [p], grads=grads)
    _steps(plain, [q], grads=grads)
    kept = torch.tensor([1 - weightdecay.shrink("paper", 0.4, lr, 0.1) for lr in LRS], dtype=F64).prod()
    torch.testing.assert_close(p.detach() - q.detach(), target * (1 - kept))


def test_l2_pulls_the_gradient_toward_the_target():
    """Coupled: SGD without momentum, p ← p − lr·(g + λ·(p − p_0)); with g = 0, (p − p_0) shrinks by (1 − lr·λ)."""
    p = _param()
    opt = weightdecay.SGDW([p], lr=0.1, weight_decay=0.5, decay="l2")
    decay_toward(opt, "init")
    anchor = p.detach().clone()
    with torch.no_grad():
        p.mul_(3.0)
    start = p.detach().clone()
    _steps(opt, [p])
    factor = torch.tensor([1 - lr * 0.5 for lr in LRS], dtype=F64).prod()
    torch.testing.assert_close(p.detach(), anchor + (start - anchor) * factor)


def test_ema_target_follows_the_weights():
    """heavyball's weight_decay_to_ema: e_0 = p_0; p ← p − s·(p − e); e ← β·e + (1 − β)·p, a float64 loop."""
    torch.manual_seed(2)
    grads = [[torch.randn(5, 3, dtype=F64)] for _ in LRS]
    p = _param()
    opt = weightdecay.SGDW([p], lr=0.1, weight_decay=0.5, decay="torch")
    decay_toward(opt, "ema", ema_beta=0.8)
    ref_p, ref_e = p.detach().clone(), p.detach().clone()
    _steps(opt, [p], grads=grads)
    for t, lr in enumerate(LRS):
        s = lr * 0.5
        ref_p = ref_p - s * (ref_p - ref_e) - lr * grads[t][0]
        ref_e = 0.8 * ref_e + 0.2 * ref_p
    torch.testing.assert_close(p.detach(), ref_p)
    torch.testing.assert_close(opt.state[p]["decay_target"], ref_e)


def test_the_target_is_saved_with_the_optimizer_and_restored():
    p = _param()
    opt = weightdecay.AdamW([p], lr=0.1, weight_decay=0.5)
    decay_toward(opt, "init")
    anchor = p.detach().clone()
    _steps(opt, [p], [0.1])
    saved = copy.deepcopy(opt.state_dict())
    assert torch.equal(saved["state"][0]["decay_target"], anchor)
    q = torch.nn.Parameter(p.detach().clone() + 5)  # a fresh process: the weights now are not the target
    fresh = weightdecay.AdamW([q], lr=0.1, weight_decay=0.5)
    decay_toward(fresh, "init")
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.state[q]["decay_target"], anchor)


def test_refusals():
    p = _param()
    with pytest.raises(UserError, match="Invalid target"):
        decay_toward(weightdecay.AdamW([p]), "zero")
    with pytest.raises(UserError, match="stable"):
        decay_toward(weightdecay.AdamW([p], decay="stable"))
    with pytest.raises(UserError, match="cautious"):
        decay_toward(weightdecay.AdamW([p], cautious=True))
    with pytest.raises(UserError, match="needs the convention of Adam"):
        decay_toward(torch.optim.Adam([p], weight_decay=0.1))  # coupled L2, not a shrink
    with pytest.raises(UserError, match="ScheduleFreeAdamW"):
        decay_toward(weightdecay.optim.ScheduleFreeAdamW([p]))


def test_torch_optim_adamw_is_read_as_torch():
    p = _param()
    opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)
    decay_toward(opt, "init")
    anchor = p.detach().clone()
    with torch.no_grad():
        p.add_(1.0)
    _steps(opt, [p])
    factor = torch.tensor([1 - lr * 0.5 for lr in LRS], dtype=F64).prod()
    torch.testing.assert_close(p.detach(), anchor + factor)
