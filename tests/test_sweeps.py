"""Sweeps on real storages: end to end, shared by processes, killed and resumed, on PostgreSQL; config errors."""

from __future__ import annotations

import math
import os
import signal
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import RIDGE_SWEEP, run_cli, start_cli, wait_for, write_config
from conftest import run_cli_in_process as run_here
from weightdecay.cli import main as cli_main
from weightdecay.sweeps import load_config, load_results, open_storage, resolve_storage, run_sweep
from weightdecay.sweeps.lease import HEARTBEAT_ATTR, HOST_ID, OWNER_ATTR, STALE_ATTR
from weightdecay.sweeps.strategies.grid import grid_keys, reconcile, trial_key
from weightdecay.sweeps.study import open_arm_study, study_name
from weightdecay.sweeps.workloads import train_once


def _trials(config, storage_url):
    storage = open_storage(storage_url)
    return {arm.name: optuna.load_study(study_name=study_name(config, arm), storage=storage).get_trials()
            for arm in config.arms}


def _assert_each_point_once(config, storage_url):
    """Every grid point has exactly one COMPLETE trial, and no trial is for a point outside the grid."""
    for arm_name, trials in _trials(config, storage_url).items():
        arm = config.arm(arm_name)
        done = Counter(trial_key(t) for t in trials if t.state == TrialState.COMPLETE)
        assert set(done) == set(grid_keys(config, arm)), arm_name
        assert max(done.values()) == 1, f"{arm_name}: a grid point completed twice"
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


# --- end to end on the embedded store ----------------------------------------------------------------------

def test_sweep_end_to_end_matches_direct_runs(ridge_config, tmp_path):
    config = load_config(ridge_config("e2e"))
    summary = run_sweep(config, out_dir=tmp_path / "run", jobs=1, quiet=True)
    assert summary.complete and summary.line().startswith("36/36 trials complete")
    url = resolve_storage(None, tmp_path / "run")
    _assert_each_point_once(config, url)
    results = load_results(tmp_path / "run")
    assert len(results.records) == 36
    assert [results.config.fingerprint(a) for a in results.config.arms] == [config.fingerprint(a) for a in config.arms]
    # The recorded metric is what the task computes for that point (re-run here, in this process).
    rec = next(r for r in results.records if r.arm == "paper" and r.seed == 1 and r.lr == config.lr[1])
    direct = train_once(config, config.arm("paper"), rec.lr, rec.weight_decay, rec.seed)
    assert rec.value == pytest.approx(direct["value"], rel=1e-6)
    assert [h["epoch"] for h in rec.history] == [1, 2, 3]
    assert rec.metrics["test_loss"] == pytest.approx(rec.value)
    # A second run of the same command finds nothing to do.
    again = run_sweep(config, out_dir=tmp_path / "run", jobs=1, quiet=True)
    assert again.complete and sum(len(t) for t in _trials(config, url).values()) == 36


# --- several workers on one storage, and kill -9 ------------------------------------------------------------

TWO_WORKERS_PLUGIN = '''
import os, time
from weightdecay.tasks import Task, TrainResult, register_task

MEETING, GATE = PATHS  # filled in by the fixture

class TwoWorkers(Task):
    """loss = lr·λ + seed, at once; but each worker's first trial waits (at most 60 s) until two workers have
    started one, so two sweep commands both train however far apart they start, and with a GATE a trial at
    lr = 0.1 waits (at most 300 s) for that file, so a kill lands mid-sweep."""
    name = "two-workers"
    metric = "loss"

    def run(self, config, progress=None):
        os.makedirs(MEETING, exist_ok=True)
        open(os.path.join(MEETING, str(os.getpid())), "w").close()
        end = time.time() + 60
        while len(os.listdir(MEETING)) < 2 and time.time() < end:
            time.sleep(0.05)
        end = time.time() + 300
        while GATE and config.lr > 0.05 and not os.path.exists(GATE) and time.time() < end:
            time.sleep(0.05)
        loss = config.lr * config.weight_decay + config.seed
        return TrainResult(metrics={"loss": loss}, history=[{"epoch": 1, "loss": loss}])

register_task(TwoWorkers(), replace_existing=True)
'''

