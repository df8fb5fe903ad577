"""Learning-rate and weight-decay schedules against closed forms and against torch's own schedulers."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch.optim import lr_scheduler as tsched

from reference import shrink_factor
from weightdecay.decay import DECAY_MODES
from weightdecay.errors import UserError
from weightdecay.schedules import SCHEDULE_NAMES, make_lr_schedule, make_multiplier, restart_period

torch.set_num_threads(1)


def _opt(lrs=(0.1,)):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0])


def _trace(scheduler, steps: int) -> list[float]:
    """The lr of every group for updates k = 0 … steps-1 (flattened), stepping like a training loop."""
    out = []
    for _ in range(steps):
        out.extend(g["lr"] for g in scheduler.optimizer.param_groups)
        scheduler.optimizer.step()
        scheduler.step()
    return out


# --- closed forms at chosen steps -------------------------------------------------------------------------

def test_cosine_closed_form_with_floor_and_warmup():
    m = make_multiplier("warmup-cosine", total_steps=110, steps_per_epoch=10, warmup_steps=10, floor=0.1)
    assert m(0) == pytest.approx(1 / 10)
    assert m(9) == pytest.approx(1.0)
    assert m(10) == pytest.approx(1.0)
    assert m(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert m(85) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 75 / 100)))
    assert m(110) == pytest.approx(0.1)
    assert m(500) == pytest.approx(0.1)


def test_warmup_cosine_defaults_to_one_epoch_of_warmup():
    m = make_multiplier("warmup-cosine", total_steps=100, steps_per_epoch=7)
    assert m.warmup_steps == 7
    assert m(3) == pytest.approx(4 / 7)


def test_wsd_closed_form():
    m = make_multiplier("wsd", total_steps=100, steps_per_epoch=10, warmup_steps=5, decay_fraction=0.2, floor=0.0)
    assert [m(k) for k in (0, 4, 5, 79, 80)] == pytest.approx([0.2, 1.0, 1.0, 1.0, 1.0])
    assert m(90) == pytest.approx(0.5)
    assert m(100) == pytest.approx(0.0)
    s = make_multiplier("wsd", total_steps=100, steps_per_epoch=10, decay_steps=40, decay_shape="sqrt", floor=0.1)
    assert s(70) == pytest.approx(1 - 0.9 * math.sqrt(10 / 40))
    c = make_multiplier("wsd", total_steps=100, steps_per_epoch=10, decay_steps=40, decay_shape="cosine")
    assert c(80) == pytest.approx(0.5)


def test_keras_decay_closed_form():
    m = make_multiplier("keras-decay", total_steps=10, steps_per_epoch=5, decay=0.01)
    assert [m(k) for k in (0, 1, 100)] == pytest.approx([1.0, 1 / 1.01, 1 / 2.0])


@pytest.mark.parametrize("epoch,expected", [
    (0.0, (0, 0.0, 1.0)), (0.999, (0, 0.999, 1.0)), (1.0, (1, 0.0, 2.0)), (2.5, (1, 1.5, 2.0)),
    (3.0, (2, 0.0, 4.0)), (6.75, (2, 3.75, 4.0)), (7.0, (3, 0.0, 8.0)),
])
def test_restart_period_boundaries(epoch, expected):
    i, t_cur, t_i = restart_period(epoch, T_0=1.0, T_mult=2.0)
    assert (i, t_i) == (expected[0], expected[2])
    assert t_cur == pytest.approx(expected[1], abs=1e-12)


def test_restart_period_fractional_T0_and_Tmult():
    # periods 0.5, 0.75, 1.125 epochs: starts at 0, 0.5, 1.25, 2.375
    assert restart_period(1.25, T_0=0.5, T_mult=1.5)[0] == 2
    i, t_cur, t_i = restart_period(2.0, T_0=0.5, T_mult=1.5)
    assert (i, t_i) == (2, pytest.approx(1.125)) and t_cur == pytest.approx(0.75)
    assert restart_period(2.375, T_0=0.5, T_mult=1.5)[0] == 3
    assert restart_period(10 / 3, T_0=1 / 3, T_mult=1.0)[0] == 10  # a float boundary (10/3 / (1/3))


def test_sgdr_fractional_epochs_closed_form():
    # T_0 = 0.5 epoch of 8 batches: updates 0..3 in period 0; T_cur = k/8 epochs, not whole epochs
    m = make_multiplier("sgdr", total_steps=100, steps_per_epoch=8, T_0=0.5, T_mult=2.0, floor=0.0)
    assert m(1) == pytest.approx(0.5 * (1 + math.cos(math.pi * (1 / 8) / 0.5)))
    assert m(4) == pytest.approx(1.0)  # restart
    assert m(8) == pytest.approx(0.5)  # halfway through period 1 (length 1 epoch)
    assert m(11) == pytest.approx(0.5 * (1 + math.cos(math.pi * (7 / 8))))


# --- against torch's own schedulers -----------------------------------------------------------------------

def test_cosine_matches_torch_cosine_annealing():
    ours = make_lr_schedule("cosine", _opt((0.1, 0.02)), total_steps=50, steps_per_epoch=5)
    opt = _opt((0.1, 0.02))
    theirs = tsched.CosineAnnealingLR(opt, T_max=50)
    # torch's cosine climbs again after T_max; ours stays at the floor: compare up to k = T_max
    assert _trace(ours, 51) == pytest.approx(_trace(theirs, 51), abs=1e-12)


def test_warmup_cosine_matches_torch_sequential():
    ours = make_lr_schedule("warmup-cosine", _opt(), total_steps=60, steps_per_epoch=10, warmup_steps=10)
    opt = _opt()
    theirs = tsched.SequentialLR(opt, [tsched.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=9),
                                       tsched.CosineAnnealingLR(opt, T_max=50)], milestones=[10])
    assert _trace(ours, 60) == pytest.approx(_trace(theirs, 60), abs=1e-12)


def test_linear_matches_torch_linear_lr():
    ours = make_lr_schedule("linear", _opt(), total_steps=40, steps_per_epoch=4, floor=0.25)
    theirs = tsched.LinearLR(_opt(), start_factor=1.0, end_factor=0.25, total_iters=40)
    assert _trace(ours, 45) == pytest.approx(_trace(theirs, 45), abs=1e-12)


def test_step_matches_torch_multistep():
    ours = make_lr_schedule("step", _opt(), total_steps=100, steps_per_epoch=10, milestones=[3, 5.5, 8], gamma=0.2)
    theirs = tsched.MultiStepLR(_opt(), milestones=[30, 55, 80], gamma=0.2)
    assert _trace(ours, 100) == pytest.approx(_trace(theirs, 100), abs=1e-12)


def test_sgdr_matches_torch_warm_restarts_per_batch():
    ours = make_lr_schedule("sgdr", _opt((0.1, 0.03)), total_steps=300, steps_per_epoch=7, T_0=2, T_mult=2,
                            floor=0.0)
    theirs = tsched.CosineAnnealingWarmRestarts(_opt((0.1, 0.03)), T_0=14, T_mult=2)
    assert _trace(ours, 300) == pytest.approx(_trace(theirs, 300), abs=1e-12)


def test_sgdr_fractional_epoch_api_of_torch_agrees():
    # torch's own fractional-epoch form: scheduler.step(epoch + batch / steps_per_epoch)
    ours = make_lr_schedule("sgdr", _opt(), total_steps=80, steps_per_epoch=6, T_0=1.5, T_mult=1.0)
    opt = _opt()
    theirs = tsched.CosineAnnealingWarmRestarts(opt, T_0=9, T_mult=1)  # 1.5 epochs = 9 batches
    assert _trace(ours, 80) == pytest.approx(_trace(theirs, 80), abs=1e-12)


@pytest.mark.parametrize("T_0, T_mult, whole", [(1, 2, True), (2, 1, True), (3, 3, True), (0.5, 2, False),
                                                 (1.5, 1, False), (2, 1.5, False)])
def test_sgdr_restarts_fall_on_epoch_ends_when_T_0_and_T_mult_are_whole(T_0, T_mult, whole):
    # docs/tasks.md: tasks evaluate once per epoch, so their history holds the solution just before each restart
    # (docs/math.md, "Hyperparameter rules") exactly when every restart is an epoch's end. Period i starts at T_0·(1 + T_mult + … +
    # T_mult^(i−1)) epochs, i.e. at the first step k with k/steps_per_epoch >= that.
    steps_per_epoch, total = 7, 40 * 7
    starts, period, start = [], float(T_0), float(T_0)
    while start * steps_per_epoch < total:
        starts.append(math.ceil(start * steps_per_epoch - 1e-9))
        period *= T_mult
        start += period
    m = make_multiplier("sgdr", total_steps=total, steps_per_epoch=steps_per_epoch, T_0=T_0, T_mult=T_mult)
    assert m.restart_steps(total) == starts
    assert all(k % steps_per_epoch == 0 for k in starts) == whole


def test_sgdr_restart_steps_are_where_torch_restarts():
    m = make_multiplier("sgdr", total_steps=300, steps_per_epoch=7, T_0=2, T_mult=2)
    opt = _opt()
    theirs = tsched.CosineAnnealingWarmRestarts(opt, T_0=14, T_mult=2)
    restarts = []
    for k in range(300):
        if k and theirs.T_cur == 0:
            restarts.append(k)
        opt.step()
        theirs.step()
    assert m.restart_steps(300) == restarts == [14, 42, 98, 210]


def test_constant_and_keras_decay_on_two_groups():
    ours = make_lr_schedule("keras-decay", _opt((0.1, 0.5)), total_steps=20, steps_per_epoch=5, decay=0.1)
    assert _trace(ours, 20) == pytest.approx([lr / (1 + 0.1 * k) for k in range(20) for lr in (0.1, 0.5)])
    const = make_lr_schedule("constant", _opt(), total_steps=20, steps_per_epoch=5, warmup_steps=4)
    assert _trace(const, 6) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


# --- exact resume -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,options", [
    ("warmup-cosine", {"floor": 0.05}), ("wsd", {"decay_shape": "sqrt"}), ("step", {"milestones": [2, 3.5]}),
    ("sgdr", {"T_0": 0.7, "T_mult": 1.5, "floor": 0.01}), ("keras-decay", {"decay": 0.03}), ("linear", {}),
])
def test_resume_mid_period_continues_exactly(name, options):
    kwargs = dict(total_steps=60, steps_per_epoch=10, warmup_steps=3, **options)
    full = make_lr_schedule(name, _opt(), **kwargs)
    expected = _trace(full, 60)

    first = make_lr_schedule(name, _opt(), **kwargs)
    _trace(first, 23)  # stop mid-period
    buffer = io.BytesIO()
    torch.save({"opt": first.optimizer.state_dict(), "sched": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only: plain numbers and strings only

    opt = _opt()
    opt.load_state_dict(saved["opt"])
    # a scheduler built with different options: the state dict restores the saved multiplier
    resumed = make_lr_schedule(name, opt, total_steps=60, steps_per_epoch=10, **{
        "step": {"milestones": [1]}, "keras-decay": {"decay": 1.0}}.get(name, {}))
    resumed.load_state_dict(copy.deepcopy(saved["sched"]))
    assert resumed.multiplier == first.multiplier
    assert _trace(resumed, 37) == expected[23:]


# --- bad input --------------------------------------------------------------------------------------------

def test_unknown_name_lists_the_names():
    with pytest.raises(UserError) as err:
        make_lr_schedule("cosin", _opt(), total_steps=10, steps_per_epoch=2)
    for name in SCHEDULE_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name,kwargs,fragment", [
    ("cosine", {"total_steps": 0}, "total_steps"),
    ("cosine", {"steps_per_epoch": 2.5}, "steps_per_epoch"),
    ("cosine", {"warmup_steps": 10}, "warmup_steps"),
    ("cosine", {"floor": 1.5}, "floor"),
    ("cosine", {"gamma": 0.5}, "does not take gamma"),
    ("step", {}, "needs milestones"),
    ("step", {"milestones": [5, 2]}, "increasing"),
    ("sgdr", {"T_mult": 0.5}, "T_mult"),
    ("sgdr", {"T_0": -1}, "T_0"),
    ("keras-decay", {}, "needs decay"),
    ("wsd", {"decay_fraction": 0.95, "warmup_steps": 5}, "overlaps"),
    ("wsd", {"decay_shape": "exp"}, "decay_shape"),
])
def test_bad_options_raise_user_errors(name, kwargs, fragment):
    base = {"total_steps": 10, "steps_per_epoch": 2}
    base.update(kwargs)
    with pytest.raises(UserError, match=fragment):
        make_lr_schedule(name, _opt(), **base)


# --- weight-decay schedules on real weightdecay.AdamW runs ------------------------------------------------

import weightdecay  # noqa: E402
from weightdecay.schedules import (  # noqa: E402
    NormalizedWeightDecay,
    WeightDecayScheduler,
    make_wd_schedule,
    normalized_weight_decay,
    paper_units_factor,
)


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.randn(64, 1, generator=g, dtype=torch.float64)
    w0 = torch.randn(5, 1, generator=g, dtype=torch.float64)
    return x, y, w0


def _train(opt, params, x, y, schedulers, steps):
    for k in range(steps):
        opt.zero_grad()
        loss = ((x[k % 4 * 16:(k % 4 + 1) * 16] @ params[0] - y[k % 4 * 16:(k % 4 + 1) * 16]) ** 2).mean()
        loss.backward()
        opt.step()
        for s in schedulers:
            s.step()
    return params[0].detach().clone()


def test_wd_schedule_makes_constant_mode_train_like_torch_mode():
    # constant mode shrinks by λ_k; with λ_k = (λ·peak_lr)·η(k) that is lr_k·λ, the torch shrink, every step
    x, y, w0 = _regression()
    lam, peak = 0.3, 0.05
    p1 = torch.nn.Parameter(w0.clone())
    torch_opt = weightdecay.AdamW([p1], lr=peak, weight_decay=lam, decay="torch")
    lr1 = make_lr_schedule("warmup-cosine", torch_opt, total_steps=40, steps_per_epoch=4, warmup_steps=5)
    p2 = torch.nn.Parameter(w0.clone())
    const_opt = weightdecay.AdamW([p2], lr=peak, weight_decay=lam * peak, decay="constant")
    lr2 = make_lr_schedule("warmup-cosine", const_opt, total_steps=40, steps_per_epoch=4, warmup_steps=5)
    wd2 = make_wd_schedule("warmup-cosine", const_opt, total_steps=40, steps_per_epoch=4, warmup_steps=5)
    a = _train(torch_opt, [p1], x, y, [lr1], 40)
    b = _train(const_opt, [p2], x, y, [lr2, wd2], 40)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    # and without the wd schedule they differ: the test can fail
    p3 = torch.nn.Parameter(w0.clone())
    plain = weightdecay.AdamW([p3], lr=peak, weight_decay=lam * peak, decay="constant")
    c = _train(plain, [p3], x, y, [make_lr_schedule("warmup-cosine", plain, total_steps=40, steps_per_epoch=4,
                                                    warmup_steps=5)], 40)
    assert not torch.allclose(a, c, rtol=1e-6)


def test_wd_scheduler_zero_gradients_give_the_product_of_shrinks():
    # docs/math.md, "Decay conventions": with zero gradients p_T = p_0 · Π (1 - s_t); torch mode s_t = lr_t · λ_t
    p = torch.nn.Parameter(torch.full((3,), 2.0, dtype=torch.float64))
    opt = weightdecay.AdamW([p], lr=0.1, weight_decay=0.5)
    lr = make_lr_schedule("linear", opt, total_steps=20, steps_per_epoch=5, floor=0.1)
    wd = WeightDecayScheduler(opt, lambda k: 1.0 / (1 + k))
    expected = 2.0
    for k in range(20):
        expected *= 1 - lr.multiplier(k) * 0.1 * 0.5 / (1 + k)
        p.grad = torch.zeros_like(p)
        opt.step()
        lr.step()
        wd.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), expected, dtype=torch.float64), rtol=1e-13, atol=0)
    assert wd.get_last_wd() == [pytest.approx(0.5 / 21)]


def test_normalized_weight_decay_follows_restart_periods():
    lam_norm, b, B, spe = 0.04, 32, 640, 20  # 20 batches per epoch
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = weightdecay.AdamW([{"params": [p], "decay": "paper"},
                             {"params": [torch.nn.Parameter(torch.ones(1))], "decay": "torch", "lr": 2e-3},
                             {"params": [torch.nn.Parameter(torch.ones(1))], "weight_decay": 0.0}],
                            lr=1e-3, weight_decay=lam_norm)
    s = NormalizedWeightDecay(opt, batch_size=b, dataset_size=B, steps_per_epoch=spe, T_0=1.0, T_mult=2.0)
    seen = {}
    for k in range(140):  # periods: [0,1) T=1, [1,3) T=2, [3,7) T=4 epochs
        seen[k] = s.get_last_wd()
        opt.step()
        s.step()
    for k, T in ((0, 1), (19, 1), (20, 2), (59, 2), (60, 4), (139, 4)):
        lam = lam_norm * math.sqrt(b / (B * T))
        assert seen[k] == pytest.approx([lam, lam / 2e-3, 0.0], rel=1e-14)


def test_normalized_weight_decay_paper_and_torch_groups_train_alike():
    x, y, w0 = _regression(1)
    runs = []
    for decay in ("paper", "torch"):
        p = torch.nn.Parameter(w0.clone())
        opt = weightdecay.AdamW([p], lr=0.02, weight_decay=0.05, decay=decay)
        lr = make_lr_schedule("sgdr", opt, total_steps=48, steps_per_epoch=4, T_0=2, T_mult=2)
        wd = NormalizedWeightDecay(opt, batch_size=16, dataset_size=64, steps_per_epoch=4, T_0=2, T_mult=2)
        runs.append(_train(opt, [p], x, y, [lr, wd], 48))
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-12, atol=1e-14)


def test_normalized_weight_decay_matches_spec_cifar_example():
    # docs/math.md, "Hyperparameter rules": CIFAR-10, b=128, B=50,000, T=100, λ_norm=0.025 -> λ ≈ 1.26e-4 per step (paper units)
    assert normalized_weight_decay(0.025, 128, 50_000, 100) == pytest.approx(1.26e-4, abs=0.005e-4)
    assert normalized_weight_decay(0.025, 128, 50_000, 100) == 0.025 * math.sqrt(128 / 5e6)
    assert paper_units_factor("torch", 1e-3) == pytest.approx(1e3)
    assert paper_units_factor("paper", 1e-3) == 1.0


def _oracle_ratio(source: str, target: str, peak: float) -> float | None:
    """shrink(source)/shrink(target) from the float64 oracle (docs/math.md), if the same at every lr_t and every
    training statistic (mean v̂); None otherwise, or where one side never shrinks (coupled l2)."""
    points = [(peak, 1.0), (peak / 3, 1.0), (peak / 7, 0.25)]
    ratios = []
    for lr, statistic in points:
        a, b = (shrink_factor(m, 1.0, lr, peak, statistic) for m in (source, target))
        if a == 0 or b == 0:
            return None
        ratios.append(a / b)
    return ratios[0] if all(math.isclose(r, ratios[0], rel_tol=1e-9) for r in ratios) else None


@pytest.mark.parametrize("source", DECAY_MODES)
@pytest.mark.parametrize("target", DECAY_MODES)
def test_fixed_shrink_ratio_is_the_one_exactness_check(source, target):
    # Review finding 8: rules.convert's "exact" and paper_units_factor asked the same question in two copies.
    from weightdecay.rules import convert
    from weightdecay.schedules import fixed_shrink_ratio

    peak = 2e-3
    ratio, expected = fixed_shrink_ratio(source, target, peak), _oracle_ratio(source, target, peak)
    assert (ratio is None) == (expected is None)
    if ratio is not None:
        assert ratio == pytest.approx(expected, rel=1e-12)
    if DECAY_MODES[source].decoupled and DECAY_MODES[target].decoupled:
        c = convert(0.1, source, target, lr=peak / 3, peak_lr=peak, mean_v_hat=0.25)
        assert c.exact == (ratio is not None)
    if source == "paper":
        if ratio is None:
            with pytest.raises(UserError, match="no fixed equivalent"):
                paper_units_factor(target, peak)
        else:
            assert paper_units_factor(target, peak) == ratio


@pytest.mark.parametrize("make", [
    lambda opt: make_wd_schedule("sgdr", opt, total_steps=60, steps_per_epoch=6, T_0=0.5, T_mult=1.5),
    lambda opt: NormalizedWeightDecay(opt, batch_size=8, dataset_size=48, steps_per_epoch=6, T_0=0.5, T_mult=1.5),
])
def test_wd_scheduler_resume_is_exact(make):
    x, y, w0 = _regression(2)

    def fresh():
        p = torch.nn.Parameter(w0.clone())
        opt = weightdecay.AdamW([p], lr=0.01, weight_decay=0.2, decay="paper")
        return p, opt, make(opt), make_lr_schedule("sgdr", opt, total_steps=60, steps_per_epoch=6, T_0=0.5,
                                                   T_mult=1.5)

    p, opt, wd, lr = fresh()
    full = _train(opt, [p], x, y, [lr, wd], 60)

    p, opt, wd, lr = fresh()
    _train(opt, [p], x, y, [lr, wd], 25)
    buffer = io.BytesIO()
    torch.save({"p": p.detach(), "opt": opt.state_dict(), "wd": wd.state_dict(), "lr": lr.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only: plain numbers and strings only

    q = torch.nn.Parameter(saved["p"].clone())
    opt2 = weightdecay.AdamW([q], lr=0.01, weight_decay=0.2, decay="paper")
    wd2, lr2 = make(opt2), make_lr_schedule("sgdr", opt2, total_steps=60, steps_per_epoch=6, T_0=0.5, T_mult=1.5)
    opt2.load_state_dict(saved["opt"])
    wd2.load_state_dict(saved["wd"])
    lr2.load_state_dict(saved["lr"])
    assert wd2.get_last_wd() == wd.get_last_wd()
    # continue on the batches the full run saw next (k = 25 …): shift the data loop by 25 steps
    xs = torch.cat([x] * 2)[25 % 4 * 16:][:64]
    ys = torch.cat([y] * 2)[25 % 4 * 16:][:64]
    resumed = _train(opt2, [q], xs, ys, [lr2, wd2], 35)
    assert torch.equal(resumed, full)


def test_wd_scheduler_bad_input():
    opt = weightdecay.AdamW([torch.nn.Parameter(torch.ones(1))], decay="stable")
    with pytest.raises(UserError, match="decay='paper' or decay='torch'"):
        NormalizedWeightDecay(opt, batch_size=8, dataset_size=48, steps_per_epoch=6, epochs=3)
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, weight_decay=0.1)
    with pytest.raises(UserError, match="convention"):
        NormalizedWeightDecay(sgd, batch_size=8, dataset_size=48, steps_per_epoch=6, epochs=3)
    with pytest.raises(UserError, match="epochs"):
        NormalizedWeightDecay(torch.optim.AdamW([torch.nn.Parameter(torch.ones(1))]), batch_size=8,
                              dataset_size=48, steps_per_epoch=6)
    with pytest.raises(UserError, match="batch_size"):
        normalized_weight_decay(0.05, 0, 100, 1)
    with pytest.raises(UserError, match="multiplier"):
        WeightDecayScheduler(sgd, 0.5)


# --- onecycle: torch's OneCycleLR as a closed form ---------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0,
                                          "anneal": "linear"}])
def test_onecycle_matches_torch_onecyclelr(options):
    # torch's OneCycleLR (cycle_momentum off) is the oracle; our lr is its max_lr, so peak_lr is the group's lr.
    p = torch.nn.Parameter(torch.zeros(1))
    ours_opt, ref_opt = torch.optim.SGD([p], lr=0.1), torch.optim.SGD([p], lr=0.1)
    ours = make_lr_schedule("onecycle", ours_opt, total_steps=37, steps_per_epoch=5, **options)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt, max_lr=0.1, total_steps=37, cycle_momentum=False, pct_start=options.get("pct_start", 0.3),
        div_factor=options.get("div_factor", 25.0), final_div_factor=options.get("final_div_factor", 1e4),
        anneal_strategy=options.get("anneal", "cos"))
    for k in range(37):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), k
        ours_opt.step(), ref_opt.step(), ours.step()
        if k < 36:  # torch refuses a step past total_steps
            ref.step()


def test_onecycle_refuses_a_warmup_of_its_own():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(UserError, match="warms up by itself"):
        make_lr_schedule("onecycle", torch.optim.SGD([p], lr=0.1), total_steps=10, steps_per_epoch=5,
                         warmup_steps=2)
