"""weightdecay.Monitor: every recorded quantity against a hand computation, the structural detection of
scale-invariant weights against the models' own declarations, bit-identical training with and without it, the
rotation converging to Kosson's equilibrium, the flags, and the exports read back by their own readers."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import weightdecay
from weightdecay import Monitor
from weightdecay.errors import UserError
from weightdecay.monitors import FIELDS, read_records
from weightdecay.tasks.models import CharTransformer, SmallCNN


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    # 0.weight feeds a bias-free Linear into LayerNorm: scale-invariant; 2.weight is not.
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.LayerNorm(4), nn.Linear(4, 2))


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)


def _loss(model, x, y):
    return ((model(x) - y) ** 2).mean()


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def _one_step_by_hand(opt_name: str, lr: float, wd: float, momentum: float = 0.0):
    """One step on _tiny(): the weights and gradients before it, recomputed by hand in float64."""
    model = _tiny()
    x, y = _batch(1)
    _loss(model, x, y).backward()
    before = {n: p.detach().double().numpy().ravel().copy() for n, p in model.named_parameters()}
    grads = {n: p.grad.double().numpy().ravel().copy() for n, p in model.named_parameters()}
    return before, grads


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_l2_records_match_a_hand_computation(momentum):
    lr, wd = 0.1, 0.05
    model = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    monitor = Monitor(opt, model, every=1, steps_per_epoch=4)
    x, y = _batch(1)
    _loss(model, x, y).backward()
    opt.step()
    before, grads = _one_step_by_hand("sgd", lr, wd)
    by_name = {r["name"]: r for r in monitor.records}
    assert set(by_name) == {"0.weight", "1.weight", "1.bias", "2.weight", "2.bias"}
    assert list(by_name["0.weight"]) == list(FIELDS)
    for name, r in by_name.items():
        p0, g = before[name], grads[name]
        p1 = p0 - lr * (g + wd * p0)  # the first step: the momentum buffer is the gradient itself
        assert r["step"] == 1 and r["group"] == 0 and r["decay"] == "l2" and r["lr"] == lr
        assert r["weight_norm"] == pytest.approx(np.linalg.norm(p0), rel=1e-6)
        assert r["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-6)
        assert r["update_norm"] == pytest.approx(np.linalg.norm(p1 - p0), rel=1e-5)
        if not p0.any():  # LayerNorm's zero bias: no direction to turn, no ratio
            assert r["grad_to_weight"] is None and r["rotation"] is None
            continue
        assert r["grad_to_weight"] == pytest.approx(np.linalg.norm(g) / np.linalg.norm(p0), rel=1e-6)
        assert r["rotation"] == pytest.approx(_angle(p0, p1), rel=1e-4, abs=1e-7)
        assert r["shrink"] == pytest.approx(lr * wd) and r["tau_iter"] == pytest.approx(1 / (lr * wd))
        assert r["tau_epoch"] == pytest.approx(1 / (lr * wd) / 4)
    assert monitor.scale_invariant == ["0.weight"]
    assert by_name["0.weight"]["predicted_rotation"] == pytest.approx(math.sqrt(2 * lr * wd / (1 + momentum)))
    assert by_name["0.weight"]["predicted_grad_to_weight"] == pytest.approx(math.sqrt(2 * wd / lr))
    assert all(by_name[n]["predicted_rotation"] is None for n in by_name if n != "0.weight")


@pytest.mark.parametrize("make, decay, shrink_of", [
    (lambda ps: weightdecay.AdamW(ps, lr=0.01, weight_decay=0.2), "torch", lambda lr: lr * 0.2),
    (lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.2), "torch", lambda lr: lr * 0.2),
    (lambda ps: weightdecay.AdamW(ps, lr=0.01, weight_decay=0.2, decay="paper"), "paper", lambda lr: lr / 0.01 * 0.2),
    (lambda ps: weightdecay.AdamW(ps, lr=0.01, weight_decay=0.2, decay="corrected"), "corrected",
     lambda lr: lr * lr / 0.01 * 0.2),
    (lambda ps: weightdecay.AdamW(ps, lr=0.01, weight_decay=0.2, decay="constant"), "constant", lambda lr: 0.2),
])
def test_adamw_shrink_follows_the_decay_table_under_a_schedule(make, decay, shrink_of):
    model = _tiny()
    opt = make(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / (1 + k))
    monitor = Monitor(opt, model, every=2)
    for k in range(4):
        opt.zero_grad()
        _loss(model, *_batch(k)).backward()
        opt.step()
        schedule.step()
    assert sorted({r["step"] for r in monitor.records}) == [2, 4]
    for r in monitor.records:
        lr = 0.01 / r["step"]  # LambdaLR: step k runs at lr/(1+k), k = step - 1
        assert r["decay"] == decay and r["lr"] == pytest.approx(lr)
        assert r["shrink"] == pytest.approx(shrink_of(lr))
        if r["name"] == "0.weight":
            assert r["predicted_rotation"] == pytest.approx(math.sqrt(2 * shrink_of(lr) * 0.1 / 1.9))
            assert r["predicted_grad_to_weight"] is None  # AdamC's ratio is an SGD steady state


def test_adamw_update_norm_is_the_hand_written_adam_step():
    lr, wd, (b1, b2), eps = 0.01, 0.2, (0.9, 0.999), 1e-8
    model = _tiny()
    opt = weightdecay.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    monitor = Monitor(opt, model, every=1)
    _loss(model, *_batch(1)).backward()
    opt.step()
    before, grads = _one_step_by_hand("adamw", lr, wd)
    for r in monitor.records:
        p0, g = before[r["name"]], grads[r["name"]]
        assert r["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-6)
        m, v = (1 - b1) * g / (1 - b1), (1 - b2) * g * g / (1 - b2)
        p1 = p0 * (1 - lr * wd) - lr * m / (np.sqrt(v) + eps)
        assert r["update_norm"] == pytest.approx(np.linalg.norm(p1 - p0), rel=1e-4)
        if p0.any():
            assert r["rotation"] == pytest.approx(_angle(p0, p1), rel=1e-3, abs=1e-7)


def test_a_step_with_a_closure_records_this_steps_gradient():
    # Lightning computes the gradient inside optimizer.step(closure): the pre-step hook runs before it exists.
    model = _tiny()
    opt = weightdecay.AdamW(model.parameters(), lr=0.01, weight_decay=0.2)
    monitor = Monitor(opt, model, every=1)
    x, y = _batch(1)

    def closure():
        opt.zero_grad()
        loss = _loss(model, x, y)
        loss.backward()
        return loss

    opt.step(closure)
    _, grads = _one_step_by_hand("adamw", 0.01, 0.2)
    assert monitor.scale_invariant == ["0.weight"]  # the forward inside the closure was seen
    for r in monitor.records:
        assert r["step"] == 1 and r["grad_norm"] == pytest.approx(np.linalg.norm(grads[r["name"]]), rel=1e-6)


def test_plain_adam_weight_decay_reads_as_l2_without_a_shrink():
    model = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)
    monitor = Monitor(opt, model, every=1)
    _loss(model, *_batch(0)).backward()
    opt.step()
    assert {r["decay"] for r in monitor.records} == {"l2"}
    # Adam divides the coupled λ·p by its denominator per element: there is no single s_t to report
    assert all(r["shrink"] is None and r["predicted_rotation"] is None for r in monitor.records)


def test_every_names_and_remove():
    model = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(opt, every=3)  # no model: tensors named by group and index
    for k in range(7):
        opt.zero_grad()
        _loss(model, *_batch(k)).backward()
        opt.step()
    assert sorted({r["step"] for r in monitor.records}) == [3, 6]
    assert {r["name"] for r in monitor.records} == {f"group0.{i}" for i in range(5)}
    monitor.remove()
    for k in range(3):
        opt.step()
    assert max(r["step"] for r in monitor.records) == 6


def test_bad_arguments_are_user_errors():
    model = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError, match="every"):
        Monitor(opt, every=0)
    with pytest.raises(UserError, match="not in the model"):
        Monitor(opt, model, scale_invariant=["nope.weight"])
    with pytest.raises(UserError, match="Optimizer"):
        Monitor(model)


# --- which weights are scale-invariant ----------------------------------------------------------------------

def _detected(model: nn.Module, x: torch.Tensor) -> list[str]:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(opt, model, detect=True)
    monitor.scale_invariant = []  # only what the forward graph shows, not the model's own declaration
    model.train()
    model(x)
    opt.step()  # no gradients: nothing moves, and the first step ends the detection
    return sorted(monitor.scale_invariant)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_detection_finds_exactly_the_small_cnns_own_declaration(batch_norm):
    model = SmallCNN(1, 10, channels=(4, 8), hidden=16, image_size=8, batch_norm=batch_norm)
    assert _detected(model, torch.randn(4, 1, 8, 8)) == sorted(model.scale_invariant)


def test_eval_mode_batch_norm_is_not_a_normalization():
    model = SmallCNN(1, 10, channels=(4,), hidden=16, image_size=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(opt, model)
    monitor.scale_invariant = []
    model.eval()
    model(torch.randn(2, 1, 8, 8))
    opt.step()
    assert monitor.scale_invariant == []


def test_detection_in_a_pre_layernorm_transformer_finds_nothing():
    # ln2 is registered right after proj, but it normalizes the residual stream, not proj's output
    model = CharTransformer(vocab=11, context=8, dim=16, layers=1, heads=2)
    assert _detected(model, torch.zeros(2, 8, dtype=torch.long)) == []


def test_detection_rules_for_bias_and_norm_kind():
    model = nn.ModuleDict({"a": nn.Linear(3, 4), "ln": nn.LayerNorm(4), "b": nn.Conv1d(2, 3, 1),
                           "bn": nn.BatchNorm1d(3), "c": nn.Linear(3, 4, bias=False), "gn": nn.GroupNorm(2, 4)})

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x, s):
            m = self.m
            # a: LayerNorm keeps a's bias, not invariant; b: batch norm cancels its bias; c: no bias, invariant
            return m["ln"](m["a"](x)).sum() + m["bn"](m["b"](s)).sum() + m["gn"](m["c"](x)).sum()

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = Monitor(opt, net)
    net(torch.randn(5, 3), torch.randn(5, 2, 6))
    opt.step()
    assert sorted(monitor.scale_invariant) == ["m.b.weight", "m.c.weight"]


# --- the monitor never changes the run ----------------------------------------------------------------------

def _train(with_monitor: bool, steps: int = 25):
    torch.manual_seed(0)
    model = SmallCNN(1, 3, channels=(4,), hidden=8, image_size=8)
    opt = weightdecay.AdamW(model.parameters(), lr=3e-2, weight_decay=0.1)
    monitor = Monitor(opt, model, every=1) if with_monitor else None
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, monitor


def test_training_is_bit_identical_with_and_without_a_monitor():
    plain, _ = _train(False)
    watched, monitor = _train(True)
    assert len(monitor.records) == 25 * len(list(watched.parameters()))
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), name


# --- the prediction is what a scale-invariant weight does ---------------------------------------------------

def test_layernorm_weight_rotation_converges_to_kosson_equilibrium():
    # Fresh random inputs and targets every step: the gradient is noise, the setting of Kosson et al.'s claim.
    lr, wd = 0.01, 0.5  # s = 5e-3, τ_iter = 200 steps: equilibrium well inside 1500 steps
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64, bias=False), nn.LayerNorm(64), nn.Linear(64, 1))
    opt = weightdecay.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.99))
    monitor = Monitor(opt, model, every=5)
    g = torch.Generator().manual_seed(1)
    for _ in range(1500):
        opt.zero_grad()
        _loss(model, torch.randn(16, 32, generator=g), torch.randn(16, 1, generator=g)).backward()
        opt.step()
    late = [r for r in monitor.records if r["name"] == "0.weight" and r["step"] > 1000]
    measured = np.mean([r["rotation"] for r in late])
    predicted = late[-1]["predicted_rotation"]
    assert predicted == pytest.approx(math.sqrt(2 * lr * wd * 0.1 / 1.9))
    assert measured == pytest.approx(predicted, rel=0.15)
    assert not [f for f in monitor.summary().flags if f.kind == "rotation-off-equilibrium"]


# --- flags --------------------------------------------------------------------------------------------------

def _layernorm_run(make_opt, *, steps: int, schedule=lambda k: 1.0, every: int = 5, **monitor_options):
    """A bias-free Linear into LayerNorm, the only trained weight, on fresh noise every step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64, bias=False), nn.LayerNorm(64), nn.Linear(64, 1))
    model[2].requires_grad_(False)
    opt = make_opt([model[0].weight])
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    monitor = Monitor(opt, model, every=every, **monitor_options)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        _loss(model, torch.randn(16, 32, generator=g), torch.randn(16, 1, generator=g)).backward()
        opt.step()
        lr_schedule.step()
    return monitor


