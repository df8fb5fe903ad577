"""Plug a task of your own into weightdecay: train it by name, from sweeps and from `weightdecay train`.

A task is any object with a ``name``, a ``description``, a ``metric`` to minimize, ``available()`` and
``run(config, progress) -> TrainResult``. Subclassing :class:`weightdecay.tasks.Task` and reusing the shared loop
:func:`weightdecay.tasks.training.fit` gets the optimizer (``config.optimizer``, ``config.decay``), the schedule,
seeding, divergence handling and the per-layer diagnostics for free.

Run it:  PYTHONPATH=src .venv/bin/python examples/custom_task.py
or from the command line, importing this file first:
         weightdecay train wine-softmax --import examples/custom_task.py --lr 1e-2 --weight-decay 0.1
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine

from weightdecay.tasks import Task, TrainConfig, TrainResult, get_task, register_task
from weightdecay.tasks.training import batches_per_epoch, fit, shuffled_batches


class WineSoftmax(Task):
    """Softmax regression on scikit-learn's wine data (178 samples, 13 features, 3 classes)."""

    name = "wine-softmax"
    description = "softmax regression on scikit-learn's wine data"
    metric = "test_error"
    default_epochs = 30
    default_batch_size = 16

    def run(self, config: TrainConfig, progress=None, monitors=()) -> TrainResult:
        config = config.with_(epochs=config.epochs or self.default_epochs,
                              batch_size=config.batch_size or self.default_batch_size)
        x, y = load_wine(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))  # a fixed split, the same for every run
        x = (x - x.mean(0)) / x.std(0)
        x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])
        train_x, train_y, test_x, test_y = x[:128], y[:128], x[128:], y[128:]

        def batches(generator):  # one epoch of (x, y) batches; randomness only from `generator`
            return ((train_x[i], train_y[i]) for i in shuffled_batches(len(train_y), config.batch_size, generator))

        def evaluate(model):  # called after every epoch, in eval mode, without gradients
            logits = model(test_x)
            return {"test_loss": float(F.cross_entropy(logits, test_y)),
                    "test_error": float((logits.argmax(1) != test_y).float().mean())}

        return fit(lambda: torch.nn.Linear(13, 3), config, batches=batches,
                   steps_per_epoch=batches_per_epoch(len(train_y), config.batch_size),
                   loss_fn=lambda model, xb, yb: F.cross_entropy(model(xb), yb),
                   evaluate=evaluate, metric_names=("test_loss", "test_error"), progress=progress,
                   monitors=monitors)


register_task(WineSoftmax(), replace_existing=True)

if __name__ == "__main__":
    task = get_task("wine-softmax")
    # The same decay in two conventions: paper(λ) ≡ torch(λ / peak_lr), so at lr = 1e-2 the two runs coincide.
    for decay, weight_decay in (("torch", 0.1), ("paper", 1e-3)):
        result = task.run(TrainConfig(lr=1e-2, weight_decay=weight_decay, decay=decay, schedule="cosine"))
        print(f"{task.name} decay={decay:<5} weight_decay={weight_decay:<6g} "
              f"test_loss={result.metrics['test_loss']:.4f} test_error={result.metrics['test_error']:.4f}")
