"""What every search strategy does at each stage of a sweep, and the records it reads back.

A strategy is one module (:mod:`.grid`, :mod:`.tpe`) and one row of
:data:`weightdecay.sweeps.strategies.STRATEGIES`. It owns, in that module: the keys of the ``[search]`` table
it reads (:attr:`SearchStrategy.keys`, checked by :meth:`SearchStrategy.parse`), its Optuna sampler or queue
(:meth:`~SearchStrategy.sampler`, :meth:`~SearchStrategy.prepare`), the worker loop
(:meth:`~SearchStrategy.work`, which takes the next trial and runs it), :meth:`~SearchStrategy.status`, the
records a finished trial holds (:meth:`~SearchStrategy.records`, one :class:`RunRecord` per arm, lr, λ and seed),
the conversion from its coordinates to λ (:meth:`~SearchStrategy.weight_decay`), and what the report says
about it (:meth:`~SearchStrategy.describe`, :attr:`~SearchStrategy.grid`: whether the trials lie on a grid,
which the slope of λ*(lr) and the basin need).

Every function takes the storage explicitly.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.lease import Heartbeat, trial_id
from weightdecay.sweeps.outcome import TrialFailed
from weightdecay.sweeps.run_dir import trial_dir
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.workloads import train_once, workload_of

__all__ = ["RunRecord", "ArmStatus", "WorkerOptions", "SearchStrategy", "Suggest"]

log = logging.getLogger(__name__)

# Suggests a trial's point: (lr, λ, the seeds to train there).
Suggest = Callable[[optuna.Trial], tuple[float, float, list[int]]]


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
    """What a search does at each stage of a sweep; each strategy's module fills it in."""

    #: The ``sampler = "..."`` that selects it.
    name: ClassVar[str]
    #: The keys of ``[search]`` it reads (besides ``sampler``).
    keys: ClassVar[frozenset[str]] = frozenset()
    #: Whether the trials lie on an (lr, λ) grid: the slope of λ*(lr) and the basin need one.
    grid: ClassVar[bool] = True

    def __init__(self, config: SweepConfig):
        self.config = config

    @classmethod
    def parse(cls, table: dict[str, Any], lr: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
        """Check the ``[search]`` table (its keys are among :attr:`keys`) against the grid and arms."""
        raise NotImplementedError

    def describe(self) -> str:
        """The search in a few words, for the report's header (e.g. ``lr: 5 values 0.0001–0.01``)."""
        raise NotImplementedError

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
    if not (workload_of(config).keeps_folder(config) and options.run_dir):
        return None
    workdir = str(trial_dir(options.run_dir, arm.name, trial.number))
    trial.set_user_attr("workdir", workdir)  # on the machine of the trial's owner (its system attributes)
    return workdir


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