# The small ridge sweep's grid (2 arms × 3 lr × 3 λ × 2 seeds = 36 trials) on the two-workers task.
TWO_WORKERS_SWEEP = RIDGE_SWEEP.replace('task = "ridge"', 'task = "two-workers"\n    imports = ["two_workers_plugin"]'
                                        ).replace("[extra]\n    n = 100\n    d = 200\n", "")


@pytest.fixture
def two_workers_config(tmp_path, monkeypatch):
    """``make(name, gate=None)``: a 36-trial sweep of the two-workers task, its plugin in ``tmp_path`` (on this
    process's path, which spawned workers inherit; sweep commands get it with ``extra_path=tmp_path``)."""

    def make(name: str, gate: Path | None = None) -> Path:
        plugin = TWO_WORKERS_PLUGIN.replace("PATHS", repr((str(tmp_path / "meeting"), gate and str(gate))))
        (tmp_path / "two_workers_plugin.py").write_text(plugin)
        return write_config(tmp_path / f"{name}.toml", TWO_WORKERS_SWEEP.format(name=name, epochs=1))

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_processes_share_one_study(two_workers_config, tmp_path, kind):
    cfg = two_workers_config("shared")
    out = tmp_path / "run"
    storage = [] if kind == "journal" else ["--storage", f"sqlite:///{tmp_path / 'sweep.db'}"]
    procs = [start_cli("sweep", str(cfg), "--out", str(out), *storage, "--quiet", "--no-report", "--jobs", "1",
                       "--threads", "1", extra_path=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("Traceback" in err or "taken over" in err for _, err in outputs), outputs
    config = load_config(cfg)
    url = resolve_storage(storage[1] if storage else None, out)
    _assert_each_point_once(config, url)
    trials = [t for ts in _trials(config, url).values() for t in ts]
    assert len(trials) == 36  # no point claimed by both
    assert len({t.system_attrs[OWNER_ATTR]["pid"] for t in trials}) >= 2, "both commands should have trained"


def test_kill_9_mid_sweep_then_resume(two_workers_config, tmp_path):
    gate = tmp_path / "gate"
    cfg = two_workers_config("killed", gate=gate)  # the trials at lr = 0.1 hold their workers until the gate opens
    config = load_config(cfg)
    out = tmp_path / "run"
    url = resolve_storage(None, out)
    proc = start_cli("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--quiet", "--no-report",
                     extra_path=tmp_path)

    def progress():
        if not Path(url[len("journal:"):]).exists():
            return False
        try:
            states = [t.state for ts in _trials(config, url).values() for t in ts]
        except KeyError:
            return False
        return states.count(TrialState.COMPLETE) >= 2 and states.count(TrialState.RUNNING) >= 1

    assert wait_for(progress, timeout=120), proc.stderr.read() if proc.poll() is not None else "no progress"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    complete_before = {(arm, trial_key(t)): (t.value, t.datetime_complete)
                       for arm, ts in _trials(config, url).items() for t in ts if t.state == TrialState.COMPLETE}
    running_before = sum(t.state == TrialState.RUNNING for ts in _trials(config, url).values() for t in ts)
    assert 2 <= len(complete_before) < 36 and running_before >= 1

    gate.write_text("open")
    result = run_cli("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--quiet", "--no-report",
                     extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "36/36 trials complete" in result.stdout
    _assert_each_point_once(config, url)
    after = [t for ts in _trials(config, url).values() for t in ts]
    # Finished trials were kept, not re-run: same value, same completion time.
    kept = {(arm, trial_key(t)): (t.value, t.datetime_complete)
            for arm, ts in _trials(config, url).items() for t in ts if t.state == TrialState.COMPLETE}
    for key, value in complete_before.items():
        assert kept[key] == value
    # The trials the dead workers held were marked stale and re-run (not left RUNNING, not lost).
    stale = [t for t in after if t.state == TrialState.FAIL]
    assert len(stale) == running_before and all(t.system_attrs.get(STALE_ATTR) for t in stale)


def test_postgresql_two_processes_split_the_grid(two_workers_config, tmp_path, postgres_url):
    cfg = two_workers_config("pg")
    procs = [start_cli("sweep", str(cfg), "--out", str(tmp_path / f"machine{i}"), "--storage", postgres_url,
                       "--quiet", "--no-report", "--threads", "1", extra_path=tmp_path) for i in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("Traceback" in err or "taken over" in err for _, err in outputs), outputs
    config = load_config(cfg)
    url = resolve_storage(postgres_url, ".")
    _assert_each_point_once(config, url)
    trials = [t for ts in _trials(config, url).values() for t in ts]
    assert len(trials) == 36  # no duplicates, no failures, nothing run twice
    assert len({t.system_attrs[OWNER_ATTR]["pid"] for t in trials}) >= 2
    # The report reads the same storage.
    assert len(load_results(url, "pg").records) == 36


# --- diverged and failed trials, plugins, stale workers ----------------------------------------------------

PLUGIN = '''
import math
from weightdecay.tasks import Task, TrainResult, register_task

class Toy(Task):
    """loss = (log10 λ + 2)² + lr; NaN above lr = 0.5 (diverged); raises at λ = 1e-3 (a broken run)."""
    name = "toy-quadratic"
    metric = "loss"

    def run(self, config, progress=None):
        if config.weight_decay == 1e-3:
            raise RuntimeError("broken run")
        loss = float("nan") if config.lr > 0.5 else (math.log10(config.weight_decay) + 2) ** 2 + config.lr
        return TrainResult(metrics={"loss": loss}, history=[{"epoch": 1, "loss": loss}], diverged=loss != loss)

register_task(Toy(), replace_existing=True)
'''

TOY = """
    name = "toy"
    task = "toy-quadratic"
    imports = ["toy_plugin"]
    seeds = 1

    [grid]
    lr = [0.1, 1.0]
    weight_decay = [0.001, 0.01, 0.1]

    [[arms]]
    name = "a"
"""


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_diverged_recorded_with_metric_and_failures_retried_on_resume(toy_plugin, tmp_path):
    cfg = write_config(tmp_path / "toy.toml", TOY)
    out = tmp_path / "run"
    first = run_here("sweep", str(cfg), "--out", str(out), "--quiet", "--no-report", "--jobs", "1")
    assert first.returncode == 1 and "2 trials failed" in first.stdout, first.stdout + first.stderr
    config = load_config(cfg)
    url = resolve_storage(None, out)
    trials = _trials(config, url)["a"]
    by_key = {trial_key(t): t for t in trials}
    diverged = by_key[(1.0, 0.01, 0)]
    assert diverged.state == TrialState.COMPLETE and diverged.user_attrs["diverged"] and math.isinf(diverged.value)
    assert diverged.user_attrs["metrics"] == {"loss": None}
    ok = by_key[(0.1, 0.1, 0)]
    assert ok.value == pytest.approx((math.log10(0.1) + 2) ** 2 + 0.1) and not ok.user_attrs["diverged"]
    broken = [t for t in trials if t.state == TrialState.FAIL]
    assert len(broken) == 2 and all("broken run" in t.user_attrs["error"] for t in broken)
    # Resume: only the two failed points run again (and fail again); nothing complete is re-run.
    second = run_here("sweep", str(cfg), "--out", str(out), "--quiet", "--no-report", "--jobs", "1")
    assert second.returncode == 1
    trials = _trials(config, url)["a"]
    assert len(trials) == 8 and sum(t.state == TrialState.COMPLETE for t in trials) == 4
    # The report shows the diverged cell as inf, worst of its column.
    results = load_results(out)
    assert results.failed == 4 and sum(r.diverged for r in results.records) == 2
    assert results.failed_points == 2


def test_failures_fixed_by_a_resume_are_not_reported(toy_plugin, tmp_path):
    cfg = write_config(tmp_path / "toy.toml", TOY)
    out = tmp_path / "run"
    first = run_here("sweep", str(cfg), "--out", str(out), "--quiet", "--no-report", "--jobs", "1")
    assert first.returncode == 1 and "2 trials failed" in first.stdout, first.stdout + first.stderr
    assert (load_results(out).failed, load_results(out).failed_points) == (2, 2)
    # The user fixes the task; the resumed run completes the two points that failed.
    plugin = toy_plugin / "toy_plugin.py"
    plugin.write_text(plugin.read_text().replace('raise RuntimeError("broken run")', "pass"))
    second = run_here("sweep", str(cfg), "--out", str(out), "--quiet", "--jobs", "1")
    assert second.returncode == 0 and "trials failed" not in second.stdout, second.stdout + second.stderr
    results = load_results(out)
    assert len(results.records) == 6 and (results.failed, results.failed_points) == (0, 0)
    assert "failed with an error" not in (out / "report.html").read_text()


def test_a_one_point_grid_finishes_without_a_traceback(toy_plugin, tmp_path):
    # Workers claim queued trials themselves; Optuna's GridSampler then never records a grid id and its
    # after_trial raised KeyError('grid_id') on a one-point grid, killing the worker after the first trial.
    cfg = write_config(tmp_path / "one.toml", TOY.replace("lr = [0.1, 1.0]", "lr = [0.1]").replace(
        "weight_decay = [0.001, 0.01, 0.1]", "weight_decay = [0.01]") + '\n    [[arms]]\n    name = "b"\n')
    out = tmp_path / "run"
    done = run_cli("sweep", str(cfg), "--out", str(out), "--quiet", "--no-report", "--jobs", "1",
                   extra_path=toy_plugin)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert "2/2 trials complete" in done.stdout
    results = load_results(out)
    assert sorted(r.arm for r in results.records) == ["a", "b"]
    assert all(r.value == pytest.approx((math.log10(0.01) + 2) ** 2 + 0.1) for r in results.records)


def _queued_toy_study(tmp_path):
    """The toy sweep's first arm on a fresh journal in ``tmp_path``, every grid point queued (WAITING)."""
    config = load_config(write_config(tmp_path / "toy.toml", TOY))
    url = resolve_storage(None, tmp_path / "run")
    storage = open_storage(url)
    study = open_arm_study(storage, config, config.arms[0])
    reconcile(storage, study, config, config.arms[0], grace_period=60, retry_errors=True)
    return config, url, storage, study


def test_stale_running_trials_are_requeued(toy_plugin, tmp_path):
    config, _, storage, study = _queued_toy_study(tmp_path)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 6
    # Two workers on another machine claimed a point each: one fell silent 2 minutes ago, one is alive.
    silent, alive = waiting[0]._trial_id, waiting[1]._trial_id
    for tid, beat in ((silent, time.time() - 120), (alive, time.time())):
        assert storage.set_trial_state_values(tid, TrialState.RUNNING)
        storage.set_trial_system_attr(tid, OWNER_ATTR, {"host": "elsewhere/0", "pid": 1})
        storage.set_trial_system_attr(tid, HEARTBEAT_ATTR, beat)
    # A worker of this machine whose process is gone (a pid that cannot exist).
    dead = waiting[2]._trial_id
    assert storage.set_trial_state_values(dead, TrialState.RUNNING)
    storage.set_trial_system_attr(dead, OWNER_ATTR, {"host": HOST_ID, "pid": 2 ** 22 + 12345})
    storage.set_trial_system_attr(dead, HEARTBEAT_ATTR, time.time())
    queued = reconcile(storage, study, config, config.arms[0], grace_period=60, retry_errors=False)
    assert queued == 2
    states = {t._trial_id: t.state for t in study.get_trials()}
    assert states[silent] == TrialState.FAIL and states[dead] == TrialState.FAIL
    assert states[alive] == TrialState.RUNNING


def test_a_starting_trial_with_some_params_suggested_is_not_queued_again(toy_plugin, tmp_path):
    # A claimed trial fills its params one suggest call at a time; a reconcile by another worker in between must
    # still see its grid point as taken (this race once queued a point twice under load).
    config, _, storage, study = _queued_toy_study(tmp_path)
    first = study.get_trials(states=(TrialState.WAITING,))[0]
    assert storage.set_trial_state_values(first._trial_id, TrialState.RUNNING)
    trial = optuna.Trial(study, first._trial_id)
    trial.suggest_categorical("lr", list(config.lr))  # weight_decay and seed not suggested yet
    assert reconcile(storage, study, config, config.arms[0], grace_period=60, retry_errors=False) == 0
    assert len(study.get_trials()) == len(grid_keys(config, config.arms[0]))


def test_half_written_journal_record_is_cut_on_resume(toy_plugin, tmp_path):
    config, url, storage, study = _queued_toy_study(tmp_path)
    journal = Path(url[len("journal:"):])
    intact = journal.read_bytes()
    journal.write_bytes(intact + b'{"op_code": 5, "worker_id": "dead", "trial_id"')  # a worker killed mid-write
    study = open_arm_study(open_storage(url), config, config.arms[0])
    repaired = journal.read_bytes()  # (opening a study appends records of its own)
    assert repaired.startswith(intact) and b'"dead"' not in repaired
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 6
    # Without the repair the next record would be glued to the fragment and Optuna would refuse the file.
    study.enqueue_trial({"lr": 0.1, "weight_decay": 0.1, "seed": 0})
    assert len(optuna.load_study(study_name=study.study_name, storage=open_storage(url)).trials) == 7


def test_tpe_in_decoupled_coordinates(toy_plugin, tmp_path, capsys):
    cfg = write_config(tmp_path / "tpe.toml", TOY.replace("[grid]", """
    [search]
    sampler = "tpe"
    trials = 6
    coordinates = "decoupled"
    shrink = { min = 1e-5, max = 1e-2 }

    [grid]""").replace('[[arms]]\n    name = "a"', '[[arms]]\n    name = "a"\n    decay = "torch"'))
    config = load_config(cfg)
    assert config.search.lr == (0.1, 1.0) and config.search.second == (1e-5, 1e-2)
    summary = run_sweep(config, out_dir=tmp_path / "run", jobs=2, quiet=True)
    trials = _trials(config, summary.storage)["a"]
    assert len(trials) == 6  # the budget is shared by the workers, not overshot
    for t in trials:
        # torch convention: the shrink per step is lr·λ, so λ = s / lr.
        assert t.user_attrs["weight_decay"] == pytest.approx(t.params["shrink"] / t.params["lr"])
        assert 1e-5 <= t.params["shrink"] <= 1e-2
    # The report draws TPE samples as a scatter and claims no slope.
    from weightdecay.reports.analysis import analyze
    from weightdecay.reports import write_report

    results = load_results(tmp_path / "run")
    analysis = analyze(results, n_boot=10)
    assert len(results.records) == 6 and math.isnan(analysis.arms["a"].slope.slope)
    assert "sampled by TPE, so no slope" in analysis.recommendation
    page = write_report(results, analysis, tmp_path / "run" / "report.html").read_text()
    assert page.count("<img") == 2 and not (tmp_path / "run" / "figures" / "slopes.png").exists()
    # The command line's headline says why there is no slope or basin, instead of "nan dec²".
    from weightdecay.cli import sweep as cli_sweep

    cli_sweep._write_report(tmp_path / "run", str(tmp_path / "run" / "again.html"), None)
    out = capsys.readouterr().out
    assert "TPE samples: no slope or basin" in out and "nan" not in out, out


# --- config errors: exit 2, the key named, no trial run ----------------------------------------------------

# The smallest valid sweep (one ridge arm, one grid point): the config tests perturb it one key at a time.
GOOD = """
    task = "ridge"
    [grid]
    lr = [0.01]
    weight_decay = [0.1]
    [[arms]]
    decay = "torch"
"""


@pytest.mark.parametrize("body, message", [
    (GOOD.replace('"ridge"', '"nope"'), "task: Unknown task 'nope'"),
    (GOOD.replace('"torch"', '"pytorch"'), "arms[0].decay: Invalid decay mode: 'pytorch'"),
    (GOOD + "\n    colour = 3\n", "arms[0].colour: unknown key"),
    ("epoch = 3\n" + GOOD, "epoch: unknown key"),
    (GOOD.replace("lr = [0.01]", "lr = []"), "grid.lr: empty grid"),
    (GOOD.replace("lr = [0.01]", "lr = { min = 1e-3, max = 1e-1, num = 0 }"), "grid.lr.num: 0; empty grid"),
    (GOOD.replace("weight_decay = [0.1]", "weight_decay = [-0.1]"), "grid.weight_decay: [-0.1]; grid values must be > 0"),
    (GOOD.replace('decay = "torch"', 'decay = "stable"\n    optimizer = "sgdw"'), "arms[0].decay: Invalid decay mode for sgdw"),
    ('schedule = "cosin"\n' + GOOD, "schedule: 'cosin' is not a learning-rate schedule"),
    ("[extra]\nwidth = 3\n" + GOOD.replace('task = "ridge"', ""), "task: missing"),
    (GOOD + '\n    [extra]\n    nope = 1\n', "extra: Unknown option(s) 'nope'"),
    ("task = [", "not valid TOML"),
    # Mistakes that used to pass validation and then fail every trial (review finding 2).
    ('metric = "test_error"\n' + GOOD, "metric: 'test_error' is not reported by task 'ridge'; choose one of"),
    ('schedule = "step"\n' + GOOD, "extra: Schedule 'step' needs milestones"),
    (GOOD.replace('"ridge"', '"digits-mlp"') + '\n    [extra]\n    train_subset = "abc"\n',
     "extra: Option train_subset must be an integer"),
    (GOOD + '\n    [extra]\n    schedule_options = { floor = 5 }\n', "extra: Invalid floor: 5"),
    # Bare tracebacks on bad values (finding 6).
    (GOOD.replace("lr = [0.01]", 'lr = { min = "abc", num = 1 }'), "grid.lr.min: 'abc'; a one-point grid needs min"),
    (GOOD + '\n    betas = ["a", 0.5]\n', "arms[0].betas: ['a', 0.5]; give two numbers in [0, 1)"),
    # An option the arm's optimizer would silently drop (finding 7).
    (GOOD + "\n    momentum = 0.5\n", "arms[0].momentum: adamw does not use momentum (only sgdw, muon, rmsprop, sgd, amos do)"),
    (GOOD.replace('decay = "torch"', 'decay = "torch"\n    optimizer = "sgdw"\n    betas = [0.9, 0.99]'),
     "arms[0].betas: sgdw does not use betas (only adamw, nadam, radam, adamax, lion do)"),
])
def test_config_errors_exit_2_naming_the_key(tmp_path, capsys, body, message):
    cfg = write_config(tmp_path / "bad.toml", body)
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # refused before any trial (no storage created)


def test_unreadable_config_file(tmp_path, capsys):
    assert cli_main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err


def test_an_option_of_the_arms_own_optimizer_is_kept(tmp_path):
    config = load_config(write_config(tmp_path / "good-arms.toml", GOOD.replace(
        'decay = "torch"', 'decay = "torch"\n    optimizer = "sgdw"\n    momentum = 0.5') + """
    [[arms]]
    name = "adam"
    betas = [0.8, 0.99]
"""))
    assert config.arms[0].momentum == 0.5 and config.arms[1].betas == (0.8, 0.99)


@pytest.mark.parametrize("grace", ["0", "-5", "1", "nan"])
def test_grace_period_not_above_the_heartbeat_is_refused(tmp_path, capsys, grace):
    # A grace period at or below the heartbeat interval lets another worker take a live trial over (run twice).
    cfg = write_config(tmp_path / "good.toml", GOOD)
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "run"), "--grace-period", grace]) == 2
    err = capsys.readouterr().err
    assert f"--grace-period {grace}: give at least 1 second and more than twice the heartbeat" in err, err
    assert not (tmp_path / "run").exists()


def test_sweeps_use_the_tasks_optimizer_list():
    from weightdecay.sweeps import arms as sweep_arms
    from weightdecay.tasks import training

    assert sweep_arms.OPTIMIZERS is training.OPTIMIZERS  # the registry itself, name → row
