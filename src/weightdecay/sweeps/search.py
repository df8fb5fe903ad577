"""How a sweep chooses its trials: the full grid, or TPE. The one place that knows the difference.

:func:`strategy_for` picks a :class:`SearchStrategy` from the config; everything that depends on the search asks
it: the Optuna sampler, :meth:`~SearchStrategy.prepare` (queue the grid), the worker loop
(:meth:`~SearchStrategy.work`, which takes the next trial and runs it), :meth:`~SearchStrategy.status`, the
records a finished trial holds (:meth:`~SearchStrategy.records`, one :class:`RunRecord` per arm, lr, λ and seed),
and the conversion from the search's coordinates to λ (:meth:`~SearchStrategy.weight_decay`).

- **grid**: every point ``(lr, λ, seed)`` is queued as a WAITING trial with fixed params; workers claim them one
  at a time (WAITING → RUNNING is atomic in every Optuna storage, so a point goes to exactly one worker, on any
  machine). :func:`reconcile` compares the study with the grid under the storage's setup lock and queues what is
  missing: never run, failed, or held by a worker whose lease is lost (:mod:`weightdecay.sweeps.lease`).
- **tpe**: Optuna's TPE samples ``(lr, second)`` per trial in raw ``(lr, λ)``, decoupled ``(lr, s)`` or
  timescale ``(lr, τ_epoch)`` coordinates; one trial trains every seed at its point and reports their mean. The
  per-arm budget is asked under the setup lock, so workers on all machines together never overshoot it.

Every function takes the storage explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from weightdecay.sweeps.config import Arm, SweepConfig
from weightdecay.sweeps.lease import STALE_ATTR, Heartbeat, fail_stale_trials, trial_id
from weightdecay.sweeps.outcome import TrialFailed
from weightdecay.sweeps.storage import setup_lock, storage_kind
from weightdecay.sweeps.trial import train_once

__all__ = ["Key", "RunRecord", "ArmStatus", "WorkerOptions", "SearchStrategy", "GridSearch", "TpeSearch",
           "strategy_for", "grid_keys", "trial_key", "reconcile", "SECOND_PARAM"]

log = logging.getLogger(__name__)

Key = tuple[float, float, int]  # (lr, weight_decay, seed)

# Suggests a trial's point: (lr, λ, the seeds to train there).
Suggest = Callable[[optuna.Trial], tuple[float, float, list[int]]]

# The name of a TPE trial's second parameter in each coordinate system (also the config key of its range).
SECOND_PARAM: dict[str, str] = {"raw": "weight_decay", "decoupled": "shrink", "timescale": "tau_epoch"}


@dataclass
class RunRecord:
    """One finished training run: an arm, a point ``(lr, λ)``, a seed, the metric and its history."""

    arm: str
    lr: float
    weight_decay: float
    seed: int
    value: float
    diverged: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    monitor: dict[str, Any] | None = None  # the run's MonitorSummary.to_dict(max_layers=8), with monitor_every set
    monitor_log: str | None = None  # its monitor's records, relative to the sweep's output folder


@dataclass
class ArmStatus:
    """Where an arm stands: how many points (grid) or trials (TPE) are complete, running, queued or left."""

    total: int
    complete: int = 0
    diverged: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0  # failed with an error and not queued again
    missing: int = 0  # neither complete, running nor queued

    @property
    def finished(self) -> bool:
        return self.running == 0 and self.waiting == 0 and self.missing == 0


@dataclass
class WorkerOptions:
    """How a worker behaves: torch threads, heartbeat timing, and how long to wait for other workers."""

    threads: int = 1
    heartbeat_interval: float = 10.0
    grace_period: float = 60.0
    poll_interval: float = 2.0
    run_dir: str | None = None  # where a command's trials get their folders (RUN_DIR/trials/ARM/NNNN)


class SearchStrategy:
    """What a search does at each stage of a sweep; :class:`GridSearch` and :class:`TpeSearch` fill it in."""

    #: Whether the trials lie on an (lr, λ) grid: the slope of λ*(lr) and the basin need one.
    grid: bool = True

    def __init__(self, config: SweepConfig):
        self.config = config

    def sampler(self) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def prepare(self, storage: BaseStorage, study: optuna.Study, arm: Arm, *, grace_period: float,
                retry_errors: bool) -> int:
        """Before the workers start (under the setup lock): queue what must run; returns how many were queued."""
        return 0

    def work(self, storage: BaseStorage, storage_url: str, studies: dict[str, optuna.Study],
             options: WorkerOptions) -> int:
        """The worker loop: take the next trial and run it until the arms are done; returns the trials run."""
        raise NotImplementedError

    def status(self, study: optuna.Study, arm: Arm) -> ArmStatus:
        raise NotImplementedError

    def records(self, arm: Arm, trial: FrozenTrial) -> list[RunRecord]:
        """The runs a COMPLETE trial holds, one per seed."""
        raise NotImplementedError

    def point(self, trial: FrozenTrial) -> Hashable:
        """What a failure is counted against: a later complete trial at the same point fixes it."""
        raise NotImplementedError

    def weight_decay(self, arm: Arm, lr: float, second: float) -> float:
        """λ in the arm's convention for a point of the search's coordinates."""
        return second

    def _run(self, storage: BaseStorage, study: optuna.Study, arm: Arm, trial: optuna.Trial,
             options: WorkerOptions, suggest: Suggest) -> None:
        """Hold the trial's lease, let ``suggest(trial)`` give ``(lr, λ, seeds)``, train each seed, tell the study."""
        with Heartbeat(storage, trial_id(storage, study, trial), options.heartbeat_interval):
            lr, wd, seeds = suggest(trial)
            workdir = _trial_workdir(self.config, arm, trial, options)
            runs, error = [], None
            try:
                for seed in seeds:
                    runs.append({"seed": seed, **train_once(self.config, arm, lr, wd, seed, threads=options.threads,
                                                            workdir=self._seed_dir(workdir, seed))})
                    if "monitor_log" in runs[-1]:  # kept relative, so the folder can move
                        runs[-1]["monitor_log"] = os.path.relpath(runs[-1]["monitor_log"], options.run_dir)
            except KeyboardInterrupt:
                study.tell(trial, state=TrialState.FAIL)  # interrupted, not broken: queued again on resume
                raise
            except TrialFailed as exc:  # a run without a result (a command's exit, timeout, missing metric)
                error = str(exc)
                log.error("trial %d (%s, lr=%g, wd=%g) failed: %s", trial.number, arm.name, lr, wd, error)
            except Exception:
                error = traceback.format_exc()
                log.error("trial %d (%s, lr=%g, wd=%g) failed:\n%s", trial.number, arm.name, lr, wd, error)
        _finish(study, trial, self._summary(trial, runs) if error is None else None, error)

    def _summary(self, trial: optuna.Trial, runs: list[dict[str, Any]]) -> dict[str, Any]:
        return runs[0]

    def _seed_dir(self, workdir: str | None, seed: int) -> str | None:
        """Where one seed's command runs: the trial's folder (a grid trial is one seed)."""
        return workdir


