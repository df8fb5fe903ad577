"""One Optuna study per arm, and the bookkeeping that makes a grid sweep resumable and duplicate-free.

A grid sweep *queues* every grid point ``(lr, λ, seed)`` as a waiting trial; workers claim waiting trials one
at a time (the storage flips WAITING → RUNNING atomically, so a trial goes to exactly one worker, on any
machine). :func:`reconcile` compares the study with the grid under the storage's setup lock and queues what
is missing: never run, failed, or claimed by a worker that is gone. A worker is gone when its process no
longer exists on this machine, or when its heartbeat (a timestamp it rewrites every ``heartbeat_interval``
seconds while training) is older than ``grace_period``. Optuna's own heartbeat only exists for RDB storages,
so the sweep keeps its own in the trial's system attributes, the same way on every storage.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from weightdecay.errors import ConfigError
from weightdecay.sweeps.config import Arm, SweepConfig
from weightdecay.sweeps.storage import pid_alive

__all__ = ["study_name", "open_arm_study", "grid_keys", "trial_key", "reconcile", "GridStatus", "grid_status",
           "HOST_ID", "OWNER_ATTR", "HEARTBEAT_ATTR"]

log = logging.getLogger(__name__)

OWNER_ATTR = "weightdecay:owner"  # {"host": HOST_ID, "pid": worker pid}
HEARTBEAT_ATTR = "weightdecay:heartbeat"  # unix time of the worker's last sign of life
STALE_ATTR = "weightdecay:stale"  # set on trials failed because their worker was gone (always re-queued)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _host_id() -> str:
    # Containers often share a hostname; the boot id tells machines apart.
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


HOST_ID = _host_id()

Key = tuple[float, float, int]  # (lr, weight_decay, seed)


def study_name(config: SweepConfig, arm: Arm) -> str:
    """The Optuna study holding one arm's trials: ``SWEEP/ARM``."""
    return f"{config.name}/{arm.name}"


def open_arm_study(storage: optuna.storages.BaseStorage, config: SweepConfig, arm: Arm) -> optuna.Study:
    """Create or load an arm's study; refuse one that a different config created (resuming would mix runs)."""
    if config.search.sampler == "grid":
        # Every grid trial is queued with fixed params (the grid itself lives in the config, kept with the study),
        # so the sampler never chooses anything. Optuna's GridSampler would expect to have chosen them: its
        # after_trial raises KeyError('grid_id') on a one-point grid. RandomSampler's after_trial does nothing.
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=config.seeds[0])
    else:
        sampler = optuna.samplers.TPESampler(seed=config.seeds[0], n_startup_trials=min(10, config.search.trials))
    direction = "maximize" if config.direction == "maximize" else "minimize"
    study = optuna.create_study(storage=storage, study_name=study_name(config, arm), direction=direction,
                                sampler=sampler, load_if_exists=True)
    attrs = study.user_attrs
    fingerprint = config.fingerprint(arm)
    if "weightdecay:fingerprint" not in attrs:
        study.set_user_attr("weightdecay:sweep", config.name)
        study.set_user_attr("weightdecay:arm", arm.name)
        study.set_user_attr("weightdecay:config", config.to_dict())
        study.set_user_attr("weightdecay:source", config.source)
        study.set_user_attr("weightdecay:fingerprint", fingerprint)
    elif attrs["weightdecay:fingerprint"] == fingerprint:
        # Same trials; analysis-only settings (basin_tolerance, comments) may have changed: keep the latest.
        if attrs.get("weightdecay:config") != json.loads(json.dumps(config.to_dict())):
            study.set_user_attr("weightdecay:config", config.to_dict())
        if attrs.get("weightdecay:source") != config.source:
            study.set_user_attr("weightdecay:source", config.source)
    else:
        raise ConfigError(f"name: study {study.study_name!r} already exists in this storage with a different "
                          f"config (task, grid, seeds, epochs or arm changed); give the sweep a new name, or a new "
                          f"--out / --storage, to start afresh")
    return study


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


def is_stale(trial: FrozenTrial, grace_period: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone: dead on this machine, or silent for ``grace_period`` seconds."""
    owner = trial.system_attrs.get(OWNER_ATTR)
    if owner and owner.get("host") == HOST_ID and owner.get("pid") != os.getpid() and not pid_alive(owner["pid"]):
        return True
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    last = float(trial.system_attrs.get(HEARTBEAT_ATTR, start))
    return (now if now is not None else time.time()) - last > grace_period


def fail_stale_trials(study: optuna.Study, grace_period: float) -> int:
    """Mark RUNNING trials whose worker is gone as FAIL (they get re-queued); returns how many."""
    storage = study._storage  # noqa: SLF001 -- Study exposes no public handle to its storage
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(t, grace_period):
            try:
                storage.set_trial_system_attr(t._trial_id, STALE_ATTR, True)
                if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    n += 1
                    log.warning("trial %d of %s: worker gone, re-queued", t.number, study.study_name)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # it finished meanwhile
    return n


@dataclass
class GridStatus:
    """Where an arm's grid stands: how many points are complete, running, queued, failed or not queued."""

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


def grid_status(study: optuna.Study, config: SweepConfig, arm: Arm) -> GridStatus:
    """Count an arm's grid points by state (a point counts once: complete beats running beats queued)."""
    keys = grid_keys(config, arm)
    by_key: dict[Key, set[TrialState]] = {k: set() for k in keys}
    diverged = set()
    for t in study.get_trials(deepcopy=False):
        k = trial_key(t)
        if k in by_key:
            by_key[k].add(t.state)
            if t.state == TrialState.COMPLETE and t.user_attrs.get("diverged"):
                diverged.add(k)
    s = GridStatus(total=len(keys), diverged=len(diverged))
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


def reconcile(study: optuna.Study, config: SweepConfig, arm: Arm, *, grace_period: float,
              retry_errors: bool) -> int:
    """Queue every grid point that is not complete, running or queued; returns how many were queued.

    Call it under :func:`weightdecay.sweeps.storage.setup_lock`. Points whose worker is gone are always
    queued again; points that failed with an error only when ``retry_errors`` (a new run of the command),
    so one broken point does not loop forever within a run.
    """
    fail_stale_trials(study, grace_period)
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
    for lr, wd, seed in grid_keys(config, arm):
        k = (lr, wd, seed)
        if k in active or (k in errored and not retry_errors):
            continue
        study.enqueue_trial({"lr": lr, "weight_decay": wd, "seed": seed})
        queued += 1
    if queued:
        log.info("%s: queued %d grid points", study.study_name, queued)
    return queued