@pytest.mark.parametrize("decay", ["torch", "corrected"])
def test_end_of_schedule_gradient_rise_is_flagged_under_torch_and_not_under_corrected(decay):
    # SGD's equilibrium ‖g‖/‖p‖ is sqrt(2·s_t)/lr_t (AdamC): sqrt(2λ/lr_t) under torch, rising 4.5× as the lr falls
    # 20×; sqrt(2λ/peak_lr) under corrected.
    monitor = _layernorm_run(lambda ps: weightdecay.SGDW(ps, lr=0.4, weight_decay=0.2, decay=decay), steps=2000,
                             schedule=lambda k: max(0.05, 1 - k / 2000))
    rise = [f for f in monitor.summary().flags if f.kind == "gradient-norm-rise"]
    if decay == "torch":
        assert [f.names for f in rise] == [("0.weight",)] and rise[0].value > 1.5
        assert "decay='corrected'" in rise[0].sentence
    else:
        assert rise == []


def test_timescale_and_large_shrink_flags():
    # τ_iter = 1/(1e-3·1e-3) = 1e6 steps, far beyond a 50-step run
    long = _layernorm_run(lambda ps: weightdecay.AdamW(ps, lr=1e-3, weight_decay=1e-3), steps=50,
                          steps_per_epoch=10)
    kinds = {f.kind: f for f in long.summary().flags}
    assert set(kinds) == {"tau-beyond-run"} and kinds["tau-beyond-run"].value == pytest.approx(1e6 / 50)
    assert "1e+05 epochs" in kinds["tau-beyond-run"].sentence
    # constant decay: s_t = λ = 0.2 per step, τ_iter = 5 steps, half an epoch of 10 steps
    short = _layernorm_run(lambda ps: weightdecay.AdamW(ps, lr=1e-3, weight_decay=0.2, decay="constant"), steps=50,
                           steps_per_epoch=10)
    kinds = {f.kind: f for f in short.summary().flags}
    assert kinds["tau-below-epoch"].value == pytest.approx(0.5)
    assert kinds["large-shrink"].value == pytest.approx(0.2) and "20%" in kinds["large-shrink"].sentence
    assert "tau-beyond-run" not in kinds


