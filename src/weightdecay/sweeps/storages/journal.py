"""``journal:PATH``, the default (``RUN_DIR/study.journal``): Optuna's append-only journal file.

Every write is one appended line under a file lock, so many processes on one machine write without "database
is locked" errors (SQLite's failure mode under Optuna's long write transactions), and nothing needs a server.
Two quirks are handled here: the write lock is an ``flock`` (:class:`FlockLock`), and a line half-written by a
killed writer is cut off before the file is read (:func:`repair_journal_tail`). The journal is one ordered log,
so claiming a queued trial needs no lock of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, ContextManager

import optuna

from weightdecay.sweeps.storages._file_lock import file_lock

__all__ = ["open_storage", "setup_lock", "claim_lock", "FlockLock", "repair_journal_tail", "path_of"]


def path_of(url: str) -> Path:
    return Path(url[len("journal:"):])


def open_storage(url: str) -> optuna.storages.BaseStorage:
    path = path_of(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FlockLock(f"{path}.lock")
    if path.exists():
        repair_journal_tail(path, lock)
    backend = optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock)
    return optuna.storages.JournalStorage(backend)


def setup_lock(url: str, name: str) -> ContextManager[None]:
    return file_lock(path_of(url))


def claim_lock(url: str, name: str) -> ContextManager[None]:
    return contextlib.nullcontext()  # one ordered log: WAITING → RUNNING is decided by the line's place


class FlockLock:
    """The journal file's write lock as an ``flock``: the kernel releases it when its holder dies.

    Optuna's default journal lock is a symlink that a killed process leaves behind, blocking every other
    writer for its 30 s grace period; ``flock`` has no such window (use Optuna's own lock on NFS).
    """

    def __init__(self, path: str):
        self._path = path
        self._fh: Any = None

    def acquire(self) -> bool:
        fh = open(self._path, "a+")
        fcntl.flock(fh, fcntl.LOCK_EX)
        self._fh = fh
        return True

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def repair_journal_tail(path: Path, lock: FlockLock) -> bool:
    """Cut a half-written last line off a journal file (its writer was killed mid-write); True if it did.

    Optuna would otherwise glue the next record onto the fragment and refuse the whole file from there on.
    Under the journal's write lock a live writer's line is always complete, so only a dead writer's remains.
    """
    lock.acquire()
    try:
        with open(path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return False
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return False
            end = size
            while end > 0:
                start = max(0, end - 65536)
                fh.seek(start)
                newline = fh.read(end - start).rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            fh.truncate(end)
            logging.getLogger(__name__).warning("%s: removed a half-written last record (%d bytes) left by a "
                                                "killed worker", path, size - end)
            return True
    finally:
        lock.release()
