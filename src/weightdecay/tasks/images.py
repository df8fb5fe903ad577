"""The image tasks: ``digits-mlp``, ``fashion-mlp``, ``fashion-cnn``, ``cifar10-cnn`` and ``cifar10-tutorial`` (see
:mod:`weightdecay.tasks.classification` for the shared recipe and metrics)."""

from __future__ import annotations

from typing import Any

from torch import nn

from weightdecay.data import ImageDataset, load_cifar10, load_digits, load_fashion_mnist
from weightdecay.checks import is_whole
from weightdecay.errors import UserError
from weightdecay.tasks.classification import ImageClassificationTask
from weightdecay.tasks.models import MLP, SmallCNN
from weightdecay.tasks.training import Option, int_option

__all__ = ["DigitsMLP", "FashionMLP", "FashionCNN", "Cifar10CNN", "Cifar10Tutorial"]


def _channels(opts: dict[str, Any]) -> tuple[int, ...]:
    value = opts["channels"]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(is_whole(c, minimum=1) for c in value)):
        raise UserError(f"Option channels must be a non-empty list of integers >= 1, got {value!r}")
    return tuple(value)


def _flag(opts: dict[str, Any], key: str) -> bool:
    if not isinstance(opts[key], bool):
        raise UserError(f"Option {key} must be true or false, got {opts[key]!r}")
    return opts[key]


class _MLPTask(ImageClassificationTask):
    """An MLP on flattened images of ``input_size`` pixels; options ``width`` and ``depth``."""

    input_size: int = 0

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        int_option(options, "depth", 0)

    def build_model(self, opts: dict[str, Any], num_classes: int) -> nn.Module:
        return MLP(self.input_size, num_classes, width=int_option(opts, "width"),
                   depth=int_option(opts, "depth", 0))


class _CNNTask(ImageClassificationTask):
    """A :class:`SmallCNN` on ``image_size``² images with one channel per entry of ``mean``; options
    ``channels``, ``width`` and ``batch_norm``."""

    image_size: int = 0

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        _channels(options)
        _flag(options, "batch_norm")

    def build_model(self, opts: dict[str, Any], num_classes: int) -> nn.Module:
        return SmallCNN(len(self.mean), num_classes, channels=_channels(opts), hidden=opts["width"],
                        image_size=self.image_size, batch_norm=_flag(opts, "batch_norm"))


class DigitsMLP(_MLPTask):
    """``digits-mlp``: a 2-hidden-layer MLP on scikit-learn's 8×8 digits (1,257 train, 180 val, 360 test).

    >>> from weightdecay.tasks import TrainConfig, get_task
    >>> get_task("digits-mlp").run(TrainConfig(lr=3e-3, weight_decay=0.01, epochs=3)).metrics["test_error"] < 0.5
    True
    """

    name = "digits-mlp"
    description = "MLP (64-128-128-10) on scikit-learn's 8x8 digits"
    default_epochs = 20
    default_batch_size = 32
    suggested_lr = 3e-3
    suggested_weight_decay = 1e-2
    source = "ships with scikit-learn"
    scale, mean, std = 16.0, (0.3,), (0.38,)
    input_size = 8 * 8
    options = {
        **ImageClassificationTask.options,
        "val_size": Option(180, "validation examples held out of the 1,437 training digits"),
        "width": Option(128, "hidden width"),
        "depth": Option(2, "hidden layers"),
    }

    def load_dataset(self, opts: dict[str, Any]) -> ImageDataset:
        return load_digits()


class _FashionMNIST:
    """What both Fashion-MNIST tasks know of their data: its source, its normalization, its validation split and
    where its files are."""

    source = "idx files of Debian's dataset-fashion-mnist (or $WEIGHTDECAY_FASHION_MNIST)"
    mean, std = (0.2860,), (0.3530,)
    split_options = {"val_size": Option(5000, "validation examples held out of the 60,000 training images")}
    file_options = {"data_dir": Option(None, "directory of the idx files (default $WEIGHTDECAY_FASHION_MNIST or "
                                             "Debian's)")}

    def load_dataset(self, opts: dict[str, Any]) -> ImageDataset:
        return load_fashion_mnist(opts["data_dir"])


