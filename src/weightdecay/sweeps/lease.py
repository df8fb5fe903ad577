"""The trial lease: which worker holds a RUNNING trial, its heartbeat, and when the lease counts as lost.

A worker that claims a trial writes its owner (``{"host", "pid"}``) and a heartbeat (a unix time it rewrites
every ``interval`` seconds while training) into the trial's system attributes. The lease is lost when the owner's
process no longer exists on this machine, or when the heartbeat is older than ``grace_period`` (a worker on
another machine, or one that hangs). A lost trial is failed with :data:`STALE_ATTR` set and queued again.
Optuna's own heartbeat (``optuna/storages/_heartbeat.py``) exists for RDB storages only; this one works the same
way on every storage, journal files included.

Every function takes the storage explicitly, and finds trial ids through the storage's public calls.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = ["OWNER_ATTR", "HEARTBEAT_ATTR", "STALE_ATTR", "HOST_ID", "pid_alive", "is_stale", "Heartbeat",
           "fail_stale_trials", "trial_id"]

log = logging.getLogger(__name__)

OWNER_ATTR = "weightdecay:owner"  # {"host": HOST_ID, "pid": worker pid}
HEARTBEAT_ATTR = "weightdecay:heartbeat"  # unix time of the worker's last sign of life
STALE_ATTR = "weightdecay:stale"  # set on trials failed because their worker was gone (always re-queued)


def _host_id() -> str:
    # Containers often share a hostname; the boot id tells machines apart.
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


HOST_ID = _host_id()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial_id(storage: BaseStorage, study: optuna.Study, trial: FrozenTrial) -> int:
    """The storage's id of a study's trial (``FrozenTrial`` carries only its number publicly)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def is_stale(trial: FrozenTrial, grace_period: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone: dead on this machine, or silent for ``grace_period`` seconds."""
    owner = trial.system_attrs.get(OWNER_ATTR)
    if owner and owner.get("host") == HOST_ID and owner.get("pid") != os.getpid() and not pid_alive(owner["pid"]):
        return True
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    last = float(trial.system_attrs.get(HEARTBEAT_ATTR, start))
    return (now if now is not None else time.time()) - last > grace_period


def fail_stale_trials(storage: BaseStorage, study: optuna.Study, grace_period: float) -> int:
    """Mark RUNNING trials whose worker is gone as FAIL with :data:`STALE_ATTR` (they get re-queued); how many."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(t, grace_period):
            tid = trial_id(storage, study, t)
            try:
                storage.set_trial_system_attr(tid, STALE_ATTR, True)
                if storage.set_trial_state_values(tid, TrialState.FAIL):
                    n += 1
                    log.warning("trial %d of %s: worker gone, re-queued", t.number, study.study_name)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # it finished meanwhile
    return n


class Heartbeat:
    """Holds a trial's lease while the ``with`` block runs: the owner once, then a heartbeat every ``interval``."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: float):
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_ATTR, time.time())
            except Exception:  # a finished trial or a network blip: the next beat or the grace period decides
                log.debug("heartbeat failed", exc_info=True)

    def __enter__(self) -> "Heartbeat":
        self._storage.set_trial_system_attr(self._trial_id, OWNER_ATTR, {"host": HOST_ID, "pid": os.getpid()})
        self._storage.set_trial_system_attr(self._trial_id, HEARTBEAT_ATTR, time.time())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
