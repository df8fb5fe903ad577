"""The CIFAR-10 tutorial's run, as an example script and as the ``cifar10-tutorial`` task, on a small CIFAR-10
copy written in the dataset's real pickle format (``test_data.write_cifar``).

Peers: the example's loop with ``torch.optim.AdamW`` (the tutorial's own line) must give the same weights bit for
bit; the task must equal a hand-written loop over the same batches with ``torch.optim.AdamW(model.parameters())``
(every parameter decayed, constant lr); τ_epoch and the paper-units λ are checked against their formulas.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, cli_env
from test_data import write_cifar
from weightdecay.data import cifar10 as cifar10_module
from weightdecay.data import load_cifar10
from weightdecay.errors import DataNotFoundError
from weightdecay.tasks import TrainConfig, get_task
from weightdecay.tasks.classification import make_splits
from weightdecay.tasks.training import shuffled_batches

EXAMPLE = ROOT / "examples" / "tutorial_cifar10.py"
PER_BATCH, TEST = 8, 6  # 40 training images, 6 test images


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_CACHE", str(tmp_path / "cache"))
    cifar10_module._load.cache_clear()
    directory = tmp_path / "cifar-10-batches-py"
    write_cifar(directory, per_batch=PER_BATCH, test=TEST)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield directory
    torch.set_num_threads(threads)
    cifar10_module._load.cache_clear()


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("tutorial_cifar10", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_normalizes_as_torchvisions_transform(cifar, example):
    ds = load_cifar10(cifar)
    x, label = example.CIFAR10Pickles(ds.train_x, ds.train_y)[3]
    # ToTensor (x/255) then Normalize(mean=0.5, std=0.5), in float64 here.
    want = (ds.train_x[3].astype(np.float64) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-6)
    assert x.shape == (3, 32, 32) and label == int(ds.train_y[3])


def test_example_is_the_tutorial_loop_with_weightdecay_dropped_in(cifar, example):
    lines = []
    nets = {}
    for cls in (example.weightdecay.AdamW, torch.optim.AdamW):
        trainloader, testloader = example.loaders(str(cifar))
        nets[cls], accuracy = example.train(trainloader, testloader, epochs=2, optimizer_class=cls,
                                            log=lines.append)
        assert 0.0 <= accuracy <= 1.0
    for p, q in zip(*(net.parameters() for net in nets.values())):
        assert torch.equal(p, q)
    # τ_epoch = 1/(lr·λ) steps · b/B epochs per step; the paper's λ for a constant lr is lr·λ.
    tau_epoch = 1 / (example.LR * example.WEIGHT_DECAY) * example.BATCH_SIZE / (5 * PER_BATCH)
    assert f"τ_epoch = {tau_epoch:.4g} epochs for a 2-epoch run" in lines[0]
    assert f"weight_decay={example.LR * example.WEIGHT_DECAY:.3g}) decays the same" in lines[1]
    # the model is the tutorial's: its parameter shapes
    shapes = [tuple(p.shape) for p in nets[torch.optim.AdamW].parameters()]
    assert shapes == [(32, 3, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 4096), (128,), (10, 128), (10,)]


def test_example_runs_as_a_script(cifar):
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--data-dir", str(cifar), "--epochs", "1"],
                          capture_output=True, text=True, timeout=240, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert "τ_epoch" in proc.stdout and f"Accuracy of the network on the {TEST} test images" in proc.stdout



def test_example_says_where_to_get_the_data(tmp_path, example):
    with pytest.raises(DataNotFoundError, match="cifar-10-python.tar.gz"):
        example.main(["--data-dir", str(tmp_path / "nowhere")])


def test_task_preset_is_the_tutorial_run(cifar):
    task = get_task("cifar10-tutorial")
    assert (task.default_batch_size, task.default_epochs) == (32, 10)
    assert (task.suggested_lr, task.suggested_weight_decay) == (1e-4, 1e-2)
    config = TrainConfig(lr=1e-4, weight_decay=1e-2, schedule="constant", epochs=2, seed=3,
                         extra={"data_dir": str(cifar)})
    result = task.run(config)

    # The same run by hand: the task's model, the tutorial's optimizer line over every parameter, the same batches.
    _, opts = task.resolve(config)
    splits = make_splits(load_cifar10(cifar), val_size=0)
    assert len(splits.train_y) == 5 * PER_BATCH and len(splits.val_y) == 0  # all the training data

    def prepare(x):
        return (x.float() / 255 - 0.5) / 0.5

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = task.build_model(opts, 10)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
        generator = torch.Generator().manual_seed(3)
        for _ in range(2):
            for idx in shuffled_batches(len(splits.train_y), 32, generator):
                loss = F.cross_entropy(model(prepare(splits.train_x[idx])), splits.train_y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(32, 3, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 4096), (128,), (10, 128), (10,)]
    with torch.no_grad():
        test_loss = F.cross_entropy(model(prepare(splits.test_x)), splits.test_y).item()
    assert result.metrics["test_loss"] == pytest.approx(test_loss, rel=1e-5)