def _trial_workdir(config: SweepConfig, arm: Arm, trial: optuna.Trial, options: WorkerOptions) -> str | None:
    # A command's trial runs in a folder of its own, a watched task's trial keeps its monitor log in one; the
    # trial records where, so its files can be found.
    if not ((config.command or (config.task and config.monitor_every)) and options.run_dir):
        return None
    from weightdecay.sweeps.command import trial_dir

    workdir = str(trial_dir(options.run_dir, arm.name, trial.number))
    trial.set_user_attr("workdir", workdir)  # on the machine of the trial's owner (its system attributes)
    return workdir


def strategy_for(config: SweepConfig) -> SearchStrategy:
    """The search strategy of a config: :class:`GridSearch` or :class:`TpeSearch`."""
    return TpeSearch(config) if config.search.sampler == "tpe" else GridSearch(config)


def _finish(study: optuna.Study, trial: optuna.Trial, record: dict[str, Any] | None, error: str | None) -> None:
    try:
        for key in ("metrics", "history", "diverged", "seconds", "monitor", "monitor_log") if record else ():
            if key in record:
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


# --- grid ---------------------------------------------------------------------------------------------------

def grid_keys(config: SweepConfig, arm: Arm) -> list[Key]:
    """Every grid point of an arm, in the order they are queued (seed-major, so early results cover the grid)."""
    return [(lr, wd, seed) for seed in config.seeds for wd in arm.weight_decay for lr in config.lr]


