"""A sweep worker: claims queued trials one at a time, trains, records the result; many run side by side.

Each trial is one call of ``task.run(TrainConfig)``, of the config's command (:mod:`weightdecay.sweeps.command`)
or of its function (:mod:`weightdecay.sweeps.objective`), all ending in one
:class:`~weightdecay.sweeps.outcome.TrialOutcome`. The result goes into the trial: its value is the metric
(``+inf`` for a minimized metric that came out NaN/inf), and its user attributes hold every final metric, the
per-epoch history, ``diverged`` and the wall time. A diverged run is a COMPLETE trial flagged ``diverged``,
not a failure; a Python exception in the task is a FAIL with the error text, queued again on the next run
(as is a command that exits non-zero, times out or prints no metric: the error is the tail of its stderr).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from typing import Any

import optuna
from optuna.trial import TrialState

from weightdecay.decay import shrink
from weightdecay.sweeps.config import Arm, SweepConfig
from weightdecay.sweeps.outcome import TrialFailed, TrialOutcome, outcome_from_metrics
from weightdecay.sweeps.storage import open_storage, setup_lock, storage_kind
from weightdecay.sweeps.study import (HEARTBEAT_ATTR, HOST_ID, OWNER_ATTR, fail_stale_trials, grid_status,
                                      open_arm_study, reconcile, study_name)

__all__ = ["WorkerOptions", "run_worker", "train_once", "weight_decay_from"]

log = logging.getLogger(__name__)


class WorkerOptions:
    """How a worker behaves: torch threads, heartbeat timing, and how long to wait for other workers."""

    def __init__(self, threads: int = 1, heartbeat_interval: float = 10.0, grace_period: float = 60.0,
                 poll_interval: float = 2.0, run_dir: str | None = None):
        self.threads = threads
        self.run_dir = run_dir  # where a command's trials get their folders (RUN_DIR/trials/ARM/NNNN)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.poll_interval = poll_interval


def train_once(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
               workdir: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Run one training run and return what a trial records (value, metrics, history, diverged, seconds).

    The one place a trial runs: a task, a command (in ``workdir``, with ``threads`` OMP threads) or a function.
    Raises :class:`~weightdecay.sweeps.outcome.TrialFailed` for a run without a result.
    """
    if config.command:
        from weightdecay.sweeps.command import run_command

        outcome = run_command(config, arm, lr, weight_decay, seed, workdir=workdir, threads=threads)
    elif config.function:
        from weightdecay.sweeps.objective import run_objective

        outcome = run_objective(config, arm, lr, weight_decay, seed)
    else:
        outcome = _run_task(config, arm, lr, weight_decay, seed)
    return outcome.record()


def _run_task(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int) -> TrialOutcome:
    from weightdecay.tasks import TrainConfig, get_task

    task = get_task(config.task)
    train_config = TrainConfig(lr=lr, weight_decay=weight_decay, optimizer=arm.optimizer, decay=arm.decay,
                               schedule=config.schedule, epochs=config.epochs, batch_size=config.batch_size,
                               seed=seed, momentum=arm.momentum, betas=arm.betas,
                               extra={**config.extra, **arm.extra})
    start = time.perf_counter()
    result = task.run(train_config)
    seconds = result.seconds or time.perf_counter() - start
    return outcome_from_metrics(config.metric, config.direction, result.metrics, result.history, seconds,
                                diverged=bool(result.diverged), source=f"task {config.task!r}")


def weight_decay_from(config: SweepConfig, arm: Arm, lr: float, second: float) -> float:
    """The λ of a TPE sample in the sweep's coordinates: λ itself, the shrink ``s``, or ``τ_epoch``.

    ``s`` is the per-step shrink at the peak lr, linear in λ: ``λ = s / shrink(mode, 1, lr, lr)``; ``τ_epoch``
    gives ``s = b / (B·τ_epoch)`` (``SPEC.md`` section 2).
    """
    coordinates = config.search.coordinates
    if coordinates == "raw":
        return second
    if coordinates == "timescale":
        from weightdecay.tasks import get_task

        batch = config.batch_size or get_task(config.task).default_batch_size
        second = batch / (config.search.train_size * second)
    return second / shrink(arm.decay, 1.0, lr=lr, peak_lr=lr)


