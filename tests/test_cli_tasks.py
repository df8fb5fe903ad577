"""``weightdecay tasks`` and ``weightdecay train``: output streams, JSON, agreement with the library, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from weightdecay.cli import main
from weightdecay.tasks import TrainConfig, get_task

ROOT = Path(__file__).resolve().parents[1]
TASK_NAMES = ["cifar10-cnn", "digits-mlp", "fashion-cnn", "fashion-mlp", "ridge", "shakespeare-charlm"]


@pytest.fixture(autouse=True)
def own_cache_one_thread(one_thread, tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_CACHE", str(tmp_path / "cache"))


def test_tasks_table_says_which_data_is_missing_and_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEIGHTDECAY_CIFAR10", str(tmp_path))
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line and not line[0].isspace()}
    assert set(TASK_NAMES) <= set(rows)
    assert rows["cifar10-cnn"] == "no" and rows["ridge"] == "yes" and rows["digits-mlp"] == "yes"
    assert "cifar-10-python.tar.gz" in out and "WEIGHTDECAY_CIFAR10" in out
    assert main(["tasks", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["cifar10-cnn"]["data"] == "no" and listed["ridge"]["metric"] == "test_loss"


def test_train_json_matches_the_library_run(capsys):
    argv = ["train", "ridge", "--optimizer", "sgdw", "--decay", "paper", "--lr", "1e-3", "--weight-decay", "0.5",
            "--schedule", "constant", "--epochs", "3", "--seed", "2", "--option", "noise=0.2", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert "ridge: epoch 3/3" in captured.err  # progress on stderr, only JSON on stdout
    assert payload["config"]["epochs"] == 3 and payload["config"]["batch_size"] == 20
    assert payload["config"]["extra"] == {"noise": 0.2} and payload["diverged"] is False
    direct = get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.5, optimizer="sgdw", decay="paper",
                                               schedule="constant", epochs=3, seed=2, extra={"noise": 0.2}))
    assert payload["metrics"] == pytest.approx(direct.metrics, rel=1e-12)
    assert [h["epoch"] for h in payload["history"]] == [1, 2, 3]
    assert "diagnostics" not in payload


@pytest.mark.parametrize("optimizer", ["lion", "muon"])
def test_train_takes_the_optimizers_own_betas_and_momentum_from_its_row(capsys, optimizer):
    # Lion's row defaults betas to (0.9, 0.99), Muon's momentum to 0.95: the command and the library agree.
    argv = ["train", "ridge", "--optimizer", optimizer, "--lr", "1e-3", "--weight-decay", "0.1", "--schedule",
            "constant", "--epochs", "1", "--json", "--quiet"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    direct = get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer=optimizer, schedule="constant",
                                               epochs=1))
    assert payload["metrics"] == pytest.approx(direct.metrics, rel=1e-12)


def test_train_text_output_and_diverged_json(capsys):
    assert main(["train", "digits-mlp", "--epochs", "1", "--quiet", "--option", "width=16"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = dict(line.split(None, 1) for line in captured.out.splitlines())
    assert lines["task"] == "digits-mlp" and 0 <= float(lines["test_error"]) <= 1
    assert "lr=0.003" in lines["config"]  # the task's suggested defaults
    assert main(["train", "ridge", "--optimizer", "sgdw", "--lr", "1000", "--weight-decay", "0", "--epochs", "2",
                 "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)  # strict JSON: no Infinity
    assert payload["diverged"] is True and set(payload["metrics"].values()) == {None}


@pytest.mark.parametrize("argv, message", [
    (["train", "no-such-task"], "Unknown task 'no-such-task'"),
    (["train", "ridge", "--option", "nonsense"], "KEY=VALUE"),
    (["train", "ridge", "--option", "colour=red"], "Unknown option(s) 'colour'"),
    (["train", "ridge", "--optimizer", "sgdw", "--decay", "stable"], "needs Adam's second moment"),
    (["train", "ridge", "--lr", "-1"], "Invalid learning rate"),
    (["train", "ridge", "--schedule", "zigzag"], "Unknown schedule"),
    # review finding 7: AdamW has no momentum; it was dropped silently
    (["train", "ridge", "--momentum", "0.5"], "--momentum applies to --optimizer sgdw, muon, rmsprop, sgd, amos only, not adamw"),
    (["train", "ridge", "--optimizer", "adamw", "--momentum", "0.9"], "--momentum applies to --optimizer sgdw, muon, rmsprop, sgd, amos only, not adamw"),
])
def test_bad_input_is_one_line_and_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_dataset_through_the_real_command(tmp_path):
    # End to end in a fresh process: the console entry point's module, an empty data directory.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), WEIGHTDECAY_FASHION_MNIST=str(tmp_path),
               WEIGHTDECAY_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "weightdecay.cli", "train", "fashion-mlp", "--epochs", "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Fashion-MNIST not found" in proc.stderr and "apt-get install dataset-fashion-mnist" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_user_task_example_runs_and_its_two_conventions_agree():
    # docs/tasks.md's example: a user's task registered by a script; paper(λ) ≡ torch(λ / peak_lr).
    # One thread: two threads spin-waiting on a 13×3 model cost twice the CPU on a busy machine.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_task.py")], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("wine-softmax") for line in lines)
    metrics = [dict(part.split("=") for part in line.split()[1:] if "_" in part.split("=")[0]) for line in lines]
    assert metrics[0]["test_loss"] == metrics[1]["test_loss"]
    assert float(metrics[0]["test_error"]) < 2 / 3  # chance with three classes


def test_train_imports_a_user_task_file(capsys):
    argv = ["train", "wine-softmax", "--import", str(ROOT / "examples" / "custom_task.py"), "--lr", "1e-2",
            "--weight-decay", "0.1", "--epochs", "5", "--json", "--quiet"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["task"] == "wine-softmax" and payload["metrics"]["test_loss"] < 1.0986  # ln 3: chance
    assert main(["train", "wine-softmax", "--import", "no/such/file.py"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", "SyntaxError"),
    ("raise RuntimeError('no data here')\n", "RuntimeError: no data here"),
])
def test_import_of_a_broken_file_is_one_line_and_exit_status_2(tmp_path, capsys, source, message):
    # review finding 6: a user's file that fails to import is bad input, not a traceback
    bad = tmp_path / "bad_tasks.py"
    bad.write_text(source)
    for argv in (["train", "ridge", "--import", str(bad)], ["tasks", "--import", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"--import {bad}: {message}" in err and len(err.strip().splitlines()) == 1


def test_train_momentum_reaches_sgdw(capsys):
    # --momentum is passed on when it applies: 0.5 and the default 0.9 train differently, as the library does
    base = ["train", "ridge", "--optimizer", "sgdw", "--lr", "1e-3", "--weight-decay", "0.1", "--epochs", "2",
            "--schedule", "constant", "--json", "--quiet"]
    assert main([*base, "--momentum", "0.5"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["momentum"] == 0.5
    direct = get_task("ridge").run(TrainConfig(lr=1e-3, weight_decay=0.1, optimizer="sgdw", schedule="constant",
                                               epochs=2, momentum=0.5))
    assert payload["metrics"] == pytest.approx(direct.metrics, rel=1e-12)
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["config"]["momentum"] == 0.9


@pytest.mark.parametrize("argv", [
    ["train", "ridge", "--epochs", "abc"],
    ["train"],
    ["tasks", "--nonsense"],
    ["sweep"],
    ["report", "runs/x", "--nonsense"],
    ["convert", "--lr", "abc"],
    ["advise", "--lr", "1e-3"],
    ["no-such-command"],
])
def test_argparse_errors_are_one_line_and_exit_status_2_for_every_subcommand(argv, capsys):
    # review finding 8: only convert/advise had one-line errors; train, tasks, sweep, report printed the usage
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "error:" in captured.err and "--help" in captured.err


def test_train_help_describes_every_schedule(capsys):
    # review finding 9: SCHEDULE_HELP was exported for help texts but no help text used it
    from weightdecay.schedules import SCHEDULE_HELP

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, sentence in SCHEDULE_HELP.items():
        assert f"{name}: {' '.join(sentence.split())}" in text
