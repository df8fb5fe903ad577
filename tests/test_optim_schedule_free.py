"""weightdecay.optim.ScheduleFreeAdamW against the schedulefree package (``AdamWScheduleFree`` and its
``AdamWScheduleFreeReference``): in ``torch`` mode the same steps; in every other mode the same steps as the
package given, each step, the ``weight_decay`` whose shrink ``lr_t·wd`` is the mode's ``s_t`` (decay.py's table).

Where the package's docstring differs from what it does: it calls ``weight_decay`` "an L2 penalty", but the
decay is decoupled (added after the preconditioner, at y, into the z step), not added to the gradient.
The repository's AdamC variant (``adamc_schedulefree_plus_paper.py``, not in the 1.4.1 release installed here)
couples AdamC's ``lr²`` scaling with Polyak step sizes and a ``step_func(loss)`` interface, so it is not compared
step by step; ``corrected`` is checked against the formula ``s_t = lr_t²/peak_lr·λ`` instead.
"""

from __future__ import annotations

import copy

import pytest
import torch

from weightdecay.decay import shrink
from weightdecay.errors import UserError
from weightdecay.optim import ScheduleFreeAdamW

schedulefree = pytest.importorskip("schedulefree")


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()


def _run(model, opt, steps, lrs=None, before_step=None):
    torch.manual_seed(1)
    opt.train()
    for t in range(steps):
        x = torch.randn(9, 5, dtype=torch.float64)
        opt.zero_grad()
        model(x).square().mean().backward()
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[t]
        if before_step is not None:
            before_step(t)
        opt.step()
    opt.eval()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("options", [dict(), dict(warmup_steps=4), dict(r=1.0, weight_lr_power=1.0)])
def test_torch_mode_is_the_packages_adamw_schedule_free(options):
    ours = _run(m := _model(), ScheduleFreeAdamW(m.parameters(), lr=0.01, weight_decay=0.3, **options), 12)
    theirs = _run(m := _model(), schedulefree.AdamWScheduleFree(m.parameters(), lr=0.01, weight_decay=0.3,
                                                                foreach=True, **options), 12)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_decay_at_z_is_the_reference_implementations_decay_at_z():
    ours = _run(m := _model(), ScheduleFreeAdamW(m.parameters(), lr=0.01, weight_decay=0.3, decay_at="z",
                                                 warmup_steps=3), 10)
    theirs = _run(m := _model(), schedulefree.AdamWScheduleFreeReference(m.parameters(), lr=0.01, weight_decay=0.3,
                                                                         decay_at_z=True, warmup_steps=3), 10)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode, lam", [("paper", 0.003), ("constant", 1e-4), ("corrected", 0.5), ("torch", 0.2)])
@pytest.mark.parametrize("decay_at", ["y", "z"])
def test_every_mode_is_the_package_with_the_modes_per_step_weight_decay(mode, lam, decay_at):
    """Under a decaying lr (and the built-in warm-up), each step's shrink is the table's ``s_t`` at the scheduled
    ``lr_t = lr·min(1, (k+1)/warmup)``; the package, given ``wd_t = s_t/lr_t`` each step, takes the same steps."""
    steps, warmup, peak = 10, 3, 0.02
    lrs = [peak * (0.05 + 0.95 * (1 - t / steps) ** 2) for t in range(steps)]
    ours = _run(m := _model(), ScheduleFreeAdamW(m.parameters(), lr=peak, weight_decay=lam, decay=mode,
                                                 warmup_steps=warmup, decay_at=decay_at), steps, lrs)
    ref = schedulefree.AdamWScheduleFreeReference(
        (m := _model()).parameters(), lr=peak, weight_decay=0.0, warmup_steps=warmup, decay_at_z=decay_at == "z")

    def set_wd(t):
        lr_t = lrs[t] * min(1.0, (t + 1) / warmup)
        for g in ref.param_groups:
            g["weight_decay"] = shrink(mode, lam, lr_t, peak) / lr_t

    theirs = _run(m, ref, steps, lrs, set_wd)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_paper_is_torch_with_lambda_over_peak_lr():
    ours = _run(m := _model(), ScheduleFreeAdamW(m.parameters(), lr=0.02, weight_decay=0.004, decay="paper"), 8,
                [0.02 * 0.8 ** t for t in range(8)])
    same = _run(m := _model(), ScheduleFreeAdamW(m.parameters(), lr=0.02, weight_decay=0.2, decay="torch"), 8,
                [0.02 * 0.8 ** t for t in range(8)])
    for a, b in zip(ours, same):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_zero_gradients_shrink_z_by_the_formula():
    """g = 0: u_t = 0, so z ← z·(1 − s_t) (decay at z), and x, the average, follows."""
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = ScheduleFreeAdamW([p], lr=0.01, weight_decay=0.5, decay="corrected", peak_lr=0.02, decay_at="z")
    opt.train()
    p.grad = torch.zeros_like(p)
    opt.step()
    s = 0.01 ** 2 / 0.02 * 0.5
    torch.testing.assert_close(opt.state[p]["z"], torch.full((3,), 1 - s, dtype=torch.float64))
    opt.eval()  # one step: c = 1, so x = z
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - s, dtype=torch.float64))


def test_refusals():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(UserError, match="not implemented for schedule-free"):
        ScheduleFreeAdamW([p], decay="stable")
    with pytest.raises(UserError, match="decay_at"):
        ScheduleFreeAdamW([p], decay_at="x")
    opt = ScheduleFreeAdamW([p])
    p.grad = torch.ones(2)
    with pytest.raises(UserError, match=r"call opt.train\(\)"):
        opt.step()


def test_state_dict_round_trip_continues_the_same_run():
    m1, m2 = _model(), _model()
    o1 = ScheduleFreeAdamW(m1.parameters(), lr=0.01, weight_decay=0.1, decay="paper")
    _run(m1, o1, 4)
    o2 = ScheduleFreeAdamW(m2.parameters(), lr=0.01, weight_decay=0.1, decay="paper")
    m2.load_state_dict(m1.state_dict())
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))  # as from a file: torch would share z otherwise
    for m, o in ((m1, o1), (m2, o2)):
        _run(m, o, 3)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_betas_are_refused_by_name():
    with pytest.raises(UserError, match="Invalid betas"):
        ScheduleFreeAdamW([torch.nn.Parameter(torch.ones(2))], betas=(0.9, 1.0))