class _Heartbeat:
    """Rewrites the trial's heartbeat timestamp every interval while the trial trains."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int, interval: float):
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_ATTR, time.time())
            except Exception:  # a finished trial or a network blip: the next beat or the grace period decides
                log.debug("heartbeat failed", exc_info=True)

    def __enter__(self) -> "_Heartbeat":
        self._storage.set_trial_system_attr(self._trial_id, OWNER_ATTR, {"host": HOST_ID, "pid": os.getpid()})
        self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_ATTR, time.time())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _claim(study: optuna.Study) -> optuna.Trial | None:
    """Claim one queued trial: WAITING → RUNNING is atomic in every Optuna storage, so no two workers share one."""
    storage = study._storage  # noqa: SLF001
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, t._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _finish(study: optuna.Study, trial: optuna.Trial, record: dict[str, Any] | None, error: str | None) -> None:
    try:
        for key in ("metrics", "history", "diverged", "seconds") if record else ():
            trial.set_user_attr(key, record[key])
        if error is not None:
            trial.set_user_attr("error", error[-2000:])
        if record is not None:
            study.tell(trial, record["value"])
        else:
            study.tell(trial, state=TrialState.FAIL)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
        # Another worker declared this one gone and re-queued the point: the re-run counts, not this one.
        log.warning("trial %d was taken over by another worker; its result is dropped", trial.number)


def _run_grid_trial(study: optuna.Study, config: SweepConfig, arm: Arm, trial: optuna.Trial,
                    options: WorkerOptions) -> None:
    storage = study._storage  # noqa: SLF001
    with _Heartbeat(storage, trial._trial_id, options.heartbeat_interval):
        lr = trial.suggest_categorical("lr", list(config.lr))
        wd = trial.suggest_categorical("weight_decay", list(arm.weight_decay))
        seed = trial.suggest_categorical("seed", list(config.seeds))
        workdir = _trial_workdir(config, arm, trial, options)
        record, error = None, None
        try:
            record = train_once(config, arm, lr, wd, seed, workdir=workdir, threads=options.threads)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)  # interrupted, not broken: queued again on resume
            raise
        except TrialFailed as exc:
            error = str(exc)
            log.error("trial %d (%s, lr=%g, wd=%g, seed=%d) failed: %s", trial.number, arm.name, lr, wd, seed,
                      error)
        except Exception:
            error = traceback.format_exc()
            log.error("trial %d (%s, lr=%g, wd=%g, seed=%d) failed:\n%s", trial.number, arm.name, lr, wd, seed,
                      error)
    _finish(study, trial, record, error)


def _run_tpe_trial(study: optuna.Study, config: SweepConfig, arm: Arm, trial: optuna.Trial,
                   options: WorkerOptions) -> None:
    storage = study._storage  # noqa: SLF001
    name = {"raw": "weight_decay", "decoupled": "shrink", "timescale": "tau_epoch"}[config.search.coordinates]
    with _Heartbeat(storage, trial._trial_id, options.heartbeat_interval):
        lr = trial.suggest_float("lr", *config.search.lr, log=True)
        second = trial.suggest_float(name, *config.search.second, log=True)
        wd = weight_decay_from(config, arm, lr, second)
        trial.set_user_attr("weight_decay", wd)
        workdir = _trial_workdir(config, arm, trial, options)
        runs, error = [], None
        try:
            for seed in config.seeds:
                seed_dir = os.path.join(workdir, f"seed{seed}") if workdir else None
                runs.append({"seed": seed, **train_once(config, arm, lr, wd, seed, workdir=seed_dir,
                                                        threads=options.threads)})
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except TrialFailed as exc:
            error = str(exc)
            log.error("trial %d (%s, lr=%g, wd=%g) failed: %s", trial.number, arm.name, lr, wd, error)
        except Exception:
            error = traceback.format_exc()
            log.error("trial %d (%s, lr=%g, wd=%g) failed:\n%s", trial.number, arm.name, lr, wd, error)
    record = None
    if error is None:
        values = [r["value"] for r in runs]
        trial.set_user_attr("seeds", runs)
        record = {"value": sum(values) / len(values), "diverged": any(r["diverged"] for r in runs),
                  "seconds": sum(r["seconds"] for r in runs), "metrics": runs[0]["metrics"],
                  "history": runs[0]["history"]}
    _finish(study, trial, record, error)


def _trial_workdir(config: SweepConfig, arm: Arm, trial: optuna.Trial, options: WorkerOptions) -> str | None:
    # A command's trial runs in a folder of its own; the trial records where, so its logs can be found.
    if not (config.command and options.run_dir):
        return None
    from weightdecay.sweeps.command import trial_dir

    workdir = str(trial_dir(options.run_dir, arm.name, trial.number))
    trial.set_user_attr("workdir", workdir)  # on the machine of the trial's owner (its system attributes)
    return workdir


def _tpe_started(study: optuna.Study) -> int:
    # Spent budget: finished, running, or failed with an error; interrupted or stale trials are asked again.
    return sum(t.state in (TrialState.COMPLETE, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs) for t in study.get_trials(deepcopy=False))


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
        storage_url: a canonical storage string (:func:`weightdecay.sweeps.storage.resolve_storage`).
        options: threads and heartbeat timing.
    """
    import importlib

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
    ran = 0
    if config.search.sampler == "tpe":
        for arm in config.arms:
            study = studies[arm.name]
            while True:
                # Ask inside the lock, so that workers on all machines together never overshoot the budget.
                with setup_lock(storage_url, study_name(config, arm)):
                    fail_stale_trials(study, options.grace_period)
                    trial = study.ask() if _tpe_started(study) < config.search.trials else None
                if trial is None:
                    break
                _run_tpe_trial(study, config, arm, trial, options)
                ran += 1
        return ran

    # SQLite has no row locks: two processes could both flip the same WAITING trial to RUNNING, so there the
    # claim runs under the storage's file lock. Journal (one ordered log) and PostgreSQL (FOR UPDATE) need none.
    claim_lock = (lambda: setup_lock(storage_url, config.name)) if storage_kind(storage_url) == "sqlite" else (
        contextlib.nullcontext)
    last_reconcile = 0.0
    while True:
        claimed = None
        with claim_lock():
            for arm in config.arms:
                trial = _claim(studies[arm.name])
                if trial is not None:
                    claimed = (arm, trial)
                    break
        if claimed is not None:
            arm, trial = claimed
            _run_grid_trial(studies[arm.name], config, arm, trial, options)
            ran += 1
            continue
        statuses = [grid_status(studies[a.name], config, a) for a in config.arms]
        if all(s.finished for s in statuses):
            return ran
        # Others are still training: wait, and every so often re-queue points whose worker is gone.
        if time.monotonic() - last_reconcile > options.poll_interval:
            with setup_lock(storage_url, config.name):
                for arm in config.arms:
                    reconcile(studies[arm.name], config, arm, grace_period=options.grace_period, retry_errors=False)
            last_reconcile = time.monotonic()
        time.sleep(options.poll_interval / 4)
