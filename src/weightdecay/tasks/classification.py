"""Image classification tasks: digits, Fashion-MNIST and CIFAR-10, with MLPs and small CNNs.

Every classification task shares one recipe: the official training set is split once into a fixed training
and validation part (a permutation with a fixed seed, the same for every run, so sweeps compare like with like),
``train_subset`` takes the first N of the training part, images stay uint8 tensors in memory and are scaled to
floats one batch at a time (vectorized; no per-sample Python), cross-entropy loss.

Metrics: ``train_loss`` (mean of the epoch's minibatch losses), ``val_loss``, ``val_error``, ``test_loss``,
``test_error`` (fractions in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightdecay.data import ImageDataset
from weightdecay.errors import DataNotFoundError, UserError
from weightdecay.tasks.base import ProgressFn, TrainConfig, TrainResult
from weightdecay.tasks.training import (BuiltinTask, Option, batches_per_epoch, evaluate_in_chunks, fit,
                                        int_option, shuffled_batches)

__all__ = ["ImageClassificationTask", "Splits", "make_splits"]

_SPLIT_SEED = 1234  # fixed: the validation split is part of the task, not of a run


@dataclass
class Splits:
    """uint8 image tensors and int64 labels of the training, validation and test parts."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def make_splits(dataset: ImageDataset, *, val_size: int, train_subset: int | None = None,
                test_subset: int | None = None) -> Splits:
    """Carve a fixed validation part out of the official training set, then optionally subsample.

    Args:
        dataset: the loaded dataset.
        val_size: validation examples taken from the training set (0 for none: no ``val_*`` metrics).
        train_subset: keep the first N of the (fixed-permuted) training part; None keeps all.
        test_subset: keep the first N test examples; None keeps all.
    """
    n = len(dataset.train_y)
    if val_size >= n:
        raise UserError(f"Option val_size={val_size} leaves no training data ({n} examples); lower it")
    order = np.random.default_rng(_SPLIT_SEED).permutation(n)
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_subset is not None:
        if train_subset > len(train_idx):
            raise UserError(f"Option train_subset={train_subset} exceeds the {len(train_idx)} training examples; "
                            f"lower it or set it to null")
        train_idx = train_idx[:train_subset]
    test_n = len(dataset.test_y) if test_subset is None else min(test_subset, len(dataset.test_y))

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, copy=True))  # a writable copy: torch refuses read-only arrays

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return Splits(images(dataset.train_x[train_idx]), labels(dataset.train_y[train_idx]),
                  images(dataset.train_x[val_idx]), labels(dataset.train_y[val_idx]),
                  images(dataset.test_x[:test_n]), labels(dataset.test_y[:test_n]))


class ImageClassificationTask(BuiltinTask):
    """The shared training recipe; subclasses load the data and build the model.

    Subclasses implement :meth:`load_dataset`, :meth:`build_model` and set ``scale`` (the uint8 value of 1.0),
    ``mean`` and ``std`` (per channel, after scaling) and the ``options`` defaults for ``val_size`` etc.
    """

    metric = "test_error"
    metrics = ("train_loss", "val_loss", "val_error", "test_loss", "test_error")  # val_*: when val_size > 0
    source = ""  # where the data comes from, shown by `weightdecay tasks` when it is present
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    options = {
        "val_size": Option(0, "validation examples held out of the official training set"),
        "train_subset": Option(None, "train on the first N training examples (None: all)"),
        "test_subset": Option(None, "evaluate on the first N test examples (None: all)"),
        "width": Option(128, "hidden width"),
    }

    def load_dataset(self, opts: dict[str, Any]) -> ImageDataset:
        raise NotImplementedError

    def build_model(self, opts: dict[str, Any], num_classes: int) -> nn.Module:
        raise NotImplementedError

    def available(self) -> tuple[bool, str]:
        try:
            self.load_dataset({k: o.default for k, o in self.all_options().items()})
        except DataNotFoundError as exc:
            return False, str(exc)
        return True, self.source

    def check_options(self, options: dict[str, Any]) -> None:
        int_option(options, "val_size", 0)
        int_option(options, "train_subset", allow_none=True)
        int_option(options, "test_subset", allow_none=True)
        int_option(options, "width")

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images to normalized floats, ``(x/scale − mean)/std`` per channel, one batch at a time."""
        x = images.float().div_(self.scale)
        if x.ndim == 4:  # (N, C, H, W)
            shape = (1, -1, 1, 1)
            return x.sub_(torch.tensor(self.mean).view(shape)).div_(torch.tensor(self.std).view(shape))
        return x.sub_(self.mean[0]).div_(self.std[0])

    def run(self, config: TrainConfig, progress: ProgressFn | None = None, monitors: Sequence[Any] = ()) -> TrainResult:
        config, opts = self.resolve(config)
        dataset = self.load_dataset(opts)
        splits = make_splits(dataset, val_size=int_option(opts, "val_size", 0),
                             train_subset=int_option(opts, "train_subset", allow_none=True),
                             test_subset=int_option(opts, "test_subset", allow_none=True))
        batch_size = config.batch_size
        n = len(splits.train_y)
        prepare = self.prepare

        def batches(generator: torch.Generator):
            return ((prepare(splits.train_x[i]), splits.train_y[i]) for i in shuffled_batches(n, batch_size,
                                                                                              generator))

        def per_example(model: nn.Module):
            def fn(xb: torch.Tensor, yb: torch.Tensor):
                logits = model(prepare(xb))
                return F.cross_entropy(logits, yb, reduction="none"), logits.argmax(dim=-1) != yb
            return fn

        names = (["val_loss", "val_error"] if len(splits.val_y) else []) + ["test_loss", "test_error"]

        def evaluate(model: nn.Module) -> dict[str, float]:
            out = {}
            if len(splits.val_y):
                out["val_loss"], out["val_error"] = evaluate_in_chunks(per_example(model), splits.val_x,
                                                                       splits.val_y)
            out["test_loss"], out["test_error"] = evaluate_in_chunks(per_example(model), splits.test_x,
                                                                     splits.test_y)
            return out

        return fit(lambda: self.build_model(opts, dataset.num_classes), config, batches=batches,
                   steps_per_epoch=batches_per_epoch(n, batch_size),
                   loss_fn=lambda model, xb, yb: F.cross_entropy(model(xb), yb),
                   evaluate=evaluate, options=opts, metric_names=names, progress=progress, train_size=n,
                   monitors=monitors)
