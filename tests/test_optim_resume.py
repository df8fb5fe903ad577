"""Resuming with a new learning rate (ModernBERT#123, Megatron-LM#7468): the loaded peak_lr is kept, one warning
says what each mode then does, and rebase_peak_lr moves it explicitly; checked against the shrink formula with
zero gradients (a step is then ``p ← p·(1 − s_t)``)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import weightdecay
from weightdecay.errors import UserError
from weightdecay.optim import rebase_peak_lr


def _saved(lr=1e-3, decay="paper", step=True):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = weightdecay.AdamW(model.parameters(), lr=lr, weight_decay=0.1, decay=decay)
    if step:
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
    return copy.deepcopy(opt.state_dict())


def _peak_warnings(record):
    return [w for w in record if "peak_lr differs" in str(w.message)]


def _load(opt, state):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        opt.load_state_dict(state)
    return _peak_warnings(record)


def _zero_grad_step(opt):
    params = [p for g in opt.param_groups for p in g["params"]]
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    return [(p.detach() / b).mean().item() for p, b in zip(params, before)]


def test_one_warning_naming_each_mode_when_the_lr_changed():
    opt = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=2e-3, weight_decay=0.1, decay="paper")
    caught = _load(opt, _saved())
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "decay='paper': saved 0.001, now 0.002, 2x" in text and "rebase_peak_lr" in text
    assert "'torch'" in text and "'constant'" in text and "'corrected'" in text
    assert opt.param_groups[0]["peak_lr"] == 1e-3 and opt.param_groups[0]["lr"] == 1e-3  # the loaded values


def test_no_warning_when_nothing_changed_or_nothing_to_compare():
    same = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3, weight_decay=0.1, decay="paper")
    assert _load(same, _saved()) == []
    model = torch.nn.Linear(3, 2)
    torch_opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model(torch.randn(4, 3)).sum().backward()
    torch_opt.step()
    assert _load(weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3), torch_opt.state_dict()) == []


def test_one_cycle_resume_compares_the_peak_the_scheduler_declares():
    """OneCycleLR writes max_lr into each group and resolve_peak_lr takes it: resuming the same schedule is
    no change of lr."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = weightdecay.AdamW(model.parameters(), lr=1e-3, decay="paper")
    torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = copy.deepcopy(opt.state_dict())
    again = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3, decay="paper")
    torch.optim.lr_scheduler.OneCycleLR(again, max_lr=1e-2, total_steps=10)
    assert _load(again, state) == []


@pytest.mark.parametrize("decay", ["paper", "corrected", "torch", "constant"])
def test_what_each_mode_does_after_loading_and_after_rebasing(decay):
    """Resumed at lr 2e-3 from a run whose peak was 1e-3: paper and corrected measure the new lr against the
    loaded peak until rebase_peak_lr moves it; torch and constant never read it."""
    opt = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=2e-3, weight_decay=0.1, decay=decay)
    _load(opt, _saved(decay=decay, step=False))  # no moments yet: a zero-gradient step is the shrink alone
    opt.param_groups[0]["lr"] = 2e-3  # the new schedule's first lr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lr_t above the loaded peak warns too (paper, corrected)
        kept = _zero_grad_step(opt)
    assert kept == pytest.approx([1 - weightdecay.shrink(decay, 0.1, 2e-3, 1e-3)] * 2, rel=1e-6)
    assert rebase_peak_lr(opt, 2e-3, rescale_lr=False) == [1e-3]
    rebased = _zero_grad_step(opt)
    assert rebased == pytest.approx([1 - weightdecay.shrink(decay, 0.1, 2e-3, 2e-3)] * 2, rel=1e-6)


def test_rebase_keeps_the_schedule_position_and_moves_the_schedulers_base_lrs():
    opt = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3, decay="paper")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for _ in range(3):
        opt.step()
        sched.step()
    eta = opt.param_groups[0]["lr"] / opt.param_groups[0]["peak_lr"]
    rebase_peak_lr(opt, 4e-3, scheduler=sched)
    group = opt.param_groups[0]
    assert group["lr"] / group["peak_lr"] == pytest.approx(eta) and sched.base_lrs == [pytest.approx(4e-3)]
    sched.step()
    assert group["lr"] == pytest.approx(4e-3 * (1 + torch.cos(torch.tensor(4 * torch.pi / 10)).item()) / 2)


def test_rebase_keeps_layer_scales_and_refuses_bad_input():
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ModuleList([torch.nn.Linear(4, 4)] * 2),
                                torch.nn.Linear(4, 1))
    model[1] = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])
    groups = weightdecay.param_groups(model, 0.1, layer_decay=0.5, lr=1e-3, decay="paper", decay_follows_lr=False)
    opt = weightdecay.AdamW(groups)
    rebase_peak_lr(opt, 2e-3)
    assert [g["peak_lr"] for g in opt.param_groups] == pytest.approx([2e-3 * g["lr_scale"] for g in opt.param_groups])
    with pytest.raises(UserError, match="one per parameter group"):
        rebase_peak_lr(opt, [1e-3])
    with pytest.raises(UserError, match="must be a finite number > 0"):
        rebase_peak_lr(opt, -1.0)


def test_an_explicit_saved_peak_is_compared_only_with_an_explicit_one():
    state = _saved(lr=1e-3)
    state["param_groups"][0].update(peak_lr=3e-3, peak_lr_explicit=True)
    rebuilt = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3, decay="paper")
    assert _load(rebuilt, copy.deepcopy(state)) == []
    new_peak = weightdecay.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3, decay="paper", peak_lr=6e-3)
    assert len(_load(new_peak, copy.deepcopy(state))) == 1
