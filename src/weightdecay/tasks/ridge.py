"""``ridge``: Schaipp's synthetic ridge regression (n=200, d=1,000, squared loss), a linear model without bias.

The weight decay is the ridge penalty: the setting where Schaipp (2024) showed that the best λ of PyTorch's
AdamW falls as 1/lr while the ``paper`` convention's stays put (Claim 1 (docs/math.md)). Defaults follow him: batch 20,
50 epochs (500 steps); pair them with ``schedule="constant"`` to reproduce his setup.

Metrics: ``train_loss`` (mean of the epoch's minibatch losses), ``val_loss`` and ``test_loss`` on fresh samples
of the same distribution; the loss is ``½·mean((x·w − y)²)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from weightdecay.data import make_ridge
from weightdecay.tasks.base import ProgressFn, TrainConfig, TrainResult
from weightdecay.tasks.training import (BuiltinTask, Option, batches_per_epoch, fit, float_option, int_option,
                                        shuffled_batches)

__all__ = ["RidgeTask"]


def squared_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``½·mean((prediction − target)²)``."""
    return 0.5 * (prediction - target).pow(2).mean()


class RidgeTask(BuiltinTask):
    """Linear regression ``x ↦ x·w`` on Schaipp's synthetic data; weight decay is the only regularizer.

    >>> from weightdecay.tasks import TrainConfig, get_task
    >>> result = get_task("ridge").run(TrainConfig(lr=1e-2, weight_decay=0.1, schedule="constant", epochs=5))
    >>> result.metrics["test_loss"] < 0.5 * (1 + 0.5 ** 2)  # below the zero predictor's loss
    True
    """

    name = "ridge"
    description = "Schaipp's ridge regression: n=200, d=1000, squared loss, linear model (synthetic)"
    metric = "test_loss"
    metrics = ("train_loss", "val_loss", "test_loss")
    default_epochs = 50
    default_batch_size = 20
    suggested_lr = 1e-2
    suggested_weight_decay = 1e-1
    options = {
        "data_seed": Option(0, "seed of the generated problem (the run seed varies init and batch order)"),
        "n": Option(200, "training samples"),
        "d": Option(1000, "dimension"),
        "noise": Option(0.1, "label noise σ"),
    }

    def available(self) -> tuple[bool, str]:
        return True, "generated from a seed"

    def check_options(self, options: dict[str, Any]) -> None:
        int_option(options, "data_seed", 0)
        int_option(options, "n")
        int_option(options, "d")
        float_option(options, "noise")

    def run(self, config: TrainConfig, progress: ProgressFn | None = None, monitors: Sequence[Any] = ()) -> TrainResult:
        config, opts = self.resolve(config)
        data = make_ridge(int_option(opts, "data_seed", 0), int_option(opts, "n"), int_option(opts, "d"),
                          noise=float_option(opts, "noise"))
        x, y = torch.from_numpy(data.train_x.copy()), torch.from_numpy(data.train_y.copy())
        val_x, val_y = torch.from_numpy(data.val_x.copy()), torch.from_numpy(data.val_y.copy())
        test_x, test_y = torch.from_numpy(data.test_x.copy()), torch.from_numpy(data.test_y.copy())
        batch_size = config.batch_size

        def batches(generator: torch.Generator):
            return ((x[i], y[i]) for i in shuffled_batches(len(y), batch_size, generator))

        def evaluate(model: nn.Module) -> dict[str, float]:
            return {"val_loss": float(squared_loss(model(val_x).squeeze(-1), val_y)),
                    "test_loss": float(squared_loss(model(test_x).squeeze(-1), test_y))}

        return fit(lambda: nn.Linear(x.shape[1], 1, bias=False), config,
                   batches=batches, steps_per_epoch=batches_per_epoch(len(y), batch_size),
                   loss_fn=lambda model, xb, yb: squared_loss(model(xb).squeeze(-1), yb),
                   evaluate=evaluate, options=opts, metric_names=("val_loss", "test_loss"), progress=progress,
                   train_size=len(y), monitors=monitors)
