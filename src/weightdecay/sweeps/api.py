"""The sweep layer's public calls: :func:`run_sweep` (a validated config) and :func:`sweep` (a Python function).

``run_sweep`` sets the studies up, starts ``jobs`` worker processes, shows progress and says what is left.
Running the same call again resumes: finished trials stay, and only points that are not complete (never run,
failed, or whose worker died) are queued again. Several machines can run the same call against one PostgreSQL
storage; each claims queued points until the grid is done.

>>> import weightdecay
>>> def objective(lr, weight_decay, decay, seed):
...     return train_my_model(lr, weight_decay, decay, seed)  # a number, or {"val_loss": ..., "history": [...]}
>>> weightdecay.sweep(objective, "sweep.toml", "runs/mine", jobs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from weightdecay.errors import ConfigError, UserError
from weightdecay.sweeps._toml import read_toml, to_toml
from weightdecay.sweeps.config import parse_config
from weightdecay.sweeps.progress import arm_status, show_progress
from weightdecay.sweeps.run_dir import write_run_dir
from weightdecay.sweeps.spec import SweepConfig
from weightdecay.sweeps.storages import open_storage, resolve_storage, setup_lock
from weightdecay.sweeps.strategies import ArmStatus, WorkerOptions, strategy_for
from weightdecay.sweeps.study import open_arm_study
from weightdecay.sweeps.worker import run_worker
from weightdecay.sweeps.workloads.function import function_spec

__all__ = ["SweepSummary", "run_sweep", "sweep"]

log = logging.getLogger(__name__)


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


def _worker_main(config_dict: dict[str, Any], storage_url: str, options: dict[str, Any], level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    try:
        n = run_worker(config_dict, storage_url, WorkerOptions(**options))
        log.info("worker done after %d trials", n)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


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
            stderr there is no bar either: a log line every
            :data:`~weightdecay.sweeps.progress.PROGRESS_LOG_INTERVAL` seconds.
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
        show_progress(procs, strategy, studies, quiet)
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
    return SweepSummary(name=config.name, storage=url, out_dir=out_dir, status=arm_status(strategy, studies),
                        seconds=time.perf_counter() - start)


def sweep(objective: Callable[..., Any] | str, config: str | Path | dict[str, Any],
          out_dir: str | Path | None = None, *, jobs: int = 1, storage: str | None = None,
          threads: int | None = None, quiet: bool = True, grace_period: float = 60.0) -> SweepSummary:
    """Sweep a Python function over a config's arms × lr × λ × seeds; returns the sweep's summary.

    Running it again resumes, exactly like ``weightdecay sweep`` (finished trials stay); ``jobs`` workers share
    the grid, and the same call on several machines with one ``storage="postgresql://…"`` splits it between
    them. Write the report with ``weightdecay report OUT_DIR``. What the function gets and may return:
    :mod:`weightdecay.sweeps.workloads.function`.

    Args:
        objective: ``objective(lr, weight_decay, decay, seed, **extra)`` returning a number or a dict of
            metrics (with an optional ``history``), or its ``"module:name"``.
        config: a TOML file, or the same settings as a dict; no ``task``, ``command`` or ``function`` key.
        out_dir: where the results go (default ``runs/NAME``).
        jobs, storage, threads, quiet, grace_period: as for :func:`run_sweep`.

    Returns:
        :class:`SweepSummary` (``.complete``, ``.line()``, ``.out_dir``).

    >>> summary = weightdecay.sweep(objective, {"metric": "loss", "grid": {...}, "arms": [...]})  # doctest: +SKIP
    """
    spec = function_spec(objective)
    if isinstance(config, dict):
        raw, source, name, base = dict(config), to_toml(config), "sweep", Path.cwd()
    else:
        path = Path(config)
        raw, source = read_toml(path)
        name, base = path.stem, path.resolve().parent
    for key in ("task", "command", "function"):
        if key in raw:
            raise ConfigError(f"{key}: weightdecay.sweep sweeps the objective it is given; remove {key} from "
                              f"the config")
    parsed = parse_config({**raw, "function": spec}, source=source, default_name=name, base_dir=base)
    return run_sweep(parsed, out_dir=out_dir, storage=storage, jobs=jobs, threads=threads, quiet=quiet,
                     grace_period=grace_period, heartbeat_interval=max(0.5, min(10.0, grace_period / 6)))