class FashionMLP(_FashionMNIST, _MLPTask):
    """``fashion-mlp``: a 2-hidden-layer MLP (784-256-256-10) on Fashion-MNIST (55,000 train, 5,000 val)."""

    name = "fashion-mlp"
    description = "MLP (784-256-256-10) on Fashion-MNIST"
    input_size = 28 * 28
    default_epochs = 5
    default_batch_size = 128
    suggested_lr = 1e-3
    suggested_weight_decay = 1e-2
    options = {
        **ImageClassificationTask.options,
        **_FashionMNIST.split_options,
        "width": Option(256, "hidden width"),
        "depth": Option(2, "hidden layers"),
        **_FashionMNIST.file_options,
    }


class FashionCNN(_FashionMNIST, _CNNTask):
    """``fashion-cnn``: two conv blocks (32, 64 channels) and a 128-unit head on a 10,000-image subset of
    Fashion-MNIST, with batch norm (default; its conv weights are scale-invariant) or without
    (``extra={"batch_norm": False}``)."""

    name = "fashion-cnn"
    description = "small CNN (conv32-conv64-fc128, batch norm on/off) on a 10k subset of Fashion-MNIST"
    image_size = 28
    default_epochs = 5
    default_batch_size = 128
    suggested_lr = 1e-3
    suggested_weight_decay = 5e-2
    options = {
        **ImageClassificationTask.options,
        **_FashionMNIST.split_options,
        "train_subset": Option(10000, "train on the first N training examples (None: all 55,000)"),
        "batch_norm": Option(True, "batch norm after each conv and the hidden linear layer"),
        "channels": Option([32, 64], "channels of the conv blocks"),
        "width": Option(128, "hidden width of the head"),
        **_FashionMNIST.file_options,
    }


class Cifar10CNN(_CNNTask):
    """``cifar10-cnn``: a DataCamp-style small CNN (three conv blocks of 32, 64, 128 channels, a 128-unit head)
    on the user's local CIFAR-10 (``extra={"data_dir": ...}`` or ``$WEIGHTDECAY_CIFAR10``); by default a
    10,000-image training subset, no batch norm."""

    name = "cifar10-cnn"
    description = "small CNN (conv32-conv64-conv128-fc128) on CIFAR-10 (your local copy)"
    image_size = 32
    default_epochs = 10
    default_batch_size = 128
    suggested_lr = 1e-3
    suggested_weight_decay = 5e-2
    source = "your cifar-10-batches-py ($WEIGHTDECAY_CIFAR10 or option data_dir)"
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    options = {
        **ImageClassificationTask.options,
        "val_size": Option(5000, "validation examples held out of the 50,000 training images"),
        "train_subset": Option(10000, "train on the first N training examples (None: all 45,000)"),
        "batch_norm": Option(False, "batch norm after each conv and the hidden linear layer"),
        "channels": Option([32, 64, 128], "channels of the conv blocks"),
        "width": Option(128, "hidden width of the head"),
        "data_dir": Option(None, "the cifar-10-batches-py directory (default $WEIGHTDECAY_CIFAR10)"),
    }

    def load_dataset(self, opts: dict[str, Any]) -> ImageDataset:
        return load_cifar10(opts["data_dir"])


class Cifar10Tutorial(Cifar10CNN):
    """``cifar10-tutorial``: PyTorch's CIFAR-10 tutorial run, exactly: ``Conv2d(3,32,3,padding=1) → ReLU →
    MaxPool2 → Conv2d(32,64,3,padding=1) → ReLU → MaxPool2 → Linear(4096,128) → ReLU → Linear(128,10)`` on all
    50,000 training images, inputs normalized with mean 0.5 and std 0.5, batch 32, 10 epochs, every parameter
    decayed (biases too, as ``optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)`` does). The tutorial
    keeps the lr constant: run it with ``--schedule constant`` (the sweep default is cosine)."""

    name = "cifar10-tutorial"
    description = "PyTorch's CIFAR-10 tutorial run (conv32-conv64-fc128, batch 32, all params decayed; your local copy)"
    default_epochs = 10
    default_batch_size = 32
    suggested_lr = 1e-4
    suggested_weight_decay = 1e-2
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    options = {
        **Cifar10CNN.options,
        "val_size": Option(0, "validation examples held out of the 50,000 training images (the tutorial: none)"),
        "train_subset": Option(None, "train on the first N training examples (None: all, as the tutorial)"),
        "channels": Option([32, 64], "channels of the conv blocks"),
        "decay_every_parameter": Option(True, "decay biases too, as torch.optim.AdamW(model.parameters()) does"),
    }

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        _flag(options, "decay_every_parameter")
