"""The containers the loaders return: plain numpy arrays, so the data layer does not depend on torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image dataset with its official train/test split; arrays are read-only.

    ``train_x``/``test_x`` are uint8 images (``(N, H, W)`` grey or ``(N, C, H, W)`` colour), ``train_y``/``test_y``
    integer class labels, ``classes`` the class names in label order.
    """

    name: str
    classes: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class RegressionDataset:
    """A regression problem with train, validation and test samples; ``w_star`` the weights that made it."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    w_star: np.ndarray
    noise: float


@dataclass(frozen=True)
class CharCorpus:
    """A character-level corpus: ``train``/``val`` are uint8 arrays of indices into ``vocab``."""

    name: str
    vocab: str
    train: np.ndarray
    val: np.ndarray

    def encode(self, text: str) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.vocab)}
        return np.array([index[ch] for ch in text], dtype=np.uint8)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def unigram_cross_entropy(self) -> float:
        """The validation loss (nats per character) of the unigram model fitted on the training text: the
        baseline a language model must clearly beat (``-mean log p_train(c)`` over validation characters)."""
        counts = np.bincount(self.train, minlength=len(self.vocab)).astype(np.float64) + 1.0  # add-one: no log 0
        log_p = np.log(counts / counts.sum())
        return float(-log_p[self.val].mean())
