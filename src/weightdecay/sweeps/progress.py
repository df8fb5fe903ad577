"""Progress while a sweep runs: a tqdm bar on a terminal, log lines otherwise, read from the storage."""

from __future__ import annotations

import logging
import sys
import time
from multiprocessing.process import BaseProcess

import optuna

from weightdecay.sweeps.strategies import ArmStatus, SearchStrategy

__all__ = ["show_progress", "arm_status", "PROGRESS_LOG_INTERVAL"]

log = logging.getLogger(__name__)

# Without a terminal (a CI log, a file) progress is a plain log line at most this often, not a redrawn bar.
PROGRESS_LOG_INTERVAL = 30.0


def arm_status(strategy: SearchStrategy, studies: dict[str, optuna.Study]) -> dict[str, ArmStatus]:
    """Where each arm stands, by name."""
    return {arm.name: strategy.status(studies[arm.name], arm) for arm in strategy.config.arms}


def show_progress(procs: list[BaseProcess], strategy: SearchStrategy, studies: dict[str, optuna.Study],
             quiet: bool) -> None:
    """Poll the storage until the workers exit: a tqdm bar on a terminal, log lines otherwise.

    ``quiet`` logs a line whenever a trial finishes; without a terminal (and not quiet) a line at most every
    :data:`PROGRESS_LOG_INTERVAL` seconds, and one at the end, so a CI log stays short.
    """
    name = strategy.config.name
    status = arm_status(strategy, studies)
    total = sum(s.total for s in status.values())
    done0 = sum(s.complete + s.failed for s in status.values())
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done0, desc=name, unit="trial", dynamic_ncols=True)
    interval = 0.0 if quiet else PROGRESS_LOG_INTERVAL
    logged_done, logged_at = done0, time.monotonic()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            status = arm_status(strategy, studies)
            done = sum(s.complete + s.failed for s in status.values())
            running = sum(s.running for s in status.values())
            diverged = sum(s.diverged for s in status.values())
            if bar is not None:
                bar.update(done - bar.n)
                bar.set_postfix(running=running, diverged=diverged, refresh=True)
            elif done != logged_done and time.monotonic() - logged_at >= interval:
                log.info("%s: %d/%d trials done, %d running, %d diverged", name, done, total, running, diverged)
                logged_done, logged_at = done, time.monotonic()
        if bar is None:  # the last trials may have finished since the last line
            done = sum(s.complete + s.failed for s in arm_status(strategy, studies).values())
            if done != logged_done:
                log.info("%s: %d/%d trials done", name, done, total)
    finally:
        if bar is not None:
            bar.close()
