"""The grid: every point ``(lr, λ, seed)`` is queued as a WAITING trial with fixed params.

Workers claim them one at a time (WAITING → RUNNING is atomic in every Optuna storage, and under the storage's
claim lock where it is not, so a point goes to exactly one worker, on any machine). :func:`reconcile` compares
the study with the grid under the storage's setup lock and queues what is missing: never run, failed, or held by
a worker whose lease is lost (:mod:`weightdecay.sweeps.lease`). Its config is ``[grid]`` (``lr``,
``weight_decay``) and each arm's ``weight_decay``; ``[search]`` holds nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from weightdecay.errors import ConfigError
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.lease import STALE_ATTR, fail_stale_trials, trial_id
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.storages import claim_lock, setup_lock
from weightdecay.sweeps.strategies.base import ArmStatus, RunRecord, SearchStrategy, WorkerOptions

__all__ = ["GridSearch", "Key", "grid_keys", "trial_key", "reconcile"]

log = logging.getLogger(__name__)

Key = tuple[float, float, int]  # (lr, weight_decay, seed)


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

    Call it under :func:`weightdecay.sweeps.storages.setup_lock`. Points whose worker is gone are always
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

    name = "grid"
    grid = True

    @classmethod
    def parse(cls, table: dict[str, Any], lr: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
        if not lr:
            raise ConfigError("grid.lr: missing; give lr = { min = 1e-4, max = 1e-2, num = 5 } or a list")
        for i, arm in enumerate(arms):
            if not arm.weight_decay:
                raise ConfigError(f"arms[{i}].weight_decay: no λ grid; set grid.weight_decay or the arm's "
                                  f"weight_decay")
        return SearchSpace()

    def describe(self) -> str:
        lr = self.config.lr
        return f"lr: {len(lr)} values {min(lr):.3g}–{max(lr):.3g}"

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
        ran, last_reconcile = 0, 0.0
        while True:
            claimed = None
            with claim_lock(storage_url, config.name):  # SQLite's claim is not exclusive by itself
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