def trial_key(trial: FrozenTrial) -> Key | None:
    """The grid point a trial is for (queued trials carry it before they run)."""
    # A queued trial's fixed params are whole from the start; its `params` fill in one suggest call at a time,
    # so reading them while it starts would miss the point and let another worker queue it again.
    params = trial.system_attrs.get("fixed_params") or trial.params
    if not {"lr", "weight_decay", "seed"} <= set(params):
        return None
    return float(params["lr"]), float(params["weight_decay"]), int(params["seed"])


def reconcile(storage: BaseStorage, study: optuna.Study, config: SweepConfig, arm: Arm, *, grace_period: float,
              retry_errors: bool) -> int:
    """Queue every grid point that is not complete, running or queued; returns how many were queued.

    Call it under :func:`weightdecay.sweeps.storage.setup_lock`. Points whose worker is gone are always
    queued again; points that failed with an error only when ``retry_errors`` (a new run of the command),
    so one broken point does not loop forever within a run.
    """
    fail_stale_trials(storage, study, grace_period)
    active: set[Key] = set()
    errored: set[Key] = set()
    for t in study.get_trials(deepcopy=False):
        k = trial_key(t)
        if k is None:
            continue
        if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
            active.add(k)
        elif t.state == TrialState.FAIL and not t.system_attrs.get(STALE_ATTR) and "error" in t.user_attrs:
            errored.add(k)
    queued = 0
    for k in grid_keys(config, arm):
        if k in active or (k in errored and not retry_errors):
            continue
        lr, wd, seed = k
        study.enqueue_trial({"lr": lr, "weight_decay": wd, "seed": seed})
        queued += 1
    if queued:
        log.info("%s: queued %d grid points", study.study_name, queued)
    return queued


