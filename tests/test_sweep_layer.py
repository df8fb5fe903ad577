"""The sweep layer's reach and honesty: weight-decay schedules from `train` and a config arm (against the decay
formula p_T = p_0·Π(1 − s_t)), the config's two checking steps, the command-line headline, progress without a
terminal."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import run_cli, write_config, write_instant_sweep
from test_sweeps import GOOD as ONE_POINT_SWEEP
from weightdecay.cli import main
from weightdecay.errors import ConfigError
from weightdecay.tasks import TrainConfig, get_task
from weightdecay.tasks.training import fit


pytestmark = pytest.mark.usefixtures("one_thread")


def _decay_only_run(config: TrainConfig, steps_per_epoch: int, train_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train a bias-free linear layer on a loss with zero gradient: only the decay moves the weight."""
    seen: list[torch.Tensor] = []
    model_ref: list[torch.nn.Module] = []

    def build() -> torch.nn.Module:
        model = torch.nn.Linear(4, 3, bias=False)
        model_ref.append(model)
        seen.append(model.weight.detach().clone())
        return model

    x = torch.randn(8, 4)
    fit(build, config, batches=lambda g: ((x, x[:, 0]) for _ in range(steps_per_epoch)),
        steps_per_epoch=steps_per_epoch, loss_fn=lambda m, xb, yb: (m(xb) * 0.0).sum(), evaluate=lambda m: {},
        options={"warmup_steps": None, "schedule_options": {}}, train_size=train_size)
    return seen[0], model_ref[0].weight.detach()


def _cosine(k: int, total: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * k / total))


def test_wd_schedule_follows_its_multiplier_under_torch_convention():
    # s_k = lr·λ·η(k) with η the cosine over the run: p_T = p_0·Π_k (1 − lr·λ·η(k)).
    lr, lam, spe, epochs = 0.1, 0.5, 5, 2
    config = TrainConfig(lr=lr, weight_decay=lam, decay="torch", schedule="constant", epochs=epochs, batch_size=8,
                         wd_schedule="cosine")
    p0, p_end = _decay_only_run(config, spe, train_size=8)
    total = epochs * spe
    expected = math.prod(1 - lr * lam * _cosine(k, total) for k in range(total))
    assert torch.allclose(p_end, p0 * expected, rtol=1e-5)
    fixed = _decay_only_run(config.with_(wd_schedule=None), spe, train_size=8)
    assert torch.allclose(fixed[1], fixed[0] * (1 - lr * lam) ** total, rtol=1e-5)  # without: λ stays put


def test_normalized_wd_per_restart_period_is_adamwr():
    # paper convention under sgdr (T_0 = 1, T_mult = 2): s_k = η_k · λ_norm·sqrt(b/(B·T_i)), T_i = 1, then 2 epochs.
    lam_norm, b, n, spe = 0.5, 8, 32, 4
    config = TrainConfig(lr=0.01, weight_decay=lam_norm, decay="paper", schedule="sgdr", epochs=3, batch_size=b,
                         normalized_wd=True)
    p0, p_end = _decay_only_run(config, spe, train_size=n)
    factor = 1.0
    for k in range(3 * spe):
        epoch = k / spe
        start, period = (0.0, 1.0) if epoch < 1 else (1.0, 2.0)
        eta = 0.5 * (1 + math.cos(math.pi * (epoch - start) / period))
        factor *= 1 - eta * lam_norm * math.sqrt(b / (n * period))
    assert torch.allclose(p_end, p0 * factor, rtol=1e-5)


