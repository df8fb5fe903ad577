"""Where a sweep's trials live: an Optuna storage named by one string, and a lock for setting a study up.

Three kinds, all shareable by several worker processes:

- ``journal:PATH`` (the default, ``RUN_DIR/study.journal``): Optuna's append-only journal file. Every write is
  one appended line under a file lock, so many processes on one machine write without "database is locked"
  errors (SQLite's failure mode under Optuna's long write transactions), and nothing needs a server.
- ``sqlite:///PATH``: Optuna's RDB storage on SQLite, with a 60 s busy timeout; fine for a few processes.
  SQLite has no row locks, so workers claim trials under the setup lock there.
- ``postgresql://USER@HOST:PORT/DB``: workers on many machines share one study; row locks make each queued
  trial go to exactly one worker.

The *setup lock* serializes the short step where a process compares the study with the grid and queues what
is missing (a file lock beside a file store, a PostgreSQL advisory lock on a server), so two machines starting
at once never queue the same grid point twice. The lock dies with its process, so a killed worker never
leaves it held.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Iterator

import optuna

from weightdecay.errors import UserError

__all__ = ["resolve_storage", "open_storage", "setup_lock", "storage_kind"]


def resolve_storage(arg: str | None, out_dir: str | Path) -> str:
    """The canonical storage string for ``--storage ARG`` (``None``: a journal file in ``out_dir``).

    >>> resolve_storage(None, "runs/demo")
    'journal:runs/demo/study.journal'
    >>> resolve_storage("postgresql://u@db:5432/sweeps", ".")
    'postgresql+psycopg://u@db:5432/sweeps'
    """
    if arg is None:
        return f"journal:{Path(out_dir) / 'study.journal'}"
    if arg.startswith("journal:"):
        return arg
    if arg.startswith("postgresql://") or arg.startswith("postgres://"):
        # SQLAlchemy maps a bare postgresql:// to psycopg2; the project ships psycopg 3.
        return "postgresql+psycopg://" + arg.split("://", 1)[1]
    if arg.startswith(("postgresql+", "sqlite:///", "mysql")):
        return arg
    if "://" not in arg and arg.endswith((".journal", ".log")):
        return f"journal:{arg}"
    raise UserError(f"--storage {arg!r}: unknown storage; give a path ending in .journal, sqlite:///PATH.db or "
                    f"postgresql://USER@HOST:PORT/DB")


def storage_kind(url: str) -> str:
    """``journal``, ``sqlite`` or ``postgresql`` (anything else SQLAlchemy speaks counts as ``rdb``)."""
    if url.startswith("journal:"):
        return "journal"
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    return "rdb"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage object for a canonical storage string (see :func:`resolve_storage`)."""
    kind = storage_kind(url)
    if kind == "journal":
        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FlockLock(f"{path}.lock")
        if path.exists():
            repair_journal_tail(path, lock)
        backend = optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock)
        return optuna.storages.JournalStorage(backend)
    engine_kwargs = {"connect_args": {"timeout": 60}} if kind == "sqlite" else {"pool_pre_ping": True}
    if kind == "sqlite":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # connection refused, bad credentials, missing driver: all the user's to fix
        raise UserError(f"--storage {_redact(url)}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        f"check that the server is up and the URL is right") from None


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


@contextlib.contextmanager
def setup_lock(url: str, name: str) -> Iterator[None]:
    """Hold an exclusive lock named ``name`` on this storage for the block (one holder across all machines)."""
    kind = storage_kind(url)
    if kind in ("journal", "sqlite"):
        path = Path(url[len("journal:"):] if kind == "journal" else url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.setup-lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    if kind == "postgresql":
        import sqlalchemy

        key = zlib.crc32(f"weightdecay-sweep:{name}".encode())
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            try:
                conn = engine.connect()
            except sqlalchemy.exc.OperationalError as exc:
                raise UserError(f"--storage {_redact(url)}: cannot connect ({str(exc).splitlines()[0]}); "
                                f"check that the server is up and the URL is right") from None
            with conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            engine.dispose()
        return
    yield  # other databases: Optuna's row locks still keep trial claims exclusive


def _redact(url: str) -> str:
    # Never echo a password into a terminal or a log.
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url