def test_a_weight_declared_scale_invariant_that_is_not_is_flagged_off_equilibrium():
    # A least-squares weight converges to its solution: it stops turning, far below the equilibrium angle.
    torch.manual_seed(0)
    model = nn.Linear(8, 1, bias=False)
    opt = weightdecay.AdamW(model.parameters(), lr=0.05, weight_decay=0.5)
    monitor = Monitor(opt, model, every=5, scale_invariant=["weight"])
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1)
    for _ in range(400):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    flags = [f for f in monitor.summary().flags if f.kind == "rotation-off-equilibrium"]
    assert [f.names for f in flags] == [("weight",)] and flags[0].value < 0.5


# --- exports ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def watched():
    _, monitor = _train(True, steps=10)
    return monitor


def test_csv_and_jsonl_read_back_to_the_records(watched, tmp_path):
    watched.to_jsonl(tmp_path / "log.jsonl")
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == watched.records
    assert read_records(tmp_path / "log.jsonl") == watched.records
    watched.to_csv(tmp_path / "log.csv")
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(FIELDS) and len(rows) == len(watched.records)
    back = read_records(tmp_path / "log.csv")
    for a, b in zip(back, watched.records):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == (pytest.approx(b[key], rel=1e-12) if isinstance(b[key], float) else b[key])