def test_train_wd_schedule_and_normalized_wd_reach_the_run(capsys):
    base = ["train", "ridge", "--lr", "1e-2", "--epochs", "2", "--schedule", "constant", "--json", "--quiet"]
    assert main([*base, "--weight-decay", "0.5", "--wd-schedule", "linear"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["wd_schedule"] == "linear"
    direct = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=0.5, schedule="constant", epochs=2,
                                               wd_schedule="linear"))
    fixed = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=0.5, schedule="constant", epochs=2))
    assert payload["metrics"] == pytest.approx(direct.metrics, rel=1e-12)
    assert payload["metrics"]["train_loss"] != pytest.approx(fixed.metrics["train_loss"], rel=1e-9)
    assert main([*base, "--decay", "paper", "--normalized-wd", "0.05"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["normalized_wd"] is True and payload["config"]["weight_decay"] == 0.05


@pytest.mark.parametrize("argv, message", [
    (["--weight-decay", "0.1", "--normalized-wd", "0.05"], "--normalized-wd replaces --weight-decay"),
    (["--wd-schedule", "cosin"], "Unknown weight-decay schedule: 'cosin'"),
    (["--decay", "constant", "--normalized-wd", "0.05"], "only the 'paper' and 'torch' conventions"),
    (["--normalized-wd", "0.05", "--wd-schedule", "cosine"], "drop the weight-decay schedule or normalized_wd"),
])
def test_train_refuses_a_weight_decay_schedule_that_cannot_run(capsys, argv, message):
    assert main(["train", "ridge", "--epochs", "1", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


GOOD = ONE_POINT_SWEEP.replace('decay = "torch"', 'decay = "paper"')


def test_a_config_arm_takes_wd_schedule_and_normalized_wd(tmp_path):
    from weightdecay.sweeps import load_config

    config = load_config(write_config(tmp_path / "s.toml", GOOD + '    wd_schedule = "cosine"\n'
                                      '    [[arms]]\n    name = "n"\n    decay = "paper"\n    normalized_wd = true\n'))
    runs = [config.train_config(arm, lr=0.01, weight_decay=0.1) for arm in config.arms]
    assert (runs[0].wd_schedule, runs[0].normalized_wd) == ("cosine", False)
    assert (runs[1].wd_schedule, runs[1].normalized_wd) == (None, True)
    plain = load_config(write_config(tmp_path / "p.toml", GOOD))
    assert plain.train_config(plain.arms[0], lr=0.01, weight_decay=0.1).wd_schedule is None
    # A study stored before these keys existed keeps its fingerprint (the hash of the config and the arm as the
    # older Arm, without the two fields), so it still resumes; an arm that uses them gets a fingerprint of its own.
    import hashlib
    from dataclasses import asdict

    old = plain.to_dict()
    old.pop("arms"), old.pop("basin_tolerance"), old.pop("monitor_every")  # (monitor_every came later still)
    old["arm"] = {k: v for k, v in asdict(plain.arms[0]).items()
                  if k not in ("wd_schedule", "normalized_wd", "optimizer_options")}
    digest = hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert plain.fingerprint(plain.arms[0]) == digest
    assert config.fingerprint(config.arms[0]) != plain.fingerprint(plain.arms[0])


@pytest.mark.parametrize("arm, message", [
    ('    wd_schedule = "cosin"\n', "arms[0].wd_schedule: Unknown weight-decay schedule: 'cosin'"),
    ('    normalized_wd = 1\n', "arms[0].normalized_wd: 1 is not a bool"),
    ('    normalized_wd = true\n    wd_schedule = "cosine"\n', "arms[0].normalized_wd: normalized weight decay"),
])
def test_config_refuses_a_bad_weight_decay_schedule_naming_the_key(tmp_path, capsys, arm, message):
    cfg = write_config(tmp_path / "bad.toml", GOOD + arm)
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_schema_checks_touch_nothing_and_environment_checks_find_the_machine(tmp_path):
    from weightdecay.sweeps import check_environment, check_schema

    raw = {"task": "no-such-task", "imports": ["no_such_module_for_weightdecay"], "grid": {"lr": [0.1],
           "weight_decay": [0.1]}, "arms": [{"decay": "torch"}]}
    config = check_schema(raw)  # the file alone is fine: nothing imported, no task looked up
    assert config.task == "no-such-task" and config.metric == ""
    with pytest.raises(ConfigError, match="imports: cannot import 'no_such_module_for_weightdecay'"):
        check_environment(config)
    raw["imports"] = []
    with pytest.raises(ConfigError, match="task: Unknown task 'no-such-task'"):
        check_environment(check_schema(raw))
    raw["task"] = "ridge"
    assert check_environment(check_schema(raw)).metric == get_task("ridge").metric


def test_edge_bound_slope_is_never_printed_with_a_zero_uncertainty(ridge_sweep_dir, tmp_path, monkeypatch, capsys):
    import weightdecay.reports.analysis as analysis_module
    from weightdecay.cli import sweep as cli_sweep

    real = analysis_module.analyze

    def edge_bound(results, n_boot=300):
        analysis = real(results, n_boot=10)
        for a in analysis.arms.values():
            a.slope.slope, a.slope.err, a.slope.censored = -0.5, 0.0, True
            a.sentence = analysis_module._arm_sentence(a)
        return analysis

    monkeypatch.setattr(analysis_module, "analyze", edge_bound)
    cli_sweep._write_report(ridge_sweep_dir, str(tmp_path / "r.html"), None)
    out = capsys.readouterr().out
    assert out.count("slope log λ*/log lr -0.50 (edge-bound)") == 2 and "± 0.00" not in out, out
    page = (tmp_path / "r.html").read_text()
    assert "-0.50 (edge-bound)" in page and "± 0.00" not in page


def test_without_a_terminal_progress_is_plain_log_lines(tmp_path):
    cfg = write_instant_sweep(tmp_path, "plain")
    done = run_cli("sweep", str(cfg), "--out", str(tmp_path / "run"), "--no-report", "--jobs", "1",
                   extra_path=tmp_path)
    assert done.returncode == 0, done.stderr
    # Not a TTY: no redrawn bar (carriage returns, "trial/s"), a log line with the count instead.
    assert "\r" not in done.stderr and "trial/s" not in done.stderr and "it/s" not in done.stderr, done.stderr
    assert "plain: 4/4 trials done" in done.stderr, done.stderr


def test_a_missing_system_piece_skips_but_fails_under_ci(tmp_path):
    # The project's conftest in a folder of its own, one test that needs chromium, and a PATH without chromium.
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_piece.py").write_text("import pytest\n\n@pytest.mark.needs('chromium')\n"
                                            "def test_browser():\n    pass\n")

    def pytest_run(ci: str) -> subprocess.CompletedProcess:
        env = {"PATH": str(tmp_path), "CI": ci, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", str(tmp_path)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    local = pytest_run("")
    assert local.returncode == 0 and "1 skipped" in local.stdout and "chromium not installed" in local.stdout
    ci = pytest_run("true")
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout  # failed in setup: the run is red
    assert "chromium not installed" in ci.stdout and "CI=true" in ci.stdout


def _bowl(lr, weight_decay, decay, seed):
    return (math.log10(weight_decay) + 2) ** 2 + (math.log10(lr) + 2) ** 2 + seed / 100


def test_a_search_strategy_is_one_module_and_one_row(tmp_path, monkeypatch):
    # A whole strategy, as a new module would hold it: its name, the [search] keys it owns, its sampler, its
    # words in the report. One row of STRATEGIES makes the config, the worker, the results and the report use it.
    from dataclasses import replace

    import optuna

    from weightdecay.reports.analysis import analyze
    from weightdecay.reports.html import render_html
    from weightdecay.sweeps import STRATEGIES, load_results, open_storage, parse_config, strategy_for
    from weightdecay.sweeps.storages import setup_lock
    from weightdecay.sweeps.strategies.tpe import TpeSearch
    from weightdecay.sweeps.study import open_arm_study
    from weightdecay.sweeps.worker import WorkerOptions, run_worker
    from weightdecay.sweeps.workloads.function import function_spec

    class RandomSearch(TpeSearch):
        name = "random"
        keys = frozenset({"trials", "lr", "weight_decay"})

        @classmethod
        def parse(cls, table, lr, arms):
            return replace(TpeSearch.parse(table, lr, arms), sampler=cls.name)

        def sampler(self):
            return optuna.samplers.RandomSampler(seed=self.config.seeds[0])

        def describe(self):
            return f"random search, {self.config.search.trials} trials per arm"

    monkeypatch.setitem(STRATEGIES, "random", RandomSearch)
    raw = {"function": function_spec(_bowl), "metric": "loss", "seeds": 2, "arms": [{"name": "a"}],
           "search": {"sampler": "random", "trials": 4, "lr": {"min": 1e-3, "max": 1e-1},
                      "weight_decay": {"min": 1e-3, "max": 1e-1}}}
    with pytest.raises(ConfigError, match='search.coordinates: only used with sampler = "tpe"'):
        parse_config({**raw, "search": {**raw["search"], "coordinates": "raw"}})
    config = parse_config(raw)
    assert isinstance(strategy_for(config), RandomSearch)
    url = f"journal:{tmp_path / 'study.journal'}"
    storage = open_storage(url)
    with setup_lock(url, config.name):
        open_arm_study(storage, config, config.arms[0])
    config_dict = {**config.to_dict(), "source": "", "base_dir": config.base_dir}
    assert run_worker(config_dict, url, WorkerOptions(heartbeat_interval=0.5), watch_parent=False) == 4
    results = load_results(url)
    assert len(results.records) == 4 * 2
    assert all(r.value == pytest.approx(_bowl(r.lr, r.weight_decay, "torch", r.seed)) for r in results.records)
    analysis = analyze(results, n_boot=5)
    assert not analysis.grid  # a sampled search: no λ*(lr) slope, no slopes figure
    assert "random search, 4 trials per arm" in render_html(results, analysis, {})
