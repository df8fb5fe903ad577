"""``sqlite:///PATH``: Optuna's RDB storage on SQLite, with a 60 s busy timeout; fine for a few processes.

SQLite has no row locks: two processes could both flip the same WAITING trial to RUNNING, so a worker claims
its trial under the file lock that also guards the setup (:func:`claim_lock`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ContextManager

import optuna

from weightdecay.sweeps.storages._file_lock import file_lock
from weightdecay.sweeps.storages._rdb import open_rdb

__all__ = ["open_storage", "setup_lock", "claim_lock"]


def _path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


def open_storage(url: str) -> optuna.storages.BaseStorage:
    _path(url).parent.mkdir(parents=True, exist_ok=True)
    return open_rdb(url, {"connect_args": {"timeout": 60}})


def setup_lock(url: str, name: str) -> ContextManager[None]:
    return file_lock(_path(url))


claim_lock = setup_lock
