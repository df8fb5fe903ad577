"""torch.compile of ``opt.step()`` and of a whole train step, for every mode and path, against eager (the peer).

Before: compiling a step that calls ``weightdecay.AdamW.step`` raised ``Cannot construct ConstantVariable for value
of type <class 'dict'>`` (dynamo runs an optimizer's ``_init_group`` eagerly and wants torch's signature). Every
mode runs in one optimizer, one parameter group per mode, so each path costs one compilation. The lr is a Tensor
(torch's advice for compiled optimizers) and changes at every step; after the first two steps (state creation)
``torch._dynamo.config.error_on_recompile`` turns any recompilation into an error. Compiling is slow on a small
CPU, so the per-path test uses the ``aot_eager`` backend (dynamo + AOT autograd, no code generation) and the
inductor test is one small run, marked slow.
"""

from __future__ import annotations

import math

import pytest
import torch

import weightdecay
from optimizer_cases import ADAMW, PATH_KWARGS, SGDW

STEPS, WARMUP = 20, 2


def _model(n_groups: int, seed: int = 0) -> torch.nn.ModuleList:
    torch.manual_seed(seed)
    return torch.nn.ModuleList(torch.nn.Linear(4, 3, bias=False) for _ in range(n_groups))  # one tensor a group


def _optimizer(cls, model, modes, path):
    # One group per mode; the Tensor lr of each group is written in place by the schedule below.
    groups = [{"params": layer.parameters(), "decay": m, "lr": torch.tensor(1e-2)} for layer, m in zip(model, modes)]
    extra = {"momentum": 0.9} if cls is weightdecay.SGDW else {}
    kwargs = dict(PATH_KWARGS[path])
    if cls is weightdecay.AdamW and path == "foreach":
        kwargs = {}  # a Tensor lr is refused with foreach=True (as torch.optim.AdamW does); unset, it runs the loop
    return cls(groups, weight_decay=0.1, peak_lr=1e-2, **kwargs, **extra)


def _set_lr(opt, step):
    for group in opt.param_groups:  # a cosine from the peak, as a scheduler would write it
        group["lr"].fill_(1e-2 * 0.5 * (1 + math.cos(math.pi * step / STEPS)))


def _train(model, opt, step_fn, x):
    losses = []
    for i in range(STEPS):
        if step_fn.compiled and i == WARMUP:
            torch._dynamo.config.error_on_recompile = True
        losses.append(step_fn(model, opt, x))
        _set_lr(opt, i + 1)
    return losses


def _opt_step_only(backend):
    step = torch.compile(lambda opt: opt.step(), backend=backend) if backend else (lambda opt: opt.step())

    def train_step(model, opt, x):
        opt.zero_grad()
        loss = sum(layer(x).square().mean() for layer in model)
        loss.backward()
        step(opt)
        return loss.detach()
    train_step.compiled = backend is not None
    return train_step


@pytest.fixture
def dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.config.error_on_recompile = False
    torch._dynamo.reset()


CASES = [pytest.param(ADAMW.cls, ADAMW.modes, path, id=f"AdamW-{path}",
                      # under compile AdamW's single and foreach paths differ only in torch's flag: one is enough
                      marks=[pytest.mark.slow] if path == "foreach" else []) for path in ADAMW.paths]
CASES += [pytest.param(SGDW.cls, SGDW.modes, path, id=f"SGDW-{path}") for path in SGDW.paths]


@pytest.mark.parametrize("cls, modes, path", CASES)
def test_compiled_step_matches_eager_without_recompiling(dynamo, cls, modes, path):
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    eager_model, compiled_model = _model(len(modes)), _model(len(modes))
    eager_opt = _optimizer(cls, eager_model, modes, path)
    compiled_opt = _optimizer(cls, compiled_model, modes, path)
    _train(eager_model, eager_opt, _opt_step_only(None), x)
    _train(compiled_model, compiled_opt, _opt_step_only("aot_eager"), x)
    for p, q in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    for group_e, group_c in zip(eager_opt.param_groups, compiled_opt.param_groups):
        for p, q in zip(group_e["params"], group_c["params"]):
            torch.testing.assert_close(compiled_opt.state[q], eager_opt.state[p], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_whole_train_step_with_inductor(dynamo):
    # forward, backward and step in one torch.compile (inductor), paper and stable modes, against eager.
    modes = ("paper", "stable")
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))

    def train_step(model, opt, x):
        opt.zero_grad()
        loss = sum(layer(x).square().mean() for layer in model)
        loss.backward()
        opt.step()
        return loss.detach()

    compiled = torch.compile(train_step)
    compiled.compiled = True
    train_step.compiled = False
    eager_model, compiled_model = _model(len(modes)), _model(len(modes))
    eager_opt = _optimizer(weightdecay.AdamW, eager_model, modes, "single")
    compiled_opt = _optimizer(weightdecay.AdamW, compiled_model, modes, "single")
    eager_losses = _train(eager_model, eager_opt, train_step, x)
    compiled_losses = _train(compiled_model, compiled_opt, compiled, x)
    torch.testing.assert_close(torch.stack(compiled_losses), torch.stack(eager_losses), rtol=1e-5, atol=1e-6)
    for p, q in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
