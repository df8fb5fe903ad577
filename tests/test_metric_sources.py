"""Scripts swept as they are: the metric read from a pattern over stdout, a JSON or CSV file, or TensorBoard event
files, each against the real format (nanoGPT's printed line, a CSVLogger file written by Lightning itself, an
event file written by torch's SummaryWriter), checked before any run, and a command sweep end to end over an
unmodified script with its report."""

from __future__ import annotations

import json
import math
import re
import shutil

import pytest

from conftest import ROOT, run_cli
from weightdecay.errors import ConfigError
from weightdecay.sweeps import load_results, parse_config
from weightdecay.sweeps.workloads.metric_sources import NoResult, parse_result, read_result

# nanoGPT's train.py: print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
NANOGPT = r"step (?P<step>\d+): train loss (?P<train_loss>[\d.]+), val loss (?P<val_loss>[\d.]+)"
NANOGPT_OUTPUT = """\
tokens per iteration will be: 16,384
step 0: train loss 4.2874, val loss 4.2823
iter 0: loss 4.2654, time 3226.52ms, mfu -100.00%
step 200: train loss 2.1321, val loss 2.1869
iter 200: loss 2.0918, time 12.81ms, mfu 29.81%
step 400: train loss 1.6712, val loss 1.8301
"""


def test_a_pattern_reads_nanogpts_line_last_match_wins_every_match_a_history_row(tmp_path):
    result = parse_result({"regex": NANOGPT}, "val_loss")
    metrics, history = read_result(result, "val_loss", NANOGPT_OUTPUT, tmp_path)
    assert metrics == {"step": 400.0, "train_loss": 1.6712, "val_loss": 1.8301}
    assert [(h["step"], h["val_loss"]) for h in history] == [(0, 4.2823), (200, 2.1869), (400, 1.8301)]
    with pytest.raises(NoResult, match="no line of stdout matches"):
        read_result(result, "val_loss", "iter 0: loss 4.2654\n", tmp_path)


@pytest.mark.parametrize("table, message", [
    ({"regex": "step (\\d+"}, "result.regex: 'step (\\\\d+' is not a regular expression"),
    ({"regex": r"val loss (?P<loss>[\d.]+)"}, "result.regex: no group named 'val_loss', the sweep's metric; "
                                               "capture it as (?P<val_loss>"),
    ({"regex": r"(?P<val_loss>[\d.]*)"}, "result.regex: '(?P<val_loss>[\\\\d.]*)' matches an empty line"),
    ({"file": "results.txt"}, "result.file: 'results.txt'; give a .json (one object) or .csv"),
    ({"file": "/tmp/all_results.json"}, "result.file: '/tmp/all_results.json'; give a path inside the trial folder"),
    ({"file": "../all_results.json"}, "give a path inside the trial folder"),
    ({"regex": NANOGPT, "file": "metrics.csv"}, "result: give one of regex, file, tensorboard, not regex and file"),
    ({"pattern": NANOGPT}, "result.pattern: unknown key"),
    ({}, "result: give one of regex, file, tensorboard"),
])
def test_a_source_that_cannot_give_the_metric_is_refused_before_any_run(table, message):
    with pytest.raises(ConfigError) as caught:
        parse_result(table, "val_loss")
    assert str(caught.value).startswith(message) or message in str(caught.value), str(caught.value)


