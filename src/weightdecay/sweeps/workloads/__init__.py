"""What a sweep's trials run, one module each, read through one table: :data:`WORKLOADS`.

:func:`train_once` is every run a sweep makes, grid or TPE: the task, the command or the function the config
names, trained once at one ``(lr, λ, seed)``. All three end in one
:class:`~weightdecay.sweeps.outcome.TrialOutcome`, and its record is what a trial stores: the value (``+inf``
for a minimized metric that came out NaN/inf), every final metric, the per-epoch history, ``diverged`` and the
wall time. A diverged run is a result, not a failure; a run without a result raises
:class:`~weightdecay.sweeps.outcome.TrialFailed`, and a Python exception propagates: the trial fails with its
text.
"""

from __future__ import annotations

from typing import Any

from weightdecay.errors import ConfigError
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.spec import SweepConfig
from weightdecay.sweeps.workloads.base import Workload
from weightdecay.sweeps.workloads.command import CommandWorkload
from weightdecay.sweeps.workloads.function import FunctionWorkload
from weightdecay.sweeps.workloads.task import TaskWorkload

__all__ = ["WORKLOADS", "Workload", "workload_named", "workload_of", "train_once"]

# The config key that names what a trial runs → the workload (the key's order is the order errors name them).
WORKLOADS: dict[str, Workload] = {w.key: w for w in (TaskWorkload(), CommandWorkload(), FunctionWorkload())}


def workload_named(raw: dict[str, Any]) -> Workload:
    """The workload a raw config names: exactly one of its keys."""
    given = [key for key in WORKLOADS if key in raw]
    if not given:
        raise ConfigError("task: missing; name a task, e.g. task = \"ridge\" (see `weightdecay tasks`), or your "
                          "own script: command = \"python train.py --lr {lr} ...\" (docs/own_script.md)")
    if len(given) > 1:
        keys = list(WORKLOADS)
        raise ConfigError(f"{given[1]}: a sweep runs one of {', '.join(keys[:-1])} or {keys[-1]}; remove {given[1]} or "
                          f"{given[0]}")
    return WORKLOADS[given[0]]


def workload_of(config: SweepConfig) -> Workload:
    """The workload of a validated config."""
    return WORKLOADS["command" if config.command else "function" if config.function else "task"]


def train_once(config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
               workdir: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Run one training run and return what a trial records (value, metrics, history, diverged, seconds).

    A task, a command (in ``workdir``, with ``threads`` OMP threads) or a function, as the config names. A task
    watched by the config's ``monitor_every`` keeps its monitor's summary in the record (``monitor``) and, given
    a ``workdir``, writes the records there (``monitor_log``, that file's path).
    """
    return workload_of(config).run(config, arm, lr, weight_decay, seed, workdir=workdir, threads=threads)
