"""The monitor inside Lightning and Hugging Face's Trainer: a few real steps in each framework, the records
reaching the framework's own loggers (Lightning's CSVLogger, the Trainer's TensorBoard reporter)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

import weightdecay


def _data(n: int = 64):
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.randn(n, 6, generator=g), torch.randn(n, 1, generator=g))


def test_lightning_callback_logs_through_the_trainers_logger(tmp_path):
    L = pytest.importorskip("lightning")
    from lightning.pytorch.loggers import CSVLogger

    from weightdecay.monitors.lightning import MonitorCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 8, bias=False), nn.LayerNorm(8), nn.Linear(8, 1))

        def training_step(self, batch, _index):
            x, y = batch
            return ((self.net(x) - y) ** 2).mean()

        def configure_optimizers(self):
            return weightdecay.AdamW(self.parameters(), lr=1e-2, weight_decay=0.1)

    torch.manual_seed(0)
    callback = MonitorCallback(every=2)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=CSVLogger(tmp_path, name="run"),
                        callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(Module(), torch.utils.data.DataLoader(_data(), batch_size=8))
    monitor = callback.monitor
    assert monitor.optimizer is None and monitor.steps == trainer.global_step == 16
    assert monitor.steps_per_epoch == 8 and monitor.total_steps == 16
    assert monitor.scale_invariant == ["net.0.weight"]
    assert sorted({r["step"] for r in monitor.records}) == list(range(2, 17, 2))
    with open(trainer.logger.log_dir + "/metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("weightdecay/rotation/net.0.weight")]
    assert [int(r["step"]) for r in rows] == list(range(2, 17, 2))
    ours = [r for r in monitor.records if r["name"] == "net.0.weight"]
    for row, record in zip(rows, ours):
        assert float(row["weightdecay/rotation/net.0.weight"]) == pytest.approx(record["rotation"], rel=1e-6)
        assert float(row["weightdecay/predicted_rotation/net.0.weight"]) == pytest.approx(
            record["predicted_rotation"], rel=1e-6)


def test_huggingface_callback_reports_through_the_trainers_tensorboard(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from weightdecay.monitors.huggingface import add_monitor

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 8, bias=False), nn.LayerNorm(8), nn.Linear(8, 1))

        def forward(self, x, labels=None):
            out = self.net(x)
            return {"loss": ((out - labels) ** 2).mean(), "logits": out}

    class Rows(torch.utils.data.Dataset):
        def __init__(self):
            self.data = _data()

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            x, y = self.data[i]
            return {"x": x, "labels": y}

    torch.manual_seed(0)
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))  # where the Trainer's reporter writes
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=12, per_device_train_batch_size=8, learning_rate=1e-2,
        weight_decay=0.1, lr_scheduler_type="constant", logging_steps=4, report_to=["tensorboard"],
        save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(model=Regressor(), args=args, train_dataset=Rows())
    callback = add_monitor(trainer, every=4)
    trainer.train()
    monitor = callback.monitor
    assert monitor.steps == trainer.state.global_step == 12 and monitor.total_steps == 12
    # the Trainer's own torch.optim.AdamW: torch convention, its weight decay on the decayed group
    weight = [r for r in monitor.records if r["name"] == "net.0.weight"]
    assert [r["step"] for r in weight] == [4, 8, 12]
    assert all(r["decay"] == "torch" and r["shrink"] == pytest.approx(1e-2 * 0.1) for r in weight)
    logged = [h for h in trainer.state.log_history if "weightdecay/rotation/net.0.weight" in h]
    assert [h["step"] for h in logged] == [4, 8, 12]
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tag = next(t for t in acc.Tags()["scalars"] if t.endswith("weightdecay/rotation/net.0.weight"))
    events = acc.Scalars(tag)
    assert [e.step for e in events] == [4, 8, 12]
    assert [e.value for e in events] == pytest.approx([r["rotation"] for r in weight], rel=1e-6)
