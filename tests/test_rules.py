"""weightdecay.rules against docs/math.md's formulas and worked examples, round trips (hypothesis), training
equality with weightdecay.AdamW / torch.optim.AdamW, and simulations of the equilibrium claims."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import weightdecay
from weightdecay.decay import DECAY_MODES, shrink
from weightdecay.rules.conventions import get_convention
from weightdecay.errors import UserError
from weightdecay.rules import (
    CONVENTION_NAMES,
    CONVENTIONS,
    FRAMEWORK_NAMES,
    TRANSFER_RULES,
    adamc_target_ratio,
    advise,
    convert,
    convert_all,
    ema_timescale,
    equilibrium_norm,
    equilibrium_rotation,
    normalized_weight_decay,
    transfer,
    weight_decay_for_timescale,
    weight_decay_norm,
)
from weightdecay.schedules import make_lr_schedule

torch.set_num_threads(1)

CIFAR = {"batch_size": 128, "dataset_size": 50_000, "epochs": 100}
DECOUPLED = [n for n in CONVENTION_NAMES  # a fixed λ in each shrinks alike without a training statistic
             if DECAY_MODES[CONVENTIONS[n].mode].decoupled and DECAY_MODES[CONVENTIONS[n].mode].statistic is None]


# --- docs/math.md worked examples ------------------------------------------------------------------------------

def test_spec_cifar10_normalized_example():
    # b=128, B=50,000, T=100: λ ≈ 1.26e-4 per step (paper units), i.e. weight_decay ≈ 0.126 (torch) at lr=1e-3
    lam = normalized_weight_decay(0.025, **CIFAR)
    assert lam == pytest.approx(1.26e-4, abs=5e-7)
    assert convert(lam, "paper", "torch", lr=1e-3).weight_decay == pytest.approx(0.126, abs=5e-4)
    assert convert(0.025, "normalized", "pytorch", lr=1e-3, **CIFAR).weight_decay == pytest.approx(lam / 1e-3)
    assert weight_decay_norm(lam, **CIFAR) == pytest.approx(0.025, rel=1e-14)


def test_spec_rule_of_thumb_lr_doubles_halve_wd():
    assert transfer(0.1, lr=(1e-3, 2e-3)).weight_decay == pytest.approx(0.05)
    assert transfer(1e-4, lr=(1e-3, 2e-3), convention="paper").weight_decay == pytest.approx(1e-4)
    assert convert(0.1, "torch", "paper", lr=1e-3).weight_decay == pytest.approx(1e-4)  # paper(λ) ≡ torch(λ/peak)


def test_spec_ema_timescale_formulas():
    tau = ema_timescale(2e-3, 0.05, batch_size=256, dataset_size=1_000_000)
    assert tau.iterations == pytest.approx(1 / (2e-3 * 0.05))
    assert tau.epochs == pytest.approx(1 / (2e-3 * 0.05) * 256 / 1_000_000)
    # λ = b / (lr·B·τ_epoch); λ ∝ 1/B at fixed epochs
    assert weight_decay_for_timescale(lr=2e-3, tau_epoch=3.0, batch_size=256, dataset_size=1e6) == pytest.approx(
        256 / (2e-3 * 1e6 * 3.0))
    assert transfer(0.1, lr=1e-3, rule="keep-tau-epoch", dataset_size=(1e5, 4e5)).weight_decay == pytest.approx(
        0.025)
    # μP: lr ∝ 1/fan_in, so at fixed τ_epoch λ ∝ fan_in
    t = transfer(0.1, lr=1e-3, rule="keep-tau-epoch", width=(256, 1024))
    assert (t.lr, t.weight_decay) == (pytest.approx(2.5e-4), pytest.approx(0.4))


def test_spec_rotation_and_adamc_formulas():
    assert equilibrium_rotation(1e-3, 0.1, beta1=0.9) == pytest.approx(math.sqrt(2e-4 * 0.1 / 1.9))
    assert equilibrium_rotation(0.1, 5e-4, optimizer="sgd", momentum=0.9) == pytest.approx(math.sqrt(1e-4 / 1.9))
    assert adamc_target_ratio(1e-4, 0.1) == pytest.approx(math.sqrt(2 * 0.1 / 1e-4))
    assert adamc_target_ratio(1e-4, 0.1, convention="corrected", peak_lr=1e-3) == pytest.approx(
        math.sqrt(2 * 0.1 / 1e-3))


def test_sgd_rotation_reads_weight_decay_in_its_convention():
    # Review finding 5: λ=1e-4 in paper units at lr = peak_lr is s = 1e-4 per step, as torch λ = 0.1 is; the
    # rotation of torch.optim.SGD follows s (docs/math.md, "Hyperparameter rules": sqrt(2·lr·λ/(1+μ)) with torch-convention λ).
    lr, mu = 1e-3, 0.9
    expected = math.sqrt(2 * 1e-4 / (1 + mu))
    assert equilibrium_rotation(lr, 1e-4, optimizer="sgd", momentum=mu, convention="paper") == pytest.approx(expected)
    assert equilibrium_rotation(lr, 0.1, optimizer="sgd", momentum=mu, convention="torch") == pytest.approx(expected)
    assert equilibrium_rotation(lr, 0.1, optimizer="sgd", momentum=mu, convention="l2") == pytest.approx(expected)
    a = advise(lr=lr, weight_decay=1e-4, convention="paper", optimizer="sgd", momentum=mu, batch_size=128,
               dataset_size=50_000, epochs=100)
    assert a.shrink == pytest.approx(1e-4) and a.rotation == pytest.approx(expected)


def test_normalized_transfer_follows_inverse_square_roots():
    # λ* ∝ T^(-1/2) and ∝ B^(-1/2) under normalized weight decay (docs/math.md, Claim 5)
    t = transfer(1e-4, lr=1e-3, convention="paper", rule="normalized", epochs=(100, 400), dataset_size=(5e4, 2e5))
    assert t.weight_decay == pytest.approx(1e-4 / 4)
    t = transfer(1e-4, lr=1e-3, convention="paper", rule="normalized", batch_size=(128, 512))
    assert t.weight_decay == pytest.approx(2e-4)


def test_keras_adamw_normalizes_by_iterations():
    # keras-adamw: λ_paper = w·sqrt(b / total_iterations_wd); 100 epochs of 50,000/128 steps
    steps = 50_000 * 100 / 128
    c = convert(0.05, "keras-adamw", "paper", lr=1e-3, batch_size=128, total_steps=steps)
    assert c.weight_decay == pytest.approx(0.05 * math.sqrt(128 / steps))
    assert convert(0.05, "keras-adamw", "paper", lr=1e-3, **CIFAR).weight_decay == pytest.approx(c.weight_decay)


# --- every conversion keeps the shrink of the decay table ----------------------------------------------------

lrs = st.floats(1e-6, 1.0)
# Zero or a normal-sized λ: a subnormal λ (5e-324) loses its digits in lr_t·λ, and the exactness check with it.
wds = st.one_of(st.just(0.0), st.floats(1e-30, 10.0))
conventions = st.sampled_from(DECOUPLED)
SIZES = {"batch_size": 64, "dataset_size": 10_000, "epochs": 7}


@settings(max_examples=300, deadline=None)
@given(wd=wds, lr=lrs, peak_ratio=st.floats(1.0, 100.0), a=conventions, b=conventions)
def test_round_trip_between_any_two_conventions(wd, lr, peak_ratio, a, b):
    peak = lr * peak_ratio
    if {get_convention(a).part, get_convention(b).part} == {"muon", "adamw"}:  # Muon's two λs are not one
        with pytest.raises(UserError, match="two λs"):
            convert(wd, a, b, lr=lr, peak_lr=peak, **SIZES)
        return
    there = convert(wd, a, b, lr=lr, peak_lr=peak, **SIZES)
    back = convert(there.weight_decay, b, a, lr=lr, peak_lr=peak, **SIZES)
    assert back.weight_decay == pytest.approx(wd, rel=1e-12, abs=1e-300)
    assert back.exact == there.exact


@settings(max_examples=200, deadline=None)
@given(wd=wds, lr=lrs, peak_ratio=st.floats(1.0, 100.0), a=st.sampled_from(["torch", "paper", "constant",
                                                                               "corrected"]),
       b=st.sampled_from(["torch", "paper", "constant", "corrected"]))
def test_conversion_preserves_the_tables_shrink(wd, lr, peak_ratio, a, b):
    peak = lr * peak_ratio
    c = convert(wd, a, b, lr=lr, peak_lr=peak)
    assert shrink(b, c.weight_decay, lr, peak) == pytest.approx(shrink(a, wd, lr, peak), rel=1e-12, abs=1e-300)
    # exact through a schedule iff the shrink also agrees at another lr_t
    other = lr / 3
    agrees = math.isclose(shrink(b, c.weight_decay, other, peak), shrink(a, wd, other, peak), rel_tol=1e-9)
    assert c.exact == agrees or wd == 0


@settings(max_examples=200, deadline=None)
@given(wd=st.floats(1e-6, 10.0), lr=lrs, mean_v_hat=st.floats(1e-12, 1e3))
def test_stable_round_trip_with_mean_v_hat(wd, lr, mean_v_hat):
    c = convert(wd, "stable", "torch", lr=lr, mean_v_hat=mean_v_hat)
    assert c.weight_decay == pytest.approx(wd / math.sqrt(mean_v_hat), rel=1e-12)
    assert not c.exact
    assert convert(c.weight_decay, "torch", "stable", lr=lr, mean_v_hat=mean_v_hat).weight_decay == pytest.approx(wd)


@settings(max_examples=200, deadline=None)
@given(wd=st.floats(1e-6, 1.0), lr=st.tuples(lrs, lrs), b=st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
       n=st.tuples(st.integers(1000, 10**7), st.integers(1000, 10**7)), t=st.tuples(st.floats(0.5, 500),
                                                                                  st.floats(0.5, 500)),
       rule=st.sampled_from(sorted(TRANSFER_RULES)), conv=st.sampled_from(["torch", "paper", "pytorch", "composer"]))
def test_transfer_round_trip(wd, lr, b, n, t, rule, conv):
    there = transfer(wd, lr=lr, rule=rule, convention=conv, batch_size=b, dataset_size=n, epochs=t)
    back = transfer(there.weight_decay, lr=lr[::-1], rule=rule, convention=conv, batch_size=b[::-1],
                    dataset_size=n[::-1], epochs=t[::-1])
    assert back.weight_decay == pytest.approx(wd, rel=1e-10)


@settings(max_examples=200, deadline=None)
@given(tau=st.floats(0.01, 1e4), lr=lrs, b=st.integers(1, 4096), n=st.integers(1000, 10**7),
       conv=st.sampled_from(["torch", "paper", "optax", "composer"]))
def test_timescale_round_trip(tau, lr, b, n, conv):
    wd = weight_decay_for_timescale(lr=lr, tau_epoch=tau, batch_size=b, dataset_size=n, convention=conv)
    assert ema_timescale(lr, wd, convention=conv, batch_size=b, dataset_size=n).epochs == pytest.approx(tau)


@settings(max_examples=200, deadline=None)
@given(lam_norm=st.floats(1e-6, 10.0), b=st.integers(1, 4096), n=st.integers(1, 10**7), t=st.floats(0.01, 1e3))
def test_normalized_round_trip(lam_norm, b, n, t):
    lam = normalized_weight_decay(lam_norm, b, n, t)
    assert lam == pytest.approx(lam_norm * math.sqrt(b / (n * t)))
    assert weight_decay_norm(lam, b, n, t) == pytest.approx(lam_norm, rel=1e-12)


# --- conversions proven by training equality ------------------------------------------------------------

def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 1, generator=g, dtype=torch.float64) + 0.3 * torch.randn(96, 1, generator=g,
                                                                                     dtype=torch.float64)
    return x, y, torch.randn(6, 1, generator=g, dtype=torch.float64)


def _fit(make_opt, schedule: str, steps: int = 60):
    x, y, w0 = _data()
    w = torch.nn.Parameter(w0.clone())
    opt = make_opt([w])
    warmup = 0 if schedule == "constant" else 6  # "constant" means one lr throughout
    sched = make_lr_schedule(schedule, opt, total_steps=steps, steps_per_epoch=6, warmup_steps=warmup)
    for k in range(steps):
        xb, yb = x[k % 6 * 16:(k % 6 + 1) * 16], y[k % 6 * 16:(k % 6 + 1) * 16]
        opt.zero_grad()
        ((xb @ w - yb) ** 2).mean().backward()
        opt.step()
        sched.step()
    return w.detach()


def _optimizer_for(conv: str, wd: float, lr: float, sgd: bool):
    mode = CONVENTIONS[conv].mode
    b, n, t = SIZES["batch_size"], SIZES["dataset_size"], SIZES["epochs"]
    if conv == "normalized":  # the optimizer takes λ = λ_norm·sqrt(b/(B·T)) in paper units
        wd *= math.sqrt(b / (n * t))
    elif conv == "keras-adamw":  # λ = w·sqrt(b/I), I = B·T/b updates
        wd *= math.sqrt(b / (n * t / b))
    if sgd:
        return lambda p: weightdecay.SGDW(p, lr=lr, momentum=0.9, weight_decay=wd, decay=mode)
    return lambda p: weightdecay.AdamW(p, lr=lr, weight_decay=wd, decay=mode)


@pytest.mark.parametrize("sgd", [False, True], ids=["adamw", "sgdw"])
@pytest.mark.parametrize("target", [n for n in DECOUPLED if n != "torch"])
def test_converted_settings_train_to_the_same_parameters(target, sgd):
    lr, wd = 0.05, 0.3
    c = convert(wd, "torch", target, lr=lr, **SIZES)
    reference = _fit(_optimizer_for("torch", wd, lr, sgd), "warmup-cosine")
    # at a constant lr every conversion is exact
    constant_ref = _fit(_optimizer_for("torch", wd, lr, sgd), "constant")
    torch.testing.assert_close(_fit(_optimizer_for(target, c.weight_decay, lr, sgd), "constant"), constant_ref,
                               rtol=1e-11, atol=1e-13)
    # under warm-up + cosine only the conversions marked exact still are
    scheduled = _fit(_optimizer_for(target, c.weight_decay, lr, sgd), "warmup-cosine")
    if c.exact:
        torch.testing.assert_close(scheduled, reference, rtol=1e-11, atol=1e-13)
    else:
        assert not torch.allclose(scheduled, reference, rtol=1e-6, atol=0)


def test_paper_setting_converted_for_pytorch_trains_like_torch_optim_adamw():
    lr, wd_paper = 0.05, 0.01
    ours = _fit(lambda p: weightdecay.AdamW(p, lr=lr, weight_decay=wd_paper, decay="paper"), "warmup-cosine")
    c = convert(wd_paper, "composer", "pytorch", lr=lr)
    peer = _fit(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=c.weight_decay), "warmup-cosine")
    torch.testing.assert_close(ours, peer, rtol=1e-11, atol=1e-13)


def test_frameworks_map_onto_table_modes():
    expected = {"pytorch": "torch", "optax": "torch", "keras3": "torch", "tf-addons": "constant",
                "composer": "paper", "timm": "torch", "timm-corrected": "corrected", "bert": "torch",
                "keras-adamw": "paper", "fastai": "torch", "torch-muon": "torch", "moonlight": "torch",
                "torch-muon-adamw": "torch", "keras-muon": "torch", "keras-muon-adamw": "torch",
                "weightdecay-muon": "torch", "weightdecay-muon-adamw": "torch"}
    assert {n: CONVENTIONS[n].mode for n in FRAMEWORK_NAMES} == expected


# --- equilibrium claims against simulations -----------------------------------------------------------------

def _scale_invariant_run(make_opt, *, numel=400, steps=3000, seed=0):
    """Random gradients orthogonal to p and ∝ 1/‖p‖ (a weight followed by a normalization); mean angle per
    step, mean norm and mean ‖g‖/‖p‖ over the second half."""
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(numel, generator=g, dtype=torch.float64))
    opt = make_opt([p])
    angles, norms, ratios = [], [], []
    for k in range(steps):
        with torch.no_grad():
            xi = torch.randn(numel, generator=g, dtype=torch.float64)
            n = p.norm()
            u = p / n
            p.grad = (xi - (xi @ u) * u) / n
            before = p.detach().clone()
        opt.step()
        if k >= steps // 2:
            cos = (before @ p.detach() / (before.norm() * p.detach().norm())).clamp(max=1.0)
            angles.append(torch.arccos(cos).item())
            norms.append(p.detach().norm().item())
            ratios.append((p.grad.norm() / before.norm()).item())
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return mean(angles), mean(norms), mean(ratios)


def test_adamw_rotation_and_norm_match_kosson():
    lr, wd = 0.01, 0.5  # lr·λ = 5e-3: equilibrium within a few hundred steps
    # β2 = 0.99 lets v̂ forget the large early gradients within the run (the formulas do not involve β2)
    angle, norm, _ = _scale_invariant_run(lambda p: weightdecay.AdamW(p, lr=lr, weight_decay=wd, betas=(0.9, 0.99)))
    assert angle == pytest.approx(equilibrium_rotation(lr, wd, beta1=0.9), rel=0.05)
    assert norm == pytest.approx(equilibrium_norm(lr, wd, numel=400), rel=0.05)


@pytest.mark.parametrize("optimizer", ["sgd", "sgdw"])
def test_sgd_rotation_and_norm_match_formulas(optimizer):
    lr, wd, mu = 0.05, 0.05, 0.9
    if optimizer == "sgd":
        make = lambda p: torch.optim.SGD(p, lr=lr, momentum=mu, weight_decay=wd)  # noqa: E731
    else:
        make = lambda p: weightdecay.SGDW(p, lr=lr, momentum=mu, weight_decay=wd)  # noqa: E731
    angle, norm, _ = _scale_invariant_run(make, steps=4000)
    assert angle == pytest.approx(equilibrium_rotation(lr, wd, optimizer=optimizer, momentum=mu), rel=0.05)
    # E‖g̃‖² at unit norm: the projected noise has numel-1 degrees of freedom
    assert norm == pytest.approx(equilibrium_norm(lr, wd, optimizer=optimizer, momentum=mu, grad_sq_norm=399),
                                 rel=0.05)


@pytest.mark.parametrize("decay", ["torch", "corrected"])
def test_adamc_target_ratio_matches_sgd_steady_state(decay):
    # SGD without momentum held at lr_t = peak/4: torch mode settles at sqrt(2λ/lr_t), corrected at sqrt(2λ/peak)
    peak, wd = 0.4, 0.2
    lr = peak / 4
    _, _, ratio = _scale_invariant_run(
        lambda p: weightdecay.SGDW(p, lr=lr, weight_decay=wd, decay=decay, peak_lr=peak), steps=3000)
    assert ratio == pytest.approx(adamc_target_ratio(lr, wd, convention=decay, peak_lr=peak), rel=0.05)


def test_ema_timescale_is_the_e_folding_time_of_zero_gradient_decay():
    lr, wd = 0.01, 0.5
    tau = ema_timescale(lr, wd).iterations
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = weightdecay.AdamW([p], lr=lr, weight_decay=wd)
    for _ in range(round(tau)):
        p.grad = torch.zeros_like(p)
        opt.step()
    assert p.detach()[0].item() == pytest.approx(math.exp(-1), rel=2 / tau)


# --- advise -------------------------------------------------------------------------------------------------

def test_advise_flags_a_torch_value_given_in_paper_units():
    a = advise(lr=1e-3, weight_decay=0.1, convention="paper", **CIFAR)
    assert a.tau_iter == pytest.approx(10)
    assert a.tau_epoch == pytest.approx(10 * 128 / 50_000)
    joined = " ".join(a.warnings)
    assert "less than one epoch" in joined and "'torch'" in joined and "0.0001" in joined


def test_advise_quiet_for_a_plausible_setting():
    a = advise(lr=1e-3, weight_decay=0.1, convention="torch", **CIFAR)
    assert a.warnings == []
    assert a.tau_epoch == pytest.approx(1 / (1e-3 * 0.1) * 128 / 50_000)
    assert a.weight_decay_norm == pytest.approx(1e-4 / math.sqrt(128 / 5e6))
    assert {c.target for c in a.conversions} == set(DECOUPLED)


def test_advise_flags_a_decay_longer_than_the_run():
    a = advise(lr=1e-4, weight_decay=1e-3, convention="torch", **CIFAR)
    assert any("longer than the whole run" in w for w in a.warnings)


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,fragment", [
    (lambda: convert(0.1, "tourch", "paper", lr=1e-3), "Unknown convention"),
    (lambda: convert(0.1, "torch", "l2", lr=1e-3), "coupled"),
    (lambda: convert(0.1, "stable", "torch", lr=1e-3), "mean_v_hat"),
    (lambda: convert(-0.1, "torch", "paper", lr=1e-3), "weight_decay"),
    (lambda: convert(0.1, "torch", "paper", lr=0), "lr"),
    (lambda: convert(0.1, "torch", "normalized", lr=1e-3), "batch size"),
    (lambda: convert(0.1, "torch", "keras-adamw", lr=1e-3, batch_size=32), "total_steps"),
    (lambda: transfer(0.1, lr=1e-3, rule="keep-everything"), "Unknown transfer rule"),
    (lambda: transfer(0.1, lr=(1e-3,)), "before, after"),
    (lambda: weight_decay_for_timescale(lr=1e-3, tau_epoch=3), "batch_size"),
    (lambda: equilibrium_rotation(1e-3, 0.1, optimizer="lion"), "Unknown optimizer"),
    (lambda: equilibrium_norm(1e-3, 0.1), "numel"),
    (lambda: ema_timescale(1e-3, 0.0), "no timescale"),
])
def test_bad_input_raises_user_errors(call, fragment):
    with pytest.raises(UserError, match=fragment):
        call()


def test_convert_all_lists_what_it_left_out():
    rows, skipped = convert_all(0.1, "torch", lr=1e-3)
    assert set(skipped) == {"stable", "l2", "normalized", "keras-adamw"}
    assert len(rows) + len(skipped) == len(CONVENTION_NAMES)


# --- the documentation runs -----------------------------------------------------------------------------------

def test_python_blocks_in_docs_rules_run(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/rules.md", "exec"), namespace)  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out.split()
    assert printed[0] == "25.0"  # Composer's 0.05 is PyTorch's 25 at lr = 2e-3
    assert [round(float(x), 2) for x in printed[1:]] == [141.42, 14.14]
