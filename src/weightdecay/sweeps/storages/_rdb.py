"""Optuna's RDB storage on any database SQLAlchemy speaks: opened with one clear line when it cannot be.

SQLite and PostgreSQL add their quirks in their own modules; another database gets Optuna's row locks only.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import optuna

from weightdecay.errors import UserError

__all__ = ["open_rdb", "open_storage", "setup_lock", "claim_lock", "redact"]


def open_rdb(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.BaseStorage:
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # connection refused, bad credentials, missing driver: all the user's to fix
        raise UserError(f"--storage {redact(url)}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        f"check that the server is up and the URL is right") from None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    return open_rdb(url, {"pool_pre_ping": True})


def setup_lock(url: str, name: str) -> ContextManager[None]:
    return contextlib.nullcontext()  # other databases: Optuna's row locks still keep trial claims exclusive


claim_lock = setup_lock


def redact(url: str) -> str:
    """The URL without its password: never echo one into a terminal or a log."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url
