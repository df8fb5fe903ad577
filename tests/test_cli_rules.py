"""`weightdecay convert`, `advise` and `transfer` as a user runs them: each one's output and its one-line exit 2
through a real subprocess; the other cases through ``weightdecay.cli.main`` in this process (the same parser and
code, without a fresh interpreter's seconds of importing torch for each)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli_in_process as run_here
from weightdecay.rules import CONVENTIONS, convert

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "weightdecay.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


CIFAR = ["--batch-size", "128", "--dataset-size", "50000", "--epochs", "100"]

# The bad-input cases that run in a real process, one of each subcommand and one of argparse's own errors.
REAL_PROCESS = {"Unknown convention: 'tourch'", "required: --from", "coupled",
                "--lr takes BEFORE [AFTER], got 3 numbers"}


def test_convert_torch_to_paper_text():
    r = run("convert", "--lr", "1e-3", "--weight-decay", "0.01", "--from", "torch", "--to", "paper")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first == "weight_decay=0.01 (torch) = 1e-05 (paper) at lr=0.001, peak_lr=0.001"
    assert "any lr schedule" in r.stdout
    assert "decay='paper', weight_decay=1e-05" in r.stdout


def test_convert_json_matches_the_library_and_the_formula():
    r = run_here("convert", "--lr", "2e-3", "--peak-lr", "4e-3", "--weight-decay", "0.05", "--from", "paper",
            "--to", "pytorch", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["weight_decay"] == pytest.approx(0.05 / 4e-3)  # paper(λ) ≡ torch(λ/peak_lr)
    assert out["weight_decay"] == convert(0.05, "paper", "pytorch", lr=2e-3, peak_lr=4e-3).weight_decay
    assert out["exact"] is True and out["mode"] == "torch"


def test_convert_to_every_convention_json():
    r = run_here("convert", "--lr", "1e-3", "--weight-decay", "0.025", "--from", "normalized", "--json", *CIFAR)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    rows = {c["target"]: c["weight_decay"] for c in out["conversions"]}
    lam = 0.025 * math.sqrt(128 / (50_000 * 100))  # docs/math.md's CIFAR-10 example, ≈ 1.26e-4
    assert rows["paper"] == pytest.approx(lam) and rows["composer"] == pytest.approx(lam)
    assert rows["pytorch"] == pytest.approx(lam / 1e-3)
    assert set(out["skipped"]) == {"stable", "l2"}
    assert set(rows) | set(out["skipped"]) == set(CONVENTIONS)


def test_convert_table_lists_frameworks_in_columns():
    r = run_here("convert", "--lr", "1e-3", "--weight-decay", "0.1", "--from", "torch")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("convention"))
    assert set(lines[header + 1]) <= {"-", " "}
    table = {line.split()[0]: line.split()[1] for line in lines[header + 2:] if line and line[0].isalpha()
             and not line.startswith("(")}
    assert table["tf-addons"] == "0.0001" and table["optax"] == "0.1" and table["composer"] == "0.0001"


def test_advise_text_shows_table_timescales_and_warning():
    r = run("advise", "--lr", "1e-3", "--weight-decay", "0.1", "--convention", "paper", *CIFAR)
    assert r.returncode == 0, r.stderr
    assert "τ_epoch" in r.stdout and "λ_norm" in r.stdout and "rotation" in r.stdout
    warnings = [line for line in r.stdout.splitlines() if line.startswith("warning: ")]
    assert any("less than one epoch" in w for w in warnings)
    assert any("typical 'torch'-convention value" in w for w in warnings)


def test_advise_json_numbers_follow_the_formulas():
    r = run_here("advise", "--lr", "1e-3", "--weight-decay", "0.1", "--convention", "torch", "--optimizer", "sgdw",
            "--momentum", "0.9", "--json", *CIFAR)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tau_iter"] == pytest.approx(1 / (1e-3 * 0.1))
    assert out["tau_epoch"] == pytest.approx(1e4 * 128 / 50_000)
    assert out["weight_decay_norm"] == pytest.approx(1e-4 / math.sqrt(128 / 5e6))
    assert out["rotation"] == pytest.approx(math.sqrt(2 * 1e-4 * 0.1 / 1.9))  # decoupled SGDW
    assert out["warnings"] == []


@pytest.mark.parametrize("args,fragment", [
    (["convert", "--lr", "1e-3", "--weight-decay", "0.1", "--from", "tourch"], "Unknown convention: 'tourch'"),
    (["convert", "--lr", "-1", "--weight-decay", "0.1", "--from", "torch"], "--lr: must be > 0"),
    (["convert", "--lr", "abc", "--weight-decay", "0.1", "--from", "torch"], "not a number"),
    (["convert", "--lr", "1e-3", "--weight-decay", "0.1"], "required: --from"),
    (["convert", "--lr", "1e-3", "--weight-decay", "0.1", "--from", "torch", "--to", "normalized"], "batch size"),
    (["advise", "--lr", "1e-3", "--weight-decay", "0.1", "--convention", "l2", *CIFAR], "coupled"),
    (["advise", "--lr", "1e-3", "--weight-decay", "0.1", "--batch-size", "0", "--dataset-size", "10",
      "--epochs", "1"], "--batch-size: must be > 0"),
    (["advise", "--lr", "1e-3", "--weight-decay", "0.1", "--optimizer", "lion", *CIFAR], "Unknown optimizer"),
    (["advise", "--lr", "1e-3", "--weight-decay", "0.1", "--momentum", "0.5", *CIFAR], "--momentum is for"),
    (["advise", "--lr", "1e-3", "--weight-decay", "0.1", "--optimizer", "sgdw", "--beta1", "0.5", *CIFAR],
     "--beta1 is for"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    r = (run if fragment in REAL_PROCESS else run_here)(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert fragment in lines[0] and "Traceback" not in r.stderr


# --- weightdecay transfer --------------------------------------------------------------------------------------

def test_transfer_torch_lr_doubles_wd_halves():
    # docs/rules.md's worked example: torch convention, lr 1e-3 -> 2e-3 keeps lr·λ = 1e-4, so wd 0.1 -> 0.05.
    r = run("transfer", "--weight-decay", "0.1", "--lr", "1e-3", "2e-3")
    assert r.returncode == 0, r.stderr
    assert "weight_decay  0.1 -> 0.05 (torch)" in r.stdout and "lr            0.001 -> 0.002" in r.stdout
    payload = json.loads(run_here("transfer", "--weight-decay", "0.1", "--lr", "1e-3", "2e-3", "--json").stdout)
    assert payload["weight_decay"] == pytest.approx(0.1 * 1e-3 / 2e-3) and payload["lr"] == 2e-3
    assert payload["shrink"] == pytest.approx(1e-3 * 0.1)


def test_transfer_keep_tau_epoch_and_width_follow_the_formulas():
    # τ_epoch = b/(lr·λ·B) fixed: 4x the data -> λ/4; μP width 256 -> 1024: lr/4, then λ·4 at fixed τ_epoch.
    r = run_here("transfer", "--weight-decay", "0.1", "--lr", "1e-3", "--rule", "keep-tau-epoch",
            "--dataset-size", "50000", "200000", "--width", "256", "1024", "--json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["lr"] == pytest.approx(1e-3 / 4)
    lam = 0.1 * (50_000 / 200_000) * (1e-3 / (1e-3 / 4))  # same b/(lr·λ·B) at the new lr and B
    assert payload["weight_decay"] == pytest.approx(lam)


@pytest.mark.parametrize("argv, message", [
    (["--lr", "1e-3", "2e-3", "3e-3"], "--lr takes BEFORE [AFTER], got 3 numbers"),
    (["--lr", "-1"], "must be > 0"),
    (["--lr", "1e-3", "--convention", "nope"], "Unknown convention: 'nope'"),
    (["--lr", "1e-3", "--rule", "nope"], "invalid choice: 'nope'"),
])
def test_transfer_bad_input_is_one_line_exit_2(argv, message):
    r = (run if message in REAL_PROCESS else run_here)("transfer", "--weight-decay", "0.1", *argv)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_advise_for_fine_tuning_says_where_the_range_comes_from_and_gives_a_value():
    # BERT-style fine-tuning: lr 2e-5, batch 32, 10,000 examples, 3 epochs, PyTorch's AdamW convention.
    args = ["advise", "--lr", "2e-5", "--weight-decay", "0.01", "--batch-size", "32", "--dataset-size", "10000",
            "--epochs", "3", "--fine-tuning"]
    provisional = 0.025 * math.sqrt(32 / (10_000 * 3)) / 2e-5  # λ_norm = 0.025 in paper units, then torch = paper/lr
    out = json.loads(run_here(*args, "--json").stdout)
    assert out["fine_tuning"] and out["suggested_weight_decay"] == pytest.approx(provisional, rel=1e-12)
    text = run_here(*args).stdout
    note = [line for line in text.splitlines() if line.startswith("fine-tuning: ")]
    assert len(note) == 1 and "from training image classifiers from scratch" in note[0]
    assert f"weight_decay = {provisional:.4g} ('torch'" in note[0] and "normalized rule" in note[0]
    plain = json.loads(run_here(*args[:-1], "--json").stdout)  # training from scratch: no fine-tuning note
    assert plain["suggested_weight_decay"] is None and plain["suggestion"] == ""
