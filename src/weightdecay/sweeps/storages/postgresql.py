"""``postgresql://USER@HOST:PORT/DB``: workers on many machines share one study.

Row locks (``SELECT … FOR UPDATE``) make each queued trial go to exactly one worker, so a claim needs no lock of
its own; the setup lock is a PostgreSQL advisory lock, which the server releases when its connection dies. The
driver (psycopg 3, the ``postgres`` extra) is checked before connecting, so a machine without it gets the line
that installs it rather than a traceback.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import ContextManager, Iterator

import optuna

from weightdecay._extras import require
from weightdecay.errors import UserError
from weightdecay.sweeps.storages._rdb import open_rdb, redact

__all__ = ["open_storage", "setup_lock", "claim_lock", "require_driver"]


def require_driver(url: str) -> None:
    """Refuse, in one line naming the install, a URL whose driver is not installed (psycopg by default)."""
    scheme = url.split("://", 1)[0]
    driver = scheme.split("+", 1)[1] if "+" in scheme else "psycopg2"
    require(driver, extra="postgres", needed_for=f"--storage {scheme}://… (PostgreSQL)")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    require_driver(url)
    return open_rdb(url, {"pool_pre_ping": True})


def claim_lock(url: str, name: str) -> ContextManager[None]:
    return contextlib.nullcontext()


@contextlib.contextmanager
def setup_lock(url: str, name: str) -> Iterator[None]:
    """A PostgreSQL advisory lock named after ``name``: one holder across all machines."""
    import sqlalchemy

    require_driver(url)
    key = zlib.crc32(f"weightdecay-sweep:{name}".encode())
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        try:
            conn = engine.connect()
        except sqlalchemy.exc.OperationalError as exc:
            raise UserError(f"--storage {redact(url)}: cannot connect ({str(exc).splitlines()[0]}); "
                            f"check that the server is up and the URL is right") from None
        with conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()
