"""Monitors inside the built-in tasks: ``weightdecay train --monitor`` and a sweep's per-trial summary agree with
a Monitor attached to the same run by hand."""

from __future__ import annotations

import textwrap

import pytest

from weightdecay import Monitor
from weightdecay.cli import main
from weightdecay.monitors import read_records, summarize
from weightdecay.tasks import TrainConfig, get_task

RIDGE = {"n": 100, "d": 200}
CONFIG = TrainConfig(lr=1e-2, weight_decay=0.5, schedule="constant", epochs=3, batch_size=20, extra=RIDGE)


@pytest.fixture(scope="module")
def by_hand():
    monitor = Monitor(every=2)
    get_task("ridge").run(CONFIG, monitors=[monitor])
    return monitor


def test_train_command_writes_the_monitor_log(by_hand, tmp_path, capsys):
    log = tmp_path / "ridge.jsonl"
    assert main(["train", "ridge", "--lr", "1e-2", "--weight-decay", "0.5", "--schedule", "constant", "--epochs",
                 "3", "--batch-size", "20", "--option", "n=100", "--option", "d=200", "--quiet", "--monitor",
                 str(log), "--monitor-every", "2"]) == 0
    assert read_records(log) == by_hand.records
    assert f"monitor log {log}" in capsys.readouterr().err
    # 5 steps per epoch, λ·lr = 5e-3: τ_epoch = 200/5 = 40 epochs, beyond the 3-epoch run
    assert by_hand.records[0]["tau_epoch"] == pytest.approx(1 / (1e-2 * 0.5) / 5)
    assert [f.kind for f in summarize(by_hand.records).flags] == ["tau-beyond-run"]


def test_a_task_without_monitors_is_refused_by_train_monitor(tmp_path, capsys):
    from weightdecay.tasks import Task, register_task

    class Old(Task):
        name = "old-style-task-i10"

        def run(self, config, progress=None):
            raise AssertionError("not reached")

    register_task(Old(), replace_existing=True)
    assert main(["train", "old-style-task-i10", "--lr", "1", "--weight-decay", "0", "--monitor",
                 str(tmp_path / "x.jsonl")]) == 2
    assert "takes no monitors" in capsys.readouterr().err


def test_a_sweep_keeps_each_trials_monitor_summary(by_hand):
    from weightdecay.sweeps.config import parse_config
    from weightdecay.sweeps.workloads import train_once

    import tomllib

    raw = tomllib.loads(textwrap.dedent("""
        name = "ridge-monitored"
        task = "ridge"
        epochs = 3
        batch_size = 20
        schedule = "constant"
        monitor_every = 2
        [extra]
        n = 100
        d = 200
        [grid]
        lr = [1e-2]
        weight_decay = [0.5]
        [[arms]]
        name = "torch"
        decay = "torch"
    """))
    config = parse_config(raw)
    record = train_once(config, config.arms[0], 1e-2, 0.5, 0)
    assert record["monitor"] == summarize(by_hand.records, total_steps=by_hand.total_steps).to_dict(max_layers=8)
    assert "monitor_log" not in record  # no trial folder given: the summary only
    assert config.fingerprint(config.arms[0]) == parse_config({**raw, "monitor_every": 5}).fingerprint(config.arms[0])
