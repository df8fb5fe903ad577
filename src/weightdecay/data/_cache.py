"""A small on-disk cache of decoded arrays, written atomically so that parallel sweep workers never read a
half-written file."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from weightdecay._io import atomic_writer

log = logging.getLogger(__name__)

CACHE_ENV = "WEIGHTDECAY_CACHE"


def cache_dir() -> Path:
    """The cache directory: ``$WEIGHTDECAY_CACHE`` if set, else ``~/.cache/weightdecay``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "weightdecay"


def source_fingerprint(paths: list[Path]) -> str:
    """A short key that changes when any source file is replaced (its path, size or modification time)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as ``.npz`` atomically (:func:`weightdecay._io.atomic_writer`)."""
    with atomic_writer(path) as fh:
        np.savez(fh, **arrays)


def cached_arrays(name: str, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Return the arrays cached as ``NAME-KEY.npz``, building and caching them when absent or unreadable.

    A cache that cannot be written (read-only home, full disk) only costs the decoding time: it is logged, not
    raised. The returned arrays are read-only, so in-process memoization can hand out the same objects.
    """
    path = cache_dir() / f"{name}-{key}.npz"
    arrays: dict[str, np.ndarray] | None = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable cache file %s (%s); decoding again", path, exc)
    if arrays is None:
        arrays = build()
        try:
            atomic_save_npz(path, arrays)
        except OSError as exc:
            log.warning("could not write the data cache %s (%s); set %s to a writable directory", path, exc,
                        CACHE_ENV)
    for array in arrays.values():
        array.setflags(write=False)
    return arrays
