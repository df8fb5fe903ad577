"""A validated sweep, as data: :class:`SweepConfig` and its :class:`SearchSpace`.

:mod:`weightdecay.sweeps.config` builds one from a file; everything else (the search strategies, the
workloads, the studies, the results) reads it. It round-trips through :meth:`SweepConfig.to_dict` (what a study
keeps) and :meth:`SweepConfig.fingerprint` hashes what defines an arm's trials.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from weightdecay.errors import UserError
from weightdecay.sweeps.arms import LATER_ARM_FIELDS, Arm, train_config
from weightdecay.tasks import TrainConfig

__all__ = ["SearchSpace", "SweepConfig"]


@dataclass(frozen=True)
class SearchSpace:
    """How trials are chosen: the ``[search]`` table as its strategy (``sampler``) read it.

    The grid needs nothing here. TPE samples a box: ``decoupled`` coordinates sample ``(lr, s)`` with ``s`` the
    per-step shrink at the peak lr (``lr·λ`` for ``torch``); ``timescale`` samples ``(lr, τ_epoch)`` with
    ``s = b / (B·τ_epoch)`` (docs/math.md, "EMA timescale"). A strategy with settings of its own keeps them in
    ``options``.
    """

    sampler: str = "grid"
    trials: int = 0
    coordinates: str = "raw"
    lr: tuple[float, float] = (0.0, 0.0)
    second: tuple[float, float] = (0.0, 0.0)  # range of λ, s or τ_epoch, depending on ``coordinates``
    train_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # a strategy's own keys, as it checked them


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: task, arms, grid, seeds and the metric to minimize (or maximize)."""

    name: str
    task: str
    metric: str
    direction: str
    epochs: int | None
    batch_size: int | None
    schedule: str
    seeds: tuple[int, ...]
    lr: tuple[float, ...]
    arms: tuple[Arm, ...]
    search: SearchSpace = SearchSpace()
    imports: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    basin_tolerance: float = 0.1
    source: str = ""  # the TOML text, kept with the run
    monitor_every: int | None = None  # watch each run with weightdecay.Monitor(every=N), keep its summary
    command: str = ""  # instead of a task: a command template (docs/own_script.md)
    function: str = ""  # instead of a task: "module:name" or "file.py:name" of an objective function
    timeout: float | None = None  # seconds per trial of a command
    base_dir: str = ""  # the config file's folder, where a command's and a function's relative paths resolve
    result: dict[str, Any] = field(default_factory=dict)  # where a command's metric is ([result]; default: JSON)

    @property
    def workload(self) -> str:
        """What each trial runs, in a few words: the task's name, the command, or the function."""
        if self.command:
            return f"command `{self.command}`"
        if self.function:
            return f"function {self.function}"
        return self.task

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise UserError(f"No arm named {name!r} in sweep {self.name!r}; arms: {', '.join(a.name for a in self.arms)}")

    def train_config(self, arm: Arm, *, lr: float, weight_decay: float, seed: int = 0) -> TrainConfig:
        """The :class:`TrainConfig` of one run of ``arm`` in this sweep (see :func:`train_config`)."""
        return train_config(arm, lr=lr, weight_decay=weight_decay, seed=seed, schedule=self.schedule,
                            epochs=self.epochs, batch_size=self.batch_size, extra=self.extra)

    def grid_size(self, arm: Arm) -> int:
        return len(self.lr) * len(arm.weight_decay) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        d.pop("base_dir")  # where this machine keeps the files: not part of the sweep's identity
        # Keys that came later are left out while unset, so a sweep's dict (and fingerprint) stays what it was.
        for key in ("command", "function", "timeout", "result"):
            if d[key] in ("", None, {}):
                d.pop(key)
        if not d["search"]["options"]:
            d["search"].pop("options")
        return d

    def fingerprint(self, arm: Arm) -> str:
        """A short hash of everything that defines an arm's trials; a study keeps it to refuse a changed config."""
        d = self.to_dict()
        d.pop("arms")
        d.pop("basin_tolerance")
        d.pop("monitor_every")  # watching a run does not change it
        d.pop("timeout", None)  # a longer timeout, to retry the runs that hit it, resumes the same trials
        d["arm"] = {k: v for k, v in asdict(arm).items() if k not in LATER_ARM_FIELDS or v != LATER_ARM_FIELDS[k]}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SweepConfig":
        """Rebuild a config saved with :meth:`to_dict` (e.g. from a study's attributes)."""
        d = dict(d)
        arms = tuple(Arm(**{**a, "weight_decay": tuple(a["weight_decay"]), "betas": tuple(a["betas"])})
                     for a in d.pop("arms"))
        s = d.pop("search")
        search = SearchSpace(**{**s, "lr": tuple(s["lr"]), "second": tuple(s["second"])})
        return SweepConfig(**{**d, "seeds": tuple(d["seeds"]), "lr": tuple(d["lr"]), "imports": tuple(d["imports"]),
                              "arms": arms, "search": search})
