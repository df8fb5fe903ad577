"""weightdecay.with_decay over torch.optim's classes, every wrapped row of tests/optimizer_cases.py.

The oracle for each step is the base class itself, in float64 and with no decay (its own update ``p_t - lr_t·u_t``
from ``p_t``), minus the table's shrink ``s_t·p_t`` from the float64 oracle of docs/math.md (tests/reference.py), not asked of
weightdecay.decay; a mode that reads mean v̂_t (``stable``) takes it from the oracle's own state after its step.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import weightdecay
from weightdecay.errors import UserError
from optimizer_cases import PATH_KWARGS, WRAPPED, OptimizerCase, case_paths, mode_lambda
from reference import shrink_factor
from weightdecay.decay import DECAY_MODES

F64 = torch.float64
LR, STEPS = 0.02, 6
LAMBDA = {mode: mode_lambda(mode, LR, shrink_t=0.01, coupled=0.3) for mode in DECAY_MODES}  # s_t ≈ 1e-2
MULTIPLIER = [1.0, 0.5, 0.8, 0.25, 1.0, 0.6]  # lr_t / peak_lr per step, so every mode's s_t differs


def _params(case: OptimizerCase, dtype=F64, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in case.shapes]


def _grads(case: OptimizerCase, step: int, dtype=F64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(s, generator=g, dtype=dtype) for s in case.shapes]


class Oracle:
    """The base optimizer's own decay-free step in float64, then the table's shrink at the same p_t."""

    def __init__(self, case: OptimizerCase, params: list[torch.Tensor], mode: str, lam: float, cautious: bool):
        self.p = [p.detach().to(F64).clone().requires_grad_() for p in params]
        self.case, self.mode, self.lam, self.cautious = case, mode, lam, cautious
        self.row = DECAY_MODES[mode]
        coupled = lam if not self.row.decoupled and case.l2_kwargs is not None else 0.0
        self.opt = case.base(self.p, lr=LR, weight_decay=coupled, **case.kwargs, **(case.l2_kwargs or {}))

    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        before = [p.detach().clone() for p in self.p]
        for p, g in zip(self.p, grads):
            p.grad = g.to(F64).clone()
            if not self.row.decoupled and self.case.l2_kwargs is None:  # no L2 of its own: λ·p enters the gradient
                p.grad += self.lam * p.detach()
        self.opt.step()
        if not self.row.decoupled:
            return
        mean_v_hat = None
        if self.row.statistic is not None:  # the mean of v̂ over every element, after the base's step
            beta2 = self.opt.param_groups[0]["betas"][1]
            states = [self.opt.state[p] for p in self.p]
            total = sum(float(s["exp_avg_sq"].sum()) / (1 - beta2 ** float(s["step"])) for s in states)
            mean_v_hat = total / sum(p.numel() for p in self.p)
        s = shrink_factor(self.mode, self.lam, lr, LR, mean_v_hat)
        with torch.no_grad():
            for p, b in zip(self.p, before):
                mask = ((b - p) * b >= 0).to(F64) if self.cautious else 1.0  # b - p has the sign of u_t
                p -= s * mask * b


def _run(case: OptimizerCase, path: str, mode: str, dtype, cautious: bool = False):
    lam = LAMBDA[mode]
    params = _params(case, dtype)
    oracle = Oracle(case, params, mode, lam, cautious)
    opt = case.cls(params, lr=LR, weight_decay=lam, decay=mode, cautious=cautious, **case.kwargs,
                   **PATH_KWARGS[path])
    sched = LambdaLR(opt, lambda k: MULTIPLIER[k % len(MULTIPLIER)])
    for step in range(STEPS):
        lr = opt.param_groups[0]["lr"]
        grads = _grads(case, step, dtype)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        oracle.step(grads, lr)
        sched.step()
    return params, oracle.p


@pytest.mark.parametrize("case,path", case_paths(), ids=lambda x: x if isinstance(x, str) else x.name)
def test_every_mode_against_the_float64_oracle(case, path):
    for mode in case.modes:
        for dtype, tol in ((F64, dict(rtol=1e-9, atol=1e-11)), (torch.float32, dict(rtol=2e-5, atol=2e-6))):
            got, want = _run(case, path, mode, dtype)
            for g, w in zip(got, want):
                torch.testing.assert_close(g.detach().to(F64), w.detach(), **tol, msg=f"{case.name} {path} {mode}")


@pytest.mark.parametrize("case,path", case_paths(), ids=lambda x: x if isinstance(x, str) else x.name)
def test_cautious_against_the_float64_oracle(case, path):
    for mode in ("torch", "paper"):
        got, want = _run(case, path, mode, F64, cautious=True)
        for g, w in zip(got, want):
            torch.testing.assert_close(g.detach(), w.detach(), rtol=1e-9, atol=1e-11)
        plain, _ = _run(case, path, mode, F64, cautious=False)
        assert any(not torch.allclose(a, b) for a, b in zip(got, plain))  # the mask changed something


@pytest.mark.parametrize("case,path", case_paths(), ids=lambda x: x if isinstance(x, str) else x.name)
def test_own_convention_equals_the_unwrapped_class_bit_for_bit(case, path):
    # decay="torch" is the base's decay where its kernels shrink by lr·wd; decay="l2" where its decay is coupled.
    mode, extra = ("torch", case.torch_kwargs) if case.shrinks_by_lr else ("l2", case.l2_kwargs)
    a, b = _params(case, torch.float32), _params(case, torch.float32)
    mine = case.cls(a, lr=LR, weight_decay=0.1, decay=mode, **case.kwargs, **PATH_KWARGS[path])
    theirs = case.base(b, lr=LR, weight_decay=0.1, **case.kwargs, **extra, **PATH_KWARGS[path])
    for step in range(STEPS):
        for pa, pb, g in zip(a, b, _grads(case, step, torch.float32)):
            pa.grad, pb.grad = g.clone(), g.clone()
        mine.step()
        theirs.step()
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)
    for pa, pb in zip(a, b):
        for key, value in theirs.state[pb].items():
            assert torch.equal(torch.as_tensor(mine.state[pa][key]), torch.as_tensor(value)), key


@pytest.mark.parametrize("case", WRAPPED, ids=lambda c: c.name)
def test_a_state_dict_of_the_unwrapped_class_loads_and_continues(case):
    mode, extra = ("torch", case.torch_kwargs) if case.shrinks_by_lr else ("l2", case.l2_kwargs)
    a, b = _params(case, torch.float32), _params(case, torch.float32)
    theirs = case.base(b, lr=LR, weight_decay=0.1, **case.kwargs, **extra)
    for step in range(2):
        for p, g in zip(b, _grads(case, step, torch.float32)):
            p.grad = g
        theirs.step()
    with torch.no_grad():
        for pa, pb in zip(a, b):
            pa.copy_(pb)
    mine = case.cls(a, lr=LR, weight_decay=0.1, decay=mode, **case.kwargs)
    mine.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert mine.param_groups[0]["decay"] == mode and mine.param_groups[0]["peak_lr"] == LR
    for step in range(2, 4):
        for pa, pb, g in zip(a, b, _grads(case, step, torch.float32)):
            pa.grad, pb.grad = g.clone(), g.clone()
        mine.step()
        theirs.step()
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)
    # and the wrapped class's own state dict keeps decay and peak_lr through a round trip
    mine.param_groups[0]["peak_lr"] = 0.5
    again = case.cls(_params(case, torch.float32), lr=LR, weight_decay=0.1, decay="paper", **case.kwargs)
    again.load_state_dict(mine.state_dict())
    assert again.param_groups[0]["decay"] == mode and again.param_groups[0]["peak_lr"] == 0.5


def test_the_same_kernels_run_as_the_base_in_every_lr_based_mode():
    # s_t reaches NAdam's and Adam's own foreach/fused kernels through c_t: the profiler sees the same ops.
    def ops(make):
        params = [torch.nn.Parameter(torch.randn(64, 32)) for _ in range(3)]
        opt = make(params)
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            opt.step()
        return sorted(e.key for e in prof.key_averages() if e.key.startswith("aten::_foreach")
                      or e.key.startswith("aten::_fused"))

    for base, wrapped, kw in ((torch.optim.NAdam, weightdecay.NAdam, dict(foreach=True)),
                              (torch.optim.Adam, weightdecay.with_decay(torch.optim.Adam), dict(fused=True))):
        want = ops(lambda p: base(p, lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True, **kw))
        assert want
        for mode in ("torch", "paper", "constant", "corrected"):
            assert ops(lambda p: wrapped(p, lr=1e-3, weight_decay=0.1, decay=mode, **kw)) == want, mode


@pytest.mark.parametrize("adjust", [None, "original", "match_rms_adamw"])
def test_muon_decay_uses_the_group_lr_not_the_adjusted_one(adjust):
    # Zero gradient: Muon's update is zero, so only the decay moves p: p·(1 - lr·λ) under every adjust_lr_fn,
    # while the adjusted lr (≠ lr for both functions on a 4×9 matrix: 0.1·sqrt(max(1, 4/9)) = 0.1 is the
    # exception for "original", 0.2·0.1·3 = 0.06 for "match_rms_adamw") scales the update alone.
    p = torch.nn.Parameter(torch.randn(4, 9, dtype=F64))
    p0 = p.detach().clone()
    opt = weightdecay.Muon([p], lr=0.1, weight_decay=0.3, adjust_lr_fn=adjust, decay="torch")
    p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(p.detach(), p0 * (1 - 0.1 * 0.3), rtol=1e-12, atol=0)
    # The step with a gradient (the base's adjusted update plus this same shrink) is the oracle test's muon rows.


def test_muon_split_helper_shares_the_convention():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 8), torch.nn.LayerNorm(8),
                                torch.nn.Linear(8, 3))
    muon_groups, adamw_groups = weightdecay.muon_param_groups(model, 0.1, decay="paper", adamw_names=["3"])
    assert [p.shape for g in muon_groups for p in g["params"]] == [torch.Size([8, 6])]
    assert {id(p) for g in adamw_groups for p in g["params"]} == \
        {id(p) for n, p in model.named_parameters() if n != "1.weight"}
    opt = weightdecay.muon_with_adamw(muon_groups, adamw_groups, lr=0.02, weight_decay=0.1, decay="paper",
                                      adamw_lr=1e-3, cautious=True)
    assert {g["decay"] for g in opt.param_groups} == {"paper"} and all(g["cautious"] for g in opt.param_groups)
    assert [type(o).__name__ for o in opt.optimizers] == ["Muon", "AdamW"]
    # one scheduler drives both; the state dict round-trips
    sched = LambdaLR(opt, lambda k: 0.5 ** k)
    x = torch.randint(0, 10, (5,))
    model(x).square().mean().backward()
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.0005, 0.0005, 0.0005][:len(opt.param_groups)]
    clone = copy.deepcopy(model)
    other = weightdecay.muon_with_adamw(*weightdecay.muon_param_groups(clone, 0.1, decay="paper",
                                                                       adamw_names=["3"]),
                                        lr=0.02, weight_decay=0.1, decay="paper", adamw_lr=1e-3, cautious=True)
    other.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("make,message", [
    (lambda p: weightdecay.NAdam(p, decay="bogus"), "Invalid decay mode"),
    (lambda p: weightdecay.Muon([torch.nn.Parameter(torch.ones(2, 2))], decay="stable"),
     "Invalid decay mode for Muon: 'stable' needs Adam's second moment"),
    (lambda p: weightdecay.Adafactor(p, decay="stable"), "for Adafactor"),
    (lambda p: weightdecay.Muon(p), "Muon: Muon only supports 2D parameters"),
    (lambda p: weightdecay.NAdam(p, lr=-1.0), "Invalid learning rate"),
    (lambda p: weightdecay.RAdam(p, weight_decay=-1.0), "Invalid weight_decay value"),
    (lambda p: weightdecay.NAdam(p, lr=0.0, decay="paper"), "Invalid peak_lr"),
    (lambda p: weightdecay.NAdam(p, decay="l2", cautious=True), "cautious=True with decay='l2'"),
    (lambda p: weightdecay.NAdam(p, decay="paper", decoupled_weight_decay=False), "drop decoupled_weight_decay"),
    (lambda p: weightdecay.RAdam(p, betas=(1.5, 0.9)), "RAdam: Invalid beta parameter"),
    (lambda p: weightdecay.with_decay(torch.optim.LBFGS), "how LBFGS applies its weight_decay is unknown"),
    (lambda p: weightdecay.with_decay(weightdecay.AdamW), "already has a named decay convention"),
])
def test_errors_name_the_argument(make, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make([torch.nn.Parameter(torch.ones(3))])


def test_step_hooks_run_once_and_closure_is_evaluated():
    p = torch.nn.Parameter(torch.ones(3))
    torch.optim.NAdam([torch.nn.Parameter(torch.ones(1))])  # hooks torch's NAdam.step on its class
    opt = weightdecay.NAdam([p], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (p * 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 6.0
    assert calls == ["pre", "post"]
