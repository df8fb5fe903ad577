"""Sweeping your own code: a command template (the example script, failures, timeouts, kill -9 and resume,
PostgreSQL), a Python function with two workers, and the JSON line `weightdecay.report` prints."""

from __future__ import annotations

import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import weightdecay
from conftest import ROOT, cli_env, run_cli, start_cli, wait_for, write_config
from conftest import run_cli_in_process as run_here
from weightdecay.cli import main as cli_main
from weightdecay.report_line import read_report
from weightdecay.sweeps import load_config, load_results, parse_config, open_storage, resolve_storage, run_sweep
from weightdecay.sweeps.lease import OWNER_ATTR, STALE_ATTR
from weightdecay.sweeps.strategies.grid import grid_keys, trial_key
from weightdecay.sweeps.study import study_name

EXAMPLE = ROOT / "examples" / "train_script.py"


def _trials(config, url):
    storage = open_storage(url)
    return {arm.name: optuna.load_study(study_name=study_name(config, arm), storage=storage).get_trials()
            for arm in config.arms}


def _each_point_complete_once(config, url):
    for arm_name, trials in _trials(config, url).items():
        done = Counter(trial_key(t) for t in trials if t.state == TrialState.COMPLETE)
        assert set(done) == set(grid_keys(config, config.arm(arm_name))) and max(done.values()) == 1, arm_name


def _alive(pid: int) -> bool:
    # A killed process nobody has reaped yet is a zombie: it exists but no longer runs.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# --- the JSON line ------------------------------------------------------------------------------------------

def test_report_prints_the_line_the_sweep_reads():
    out = io.StringIO()
    history = [{"epoch": 1, "val_loss": torch.tensor(2.5)}, {"epoch": 2, "val_loss": 1.25}]
    line = weightdecay.report({"val_loss": torch.tensor(1.25), "accuracy": 0.75, "note": "ok"}, history=history,
                              file=out)
    assert out.getvalue() == line + "\n"
    assert json.loads(line) == {"val_loss": 1.25, "accuracy": 0.75, "note": "ok",
                                "history": [{"epoch": 1, "val_loss": 2.5}, {"epoch": 2, "val_loss": 1.25}]}
    # Among other output, the last JSON line holding the metric wins; its history comes with it.
    text = f'epoch 1\n{{"val_loss": 9.0}}\n[1, 2]\n{line}\n{{"other": 1}}\nWarning: {{not json}}\n'
    metrics, hist = read_report(text, "val_loss")
    assert metrics == {"val_loss": 1.25, "accuracy": 0.75, "note": "ok"} and [h["epoch"] for h in hist] == [1, 2]
    assert read_report(text, "missing") is None
    # Per-epoch lines are the history when the last line carries none; NaN and null read as NaN.
    metrics, hist = read_report('{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "loss": NaN}\n', "loss")
    assert math.isnan(metrics["loss"]) and hist[0] == {"epoch": 1, "loss": 2.0} and len(hist) == 2
    assert math.isnan(read_report('{"loss": null}', "loss")[0]["loss"])
    with pytest.raises(weightdecay.errors.UserError, match=r"metrics\['w'\] is not a single number"):
        weightdecay.report({"w": torch.ones(3)}, file=out)


# --- config errors: refused before any trial ------------------------------------------------------------------

COMMAND = """
    command = "python train.py --lr {lr} --weight-decay {weight_decay} --seed {seed}"
    metric = "loss"
    [grid]
    lr = [0.01]
    weight_decay = [0.1]
    [[arms]]
    name = "a"
"""


