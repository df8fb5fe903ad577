"""AMP: a GradScaler hands the fused kernels ``grad_scale``/``found_inf``, as for torch.optim.AdamW(fused=True).

The peers: the same run without a scaler (a power-of-two scale is exact, so scaled and unscaled training agree
to rounding), and a skipped step, which must change nothing at all: weights, moments, step counts, and the passes
that live outside torch's kernels (the ``constant`` shrink at lr_t = 0, SGDW's decoupled shrink with momentum,
``stable``'s norms, the step count kept by ``bias_correction=False``).
"""

from __future__ import annotations

import copy

import pytest
import torch

import weightdecay
from optimizer_cases import ADAMW, CASES as OPTIMIZER_CASES, SGDW
from weightdecay.optim import wrap

ADAM = next(c for c in OPTIMIZER_CASES if c.name == "adam")

SCALE = 2.0**10


def _model(n: int, seed: int = 0) -> torch.nn.ModuleList:
    torch.manual_seed(seed)
    return torch.nn.ModuleList(torch.nn.Linear(5, 3) for _ in range(n))


def _adamw(model, modes, **kw):
    groups = [{"params": layer.parameters(), "decay": m} for layer, m in zip(model, modes)]
    return weightdecay.AdamW(groups, lr=1e-2, weight_decay=0.1, fused=True, **kw)


def _sgdw(model, modes, **kw):
    groups = [{"params": layer.parameters(), "decay": m} for layer, m in zip(model, modes)]
    return weightdecay.SGDW(groups, lr=1e-2, momentum=0.9, weight_decay=0.1, fused=True, **kw)


def _wrapped_adam(model, modes, **kw):
    # with_decay's class: its shrink passes and stable's mean v̂ come from the same delivery plan and statistic.
    groups = [{"params": layer.parameters(), "decay": m} for layer, m in zip(model, modes)]
    return wrap.Adam(groups, lr=1e-2, weight_decay=0.1, fused=True, **kw)


def _loss(model, x):
    return sum(layer(x).square().mean() for layer in model)


CASES = [pytest.param(_adamw, ADAMW.modes, {}, id="AdamW"),
         pytest.param(_adamw, ADAMW.modes, {"bias_correction": False, "amsgrad": True}, id="AdamW-no-bias-correction"),
         pytest.param(_sgdw, SGDW.modes, {}, id="SGDW-momentum"),
         pytest.param(_wrapped_adam, ADAM.modes, {}, id="with_decay-Adam")]


@pytest.mark.parametrize("build, modes, kw", CASES)
def test_scaled_training_equals_unscaled(build, modes, kw):
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    plain_model, scaled_model = _model(len(modes)), _model(len(modes))
    plain, scaled = build(plain_model, modes, **kw), build(scaled_model, modes, **kw)
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE, growth_interval=10**6)
    assert scaled._step_supports_amp_scaling  # the scaler hands its scale to the kernel, no unscale_ pass
    handed = []
    scaled.register_step_pre_hook(lambda opt, args, kwargs: handed.append(getattr(opt, "grad_scale", None)))
    for _ in range(6):
        plain.zero_grad()
        _loss(plain_model, x).backward()
        plain.step()
        scaled.zero_grad()
        scaler.scale(_loss(scaled_model, x)).backward()
        scaler.step(scaled)
        scaler.update()
    # Every step received the scale itself (the kernel unscales), as torch.optim.AdamW(fused=True) does.
    assert len(handed) == 6 and all(s is not None and float(s) == SCALE for s in handed)
    for p, q in zip(plain_model.parameters(), scaled_model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("lr", [1e-2, 0.0], ids=["lr", "lr-zero"])
@pytest.mark.parametrize("build, modes, kw", CASES)
def test_a_step_the_scaler_skips_changes_nothing(build, modes, kw, lr):
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(2))
    model = _model(len(modes))
    opt = build(model, modes, **kw)
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    for step in range(3):  # two good steps build state, the third has an inf gradient
        opt.zero_grad()
        scaler.scale(_loss(model, x)).backward()
        if step == 2:
            for group in opt.param_groups:
                group["lr"] = lr  # at lr_t = 0 the constant shrink is a pass of its own
            before_params = [p.detach().clone() for p in model.parameters()]
            before_state = copy.deepcopy(opt.state_dict()["state"])
            model[0].weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() == SCALE / 2  # the scaler saw the inf and backed off
    for p, before in zip(model.parameters(), before_params):
        assert torch.equal(p, before)
    after_state = opt.state_dict()["state"]
    for key, state in before_state.items():
        for name, value in state.items():
            assert torch.equal(after_state[key][name], value), (key, name)


def test_constant_shrink_at_lr_zero_is_applied_on_a_good_step():
    # The pass outside the kernel still runs when the scaler finds no inf: p·(1 - λ) exactly, with g = 0.
    p = torch.nn.Parameter(torch.ones(4))
    opt = weightdecay.AdamW([p], lr=0.0, weight_decay=0.25, decay="constant", fused=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    scaler.scale((p * 0).sum()).backward()
    scaler.step(opt)
    torch.testing.assert_close(p.detach(), torch.full((4,), 0.75))


def test_mixed_paths_fall_back_to_the_unscale_pass():
    # As for any optimizer without kernel support, the scaler unscales first when a group is not fused.
    model = _model(2)
    opt = weightdecay.AdamW([{"params": model[0].parameters()},
                             {"params": model[1].parameters(), "fused": False}], fused=True)
    assert not opt._step_supports_amp_scaling
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    scaler.scale(_loss(model, torch.randn(4, 5))).backward()
    grad = model[1].weight.grad.clone()
    scaler.step(opt)
    torch.testing.assert_close(model[1].weight.grad, grad / SCALE)
