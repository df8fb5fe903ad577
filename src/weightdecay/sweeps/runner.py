"""Run a sweep: set the studies up, start ``jobs`` worker processes, show progress, say what is left.

Running the same command again resumes: finished trials stay, and only points that are not complete (never
run, failed, or whose worker died) are queued again. Several machines can run the same command against one
PostgreSQL storage; each claims queued points until the grid is done.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import optuna

from weightdecay._io import atomic_write
from weightdecay.errors import UserError
from weightdecay.sweeps.config import SweepConfig
from weightdecay.sweeps.search import ArmStatus, SearchStrategy, WorkerOptions, strategy_for
from weightdecay.sweeps.storage import open_storage, resolve_storage, setup_lock
from weightdecay.sweeps.study import open_arm_study
from weightdecay.sweeps.worker import run_worker

__all__ = ["SweepSummary", "run_sweep", "write_run_dir", "read_run_dir", "PROGRESS_LOG_INTERVAL"]

log = logging.getLogger(__name__)

# Without a terminal (a CI log, a file) progress is a plain log line at most this often, not a redrawn bar.
PROGRESS_LOG_INTERVAL = 30.0


@dataclass
class SweepSummary:
    """What a sweep command leaves behind: per-arm status, and where the results are."""

    name: str
    storage: str
    out_dir: Path
    status: dict[str, ArmStatus] = field(default_factory=dict)
    seconds: float = 0.0
    ran_here: int = 0

    @property
    def complete(self) -> bool:
        return all(s.complete == s.total for s in self.status.values())

    def line(self) -> str:
        done = sum(s.complete for s in self.status.values())
        total = sum(s.total for s in self.status.values())
        div = sum(s.diverged for s in self.status.values())
        failed = sum(s.failed for s in self.status.values())
        left = total - done - failed
        return (f"{done}/{total} trials complete ({div} diverged, {failed} failed, {left} left) "
                f"in {self.seconds:.0f} s")


def write_run_dir(out_dir: Path, config: SweepConfig, storage_url: str) -> None:
    """Keep the config and the storage address beside the results, so ``weightdecay report RUN_DIR`` finds them."""
    atomic_write(out_dir / "sweep.toml", config.source)
    atomic_write(out_dir / "sweep.json", json.dumps({"name": config.name, "storage": storage_url,
                                                     "config": config.to_dict()}, indent=2))


def read_run_dir(run_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` a sweep wrote into its output folder."""
    path = Path(run_dir) / "sweep.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{run_dir}: not a sweep output folder ({path.name}: {exc}); give the --out folder of "
                        f"`weightdecay sweep`, or a storage URL with --study") from None


def _worker_main(config_dict: dict[str, Any], storage_url: str, options: dict[str, Any], level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    try:
        n = run_worker(config_dict, storage_url, WorkerOptions(**options))
        log.info("worker done after %d trials", n)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _status(strategy: SearchStrategy, studies: dict[str, optuna.Study]) -> dict[str, ArmStatus]:
    return {arm.name: strategy.status(studies[arm.name], arm) for arm in strategy.config.arms}


def run_sweep(config: SweepConfig, *, out_dir: str | Path | None = None, storage: str | None = None,
              jobs: int = 1, threads: int | None = None, quiet: bool = False,
              heartbeat_interval: float = 10.0, grace_period: float = 60.0) -> SweepSummary:
    """Run (or resume) a sweep with ``jobs`` worker processes; returns the per-arm status when all are done.

    Args:
        config: a validated config (:func:`weightdecay.sweeps.load_config`).
        out_dir: where ``sweep.toml``/``sweep.json`` (and the default journal storage) go; ``runs/NAME``.
        storage: ``--storage`` (``None``: ``journal:OUT_DIR/study.journal``).
        jobs: worker processes on this machine.
        threads: torch threads per worker (default: this machine's cores divided by ``jobs``).
        quiet: log one line per finished trial instead of drawing a progress bar. Without a terminal on
            stderr there is no bar either: a log line every :data:`PROGRESS_LOG_INTERVAL` seconds.
        heartbeat_interval, grace_period: a worker silent for ``grace_period`` seconds counts as gone.

    >>> summary = run_sweep(load_config("experiments/demo.toml"), jobs=2)  # doctest: +SKIP
    """
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: give at least 1 worker process")
    if not (heartbeat_interval > 0 and grace_period >= 1 and grace_period > 2 * heartbeat_interval):
        # A live worker beats every heartbeat_interval seconds; a grace period not clearly longer would let
        # another worker take its trial over and run it a second time.
        raise UserError(f"--grace-period {grace_period:g}: give at least 1 second and more than twice the "
                        f"heartbeat interval ({heartbeat_interval:g} s), e.g. 60")
    out_dir = Path(out_dir or Path("runs") / config.name)
    url = resolve_storage(storage, out_dir)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads or max(1, cores // jobs)
    start = time.perf_counter()
    strategy = strategy_for(config)

    # 1. Set the studies up and queue every point that is not done (under the lock: no point queued twice).
    with setup_lock(url, config.name):
        store = open_storage(url)
        studies = {arm.name: open_arm_study(store, config, arm) for arm in config.arms}
        for arm in config.arms:
            strategy.prepare(store, studies[arm.name], arm, grace_period=grace_period, retry_errors=True)
    write_run_dir(out_dir, config, url)

    # 2. Workers, each its own process with its own torch threads (spawn: no fork of a threaded parent).
    options = asdict(WorkerOptions(threads=threads, heartbeat_interval=heartbeat_interval,
                                   grace_period=grace_period, run_dir=str(out_dir.resolve())))
    ctx = multiprocessing.get_context("spawn")
    config_dict = {**config.to_dict(), "source": config.source, "base_dir": config.base_dir}
    level = logging.INFO if quiet else logging.WARNING
    procs = [ctx.Process(target=_worker_main, args=(config_dict, url, options, level), name=f"sweep-worker-{i}")
             for i in range(jobs)]
    for p in procs:
        p.start()
    log.info("sweep %s: %d workers x %d torch threads, storage %s", config.name, jobs, threads, url)
    try:
        _monitor(procs, strategy, studies, quiet)
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: the worker marks its trial interrupted (re-queued on resume)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        raise
    for p in procs:
        if p.exitcode not in (0, None):
            log.warning("worker %s exited with status %s; run the same command again to finish", p.name, p.exitcode)
    return SweepSummary(name=config.name, storage=url, out_dir=out_dir, status=_status(strategy, studies),
                        seconds=time.perf_counter() - start)


def _monitor(procs: list[BaseProcess], strategy: SearchStrategy, studies: dict[str, optuna.Study],
             quiet: bool) -> None:
    """Poll the storage until the workers exit: a tqdm bar on a terminal, log lines otherwise.

    ``quiet`` logs a line whenever a trial finishes; without a terminal (and not quiet) a line at most every
    :data:`PROGRESS_LOG_INTERVAL` seconds, and one at the end, so a CI log stays short.
    """
    name = strategy.config.name
    status = _status(strategy, studies)
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
            status = _status(strategy, studies)
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
            done = sum(s.complete + s.failed for s in _status(strategy, studies).values())
            if done != logged_done:
                log.info("%s: %d/%d trials done", name, done, total)
    finally:
        if bar is not None:
            bar.close()
