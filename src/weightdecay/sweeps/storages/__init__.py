"""Where a sweep's trials live: an Optuna storage named by one string, one module per kind of store.

- ``journal:PATH`` (the default, ``RUN_DIR/study.journal``; :mod:`.journal`): an append-only file, many
  processes on one machine, no server.
- ``sqlite:///PATH`` (:mod:`.sqlite`): a database file, fine for a few processes.
- ``postgresql://USER@HOST:PORT/DB`` (:mod:`.postgresql`): workers on many machines share one study.

Every kind gives the same three things, so the rest of the sweep never asks which kind it has: the storage
(:func:`open_storage`), the *setup lock* (:func:`setup_lock`), which serializes the short step where a process
compares a study with its grid and queues what is missing, so two machines starting at once never queue a point
twice; and the *claim lock* (:func:`claim_lock`), held while a worker flips a queued trial to running, where the
store cannot make that flip exclusive itself (SQLite). Both locks die with their process.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import ContextManager

import optuna

from weightdecay.errors import UserError
from weightdecay.sweeps.storages import _rdb, journal, postgresql, sqlite

__all__ = ["resolve_storage", "open_storage", "setup_lock", "claim_lock", "storage_kind", "BACKENDS"]

# The kind of a canonical storage string → its module (open_storage, setup_lock, claim_lock).
BACKENDS: dict[str, ModuleType] = {"journal": journal, "sqlite": sqlite, "postgresql": postgresql, "rdb": _rdb}


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
    return BACKENDS[storage_kind(url)].open_storage(url)


def setup_lock(url: str, name: str) -> ContextManager[None]:
    """Hold an exclusive lock named ``name`` on this storage for the block (one holder across all machines)."""
    return BACKENDS[storage_kind(url)].setup_lock(url, name)


def claim_lock(url: str, name: str) -> ContextManager[None]:
    """What a worker holds while it claims a queued trial: nothing where the store's own claim is exclusive."""
    return BACKENDS[storage_kind(url)].claim_lock(url, name)