def test_a_lightning_csvlogger_file_written_by_lightning(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(tmp_path), name="lightning_logs")
    # As a LightningModule's self.log does: train loss every step, val loss once per epoch, on separate rows.
    for step in range(6):
        logger.log_metrics({"train_loss": 1.0 / (step + 1), "epoch": step // 3}, step=step)
        if step % 3 == 2:
            logger.log_metrics({"val_loss": 0.5 / (step + 1), "epoch": step // 3}, step=step)
    logger.save()
    logger.finalize("success")
    written = list(tmp_path.glob("lightning_logs/version_*/metrics.csv"))
    assert len(written) == 1  # the real file, where Lightning puts it
    result = parse_result({"file": "lightning_logs/version_*/metrics.csv"}, "val_loss")
    metrics, history = read_result(result, "val_loss", "", tmp_path)
    assert metrics["val_loss"] == pytest.approx(0.5 / 6) and metrics["epoch"] == 1
    assert metrics["train_loss"] == pytest.approx(1.0 / 6)  # the last value of every column, from its own row
    assert [(h["step"], h["val_loss"]) for h in history] == [(2, pytest.approx(0.5 / 3)), (5, pytest.approx(0.5 / 6))]
    with pytest.raises(NoResult, match="has no column 'accuracy'"):
        read_result({"file": "lightning_logs/version_*/metrics.csv"}, "accuracy", "", tmp_path)


def test_an_event_file_written_by_torch_summarywriter(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "runs"))
    for step in range(0, 500, 100):
        writer.add_scalar("val_loss", 2.0 - step / 1000, global_step=step)
        writer.add_scalar("train_loss", 3.0 - step / 1000, global_step=step)
    writer.close()
    result = parse_result({"tensorboard": "runs"}, "val_loss")
    metrics, history = read_result(result, "val_loss", "", tmp_path)
    assert metrics == {"val_loss": pytest.approx(1.6), "train_loss": pytest.approx(2.6)}
    assert [h["step"] for h in history] == [0, 100, 200, 300, 400]
    assert [h["val_loss"] for h in history] == pytest.approx([2.0, 1.9, 1.8, 1.7, 1.6])
    with pytest.raises(NoResult, match="hold no scalar 'accuracy' \\(tags: .*val_loss"):
        read_result(result, "accuracy", "", tmp_path)
    with pytest.raises(NoResult, match="wrote no 'logs'"):
        read_result({"tensorboard": "logs"}, "val_loss", "", tmp_path)


def test_a_json_results_file(tmp_path):
    # What Hugging Face's Trainer.save_metrics("all", ...) writes: json.dump(metrics, f, indent=4, sort_keys=True)
    (tmp_path / "all_results.json").write_text(json.dumps({"epoch": 3.0, "eval_loss": 0.41, "eval_runtime": 1.2,
                                                          "train_loss": 0.52}, indent=4, sort_keys=True))
    metrics, history = read_result(parse_result({"file": "all_results.json"}, "eval_loss"), "eval_loss", "", tmp_path)
    assert metrics["eval_loss"] == 0.41 and metrics["epoch"] == 3.0 and history == []
    with pytest.raises(NoResult, match="holds no 'eval_accuracy' \\(it holds epoch, eval_loss"):
        read_result({"file": "all_results.json"}, "eval_accuracy", "", tmp_path)


def test_only_a_command_sweep_takes_a_result_table(tmp_path):
    base = {"grid": {"lr": [0.1], "weight_decay": [0.1]}, "arms": [{"name": "a"}]}
    with pytest.raises(ConfigError, match="result: a task reports its metrics itself"):
        parse_config({**base, "task": "ridge", "result": {"regex": NANOGPT}})
    config = parse_config({**base, "command": "python train.py --lr {lr} --weight-decay {weight_decay}",
                           "metric": "val_loss", "result": {"regex": NANOGPT}}, base_dir=ROOT / "examples" / "own_format")
    assert config.result == {"regex": NANOGPT}
    # Where the metric is read belongs to the sweep's identity: a study made with another source is not resumed.
    other = parse_config({**base, "command": "python train.py --lr {lr} --weight-decay {weight_decay}",
                          "metric": "val_loss"}, base_dir=ROOT / "examples" / "own_format")
    assert config.fingerprint(config.arms[0]) != other.fingerprint(other.arms[0])


def test_an_unmodified_script_swept_end_to_end_with_its_report(tmp_path):
    # The example script as it is, in a folder of its own; the config is the example's with a smaller grid.
    folder = tmp_path / "own_format"
    shutil.copytree(ROOT / "examples" / "own_format", folder)
    text = (folder / "sweep.toml").read_text()
    text = re.sub(r"lr = \{.*\}", "lr = [0.01, 0.1]", text)
    text = re.sub(r"weight_decay = \[.*\]", "weight_decay = [0.01, 10.0]", text).replace("seeds = 2", "seeds = 1")
    (folder / "sweep.toml").write_text(text)
    (folder / "train.py").write_text((folder / "train.py").read_text() + "\nprint('a last line of its own')\n")
    done = run_cli("sweep", str(folder / "sweep.toml"), "--out", str(tmp_path / "run"), "--jobs", "2", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4/4 trials complete" in done.stdout, done.stdout
    results = load_results(tmp_path / "run")
    for r in results.records:
        printed = (tmp_path / "run").glob("trials/*/*/stdout.log")
        assert r.history and [h["step"] for h in r.history] == [0, 50, 100, 150, 200, 250, 300]
        assert r.value == r.history[-1]["val_loss"] and math.isfinite(r.value)
        assert any(f"val loss {r.value:.4f}" in p.read_text() for p in printed)
    page = (tmp_path / "run" / "report.html").read_text()
    assert 'id="fig-heatmaps"' in page and 'id="fig-curves"' in page and "val_loss" in page


def test_a_run_without_its_metric_fails_with_its_last_output_lines(tmp_path):
    folder = tmp_path / "own_format"
    shutil.copytree(ROOT / "examples" / "own_format", folder)
    text = (folder / "sweep.toml").read_text().replace("val loss (?P<val_loss>", "validation loss (?P<val_loss>")
    text = re.sub(r"lr = \{.*\}", "lr = [0.01]", text)
    text = re.sub(r"weight_decay = \[.*\]", "weight_decay = [0.1]", text).replace("seeds = 2", "seeds = 1")
    (folder / "sweep.toml").write_text(text)
    done = run_cli("sweep", str(folder / "sweep.toml"), "--out", str(tmp_path / "run"), timeout=300)
    assert done.returncode != 0 and "0/1 trials complete" in done.stdout, done.stdout + done.stderr
    from weightdecay.sweeps import open_storage
    import optuna

    url = json.loads((tmp_path / "run" / "sweep.json").read_text())["storage"]
    (trial,) = optuna.load_study(study_name="own-format/AdamW (torch)", storage=open_storage(url)).get_trials()
    error = trial.user_attrs["error"]
    assert error.startswith("no 'val_loss' in the pattern") and "no line of stdout matches" in error, error
    assert "--- last lines of stdout" in error and "step 300: train loss" in error, error