def _claim(storage: BaseStorage, study: optuna.Study) -> optuna.Trial | None:
    """Claim one queued trial: WAITING → RUNNING is atomic in every Optuna storage, so no two workers share one."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        tid = trial_id(storage, study, t)
        try:
            if storage.set_trial_state_values(tid, state=TrialState.RUNNING):
                return optuna.Trial(study, tid)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class GridSearch(SearchStrategy):
    """Every ``(lr, λ, seed)`` of the grid, one trial each, queued up front and claimed by the workers."""

    grid = True

    def sampler(self) -> optuna.samplers.BaseSampler:
        # Every grid trial is queued with fixed params (the grid itself lives in the config, kept with the study),
        # so the sampler never chooses anything. Optuna's GridSampler would expect to have chosen them: its
        # after_trial raises KeyError('grid_id') on a one-point grid. RandomSampler's after_trial does nothing.
        return optuna.samplers.RandomSampler(seed=self.config.seeds[0])

    def prepare(self, storage: BaseStorage, study: optuna.Study, arm: Arm, *, grace_period: float,
                retry_errors: bool) -> int:
        return reconcile(storage, study, self.config, arm, grace_period=grace_period, retry_errors=retry_errors)

    def work(self, storage: BaseStorage, storage_url: str, studies: dict[str, optuna.Study],
             options: WorkerOptions) -> int:
        config = self.config
        # SQLite has no row locks: two processes could both flip the same WAITING trial to RUNNING, so there the
        # claim runs under the storage's file lock. Journal (one ordered log) and PostgreSQL (FOR UPDATE) need none.
        sqlite = storage_kind(storage_url) == "sqlite"
        ran, last_reconcile = 0, 0.0
        while True:
            claimed = None
            with setup_lock(storage_url, config.name) if sqlite else contextlib.nullcontext():
                for arm in config.arms:
                    trial = _claim(storage, studies[arm.name])
                    if trial is not None:
                        claimed = (arm, trial)
                        break
            if claimed is not None:
                arm, trial = claimed
                self._run(storage, studies[arm.name], arm, trial, options, lambda t: (
                    t.suggest_categorical("lr", list(config.lr)),
                    t.suggest_categorical("weight_decay", list(arm.weight_decay)),
                    [t.suggest_categorical("seed", list(config.seeds))]))
                ran += 1
                continue
            if all(self.status(studies[a.name], a).finished for a in config.arms):
                return ran
            # Others are still training: wait, and every so often re-queue points whose worker is gone.
            if time.monotonic() - last_reconcile > options.poll_interval:
                with setup_lock(storage_url, config.name):
                    for arm in config.arms:
                        reconcile(storage, studies[arm.name], config, arm, grace_period=options.grace_period,
                                  retry_errors=False)
                last_reconcile = time.monotonic()
            time.sleep(options.poll_interval / 4)

    def status(self, study: optuna.Study, arm: Arm) -> ArmStatus:
        """Count an arm's grid points by state (a point counts once: complete beats running beats queued)."""
        keys = grid_keys(self.config, arm)
        by_key: dict[Key, set[TrialState]] = {k: set() for k in keys}
        diverged = set()
        for t in study.get_trials(deepcopy=False):
            k = trial_key(t)
            if k in by_key:
                by_key[k].add(t.state)
                if t.state == TrialState.COMPLETE and t.user_attrs.get("diverged"):
                    diverged.add(k)
        s = ArmStatus(total=len(keys), diverged=len(diverged))
        for states in by_key.values():
            if TrialState.COMPLETE in states:
                s.complete += 1
            elif TrialState.RUNNING in states:
                s.running += 1
            elif TrialState.WAITING in states:
                s.waiting += 1
            elif TrialState.FAIL in states:
                s.failed += 1
            else:
                s.missing += 1
        return s

    def records(self, arm: Arm, trial: FrozenTrial) -> list[RunRecord]:
        a, p = trial.user_attrs, trial.params
        return [RunRecord(arm=arm.name, lr=float(p["lr"]), weight_decay=float(p["weight_decay"]),
                          seed=int(p["seed"]), value=float(trial.value), diverged=bool(a.get("diverged", False)),
                          metrics=a.get("metrics", {}), history=a.get("history", []),
                          seconds=float(a.get("seconds", 0.0)), monitor=a.get("monitor"),
                          monitor_log=a.get("monitor_log"))]

    def point(self, trial: FrozenTrial) -> Hashable:
        return trial_key(trial) or ("trial", trial.number)


# --- TPE ----------------------------------------------------------------------------------------------------

