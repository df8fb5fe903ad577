"""A sweep worker process: opens the storage and the arms' studies, then runs the search's worker loop.

Many workers run side by side, on one machine or many; the search strategy
(:meth:`weightdecay.sweeps.strategies.base.SearchStrategy.work`) takes the next trial, holds its lease while it trains and
records the result. This module adds what a worker *process* needs: torch threads, the user's imports, and
stopping cleanly when the sweep command is interrupted or killed.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from typing import Any

from weightdecay.sweeps.spec import SweepConfig
from weightdecay.sweeps.storages import open_storage
from weightdecay.sweeps.strategies import WorkerOptions, strategy_for
from weightdecay.sweeps.study import open_arm_study

__all__ = ["WorkerOptions", "run_worker"]


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM from the sweep command (on Ctrl-C) ends the trial the same way Ctrl-C does.
    raise KeyboardInterrupt


def _watch_parent() -> None:
    # A worker whose sweep command was killed (kill -9) stops at once; its RUNNING trial is re-queued on resume
    # because its pid is gone.
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def run_worker(config_dict: dict[str, Any], storage_url: str, options: WorkerOptions,
               watch_parent: bool = True) -> int:
    """Work until every arm's grid is done (or its TPE budget spent); returns the number of trials run here.

    Args:
        config_dict: :meth:`SweepConfig.to_dict` of a validated config (plus ``source``).
        storage_url: a canonical storage string (:func:`weightdecay.sweeps.storages.resolve_storage`).
        options: threads and heartbeat timing.
    """
    import torch

    if watch_parent:
        _watch_parent()
        signal.signal(signal.SIGTERM, _interrupt)
    torch.set_num_threads(max(1, options.threads))
    config = SweepConfig.from_dict(config_dict)
    for module in config.imports:
        importlib.import_module(module)
    storage = open_storage(storage_url)
    studies = {arm.name: open_arm_study(storage, config, arm) for arm in config.arms}
    return strategy_for(config).work(storage, storage_url, studies, options)