def test_gzip_jsonl_reads_back_and_a_diverged_runs_nan_is_null(watched, tmp_path):
    import gzip

    path = watched.to_jsonl(tmp_path / "log.jsonl.gz")
    assert gzip.decompress(path.read_bytes()) == (watched.to_jsonl(tmp_path / "log.jsonl")).read_bytes()
    assert read_records(path) == watched.records
    diverged = [{**watched.records[0], "grad_norm": float("nan"), "grad_to_weight": float("inf")}]
    from weightdecay.monitors import write_jsonl

    back = read_records(write_jsonl(diverged, tmp_path / "diverged.jsonl"))
    assert back == [{**watched.records[0], "grad_norm": None, "grad_to_weight": None}]


def test_a_log_that_is_not_a_monitor_log_is_a_user_error(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(UserError, match="not a monitor record"):
        read_records(tmp_path / "bad.jsonl")
    (tmp_path / "bad.jsonl.gz").write_text('{"x": 1}\n')
    with pytest.raises(UserError, match="not a gzip file"):
        read_records(tmp_path / "bad.jsonl.gz")
    with pytest.raises(weightdecay.errors.DataNotFoundError):
        read_records(tmp_path / "missing.jsonl")


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_files_read_back_with_tensorboards_own_reader(watched, tmp_path):
    pytest.importorskip("tensorboard")
    watched.to_tensorboard(tmp_path / "tb")
    scalars = _scalars(tmp_path / "tb")
    names = {r["name"] for r in watched.records}
    assert {f"rotation/{n}" for n in names} <= set(scalars)
    assert {f"predicted_rotation/{n}" for n in watched.scale_invariant} <= set(scalars)
    for r in watched.records:
        if r["rotation"] is not None:
            logged = dict(scalars[f"rotation/{r['name']}"])[r["step"]]
            assert logged == pytest.approx(r["rotation"], rel=1e-6)  # stored as float32


def test_live_tensorboard_while_training(tmp_path):
    pytest.importorskip("tensorboard")
    monitor = _layernorm_run(lambda ps: weightdecay.AdamW(ps, lr=1e-2, weight_decay=0.1), steps=20,
                             log_dir=tmp_path / "live")
    monitor.remove()  # flushes the writer
    scalars = _scalars(tmp_path / "live")
    assert [s for s, _ in scalars["grad_to_weight/0.weight"]] == [5, 10, 15, 20]
    assert [v for _, v in scalars["shrink/0.weight"]] == pytest.approx([1e-3] * 4)


@pytest.mark.parametrize("shrink, tangential", [(0.0, 1e-3), (1e-4, 1e-4), (0.1, 1e-4), (0.3, 1e-5)])
def test_rotation_from_the_step_norms_matches_the_unit_vector_angle(shrink, tangential):
    # The monitor takes the angle from ‖p_{t+1} − p_t‖, ‖p_t‖ and ‖p_{t+1}‖ alone; where a step is mostly a shrink
    # (the radial part much larger than the tangential one) that subtraction is the hard case: compare it with the
    # float64 unit-vector angle of diagnostics.rotation_angle. The float64 sums' rounding is amplified by
    # (radial/tangential)²: 1.7e-6 relative at a 30% shrink with a tangential move of 1e-5 (a step three times past
    # the monitor's own s_t >= 0.1 flag), 3e-9 or less at the others.
    from weightdecay.monitors.diagnostics import rotation_angle
    from weightdecay.monitors.monitor import _measure

    gen = torch.Generator().manual_seed(0)
    before = torch.randn(200, 50, generator=gen)
    after = (1 - shrink) * before + tangential * before.norm() / 100 * torch.randn(200, 50, generator=gen)
    param = after.clone().requires_grad_()
    param.grad = torch.randn(200, 50, generator=gen)
    (_, _, _, rotation, _, _), = _measure([param], [before])
    assert rotation == pytest.approx(float(rotation_angle(before, after)), rel=1e-5)


def _expected_rotation(rule: str, decoupled: bool, s: float, group: dict) -> float:
    """docs/math.md, 'Rotational equilibrium', with s = lr·λ in torch units."""
    if rule == "adam":
        beta1 = group["betas"][0]
        return math.sqrt(2 * s * (1 - beta1) / (1 + beta1))
    mu = group.get("momentum", 0.0)
    return math.sqrt(2 * s * (1 - mu) / (1 + mu)) if decoupled else math.sqrt(2 * s / (1 + mu))


@pytest.mark.parametrize("decay", ["torch", "l2"])
@pytest.mark.parametrize("name", list(weightdecay.OPTIMIZERS))
def test_predictions_for_every_registered_optimizer_come_from_its_row(name, decay):
    # The registry row's `rotation` names the rule: its predictions where it names one, none (and why) where not.
    info = weightdecay.OPTIMIZERS[name]
    if info.own_decay and decay != "torch":
        pytest.skip("an optimizer with a decay of its own takes no decay=")
    lr, lam = 0.01, 0.1
    model = _tiny()
    kwargs = dict(weight_decay=0.0) if info.own_decay else dict(weight_decay=lam, decay=decay)
    opt = info.build(model.parameters(), lr=lr, **kwargs)
    monitor = Monitor(opt, model, every=1)
    for k in range(2):
        opt.zero_grad()
        _loss(model, *_batch(k)).backward()
        opt.step()
    assert monitor.scale_invariant == ["0.weight"]
    watched = [r for r in monitor.records if r["name"] == "0.weight"]
    assert [r["step"] for r in watched] == [1, 2]
    g = watched[0]["group"]
    group = opt.param_groups[g]
    # Muon's split sends the matrix to Muon itself, whose row names no rule.
    rule = None if info.updates == "matrices" else info.rotation
    decoupled = decay != "l2"
    for r in watched:
        if rule is None or info.own_decay or (rule == "adam" and not decoupled):
            assert r["predicted_rotation"] is None and r["predicted_grad_to_weight"] is None
            continue
        assert r["shrink"] == pytest.approx(lr * lam)
        assert r["predicted_rotation"] == pytest.approx(_expected_rotation(rule, decoupled, lr * lam, group))
        if rule == "adam":
            assert r["predicted_grad_to_weight"] is None  # AdamC's ratio is an SGD steady state
        else:
            assert r["predicted_grad_to_weight"] == pytest.approx(math.sqrt(2 * lam / lr))
    if rule is None:
        assert info.name in monitor.no_predictions[g]
    else:
        assert g not in monitor.no_predictions


def test_a_users_registered_optimizer_gets_the_predictions_its_row_names():
    from weightdecay.optim.registry import OPTIMIZERS, OptimizerInfo, register_optimizer

    cls = weightdecay.with_decay(torch.optim.NAdam, name="MyNAdam")
    register_optimizer(OptimizerInfo("my-nadam", cls, second_moment=True, rotation="adam"))
    try:
        model = _tiny()
        opt = cls(model.parameters(), lr=0.01, weight_decay=0.1, betas=(0.8, 0.99))
        monitor = Monitor(opt, model, every=1)
        _loss(model, *_batch(0)).backward()
        opt.step()
        [r] = [r for r in monitor.records if r["name"] == "0.weight"]
        assert r["predicted_rotation"] == pytest.approx(math.sqrt(2 * 0.01 * 0.1 * 0.2 / 1.8))
        # the same class unregistered as rotation-less NAdam: no prediction, and the reason names its row
        plain = weightdecay.NAdam(_tiny().parameters(), lr=0.01, weight_decay=0.1)
        other = Monitor(plain, every=1)
        plain.param_groups[0]["params"][0].grad = torch.ones_like(plain.param_groups[0]["params"][0])
        plain.step()
        assert "'nadam'" in other.no_predictions[0]
    finally:
        del OPTIMIZERS["my-nadam"]