@pytest.mark.parametrize("body, message", [
    (COMMAND.replace("{seed}", "{sede}"), "command: unknown placeholder {sede}; known: "),
    (COMMAND.replace("{seed}", "{seed} --epochs {epochs}"), "command: {epochs} needs a value; set epochs = N"),
    ("epochs = 3\n" + COMMAND, "epochs: set, but the command has no {epochs} to pass it on"),
    (COMMAND + "\n    [extra]\n    width = 3\n", "extra.width: set, but the command has no {width}"),
    (COMMAND.replace("{seed}", "{seed} --width {width}"), "command: unknown placeholder {width}"),
    (COMMAND + '\n    decay = "paper"\n', "arms[0].decay: set, but the command has no {decay}"),
    (COMMAND.replace("--seed {seed}", "--seed '{seed}"), "cannot be split into words"),
    (COMMAND.replace("{seed}", "{seed[0]}"), "command: {seed[0]} in '{seed[0]}' is not a placeholder name"),
    (COMMAND.replace("{seed}", "{seed:.2z}"), "command: cannot fill the template for arm 'a'"),
    (COMMAND.replace("python train.py", "no-such-program-xyz"), "command: 'no-such-program-xyz' is not a program"),
    (COMMAND.replace('metric = "loss"', ""), "metric: missing; name the metric your command reports"),
    ('task = "ridge"\n' + COMMAND, "command: a sweep runs one of task, command or function"),
    ('schedule = "cosine"\n' + COMMAND, "schedule: your command sets its own learning-rate schedule"),
    ("timeout = -1\n" + COMMAND, "timeout: -1; give the seconds one trial may run"),
    ("monitor_every = 5\n" + COMMAND, "monitor_every: only a task sweep's runs are watched for you; your command"),
    (COMMAND.replace("{seed}", "{seed} --optimizer {optimizer}") + '\n    optimizer = "sgdw"\n    momentum = 0.5\n',
     "arms[0].momentum: your command builds its own optimizer"),
    ('timeout = 5\ntask = "ridge"\n[grid]\nlr = [0.01]\nweight_decay = [0.1]\n[[arms]]\n',
     "timeout: only a command sweep has a per-trial timeout"),
    (COMMAND.replace('command = "python train.py --lr {lr} --weight-decay {weight_decay} --seed {seed}"',
                     'function = "no_such_module_xyz:objective"'), "function: cannot import 'no_such_module_xyz'"),
    (COMMAND.replace('command = "python train.py --lr {lr} --weight-decay {weight_decay} --seed {seed}"',
                     'function = "json:dumps"'), "function: json:dumps requires 'obj', which the config does not give"),
])
def test_own_code_config_errors_exit_2_before_any_trial(tmp_path, capsys, body, message):
    cfg = write_config(tmp_path / "bad.toml", body)
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_function_signature_is_checked_against_the_config(tmp_path, monkeypatch):
    (tmp_path / "sig_objective.py").write_text(
        "def objective(lr, weight_decay, decay, seed, width):\n    return lr\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = COMMAND.replace('command = "python train.py --lr {lr} --weight-decay {weight_decay} --seed {seed}"',
                           'function = "sig_objective:objective"')
    with pytest.raises(weightdecay.errors.ConfigError, match="requires 'width', which the config does not give"):
        load_config(write_config(tmp_path / "a.toml", base))
    with pytest.raises(weightdecay.errors.ConfigError, match="extra.depth: sig_objective:objective takes no 'depth'"):
        load_config(write_config(tmp_path / "b.toml", base + "\n    [extra]\n    width = 2\n    depth = 3\n"))
    assert load_config(write_config(tmp_path / "c.toml", base + "\n    [extra]\n    width = 2\n")).extra == {"width": 2}


# --- the example script, end to end ---------------------------------------------------------------------------

def test_example_config_resolves_the_example_script():
    config = load_config(ROOT / "examples" / "train_script.toml")
    from weightdecay.sweeps.workloads.command import command_argv, trial_values

    argv = command_argv(config.command, trial_values(config, config.arms[1], 0.003, 0.01, 1), config.base_dir)
    assert argv == [sys.executable, str(EXAMPLE), "--lr", "0.003", "--weight-decay", "0.01", "--decay", "paper",
                    "--seed", "1", "--epochs", str(config.epochs)]
    assert config.timeout == 600 and config.metric == "val_loss" and not config.task
    # A longer timeout resumes the same trials (to retry those that hit it); another command does not.
    raw = tomllib.loads((ROOT / "examples" / "train_script.toml").read_text())
    longer = parse_config({**raw, "timeout": 3600}, base_dir=EXAMPLE.parent)
    other = parse_config({**raw, "command": raw["command"] + " --hidden 64"}, base_dir=EXAMPLE.parent)
    assert longer.fingerprint(longer.arms[0]) == config.fingerprint(config.arms[0])
    assert other.fingerprint(other.arms[0]) != config.fingerprint(config.arms[0])


