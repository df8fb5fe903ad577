"""CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test colour images of 32×32 pixels, 10 classes.

Not shipped with any package this project installs: read from a user's own copy in the dataset's python-pickle
batch format (the ``cifar-10-batches-py`` directory of ``cifar-10-python.tar.gz``: ``data_batch_1`` … ``_5`` and
``test_batch``, each a pickled dict with ``b"data"``, uint8 ``N × 3072`` in channel-major order, and
``b"labels"``). The pickles are read with an unpickler that only rebuilds numpy arrays and plain containers, so a
tampered file cannot run code.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
from pathlib import Path

import numpy as np

from weightdecay.data._cache import cache_dir, cached_arrays, source_fingerprint
from weightdecay.data._types import ImageDataset
from weightdecay.errors import DataNotFoundError, UserError

__all__ = ["load_cifar10", "cifar10_dir", "CIFAR10_ENV", "CIFAR10_CLASSES"]

CIFAR10_ENV = "WEIGHTDECAY_CIFAR10"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
HOW_TO_GET = (f"download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and "
              f"set {CIFAR10_ENV}=/path/to/cifar-10-batches-py (or pass data_dir)")

# What a CIFAR-10 batch pickle may reference: numpy's array reconstruction (old and new module paths).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def cifar10_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory read: the argument, else ``$WEIGHTDECAY_CIFAR10``, else ``CACHE/cifar-10-batches-py``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    configured = os.environ.get(CIFAR10_ENV)
    return Path(configured).expanduser() if configured else cache_dir() / "cifar-10-batches-py"


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    except (OSError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        raise UserError(f"{path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
                        f"replace it with the file from cifar-10-python.tar.gz") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise UserError(f"{path}: expected b'data' of shape (N, 3072) and N labels, got {data.shape} and "
                        f"{labels.shape}; replace it with the file from cifar-10-python.tar.gz")
    return data.reshape(-1, 3, 32, 32), labels


def _decode(directory: Path) -> dict[str, np.ndarray]:
    train = [_read_batch(directory / name) for name in TRAIN_BATCHES]
    test_x, test_y = _read_batch(directory / TEST_BATCH)
    return {"train_x": np.concatenate([x for x, _ in train]), "train_y": np.concatenate([y for _, y in train]),
            "test_x": test_x, "test_y": test_y}


@functools.lru_cache(maxsize=2)
def _load(directory: Path) -> ImageDataset:
    files = [directory / name for name in (*TRAIN_BATCHES, TEST_BATCH)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataNotFoundError(f"CIFAR-10 not found in {directory} (missing {', '.join(missing)}); {HOW_TO_GET}")
    arrays = cached_arrays("cifar10", source_fingerprint(files), lambda: _decode(directory))
    return ImageDataset(name="cifar10", classes=CIFAR10_CLASSES, **arrays)


def load_cifar10(data_dir: str | os.PathLike | None = None) -> ImageDataset:
    """Load CIFAR-10 as uint8 arrays: images ``(N, 3, 32, 32)``, labels ``(N,)`` in 0..9.

    Args:
        data_dir: the ``cifar-10-batches-py`` directory; default ``$WEIGHTDECAY_CIFAR10`` or
            ``$WEIGHTDECAY_CACHE/cifar-10-batches-py``.

    Raises:
        DataNotFoundError: the batch files are not there; the message says where to get them.

    >>> ds = load_cifar10("~/data/cifar-10-batches-py")  # doctest: +SKIP
    >>> ds.train_x.shape  # doctest: +SKIP
    (50000, 3, 32, 32)
    """
    return _load(cifar10_dir(data_dir).resolve())
