"""``weightdecay dashboard RUN``: Optuna's dashboard on a sweep's storage, live while the sweep runs.

    weightdecay dashboard runs/demo                       # the default journal storage of `weightdecay sweep`
    weightdecay dashboard sqlite:///runs/sweeps.db --port 8081
    weightdecay dashboard postgresql://USER@HOST:5432/DB --host 0.0.0.0

Each arm is an Optuna study (``SWEEP/ARM``); its trials show their params (``lr``, ``weight_decay``, ``seed``, or
TPE's coordinates), their value and their user attributes (every final metric, the history, ``diverged``). The
storage is opened as the sweep opens it (the journal's flock write lock, psycopg for PostgreSQL), so the dashboard
can run beside live workers. Needs the ``dashboard`` extra: ``pip install 'weightdecay[dashboard]'``, or from a
clone ``pip install -e '.[dashboard]'``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from weightdecay._extras import require
from weightdecay.errors import UserError

__all__ = ["register", "dashboard_storage_url"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="serve optuna-dashboard on a sweep's storage (live while it runs)",
        description="Serve Optuna's dashboard on a sweep's output folder or storage; each arm is a study, each "
                    "(lr, wd, seed) a trial with its metrics as user attributes.")
    p.add_argument("source", help="a sweep's output folder, a .journal file, sqlite:///PATH.db or postgresql://...")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(func=_dashboard)


def dashboard_storage_url(source: str) -> str:
    """The storage string of a sweep's output folder (its ``sweep.json``) or of a storage given directly."""
    from weightdecay.sweeps import read_run_dir, resolve_storage

    if Path(source).is_dir():
        return read_run_dir(source)["storage"]
    url = resolve_storage(source, ".")
    if url.startswith("journal:") and not Path(url[len("journal:"):]).exists():
        raise UserError(f"{source}: no such folder or journal file; give the sweep's --out folder or its storage")
    return url


def _dashboard(args: argparse.Namespace) -> int:
    optuna_dashboard = require("optuna_dashboard", extra="dashboard", needed_for="weightdecay dashboard")
    from weightdecay.sweeps import open_storage

    url = dashboard_storage_url(args.source)
    storage = open_storage(url)
    print(f"dashboard: http://{args.host}:{args.port}/dashboard/ (storage {url}; Ctrl-C stops it)", file=sys.stderr,
          flush=True)
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0
