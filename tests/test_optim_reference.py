"""Every fast path of weightdecay.AdamW / SGDW (single-tensor, foreach, fused) against the float64 oracle.

Three parameter groups (one with weight_decay 0, one with its own peak_lr), a warm-up + cosine schedule
(LinearLR then CosineAnnealingLR in SequentialLR), 12 steps; params and every state tensor compared after each
step. float32 runs are held to float32 rounding; float64 runs to ~1e-10, which catches an s_t off by any factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

import weightdecay
from optimizer_cases import ADAMW, PATH_KWARGS, SGDW, mode_lambda, mode_options
from weightdecay.decay import DECAY_MODES, shrink
from reference import ReferenceAdamW, ReferenceSGDW, gradient_stream, random_tensors

STEPS = 12
BASE_LR = 0.05
SHAPES = [[(4, 3), (5,)], [(3, 2), (2, 2, 2)], [(6,)]]
# λ per mode chosen so that each s_t is ~2e-2 at the peak: large enough that a wrong factor shows in the params.
LAMBDA = {mode: mode_lambda(mode, lr=BASE_LR) for mode in DECAY_MODES}
TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}


@dataclass(frozen=True)
class OptimizerInput:
    """One case: constructor kwargs, the decay mode of each of the three groups, and a description."""

    kwargs: dict
    modes: tuple[str, str, str]
    desc: str
    extra_group: dict = field(default_factory=dict)  # overrides for group 1 (e.g. its own peak_lr)


def _adam_cases() -> list[OptimizerInput]:
    cases = []
    for mode in ADAMW.modes:
        m3 = (mode, mode, mode)
        cases += [
            OptimizerInput({}, m3, f"{mode}"),
            OptimizerInput({"amsgrad": True}, m3, f"{mode}-amsgrad"),
            OptimizerInput({"maximize": True, "betas": (0.8, 0.95)}, m3, f"{mode}-maximize-betas"),
            OptimizerInput({"bias_correction": False, "eps": 1e-6}, m3, f"{mode}-bert"),
            OptimizerInput({}, m3, f"{mode}-own-peak-lr", {"peak_lr": 0.2}),
        ]
        if mode_options(mode):  # the keys its row reads, set in one group
            cases.append(OptimizerInput({}, m3, f"{mode}-options", mode_options(mode)))
    cases += [
        OptimizerInput({}, ("paper", "corrected", "constant"), "mixed-paper-corrected-constant"),
        OptimizerInput({"amsgrad": True}, ("stable", "l2", "torch"), "mixed-stable-l2-torch"),
        # stable's mean v̂ must see the l2 group's gradient as its moments do: -g + λ·p under maximize.
        OptimizerInput({"maximize": True}, ("stable", "l2", "torch"), "mixed-stable-l2-maximize"),
    ]
    return cases


def _sgd_cases() -> list[OptimizerInput]:
    cases = []
    for mode in SGDW.modes:
        m3 = (mode, mode, mode)
        cases += [
            OptimizerInput({}, m3, f"{mode}"),
            OptimizerInput({"momentum": 0.9}, m3, f"{mode}-momentum"),
            OptimizerInput({"momentum": 0.9, "dampening": 0.3}, m3, f"{mode}-dampening"),
            OptimizerInput({"momentum": 0.8, "nesterov": True}, m3, f"{mode}-nesterov"),
            OptimizerInput({"momentum": 0.9, "maximize": True}, m3, f"{mode}-maximize", {"peak_lr": 0.2}),
        ]
        if mode_options(mode):
            cases.append(OptimizerInput({"momentum": 0.9}, m3, f"{mode}-options", mode_options(mode)))
    cases.append(OptimizerInput({"momentum": 0.9}, ("paper", "l2", "corrected"), "mixed-paper-l2-corrected"))
    return cases


def _group_specs(case: OptimizerInput, dtype: torch.dtype) -> list[dict]:
    params = [random_tensors(shapes, seed=100 + i, dtype=dtype) for i, shapes in enumerate(SHAPES)]
    specs = [
        {"params": params[0], "decay": case.modes[0], "weight_decay": LAMBDA[case.modes[0]]},
        {"params": params[1], "decay": case.modes[1], "weight_decay": 2 * LAMBDA[case.modes[1]], "lr": BASE_LR / 2,
         **case.extra_group},
        {"params": params[2], "decay": case.modes[2], "weight_decay": 0.0},
    ]
    return specs


def _warmup_cosine(opt: torch.optim.Optimizer) -> SequentialLR:
    warmup = LinearLR(opt, start_factor=0.2, total_iters=4)
    cosine = CosineAnnealingLR(opt, T_max=STEPS - 4, eta_min=1e-3)
    return SequentialLR(opt, [warmup, cosine], milestones=[4])


def _state_keys(opt_name: str, kwargs: dict) -> set[str]:
    if opt_name == "AdamW":
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if kwargs.get("amsgrad") else set())
    return {"momentum_buffer"} if kwargs.get("momentum") else set()


def _assert_matches(opt, ref, opt_name, case, dtype, t):
    tol = TOL[dtype]
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group["params"]):
            where = f"step {t + 1}, group {gi}, param {pi}"
            torch.testing.assert_close(p, ref.params[gi][pi].to(dtype), **tol, msg=lambda m: f"param at {where}: {m}")
            state, ref_state = opt.state[p], ref.state[gi][pi]
            keys = _state_keys(opt_name, case.kwargs)
            assert keys <= set(state), f"state at {where} lacks {keys - set(state)}"
            for key in keys:
                if key == "step":
                    assert float(state["step"]) == ref_state["step"], where
                else:
                    torch.testing.assert_close(state[key], ref_state[key].to(dtype), **tol,
                                               msg=lambda m: f"state[{key!r}] at {where}: {m}")


def _run_against_oracle(opt_name: str, case: OptimizerInput, path: str, dtype: torch.dtype) -> None:
    opt_cls, ref_cls = {"AdamW": (ADAMW.cls, ReferenceAdamW), "SGDW": (SGDW.cls, ReferenceSGDW)}[
        opt_name]
    specs = _group_specs(case, dtype)
    ref = ref_cls(specs, lr=BASE_LR, **case.kwargs)  # copies the params before the optimizer touches them
    opt = opt_cls(specs, lr=BASE_LR, **case.kwargs, **PATH_KWARGS[path])
    sched = _warmup_cosine(opt)
    grads = gradient_stream(SHAPES, STEPS, seed=7, dtype=dtype)
    for t in range(STEPS):
        for group, group_grads in zip(opt.param_groups, grads[t]):
            for p, g in zip(group["params"], group_grads):
                p.grad = g.clone()
        lrs = [group["lr"] for group in opt.param_groups]
        opt.step()
        ref.step(grads[t], lrs=lrs)
        _assert_matches(opt, ref, opt_name, case, dtype, t)
        sched.step()
    # Warm-up and cosine scaled group["lr"]; peak_lr stayed where the constructor (or the group) put it.
    for group, ref_group in zip(opt.param_groups, ref.param_groups):
        assert group["peak_lr"] == pytest.approx(ref_group["peak_lr"], rel=1e-12)


DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("case", _adam_cases(), ids=lambda c: c.desc)
def test_adamw_matches_reference(case, path, dtype):
    _run_against_oracle("AdamW", case, path, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", SGDW.paths)
@pytest.mark.parametrize("case", _sgd_cases(), ids=lambda c: c.desc)
def test_sgdw_matches_reference(case, path, dtype):
    _run_against_oracle("SGDW", case, path, dtype)


def test_schedule_reaches_peak_and_decays():
    # Guard on the fixture itself: the lr seen by the optimizer rises to BASE_LR then falls (warm-up + cosine).
    opt = weightdecay.AdamW([torch.zeros(1)], lr=BASE_LR)
    sched = _warmup_cosine(opt)
    seen = []
    for _ in range(STEPS):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(0.2 * BASE_LR) and max(seen) == pytest.approx(BASE_LR)
    assert seen[-1] < 0.2 * BASE_LR


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    adam=st.booleans(),
    mode=st.sampled_from(ADAMW.modes),
    lr=st.floats(1e-4, 0.5),
    lam=st.floats(0.0, 2.0),
    peak_factor=st.floats(0.2, 5.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.5, 0.9999),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    path=st.sampled_from(ADAMW.paths),  # SGDW runs on the same paths
)
def test_random_hyperparameters_match_reference(adam, mode, lr, lam, peak_factor, beta1, beta2, momentum, flags,
                                                path):
    # Any (lr, λ, peak_lr, β) in range: three float64 steps agree with the oracle (s_t kept below 1 by clamping λ).
    if not adam and DECAY_MODES[mode].statistic is not None:
        mode = "paper"
    peak = lr * peak_factor
    scale = shrink(mode, 1.0, lr, peak, 1.0) or 1.0  # the statistic taken as 1; coupled: 1
    lam = min(lam, 0.9 / scale)
    params = random_tensors([(3, 4), (5,)], seed=3, dtype=torch.float64)
    kwargs = dict(lr=lr, weight_decay=lam, decay=mode, peak_lr=peak)
    if adam:
        kwargs.update(betas=(beta1, beta2), amsgrad=flags[0], maximize=flags[1], bias_correction=flags[2])
    else:
        kwargs.update(momentum=momentum, maximize=flags[1], nesterov=flags[0] and momentum > 0)
    ref = (ReferenceAdamW if adam else ReferenceSGDW)([{"params": params}], **kwargs)
    opt = (ADAMW.cls if adam else SGDW.cls)(params, **kwargs, **PATH_KWARGS[path])
    for t in range(3):
        grads = random_tensors([(3, 4), (5,)], seed=10 + t, dtype=torch.float64)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        ref.step([grads])
    for p, q in zip(params, ref.params[0]):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path", ADAMW.paths)
@pytest.mark.parametrize("mode", ADAMW.modes)
def test_mixed_dtypes_and_per_group_betas_match_reference(mode, path):
    # foreach/fused kernels bucket tensors by dtype; stable's mean must still run over all of them, each with its
    # own group's β2 bias correction.
    f32 = random_tensors([(4, 3)], seed=1)
    f64 = random_tensors([(5,), (3,)], seed=2, dtype=torch.float64)
    specs = [{"params": [f32[0], f64[0]]}, {"params": [f64[1]], "betas": (0.8, 0.99), "weight_decay": 0.6}]
    kwargs = dict(lr=0.05, weight_decay=LAMBDA[mode], decay=mode)
    ref = ReferenceAdamW(specs, **kwargs)
    opt = weightdecay.AdamW(specs, **kwargs, **PATH_KWARGS[path])
    for t in range(6):
        grads = [[g.to(p.dtype) for g, p in zip(random_tensors([p.shape for p in s["params"]], seed=50 + 7 * t + i),
                                                s["params"])] for i, s in enumerate(specs)]
        for spec, group_grads in zip(specs, grads):
            for p, g in zip(spec["params"], group_grads):
                p.grad = g.clone()
        opt.step()
        ref.step(grads)
    for spec, ref_params in zip(specs, ref.params):
        for p, q in zip(spec["params"], ref_params):
            torch.testing.assert_close(p, q.to(p.dtype), **TOL[torch.float32])
