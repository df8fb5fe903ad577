"""Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images of 28×28 grey clothes, 10 classes.

Read from the dataset's own idx files (``train-images-idx3-ubyte.gz`` …), by default those of Debian's
``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist``. The decoded arrays are cached
(see :mod:`weightdecay.data._cache`) and memoized in the process.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from weightdecay.data._cache import cached_arrays, source_fingerprint
from weightdecay.data._types import ImageDataset
from weightdecay.errors import DataNotFoundError, UserError

__all__ = ["load_fashion_mnist", "fashion_mnist_dir", "FASHION_MNIST_ENV", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_ENV = "WEIGHTDECAY_FASHION_MNIST"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (f"install Debian's dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist, or `make "
              f"system`), or download the four idx .gz files from https://github.com/zalandoresearch/fashion-mnist "
              f"and set {FASHION_MNIST_ENV}=DIR")


def fashion_mnist_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory read: the argument, else ``$WEIGHTDECAY_FASHION_MNIST``, else Debian's package directory."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    configured = os.environ.get(FASHION_MNIST_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_DIR


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _source_files(directory: Path) -> dict[str, Path]:
    found = {key: _find(directory, stem) for key, stem in _FILES.items()}
    missing = [f"{_FILES[key]}.gz" for key, path in found.items() if path is None]
    if missing:
        raise DataNotFoundError(f"Fashion-MNIST not found in {directory} (missing {', '.join(missing)}); "
                                f"{HOW_TO_GET}")
    return found  # type: ignore[return-value]


def read_idx(path: Path) -> np.ndarray:
    """Decode one idx file (optionally gzipped) of unsigned bytes into an array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"Cannot read {path}: {exc}; replace the file with an intact copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an idx file of unsigned bytes (bad magic number); replace it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise UserError(f"{path} holds {len(raw) - header} bytes of data, its header says shape {shape}; "
                        f"the file is truncated, replace it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=4)
def _load(directory: Path) -> ImageDataset:
    files = _source_files(directory)
    ordered = [files[k] for k in _FILES]
    arrays = cached_arrays("fashion-mnist", source_fingerprint(ordered),
                           lambda: {key: read_idx(path).copy() for key, path in files.items()})
    for split in ("train", "test"):
        if arrays[f"{split}_x"].shape[0] != arrays[f"{split}_y"].shape[0]:
            raise UserError(f"Fashion-MNIST {split} images and labels differ in number in {directory}; "
                            f"replace the files")
    return ImageDataset(name="fashion-mnist", classes=FASHION_MNIST_CLASSES, **arrays)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> ImageDataset:
    """Load Fashion-MNIST as uint8 arrays: images ``(N, 28, 28)``, labels ``(N,)`` in 0..9.

    Args:
        data_dir: a directory holding the four idx files (``.gz`` or not); default ``$WEIGHTDECAY_FASHION_MNIST``
            or ``/usr/share/datasets/fashion-mnist``.

    Raises:
        DataNotFoundError: the files are not there; the message says how to install them or point to them.

    >>> ds = load_fashion_mnist()  # doctest: +SKIP
    >>> ds.train_x.shape, ds.test_x.shape  # doctest: +SKIP
    ((60000, 28, 28), (10000, 28, 28))
    """
    return _load(fashion_mnist_dir(data_dir).resolve())
