"""The optimizer registry: its rows against the classes they name, and tasks/sweeps/CLI reading it."""

from __future__ import annotations

import inspect
import math
import tomllib

import pytest
import torch

import weightdecay
from weightdecay.errors import ConfigError, UserError
from weightdecay.optim.registry import OPTIMIZERS, OptimizerInfo, get_optimizer, register_optimizer
from weightdecay.tasks import TrainConfig
from weightdecay.tasks.training import build_optimizer

# Where a row's default is the tasks' choice rather than the class's own, and why.
TASK_DEFAULTS = {("sgdw", "momentum"): 0.0, ("sgd", "momentum"): 0.0}


def _class_signature(info: OptimizerInfo) -> inspect.Signature:
    cls = info.factory
    base = getattr(cls, "_base", cls)
    return inspect.signature(base.__init__)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_row_defaults_are_the_class_defaults(name):
    info = get_optimizer(name)
    sig = _class_signature(info)
    for h in info.hyperparameters:
        if h.name == "cautious":
            continue
        assert h.name in sig.parameters, f"{name} has no argument {h.name}"
        own = sig.parameters[h.name].default
        expected = TASK_DEFAULTS.get((name, h.name), h.default)
        assert own == expected or (isinstance(own, tuple) and tuple(own) == tuple(expected)), (name, h.name, own)
        h.validate(h.default)  # every default passes its own check


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_row_builds_through_tasks_and_steps_like_the_class(name):
    info = get_optimizer(name)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    twin.load_state_dict(model.state_dict())
    wd, decay = (0.0, "torch") if info.own_decay else (0.1, "paper")
    config = TrainConfig(lr=1e-2, weight_decay=wd, optimizer=name, decay=decay)
    opt = build_optimizer(model, config)
    # the same thing built by hand: the class with the row's defaults, Muon's rest on AdamW
    groups = weightdecay.param_groups(twin, 0.1, decay="paper")
    if info.own_decay:
        mine = info.factory([{"params": g["params"]} for g in weightdecay.param_groups(twin, 0.0)], lr=1e-2,
                            **info.defaults)
    elif info.updates == "matrices":
        muon, rest = weightdecay.optim.muon.split_matrices(groups)
        mine = weightdecay.optim.CombinedOptimizer([
            info.factory(muon, lr=1e-2, weight_decay=0.1, decay="paper", **info.defaults),
            weightdecay.AdamW(rest, lr=1e-2, weight_decay=0.1, decay="paper")])
    else:
        mine = info.factory(groups, lr=1e-2, weight_decay=0.1, decay="paper", **info.defaults)
    x = torch.randn(8, 4)
    for _ in range(2):
        for m, o in ((model, opt), (twin, mine)):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    assert {g.get("decay") for g in opt.param_groups} == ({None} if info.own_decay else {"paper"})


def test_second_moment_decides_stable():
    for name, info in OPTIMIZERS.items():
        if info.own_decay:
            with pytest.raises(UserError, match=f"{name} has its own weight decay, not decay='stable'"):
                info.check_decay("stable")
        elif info.second_moment:
            info.check_decay("stable")
        else:
            with pytest.raises(UserError, match=f"Invalid decay mode for {name}: 'stable' needs Adam's second"):
                info.check_decay("stable")
    assert [n for n, i in OPTIMIZERS.items() if i.second_moment] == ["adamw", "nadam", "radam"]


def test_unknown_or_bad_hyperparameters_name_the_fix():
    with pytest.raises(UserError, match=r"adamw does not take 'nesterov' \(only sgdw, muon, sgd take it\)"):
        get_optimizer("adamw").check_hyperparameters({"nesterov": True})
    with pytest.raises(UserError, match="Invalid adjust_lr_fn: 'rms'"):
        get_optimizer("muon").check_hyperparameters({"adjust_lr_fn": "rms"})
    with pytest.raises(UserError, match="Unknown optimizer 'sophia'; choose one of adamw, sgdw"):
        get_optimizer("sophia")
    with pytest.raises(UserError, match="optimizer_options: 'momentum' is a TrainConfig field"):
        weightdecay.tasks.training.validate_config(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer="sgdw",
                                                               epochs=1, batch_size=1,
                                                               optimizer_options={"momentum": 0.5}))


