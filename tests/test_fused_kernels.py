"""The one-pass CPU kernels (weightdecay.optim._kernels) against float64 references, and their plumbing.

- the AdamW kernel in every mode × dtype × amsgrad × maximize × bias correction, and the SGDW kernel in every mode
  × dtype × momentum × dampening × nesterov × maximize, against tests/reference.py's float64 oracle (the optimizers'
  own fused paths, which take the kernels for SGDW with momentum and AdamW stable, are also held to it by
  tests/test_optim_reference.py);
- cautious decay, ``p ← p - s_t·1[u_t⊙p ≥ 0]⊙p - lr_t·u_t`` (u_t the direction the optimizer subtracts, both at
  the same p_t), against a float64 reference written here from that formula, for AdamW and SGDW;
- AMP's grad_scale and found_inf; which kernels a fused step runs (torch.profiler); no per-step allocation that
  grows with the parameter count; the build cache, its log line, and the fallback without a compiler.

The library is built at most once per machine (a few seconds, at collection, then cached under
~/.cache/weightdecay/kernels); no test here builds it again.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil

import pytest
import torch
import torch.profiler as tp

import weightdecay
from optimizer_cases import ADAMW, SGDW, mode_lambda
from reference import ReferenceAdamW, ReferenceSGDW, random_tensors, shrink_factor
from weightdecay._profiling import peak_extra_bytes
from weightdecay.decay import DECAY_MODES
from weightdecay.optim import _kernels

pytestmark = pytest.mark.skipif(not _kernels.available(), reason="no C++ compiler to build the fused CPU kernels")

SHAPES = [[(40, 30), (7,)], [(3, 2, 5)], [(1500,)]]  # one tensor spans several 512-element blocks
STEPS = 6
LRS = [0.05, 0.1, 0.07, 0.03, 0.0, 0.02]  # includes lr_t = 0, where only `constant` still shrinks
LAMBDA = {mode: mode_lambda(mode, lr=0.05) for mode in DECAY_MODES}  # s_t ≈ 0.02 at lr 0.05
TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


class KernelAdamW(weightdecay.AdamW):
    """AdamW whose every group takes the kernel, as a `cautious` flag would call it (asserting it was taken)."""

    cautious = False

    def _step_group(self, group, t, plan, statistic):
        assert _kernels.adamw_step(t, group, lr=plan.lr, shrink_t=plan.shrink, cautious=self.cautious,
                                   grad_scale=getattr(self, "grad_scale", None),
                                   found_inf=getattr(self, "found_inf", None))


class KernelSGDW(weightdecay.SGDW):
    cautious = False

    def _step_group(self, group, plan, params, grads, buffers):
        assert _kernels.sgdw_step(params, grads, buffers, group, lr=plan.lr, shrink_t=plan.shrink,
                                  cautious=self.cautious,
                                  grad_scale=getattr(self, "grad_scale", None),
                                  found_inf=getattr(self, "found_inf", None))


class CautiousReferenceAdamW(ReferenceAdamW):
    """float64, from the formula: the moments as ReferenceAdamW, then p ← p - s_t·1[u_t⊙p ≥ 0]⊙p - lr_t·u_t."""

    def step(self, grads, lrs=None):
        lrs = self._lrs(lrs)
        directions, v_hat_sum, v_hat_count = [], 0.0, 0
        for gi, (group, group_grads) in enumerate(zip(self.param_groups, grads)):
            beta1, beta2 = group["betas"]
            for pi, (p, grad) in enumerate(zip(group["params"], group_grads)):
                g, st = self._grad(grad, p, group), self.state[gi][pi]
                if not st:
                    st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p),
                              max_exp_avg_sq=torch.zeros_like(p))
                st["step"] += 1
                st["exp_avg"] = beta1 * st["exp_avg"] + (1 - beta1) * g
                st["exp_avg_sq"] = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
                st["max_exp_avg_sq"] = torch.maximum(st["max_exp_avg_sq"], st["exp_avg_sq"])
                bc1, bc2 = (1 - beta1 ** st["step"], 1 - beta2 ** st["step"]) if group["bias_correction"] else (1, 1)
                v_hat_sum += (st["exp_avg_sq"] / bc2).sum().item()
                v_hat_count += p.numel()
                second = st["max_exp_avg_sq"] if group["amsgrad"] else st["exp_avg_sq"]
                directions.append((gi, pi, (st["exp_avg"] / bc1) / ((second / bc2).sqrt() + group["eps"])))
        for gi, pi, u in directions:
            group = self.param_groups[gi]
            s = shrink_factor(group["decay"], group["weight_decay"], lrs[gi], group["peak_lr"],
                              v_hat_sum / v_hat_count, group)
            p = group["params"][pi]
            group["params"][pi] = p - s * (u * p >= 0).to(p.dtype) * p - lrs[gi] * u


class CautiousReferenceSGDW(ReferenceSGDW):
    """float64, from the formula: d as ReferenceSGDW, then p ← p - s_t·1[d⊙p ≥ 0]⊙p - lr_t·d."""

    def step(self, grads, lrs=None):
        lrs = self._lrs(lrs)
        for gi, (group, group_grads) in enumerate(zip(self.param_groups, grads)):
            mu, damp = group["momentum"], group["dampening"]
            s = shrink_factor(group["decay"], group["weight_decay"], lrs[gi], group["peak_lr"], None, group)
            for pi, (p, grad) in enumerate(zip(group["params"], group_grads)):
                g = d = self._grad(grad, p, group)
                if mu != 0:
                    st = self.state[gi][pi]
                    b = g.clone() if "momentum_buffer" not in st else mu * st["momentum_buffer"] + (1 - damp) * g
                    st["momentum_buffer"] = b
                    d = g + mu * b if group["nesterov"] else b
                group["params"][pi] = p - s * (d * p >= 0).to(p.dtype) * p - lrs[gi] * d


def _specs(modes, dtype, extra=None):
    params = [random_tensors(shapes, seed=200 + i, dtype=dtype) for i, shapes in enumerate(SHAPES)]
    return [{"params": params[0], "decay": modes[0], "weight_decay": LAMBDA[modes[0]]},
            {"params": params[1], "decay": modes[1], "weight_decay": 2 * LAMBDA[modes[1]], "lr": 0.5, **(extra or {})},
            {"params": params[2], "decay": modes[2], "weight_decay": 0.0}]


def _run(opt, ref, dtype, lr_scale=(1.0, 0.5, 1.0), state_keys=()):
    tol = TOL[dtype]
    for t in range(STEPS):
        grads = [random_tensors([p.shape for p in g["params"]], seed=900 + 17 * t + i, dtype=dtype)
                 for i, g in enumerate(opt.param_groups)]
        lrs = [LRS[t] * k for k in lr_scale]
        for group, lr, group_grads in zip(opt.param_groups, lrs, grads):
            group["lr"] = lr
            for p, g in zip(group["params"], group_grads):
                p.grad = g.clone()
        opt.step()
        ref.step(grads, lrs=lrs)
        for gi, group in enumerate(opt.param_groups):
            for pi, p in enumerate(group["params"]):
                where = f"step {t + 1}, group {gi}, param {pi}"
                torch.testing.assert_close(p, ref.params[gi][pi].to(dtype), **tol, msg=lambda m: f"{where}: {m}")
                for key in state_keys:
                    torch.testing.assert_close(opt.state[p][key], ref.state[gi][pi][key].to(dtype), **tol,
                                               msg=lambda m: f"state[{key!r}] at {where}: {m}")


ADAM_FLAGS = [pytest.param(dict(), id="plain"), pytest.param(dict(amsgrad=True), id="amsgrad"),
              pytest.param(dict(maximize=True, betas=(0.8, 0.95)), id="maximize"),
              pytest.param(dict(amsgrad=True, maximize=True, bias_correction=False, eps=1e-6), id="all-bert")]
SGD_FLAGS = [pytest.param(dict(momentum=0.9), id="momentum"), pytest.param(dict(), id="no-momentum"),
             pytest.param(dict(momentum=0.9, dampening=0.3, maximize=True), id="dampening-maximize"),
             pytest.param(dict(momentum=0.8, nesterov=True), id="nesterov")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", ADAM_FLAGS)
@pytest.mark.parametrize("mode", ADAMW.modes)
def test_adamw_kernel_matches_reference(mode, flags, dtype):
    specs = _specs((mode, mode, "torch"), dtype, {"peak_lr": 0.2})
    ref = ReferenceAdamW(specs, lr=0.05, **flags)
    opt = KernelAdamW(specs, lr=0.05, fused=True, **flags)
    keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if flags.get("amsgrad") else ())
    _run(opt, ref, dtype, state_keys=keys)
    assert all(float(opt.state[p]["step"]) == STEPS for g in opt.param_groups for p in g["params"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", ADAM_FLAGS)
@pytest.mark.parametrize("mode", ADAMW.modes)
def test_cautious_adamw_kernel_matches_formula(mode, flags, dtype):
    specs = _specs((mode, mode, mode), dtype)
    ref = CautiousReferenceAdamW(specs, lr=0.05, **flags)
    opt = KernelAdamW(specs, lr=0.05, fused=True, **flags)
    opt.cautious = True
    _run(opt, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", SGD_FLAGS)
@pytest.mark.parametrize("mode", SGDW.modes)
def test_sgdw_kernel_matches_reference(mode, flags, dtype):
    specs = _specs((mode, mode, "paper"), dtype, {"peak_lr": 0.2})
    ref = ReferenceSGDW(specs, lr=0.05, **flags)
    opt = KernelSGDW(specs, lr=0.05, fused=True, **flags)
    _run(opt, ref, dtype, state_keys=("momentum_buffer",) if flags.get("momentum") else ())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", SGD_FLAGS)
@pytest.mark.parametrize("mode", SGDW.modes)
def test_cautious_sgdw_kernel_matches_formula(mode, flags, dtype):
    specs = _specs((mode, mode, mode), dtype)
    ref = CautiousReferenceSGDW(specs, lr=0.05, **flags)
    opt = KernelSGDW(specs, lr=0.05, fused=True, **flags)
    opt.cautious = True
    _run(opt, ref, dtype)


@pytest.mark.parametrize("which", ["SGDW-nesterov", "AdamW-stable", "AdamW-cautious-amsgrad"])
def test_threads_share_chunks_of_large_tensors(which, monkeypatch):
    # Tensors of several 2^15-element chunks, split between two threads: the same trajectory as the references.
    monkeypatch.setattr(_kernels.torch, "get_num_threads", lambda: 2)
    shapes = [(300, 400), (5,), (70_000,)]
    params = random_tensors(shapes, seed=3)
    specs = [{"params": params[:2], "weight_decay": 0.4}, {"params": params[2:], "weight_decay": 0.1}]
    if which == "SGDW-nesterov":
        kw = dict(lr=0.05, momentum=0.9, nesterov=True, decay="paper")
        ref, opt = ReferenceSGDW(specs, **kw), weightdecay.SGDW(specs, **kw, fused=True)
    elif which == "AdamW-stable":
        kw = dict(lr=0.05, decay="stable")
        ref, opt = ReferenceAdamW(specs, **kw), weightdecay.AdamW(specs, **kw, fused=True)
    else:
        kw = dict(lr=0.05, decay="torch", amsgrad=True)
        ref, opt = CautiousReferenceAdamW(specs, **kw), KernelAdamW(specs, **kw, fused=True)
        opt.cautious = True
    for t in range(3):
        grads = [random_tensors([p.shape for p in g["params"]], seed=40 + 7 * t + i) for i, g in enumerate(specs)]
        for group, group_grads in zip(opt.param_groups, grads):
            for p, g in zip(group["params"], group_grads):
                p.grad = g.clone()
        opt.step()
        ref.step(grads)
    for group, ref_params in zip(opt.param_groups, ref.params):
        for p, q in zip(group["params"], ref_params):
            torch.testing.assert_close(p, q.float(), **TOL[torch.float32])


def test_sgdw_parameter_joining_later_gets_its_own_first_step():
    # A parameter without a gradient at step 1 has no momentum buffer at step 2, while the others have one: its
    # b = g start is per tensor (the readable path's rule), not all-or-nothing.
    params = random_tensors([(30, 4), (9,)], seed=8)
    kw = dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.3, decay="paper")
    ref, opt = ReferenceSGDW([{"params": params}], **kw), weightdecay.SGDW(params, **kw, fused=True)
    for t, present in enumerate([(True, False), (True, True), (True, True)]):
        grads = [g if keep else None for g, keep in zip(random_tensors([(30, 4), (9,)], seed=60 + t), present)]
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.clone()
        opt.step()
        ref.step([grads])
    for p, q in zip(params, ref.params[0]):
        torch.testing.assert_close(p, q.float(), **TOL[torch.float32])


def test_cautious_mask_is_live():
    # Guard on the fixture: in these cases the mask is 0 for a good share of the elements, so a kernel that
    # ignored `cautious` (or applied it everywhere) would fail the tests above.
    p, g = random_tensors([(40, 30)], seed=200, dtype=torch.float64)[0], random_tensors([(40, 30)], seed=900)[0]
    disagree = (g.to(torch.float64) * p < 0).double().mean().item()
    assert 0.3 < disagree < 0.7


# --- what the fast path keeps between steps: address plans and each tensor's Σv ------------------------------

def _intervene(case, opt, saved):
    """Change an optimizer between steps as a user or another code path may: the same change to either path."""
    group, p0 = opt.param_groups[0], opt.param_groups[0]["params"][0]
    if case == "state-edited-in-place":
        opt.state[p0]["exp_avg_sq"].mul_(3.0)
    elif case == "state-replaced":
        opt.state[p0]["exp_avg_sq"] = opt.state[p0]["exp_avg_sq"] * 3
    elif case == "state-storage-swapped":  # .data = : the same tensor object at a new address
        opt.state[p0]["exp_avg_sq"].data = opt.state[p0]["exp_avg_sq"] * 3
    elif case == "param-storage-swapped":
        p0.data = p0.data.clone()
    elif case == "load_state_dict":
        opt.load_state_dict(saved)
    elif case == "param-group-added":
        opt.add_param_group({"params": random_tensors([(9, 4)], seed=5, dtype=p0.dtype)})
    elif case in ("torch-kernel-step", "single-tensor-step"):  # one step another way (the kernel not told)
        key, value = ("decay", "torch") if case == "torch-kernel-step" else ("foreach", False)
        saved_value = group[key]
        if case == "single-tensor-step":
            group["fused"] = False
        group[key] = value
        _set_grads(opt, seed=555)
        opt.step()
        group[key] = saved_value
        group["fused"] = group["fused"] if case == "torch-kernel-step" else opt.defaults["fused"]
    elif case == "skipped-amp-step":  # found_inf: nothing moves, so whatever was kept still holds
        if opt.defaults["fused"]:
            opt.grad_scale, opt.found_inf = torch.tensor(1.0), torch.tensor(1.0)
            _set_grads(opt, seed=556)
            opt.step()
            del opt.grad_scale, opt.found_inf


def _set_grads(opt, seed, skip_first=False):
    for gi, group in enumerate(opt.param_groups):
        grads = random_tensors([p.shape for p in group["params"]], seed=seed + 7 * gi, dtype=group["params"][0].dtype)
        for pi, (p, g) in enumerate(zip(group["params"], grads)):
            p.grad = None if skip_first and gi == pi == 0 else g


STALE_CASES = ["state-edited-in-place", "state-replaced", "state-storage-swapped", "param-storage-swapped",
               "load_state_dict", "param-group-added", "torch-kernel-step", "single-tensor-step", "skipped-amp-step",
               "param-without-grad", "amsgrad"]


def _lockstep(fast, ref, case, steps, seed):
    """Step both, with the same gradients and the same change after two steps; equal to float64 tolerance."""
    saved = {}
    for t in range(steps):
        for name, opt in (("fast", fast), ("ref", ref)):
            if t == 2:
                _intervene(case, opt, saved.get(name))
            _set_grads(opt, seed=seed + t, skip_first=case == "param-without-grad" and t == 2)
            opt.step()
            if t == 0:
                saved[name] = copy.deepcopy(opt.state_dict())
        for group, ref_group in zip(fast.param_groups, ref.param_groups):
            for p, q in zip(group["params"], ref_group["params"]):
                torch.testing.assert_close(p, q, **TOL[torch.float64], msg=lambda m: f"after step {t + 1}: {m}")


STALE_SHAPES = [(40, 30), (7,), (1500,)]


@pytest.mark.parametrize("case", STALE_CASES)
def test_kept_sums_and_addresses_follow_every_change(case):
    # Fused `stable` keeps each tensor's Σv from its kernel step and the group's addresses from step to step;
    # after each change it must still take the readable single-tensor path's steps.
    kw = dict(lr=0.05, weight_decay=0.4, decay="stable", amsgrad=case == "amsgrad", betas=(0.9, 0.99))
    fast = weightdecay.AdamW(random_tensors(STALE_SHAPES, seed=11, dtype=torch.float64), fused=True, **kw)
    ref = weightdecay.AdamW(random_tensors(STALE_SHAPES, seed=11, dtype=torch.float64), foreach=False, **kw)
    _lockstep(fast, ref, case, steps=5, seed=70)


@pytest.mark.parametrize("case", ["param-storage-swapped", "load_state_dict", "param-group-added",
                                  "param-without-grad"])
def test_sgdw_kept_addresses_follow_every_change(case):
    kw = dict(lr=0.05, momentum=0.9, weight_decay=0.1, decay="paper")
    fast = weightdecay.SGDW(random_tensors(STALE_SHAPES, seed=12, dtype=torch.float64), fused=True, **kw)
    ref = weightdecay.SGDW(random_tensors(STALE_SHAPES, seed=12, dtype=torch.float64), foreach=False, **kw)
    _lockstep(fast, ref, case, steps=4, seed=80)


def test_kernel_step_leaves_each_tensors_v_sum(monkeypatch):
    # What `stable`'s next mean starts from: Σv of each tensor as written, over chunks shared by five threads
    # (a tensor of ten chunks spans three threads' runs), with the step count it belongs to.
    monkeypatch.setattr(_kernels.torch, "get_num_threads", lambda: 5)
    params = random_tensors([(10 * 2**15 + 3,), (5,), (3 * 2**15,)], seed=4)
    opt = weightdecay.AdamW(params, lr=0.01, decay="stable", fused=True)
    for t in range(2):
        _set_grads(opt, seed=30 + t)
        opt.step()
    [plan] = _kernels.plans_of(opt).values()
    for i, p in enumerate(params):
        assert plan.v_sums[i] == pytest.approx(opt.state[p]["exp_avg_sq"].double().sum().item(), rel=1e-6)
        assert plan.v_sum_steps[i] == 2.0


def test_steady_state_mean_reads_g_alone():
    # After a kernel step the next sum of v̂ starts from the kept Σv, not from v: v doubled behind torch's back
    # (through numpy: no version bump) leaves it where it was; an in-place op on v (a bump) makes it read v again.
    params = random_tensors([(60, 5), (33,)], seed=9)
    opt = weightdecay.AdamW(params, lr=0.01, decay="stable", fused=True)
    for t in range(2):
        _set_grads(opt, seed=50 + t)
        opt.step()

    def v_hat_sum():
        group, t = opt.param_groups[0], {k: [] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs",
                                                         "max_exp_avg_sqs", "steps")}
        opt._init_group(group, *t.values())
        return _kernels.v_hat_sum(t, group, plans=_kernels.plans_of(opt))[0]

    def formula():  # Σ (β2·v + (1-β2)·g²) / (1-β2^3), what the third step will make of v̂, from v as it is
        return sum((0.999 * opt.state[p]["exp_avg_sq"].double() + 0.001 * p.grad.double() ** 2).sum().item()
                   for p in params) / (1 - 0.999**3)

    kept = v_hat_sum()
    assert kept == pytest.approx(formula(), rel=1e-6)
    for p in params:
        opt.state[p]["exp_avg_sq"].numpy()[...] *= 2
    assert v_hat_sum() == kept
    for p in params:
        opt.state[p]["exp_avg_sq"].mul_(1.0)
    read_again = v_hat_sum()
    assert read_again == pytest.approx(formula(), rel=1e-6)
    assert read_again != pytest.approx(kept, rel=1e-3)


def test_v_hat_sum_matches_torch_sums():
    # Stable's mean v̂: the kernel's sum beside the plain float64 formula, with l2 (reads p) and maximize.
    params = random_tensors([(600, 7), (33,)], seed=5)
    grads = random_tensors([(600, 7), (33,)], seed=6)
    vs = [g.square() * 0.3 for g in random_tensors([(600, 7), (33,)], seed=7)]
    steps = [torch.tensor(3.0), torch.tensor(0.0)]
    group = dict(betas=(0.9, 0.99), decay="l2", weight_decay=0.5, maximize=True, bias_correction=True, amsgrad=False)
    t = dict(params=params, grads=grads, exp_avgs=[torch.zeros_like(v) for v in vs], exp_avg_sqs=vs, steps=steps)
    got, count = _kernels.v_hat_sum(t, group, grad_scale=torch.tensor(4.0))
    assert count == 600 * 7 + 33
    expected = sum(((0.99 * v.double() + 0.01 * (-g.double() / 4 + 0.5 * p.double()) ** 2) / (1 - 0.99 ** (s + 1)))
                   .sum().item() for p, g, v, s in zip(params, grads, vs, (3, 0)))
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("opt_name", ["AdamW-cautious", "SGDW"])
def test_grad_scale_divides_and_found_inf_skips(opt_name):
    # AMP, as a GradScaler hands it to a fused optimizer: scaled gradients with grad_scale take the same step
    # as the plain gradients; found_inf leaves params, moments and step counts where they were.
    def build(params):
        if opt_name == "SGDW":
            return KernelSGDW(params, lr=0.1, momentum=0.9, weight_decay=0.1, fused=True)
        opt = KernelAdamW(params, lr=0.1, weight_decay=0.3, fused=True)
        opt.cautious = True
        return opt

    plain, scaled = random_tensors([(50, 3)], seed=1), random_tensors([(50, 3)], seed=1)
    a, b = build(plain), build(scaled)
    for t in range(3):
        g = random_tensors([(50, 3)], seed=20 + t)[0]
        plain[0].grad, scaled[0].grad = g.clone(), g * 1024
        a.step()
        b.grad_scale, b.found_inf = torch.tensor(1024.0), torch.tensor(0.0)
        b.step()
    torch.testing.assert_close(scaled[0], plain[0])
    before = {k: v.clone() for k, v in b.state[scaled[0]].items()}
    p_before = scaled[0].clone()
    scaled[0].grad = torch.full_like(scaled[0], math.inf)
    b.found_inf = torch.tensor(1.0)
    b.step()
    assert torch.equal(scaled[0], p_before)
    for k, v in b.state[scaled[0]].items():
        assert torch.equal(v, before[k]), k


def _ops_in_step(opt) -> set[str]:
    with tp.profile(activities=[tp.ProfilerActivity.CPU]) as prof:
        opt.step()
    return {e.key for e in prof.key_averages()}


def _stepped(build, numel=200_000):
    params = [torch.randn(numel // 4, 4) for _ in range(3)] + [torch.randn(7)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = build(params)
    opt.step()  # the first step makes the state
    return opt


FAST_PATHS = {
    "SGDW-momentum": lambda ps: weightdecay.SGDW(ps, lr=0.1, momentum=0.9, weight_decay=0.01, decay="paper",
                                                 fused=True),
    "AdamW-stable": lambda ps: weightdecay.AdamW(ps, lr=0.1, weight_decay=0.01, decay="stable", fused=True),
    "AdamW-stable-l2-amsgrad": lambda ps: weightdecay.AdamW(
        [{"params": ps[:2]}, {"params": ps[2:], "decay": "l2"}], lr=0.1, decay="stable", amsgrad=True, fused=True),
}


@pytest.mark.parametrize("path", list(FAST_PATHS))
def test_fused_step_runs_one_kernel_pass(path):
    # The kernels replace torch's extra passes: no _foreach_mul_ shrink, no per-tensor sums or norms, and take
    # the step itself (stable's too: its kernel step leaves the Σv the next step's mean starts from).
    opt = _stepped(FAST_PATHS[path])
    before = [p.clone() for g in opt.param_groups for p in g["params"]]
    ops = _ops_in_step(opt)
    extra = {"aten::_foreach_mul_", "aten::sum", "aten::_foreach_norm", "aten::linalg_vector_norm",
             "aten::_foreach_add", "aten::_foreach_add_", "aten::_fused_sgd_", "aten::_fused_adamw_",
             "aten::_fused_adam_"} & ops
    assert not extra, f"{path} still runs {sorted(extra)}"
    after = [p for g in opt.param_groups for p in g["params"]]
    assert all(not torch.equal(p, q) for p, q in zip(after, before))  # the step was taken, by the kernel


@pytest.mark.parametrize("path", list(FAST_PATHS) + ["cautious"])
def test_no_per_step_allocation_that_grows_with_the_parameters(path):
    if path == "cautious":
        def build(ps):
            opt = KernelAdamW(ps, lr=0.1, weight_decay=0.1, amsgrad=True, fused=True)
            opt.cautious = True
            return opt
    else:
        build = FAST_PATHS[path]
    peak = peak_extra_bytes(_stepped(build))
    assert peak < 16_384, f"{path}: {peak} bytes allocated during a step of 2e5 parameters"
    # The measurement sees a step that does allocate: torch's foreach AdamW, a copy per parameter list.
    assert peak_extra_bytes(_stepped(lambda ps: torch.optim.AdamW(ps, foreach=True))) >= 200_000 * 4


# --- the library: cache, log line, fallback --------------------------------------------------------------------

@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """An empty kernel cache and an unloaded library; the real one is restored afterwards."""
    built = _kernels._library()._name  # the library this machine already has
    monkeypatch.setenv("WEIGHTDECAY_CACHE", str(tmp_path / "cache"))
    _kernels._library.cache_clear()
    yield built
    _kernels._library.cache_clear()


def test_first_build_logs_one_line_with_its_time_then_loads_from_the_cache(fresh_library, monkeypatch, caplog):
    # The compiler is stood in for by a copy of the library built already: no second build in the test session.
    calls = []

    def fake_build(compiler, target):
        calls.append(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fresh_library, target)

    monkeypatch.setattr(_kernels, "_build", fake_build)
    with caplog.at_level(logging.INFO, logger="weightdecay.optim._kernels"):
        assert _kernels.available()
    [record] = caplog.records
    assert "built its fused CPU kernels in" in record.getMessage() and " s " in record.getMessage()
    assert calls and calls[0].is_file() and calls[0].parent == _kernels.kernel_dir()
    _kernels._library.cache_clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="weightdecay.optim._kernels"):
        assert _kernels.available()
    assert len(calls) == 1 and not caplog.records  # the cached library, no build and no log line


@pytest.mark.parametrize("compiler", ["/nonexistent/c++", "false"])
def test_without_a_compiler_fused_falls_back_with_one_warning(fresh_library, monkeypatch, caplog, compiler):
    monkeypatch.setenv("CXX", compiler)
    specs = _specs(("paper", "corrected", "torch"), torch.float32)
    ref = ReferenceSGDW(specs, lr=0.05, momentum=0.9)
    opt = weightdecay.SGDW(specs, lr=0.05, momentum=0.9, fused=True)
    with caplog.at_level(logging.WARNING, logger="weightdecay.optim._kernels"):
        _run(opt, ref, torch.float32, state_keys=("momentum_buffer",))
        stable = weightdecay.AdamW(random_tensors([(4, 3)], seed=1), decay="stable", fused=True)
        stable.param_groups[0]["params"][0].grad = torch.ones(4, 3)
        stable.step()
    assert not _kernels.available()
    [record] = caplog.records  # one line, not one per step
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert "fused=True keeps torch's kernels" in record.getMessage()


def test_kernels_can_be_switched_off(fresh_library, monkeypatch, caplog):
    monkeypatch.setenv("WEIGHTDECAY_CPU_KERNELS", "0")
    with caplog.at_level(logging.INFO, logger="weightdecay.optim._kernels"):
        assert not _kernels.available()
    assert not caplog.records


def test_unsupported_tensors_take_torch_path():
    # bfloat16, a non-dense view, a group mixing dtypes: the kernel declines, and the optimizer's own path runs.
    group = dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False, decay="torch", weight_decay=0.1)
    for params in ([torch.randn(4, 3, dtype=torch.bfloat16)], [torch.randn(4, 6)[:, ::2]],
                   [torch.randn(3), torch.randn(3, dtype=torch.float64)]):
        grads = [torch.randn_like(p) for p in params]
        before = [p.clone() for p in params]
        assert not _kernels.sgdw_step(params, grads, [None] * len(params), group, lr=0.1, shrink_t=0.01)
        assert all(torch.equal(p, q) for p, q in zip(params, before))
    params = [torch.randn(8, 4, 3, 3).to(memory_format=torch.channels_last)]  # dense, not contiguous: taken
    assert _kernels.sgdw_step(params, [torch.randn_like(params[0])], [None], group, lr=0.1, shrink_t=0.01)
