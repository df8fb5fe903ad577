"""What a trial runs, behind one small protocol: a registered task, your command, or your Python function.

A :class:`Workload` is named by the config key that selects it (``task``, ``command``, ``function``). It checks
the keys it owns before any trial (:meth:`~Workload.check`: the file alone; :meth:`~Workload.check_environment`:
this machine), says whether a trial needs a folder of its own, and runs one trial at ``(lr, λ, seed)``, ending in
the record a trial stores (:meth:`weightdecay.sweeps.outcome.TrialOutcome.record`). Adding a workload is one
module and one row of :data:`weightdecay.sweeps.workloads.WORKLOADS`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from weightdecay.errors import ConfigError
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.spec import SearchSpace, SweepConfig

__all__ = ["Workload", "check_own_code", "check_train_size"]


class Workload(Protocol):
    #: The config key that names it (and holds what it runs).
    key: str

    def check(self, raw: dict[str, Any], arms: list[Arm], search: SearchSpace, base_dir: Path) -> dict[str, Any]:
        """Check the keys this workload owns; returns the :class:`SweepConfig` fields they set."""

    def check_environment(self, config: SweepConfig) -> SweepConfig:
        """Check what the config needs from this machine; returns the config with the workload's defaults."""

    def keeps_folder(self, config: SweepConfig) -> bool:
        """Whether each trial runs in (or keeps files in) a folder of its own, ``RUN_DIR/trials/ARM/NNNN``."""

    def run(self, config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
            workdir: str | None, threads: int | None) -> dict[str, Any]:
        """Train once; the trial's record, or :class:`~weightdecay.sweeps.outcome.TrialFailed` without a result."""


def check_own_code(raw: dict[str, Any], what: str, search: SearchSpace) -> None:
    """The checks of a sweep whose own code trains (a command, a function): the sweep only passes values on."""
    if "monitor_every" in raw:
        raise ConfigError(f"monitor_every: only a task sweep's runs are watched for you; {what} can attach "
                          "weightdecay.Monitor(optimizer, model, every=N) itself (docs/monitor.md)")
    if "metric" not in raw:
        raise ConfigError(f"metric: missing; name the metric {what} reports, e.g. metric = \"val_loss\"")
    if "schedule" in raw:
        raise ConfigError(f"schedule: {what} sets its own learning-rate schedule; pass a choice to it through "
                          f"[extra] instead")
    for i, a in enumerate(raw["arms"]):
        for key in ("momentum", "betas"):
            if key in a:
                raise ConfigError(f"arms[{i}].{key}: {what} builds its own optimizer; pass {key} through the "
                                  f"arm's extra instead")
    if search.coordinates == "timescale" and raw.get("batch_size") is None:
        raise ConfigError("batch_size: τ_epoch coordinates need the batch size b (s = b / (B·τ_epoch)); set "
                          "batch_size = N")


def check_train_size(config: SweepConfig, default: int | None = None) -> SweepConfig:
    """τ_epoch coordinates need the training-set size B: the config's, else ``default`` (a task's own)."""
    search = config.search
    if search.sampler == "tpe" and search.train_size is None and default is not None:
        config = replace(config, search=replace(search, train_size=default))
    if config.search.coordinates == "timescale" and not config.search.train_size:
        raise ConfigError("search.train_size: missing; τ_epoch needs the training-set size B, e.g. "
                          "train_size = 1437")
    return config