def test_a_registered_optimizer_trains_through_train(tmp_path):
    info = OptimizerInfo("my-rmsprop", weightdecay.with_decay(torch.optim.RMSprop),
                         (get_optimizer("rmsprop").hyperparameters[0],), description="a user's row")
    register_optimizer(info)
    try:
        with pytest.raises(UserError, match="already registered"):
            register_optimizer(info)
        result = weightdecay.tasks.get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer="my-rmsprop",
                                                                     epochs=1, schedule="constant"))
        direct = weightdecay.tasks.get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer="rmsprop",
                                                                     epochs=1, schedule="constant"))
        assert result.metrics == direct.metrics
    finally:
        OPTIMIZERS.pop("my-rmsprop")


def test_cli_train_runs_every_registered_name_it_lists(capsys):
    from weightdecay.cli import main

    base = ["train", "ridge", "--lr", "1e-3", "--weight-decay", "0.1", "--epochs", "1", "--schedule", "constant",
            "--json", "--quiet"]
    assert main([*base, "--optimizer", "nadam", "--decay", "paper", "--cautious"]) == 0
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["optimizer_options"] == {"cautious": True}
    direct = weightdecay.tasks.get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer="nadam",
                                                                 decay="paper", epochs=1, schedule="constant",
                                                                 optimizer_options={"cautious": True}))
    assert payload["metrics"] == pytest.approx(direct.metrics, rel=1e-12)
    assert main([*base, "--optimizer", "muon", "--momentum", "0.8"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["momentum"] == 0.8
    assert main([*base, "--optimizer", "adafactor", "--momentum", "0.8"]) == 2
    assert "--momentum applies to --optimizer sgdw, muon" in capsys.readouterr().err


SWEEP = '''
name = "t"
task = "ridge"
epochs = 1
[grid]
lr = [1e-3]
weight_decay = [0.1]
[[arms]]
'''


@pytest.mark.parametrize("arm,error", [
    ('optimizer = "muon"\ndecay = "paper"\ncautious = true\nnesterov = false\n', None),
    ('optimizer = "nadam"\ndecay = "stable"\n', None),
    ('optimizer = "adamw"\nnesterov = true\n', "arms[0].nesterov: adamw does not use nesterov (only sgdw, muon, sgd do)"),
    ('optimizer = "muon"\ndecay = "stable"\n', "arms[0].decay: Invalid decay mode for muon"),
    ('optimizer = "muon"\nadjust_lr_fn = "x"\n', "arms[0].Invalid adjust_lr_fn"),
    ('optimizer = "sophia"\n', "arms[0].optimizer: 'sophia'; choose one of adamw"),
])
def test_sweep_arms_read_the_registry(arm, error):
    from weightdecay.sweeps.config import parse_config

    if error is None:
        config = parse_config(tomllib.loads(SWEEP + arm))
        a = config.arms[0]
        if a.optimizer == "muon":
            assert a.optimizer_options == {"cautious": True, "nesterov": False} and a.momentum == 0.95
    else:
        with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                           .replace("]", r"\]")):
            parse_config(tomllib.loads(SWEEP + arm))


def test_rules_read_the_registry():
    from weightdecay.rules import OPTIMIZERS as RULES
    from weightdecay.rules import equilibrium_rotation

    assert set(RULES) == {"adamw", "sgdw", "sgd"}
    with pytest.raises(UserError, match="no derived equilibrium"):
        equilibrium_rotation(1e-3, 0.1, optimizer="muon")


def test_amos_trains_through_the_registry_and_refuses_a_weight_decay():
    from weightdecay.optim import Amos

    task = weightdecay.tasks.get_task("ridge")
    result = task.run(TrainConfig(lr=1e-2, weight_decay=0.0, optimizer="amos", epochs=1, schedule="constant",
                                  optimizer_options={"scalar_v": True}))
    assert isinstance(build_optimizer(torch.nn.Linear(3, 1), TrainConfig(lr=1e-2, weight_decay=0.0,
                                                                         optimizer="amos")), Amos)
    assert math.isfinite(result.metrics["val_loss"])
    with pytest.raises(UserError, match="amos has its own weight decay: weight_decay must be 0"):
        task.run(TrainConfig(lr=1e-2, weight_decay=0.1, optimizer="amos", epochs=1, schedule="constant"))