def test_example_script_swept_end_to_end_with_its_report(tmp_path):
    example = tomllib.loads((ROOT / "examples" / "train_script.toml").read_text())
    command = example["command"].replace("train_script.py", shlex.quote(str(EXAMPLE)))
    cfg = write_config(tmp_path / "mine.toml", f"""
        name = "mine"
        command = {json.dumps(command)}
        metric = "val_loss"
        epochs = 2
        seeds = [0]
        timeout = 300
        [grid]
        lr = [0.001, 0.01]
        weight_decay = [0.01, 1.0]
        [[arms]]
        name = "AdamW torch"
        decay = "torch"
    """)
    out = tmp_path / "run"
    done = run_here("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4/4 trials complete (0 diverged, 0 failed, 0 left)" in done.stdout
    page = (out / "report.html").read_text()
    assert "command `" in page and "val_loss" in page and page.count("<img") == 3
    results = load_results(out)
    assert len(results.records) == 4
    trials = _trials(results.config, resolve_storage(None, out))["AdamW torch"]
    for t in trials:
        folder = Path(t.user_attrs["workdir"])
        assert folder.parent == out.resolve() / "trials" / "AdamW-torch"
        # The trial ran the example with its own values, and recorded what the script printed last.
        argv = shlex.split((folder / "command.txt").read_text())
        assert argv[argv.index("--lr") + 1] == repr(t.params["lr"]) and argv[argv.index("--seed") + 1] == "0"
        printed = json.loads((folder / "stdout.log").read_text().strip().splitlines()[-1])
        assert t.value == printed["val_loss"] and t.user_attrs["metrics"]["val_accuracy"] == printed["val_accuracy"]
        assert [h["epoch"] for h in t.user_attrs["history"]] == [1, 2]
    # The recorded value is what the script computes for that point, run here by hand.
    best = min(trials, key=lambda t: t.value)
    rerun = subprocess.run(shlex.split((Path(best.user_attrs["workdir"]) / "command.txt").read_text()),
                           capture_output=True, text=True, timeout=300, env={**cli_env(), "OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stderr
    assert read_report(rerun.stdout, "val_loss")[0]["val_loss"] == pytest.approx(best.value, rel=1e-4)


# --- failures, timeouts, divergence ---------------------------------------------------------------------------

TOY_SCRIPT = r'''
"""loss = (log10 wd + 2)^2 + lr + seed/100 in two per-epoch JSON lines; wd=0.001 crashes, wd=0.3 prints no loss,
(lr=1, wd=0.01) is NaN, (lr=1, wd=0.1) hangs with a child; with --gate, lr=1 waits until the gate file exists."""
import argparse, json, math, os, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--wd", type=float)
p.add_argument("--seed", type=int)
p.add_argument("--gate", default="")
a = p.parse_args()
with open("pid", "w") as f:
    f.write(str(os.getpid()))
loss = (math.log10(a.wd) + 2) ** 2 + a.lr + a.seed / 100
if a.wd == 0.001:
    print("RuntimeError: broken run at wd=0.001", file=sys.stderr)
    sys.exit(3)
if a.wd == 0.3:
    print(json.dumps({"accuracy": 0.5}))
    sys.exit(0)
if (a.lr == 1.0 and a.wd == 0.1) or (a.gate and a.lr == 1.0 and not os.path.exists(a.gate)):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open("child_pid", "w") as f:
        f.write(str(child.pid))
    end = time.time() + 300
    while time.time() < end and not (a.gate and os.path.exists(a.gate)):
        time.sleep(0.1)
if a.lr == 1.0 and a.wd == 0.01:
    loss = float("nan")
print("epoch 1 done", flush=True)
print(json.dumps({"epoch": 1, "loss": loss + 1}))
print(json.dumps({"epoch": 2, "loss": loss}))
'''

TOY = """
    name = "{name}"
    command = "python toy_train.py --lr {{lr}} --wd {{weight_decay}} --seed {{seed}}{more}"
    metric = "loss"
    seeds = {seeds}
    timeout = {timeout}
    [grid]
    lr = [0.1, 1.0]
    weight_decay = {wds}
    [[arms]]
    name = "a"
"""


def _toy(tmp_path, name="toy", wds="[0.001, 0.01, 0.1, 0.3]", timeout=10, more="", extra="", seeds="1"):
    (tmp_path / "toy_train.py").write_text(TOY_SCRIPT)
    body = TOY.format(name=name, wds=wds, timeout=timeout, more=more, seeds=seeds) + extra
    return write_config(tmp_path / f"{name}.toml", body)


def _loss(lr, wd, seed=0):
    return (math.log10(wd) + 2) ** 2 + lr + seed / 100


def test_failed_timed_out_and_diverged_commands_never_crash_the_sweep(tmp_path):
    cfg = _toy(tmp_path, timeout=5)  # ample for a script that imports only the standard library
    out = tmp_path / "run"
    done = run_here("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--quiet", "--no-report")
    assert done.returncode == 1 and "3/8 trials complete (1 diverged, 5 failed, 0 left)" in done.stdout, (
        done.stdout + done.stderr)
    assert "trials/a/*/stderr.log" in done.stdout
    config = load_config(cfg)
    by_key = {trial_key(t): t for t in _trials(config, resolve_storage(None, out))["a"]}
    ok = by_key[(0.1, 0.1, 0)]
    assert ok.state == TrialState.COMPLETE and ok.value == pytest.approx(_loss(0.1, 0.1))
    assert ok.user_attrs["history"] == [{"epoch": 1.0, "loss": pytest.approx(_loss(0.1, 0.1) + 1)},
                                        {"epoch": 2.0, "loss": pytest.approx(_loss(0.1, 0.1))}]
    nan = by_key[(1.0, 0.01, 0)]
    assert nan.state == TrialState.COMPLETE and nan.user_attrs["diverged"] and math.isinf(nan.value)
    assert nan.user_attrs["metrics"]["loss"] is None
    for lr in (0.1, 1.0):
        crashed = by_key[(lr, 0.001, 0)].user_attrs["error"]
        assert crashed.startswith("command exited with status 3") and "broken run at wd=0.001" in crashed
        silent = by_key[(lr, 0.3, 0)].user_attrs["error"]
        assert "no line of stdout" in silent and "holding 'loss'; its last JSON line holds accuracy" in silent
    hung = by_key[(1.0, 0.1, 0)]
    assert hung.state == TrialState.FAIL and hung.user_attrs["error"].startswith("timed out after 5 s")
    # The timed-out script and the child it started were killed, not left running.
    folder = Path(hung.user_attrs["workdir"])
    pids = [int((folder / name).read_text()) for name in ("pid", "child_pid")]
    assert wait_for(lambda: not any(_alive(p) for p in pids), timeout=10), pids
    results = load_results(out)
    assert (len(results.records), results.failed_points) == (3, 5)


def test_tpe_command_trials_run_every_seed_in_a_folder_of_its_own(tmp_path):
    cfg = _toy(tmp_path, name="tpe", wds="[0.01]", seeds="[0, 1]", extra="""
    [search]
    sampler = "tpe"
    trials = 2
    lr = { min = 0.01, max = 0.1 }
    weight_decay = { min = 0.02, max = 0.2 }
""")
    config = load_config(cfg)
    summary = run_sweep(config, out_dir=tmp_path / "run", jobs=1, quiet=True)
    trials = _trials(config, summary.storage)["a"]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        lr, wd = t.params["lr"], t.user_attrs["weight_decay"]
        assert t.value == pytest.approx((_loss(lr, wd, 0) + _loss(lr, wd, 1)) / 2)
        folder = Path(t.user_attrs["workdir"])
        assert sorted(p.name for p in folder.iterdir()) == ["seed0", "seed1"]
        assert "--seed 1" in (folder / "seed1" / "command.txt").read_text()


# --- kill -9 and resume, PostgreSQL ---------------------------------------------------------------------------

def test_kill_9_mid_command_sweep_kills_the_trials_then_resume_finishes(tmp_path):
    gate = tmp_path / "gate"
    cfg = _toy(tmp_path, name="killed", wds="[0.02, 0.05, 0.2]", timeout=600, more=" --gate {gate}",
               extra=f'\n    [extra]\n    gate = "{gate}"\n')
    config = load_config(cfg)
    out = tmp_path / "run"
    url = resolve_storage(None, out)
    proc = start_cli("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--threads", "1", "--quiet",
                     "--no-report")

    def blocked_trials():
        try:
            trials = _trials(config, url)["a"]
        except (KeyError, FileNotFoundError):
            return []
        running = [Path(t.user_attrs["workdir"]) for t in trials
                   if t.state == TrialState.RUNNING and "workdir" in t.user_attrs]
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        ready = [f for f in running if (f / "child_pid").exists()]
        return ready if done >= 1 and ready else []

    assert wait_for(blocked_trials, timeout=180), proc.stderr.read() if proc.poll() is not None else "no progress"
    folders = blocked_trials()
    pids = [int((f / name).read_text()) for f in folders for name in ("pid", "child_pid")]
    assert all(_alive(p) for p in pids)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The workers' trials (the script and its child) die with them instead of training on unseen for 300 s.
    assert wait_for(lambda: not any(_alive(p) for p in pids), timeout=15), [p for p in pids if _alive(p)]
    before = {trial_key(t): (t.value, t.datetime_complete) for t in _trials(config, url)["a"]
              if t.state == TrialState.COMPLETE}
    running_before = sum(t.state == TrialState.RUNNING for t in _trials(config, url)["a"])
    assert 1 <= len(before) < 6 and running_before >= 1

    gate.write_text("open")
    again = run_cli("sweep", str(cfg), "--out", str(out), "--jobs", "2", "--threads", "1", "--quiet", "--no-report")
    assert again.returncode == 0 and "6/6 trials complete" in again.stdout, again.stdout + again.stderr
    _each_point_complete_once(config, url)
    after = _trials(config, url)["a"]
    kept = {trial_key(t): (t.value, t.datetime_complete) for t in after if t.state == TrialState.COMPLETE}
    assert all(kept[k] == v for k, v in before.items())  # finished trials were not re-run
    stale = [t for t in after if t.state == TrialState.FAIL]
    assert len(stale) == running_before and all(t.system_attrs.get(STALE_ATTR) for t in stale)
    assert all(t.value == pytest.approx(_loss(*trial_key(t)[:2])) for t in after if t.state == TrialState.COMPLETE)


def test_postgresql_two_machines_run_one_command_sweep(tmp_path, postgres_url):
    cfg = _toy(tmp_path, name="pg-command", wds="[0.01, 0.02, 0.05]", timeout=120)
    cfg.write_text(cfg.read_text().replace("lr = [0.1, 1.0]", "lr = [0.1, 0.2]"))
    procs = [start_cli("sweep", str(cfg), "--out", str(tmp_path / f"machine{i}"), "--storage", postgres_url,
                       "--quiet", "--no-report", "--threads", "1", "--jobs", "1") for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    config = load_config(cfg)
    url = resolve_storage(postgres_url, ".")
    _each_point_complete_once(config, url)
    trials = _trials(config, url)["a"]
    assert len(trials) == 6 and all(t.value == pytest.approx(_loss(*trial_key(t)[:2])) for t in trials)
    # Each trial ran in the run folder of the machine that claimed it.
    for t in trials:
        assert Path(t.user_attrs["workdir"]).parent.parent.parent.name in ("machine0", "machine1")
        assert (Path(t.user_attrs["workdir"]) / "stdout.log").exists()
    assert len(load_results(url, "pg-command").records) == 6


# --- the function mode ----------------------------------------------------------------------------------------

OBJECTIVE = r'''
import math, os, time

def objective(lr, weight_decay, decay, seed, barrier=None, scale=1.0):
    """loss = scale·((log10 λ + 2)² + lr) + seed/100; NaN at lr = 1. Waits until two workers have started."""
    if barrier:
        os.makedirs(barrier, exist_ok=True)
        open(os.path.join(barrier, str(os.getpid())), "w").close()
        end = time.time() + 60
        while len(os.listdir(barrier)) < 2 and time.time() < end:
            time.sleep(0.05)
    loss = scale * ((math.log10(weight_decay) + 2) ** 2 + lr) + seed / 100
    if lr == 1.0:
        return float("nan")
    if decay == "paper":
        return loss
    return {"loss": loss, "pid": os.getpid(), "history": [{"epoch": 1, "loss": 2 * loss}, {"epoch": 2, "loss": loss}]}
'''


def test_function_sweep_with_two_jobs(tmp_path, monkeypatch):
    (tmp_path / "toy_objective.py").write_text(OBJECTIVE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from toy_objective import objective

    config = {"name": "fn", "metric": "loss", "seeds": [0, 1],
              "extra": {"barrier": str(tmp_path / "barrier"), "scale": 2.0},
              "grid": {"lr": [0.1, 1.0], "weight_decay": [0.01, 0.1]},
              "arms": [{"name": "torch", "decay": "torch"}, {"name": "paper", "decay": "paper"}]}
    out = tmp_path / "run"
    summary = weightdecay.sweep(objective, config, out, jobs=2)
    assert summary.complete and summary.line().startswith("16/16 trials complete (8 diverged, 0 failed"), summary.line()
    results = load_results(out)
    assert results.config.function == "toy_objective:objective" and len(results.records) == 16
    for r in results.records:
        if r.lr == 1.0:
            assert r.diverged and math.isinf(r.value)
            continue
        expected = 2.0 * ((math.log10(r.weight_decay) + 2) ** 2 + r.lr) + r.seed / 100
        assert r.value == pytest.approx(expected) and not r.diverged
        if r.arm == "torch":
            assert r.history == [{"epoch": 1.0, "loss": pytest.approx(2 * expected)},
                                 {"epoch": 2.0, "loss": pytest.approx(expected)}]
        else:
            assert r.metrics == {"loss": pytest.approx(expected)} and r.history == []
    owners = {t.system_attrs[OWNER_ATTR]["pid"] for ts in _trials(results.config, summary.storage).values()
              for t in ts}
    assert len(owners) == 2 and len(os.listdir(tmp_path / "barrier")) == 2  # both workers trained
    # The run keeps its config as TOML; the same call again resumes and finds nothing to do.
    assert tomllib.loads((out / "sweep.toml").read_text()) == config
    again = weightdecay.sweep(objective, config, out, jobs=1)
    assert again.complete and sum(len(ts) for ts in _trials(results.config, summary.storage).values()) == 16


def test_a_function_defined_in_the_calling_script_is_found_by_its_path(tmp_path):
    script = tmp_path / "my_sweep.py"
    script.write_text(OBJECTIVE + f'''
import weightdecay

if __name__ == "__main__":
    summary = weightdecay.sweep(objective, {{"metric": "loss", "grid": {{"lr": [0.1], "weight_decay": [0.01, 0.1]}},
                                "arms": [{{"name": "a"}}]}}, {str(tmp_path / "run")!r})
    print(summary.line())
''')
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=cli_env())
    assert done.returncode == 0 and "2/2 trials complete" in done.stdout, done.stdout + done.stderr
    assert load_results(tmp_path / "run").config.function == f"{script.resolve()}:objective"
