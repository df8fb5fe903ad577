"""scikit-learn's handwritten digits (UCI optdigits test set): 1,797 images of 8×8 pixels in 0..16, 10 classes.

The dataset ships with scikit-learn, so it is always present. It has no official test split; a fixed one is made
here (the same on every machine and for every run seed) so that sweeps compare like with like.
"""

from __future__ import annotations

import functools

import numpy as np

from weightdecay.data._types import ImageDataset

__all__ = ["load_digits", "DIGITS_TEST_SIZE"]

DIGITS_TEST_SIZE = 360  # 20% of 1,797, as in scikit-learn's examples
_SPLIT_SEED = 20  # fixed: the split is part of the dataset, not of a run


@functools.lru_cache(maxsize=1)
def load_digits() -> ImageDataset:
    """Load the digits as uint8 arrays: images ``(N, 8, 8)`` with values 0..16, labels ``(N,)`` in 0..9.

    The last :data:`DIGITS_TEST_SIZE` images of a fixed permutation are the test split.

    >>> ds = load_digits()
    >>> ds.train_x.shape, ds.test_x.shape
    ((1437, 8, 8), (360, 8, 8))
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(labels))
    train, test = order[:-DIGITS_TEST_SIZE], order[-DIGITS_TEST_SIZE:]
    arrays = {"train_x": images[train], "train_y": labels[train], "test_x": images[test], "test_y": labels[test]}
    for array in arrays.values():
        array.setflags(write=False)
    return ImageDataset(name="digits", classes=tuple(str(d) for d in range(10)), **arrays)