class TpeSearch(SearchStrategy):
    """Optuna's TPE over a box in raw, decoupled or timescale coordinates; ``trials`` per arm, every seed each."""

    grid = False

    def _seed_dir(self, workdir: str | None, seed: int) -> str | None:
        # A TPE trial runs every seed of one (lr, λ): each seed's command gets a folder of its own.
        return os.path.join(workdir, f"seed{seed}") if workdir else None

    def sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self.config.seeds[0],
                                          n_startup_trials=min(10, self.config.search.trials))

    def weight_decay(self, arm: Arm, lr: float, second: float) -> float:
        """λ from ``λ`` itself, the per-step shrink ``s`` at the peak lr, or ``τ_epoch``.

        ``s`` is ``lr·λ`` in torch units (:func:`weightdecay.rules.convert` writes it in the arm's convention);
        ``τ_epoch`` gives ``λ = b / (lr·B·τ_epoch)`` (:func:`weightdecay.rules.weight_decay_for_timescale`;
        docs/math.md, "EMA timescale").
        """
        from weightdecay.rules import convert, weight_decay_for_timescale

        coordinates = self.config.search.coordinates
        if coordinates == "raw":
            return second
        if coordinates == "timescale":
            return weight_decay_for_timescale(lr=lr, tau_epoch=second, batch_size=self.batch_size(),
                                              dataset_size=self.config.search.train_size, convention=arm.decay)
        return convert(second / lr, "torch", arm.decay, lr=lr).weight_decay

    def batch_size(self) -> int:
        if self.config.batch_size:
            return self.config.batch_size
        from weightdecay.tasks import get_task

        return get_task(self.config.task).default_batch_size

    def _suggest(self, arm: Arm, trial: optuna.Trial) -> tuple[float, float, list[int]]:
        search = self.config.search
        lr = trial.suggest_float("lr", *search.lr, log=True)
        wd = self.weight_decay(arm, lr, trial.suggest_float(SECOND_PARAM[search.coordinates], *search.second,
                                                            log=True))
        trial.set_user_attr("weight_decay", wd)
        return lr, wd, list(self.config.seeds)

    def _summary(self, trial: optuna.Trial, runs: list[dict[str, Any]]) -> dict[str, Any]:
        trial.set_user_attr("seeds", runs)
        values = [r["value"] for r in runs]
        return {"value": sum(values) / len(values), "diverged": any(r["diverged"] for r in runs),
                "seconds": sum(r["seconds"] for r in runs), "metrics": runs[0]["metrics"],
                "history": runs[0]["history"]}

    def _started(self, study: optuna.Study) -> int:
        # Spent budget: finished, running, or failed with an error; interrupted or stale trials are asked again.
        return sum(t.state in (TrialState.COMPLETE, TrialState.RUNNING)
                   or (t.state == TrialState.FAIL and "error" in t.user_attrs)
                   for t in study.get_trials(deepcopy=False))

    def work(self, storage: BaseStorage, storage_url: str, studies: dict[str, optuna.Study],
             options: WorkerOptions) -> int:
        ran = 0
        for arm in self.config.arms:
            study = studies[arm.name]
            while True:
                # Ask inside the lock, so that workers on all machines together never overshoot the budget.
                with setup_lock(storage_url, study.study_name):
                    fail_stale_trials(storage, study, options.grace_period)
                    trial = study.ask() if self._started(study) < self.config.search.trials else None
                if trial is None:
                    break
                self._run(storage, study, arm, trial, options, lambda t: self._suggest(arm, t))
                ran += 1
        return ran

    def status(self, study: optuna.Study, arm: Arm) -> ArmStatus:
        trials = study.get_trials(deepcopy=False)
        s = ArmStatus(total=self.config.search.trials)
        s.complete = sum(t.state == TrialState.COMPLETE for t in trials)
        s.diverged = sum(t.state == TrialState.COMPLETE and bool(t.user_attrs.get("diverged")) for t in trials)
        s.running = sum(t.state == TrialState.RUNNING for t in trials)
        s.missing = max(0, s.total - s.complete - s.running)
        return s

    def records(self, arm: Arm, trial: FrozenTrial) -> list[RunRecord]:
        wd = float(trial.user_attrs["weight_decay"])
        return [RunRecord(arm=arm.name, lr=float(trial.params["lr"]), weight_decay=wd, seed=int(r["seed"]),
                          value=float(r["value"]), diverged=bool(r["diverged"]), metrics=r["metrics"],
                          history=r["history"], seconds=float(r["seconds"]), monitor=r.get("monitor"),
                          monitor_log=r.get("monitor_log"))
                for r in trial.user_attrs["seeds"]]

    def point(self, trial: FrozenTrial) -> Hashable:
        return ("trial", trial.number)  # a TPE trial is a point of its own
