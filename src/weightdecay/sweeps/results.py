"""Read a sweep's finished trials back from its storage as plain records (what analysis and reports use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from weightdecay.errors import UserError
from weightdecay.sweeps.config import SweepConfig
from weightdecay.sweeps.storage import open_storage, resolve_storage
from weightdecay.sweeps.study import study_name, trial_key

__all__ = ["RunRecord", "SweepResults", "load_results", "list_sweeps"]


@dataclass
class RunRecord:
    """One finished training run: an arm, a grid point, a seed, the metric and its history."""

    arm: str
    lr: float
    weight_decay: float
    seed: int
    value: float
    diverged: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    monitor: dict[str, Any] | None = None  # the run's MonitorSummary.to_dict(), with monitor_every set


@dataclass
class SweepResults:
    """A sweep's config and every completed run (one record per seed, TPE trials expanded).

    ``failed`` counts the trials that failed with an error at a point (an ``(lr, λ, seed)`` of the grid, or a
    TPE trial) that has no completed trial, ``failed_points`` those points: a failure that a resumed run fixed
    counts in neither.
    """

    config: SweepConfig
    records: list[RunRecord]
    failed: int = 0
    failed_points: int = 0
    storage: str = ""

    def for_arm(self, arm: str) -> list[RunRecord]:
        return [r for r in self.records if r.arm == arm]


def list_sweeps(storage_url: str) -> list[str]:
    """Names of the sweeps held in a storage."""
    storage = open_storage(storage_url)
    names = set()
    for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False):
        if "weightdecay:sweep" in s.user_attrs:
            names.add(s.user_attrs["weightdecay:sweep"])
    return sorted(names)


def load_results(source: str | Path, sweep: str | None = None) -> SweepResults:
    """Load a sweep from its output folder (``--out``) or from a storage (then ``sweep`` names it if several).

    Args:
        source: a folder holding ``sweep.json``, or a storage (``journal:PATH``, ``*.journal``, a DB URL).
        sweep: the sweep's name, needed when a storage holds several.

    >>> results = load_results("runs/demo")  # doctest: +SKIP
    >>> len(results.records)  # doctest: +SKIP
    96
    """
    if Path(str(source)).is_dir():
        from weightdecay.sweeps.runner import read_run_dir

        meta = read_run_dir(source)
        url, sweep = meta["storage"], sweep or meta["name"]
    else:
        if "://" not in str(source) and not str(source).startswith("journal:") and not Path(str(source)).exists():
            raise UserError(f"{source}: no such folder or journal file; give the sweep's --out folder or its "
                            f"storage (a .journal file or a database URL)")
        url = resolve_storage(str(source), ".")
        if url.startswith("journal:") and not Path(url[len("journal:"):]).exists():
            raise UserError(f"{source}: no such folder or journal file; give the sweep's --out folder")
    if sweep is None:
        names = list_sweeps(url)
        if len(names) != 1:
            raise UserError(f"{source}: holds {len(names)} sweeps ({', '.join(names) or 'none'}); "
                            f"name one with --study NAME")
        sweep = names[0]
    storage = open_storage(url)
    summaries = {s.study_name: s for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)}
    config = None
    for s in summaries.values():
        if s.user_attrs.get("weightdecay:sweep") == sweep:
            config = SweepConfig.from_dict(s.user_attrs["weightdecay:config"])
            config = _with_source(config, s.user_attrs.get("weightdecay:source", ""))
            break
    if config is None:
        raise UserError(f"{source}: no sweep named {sweep!r}; it holds {', '.join(list_sweeps(url)) or 'none'}")
    records: list[RunRecord] = []
    failed, failed_points = 0, 0
    for arm in config.arms:
        name = study_name(config, arm)
        if name not in summaries:
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        completed, errored = set(), []
        for t in study.get_trials(deepcopy=False):
            point = trial_key(t) or ("trial", t.number)  # a TPE trial is a point of its own
            if t.state == TrialState.FAIL and "error" in t.user_attrs:
                errored.append(point)
            if t.state != TrialState.COMPLETE:
                continue
            completed.add(point)
            records.extend(_records(arm.name, t))
        still_failed = [p for p in errored if p not in completed]
        failed += len(still_failed)
        failed_points += len(set(still_failed))
    return SweepResults(config=config, records=records, failed=failed, failed_points=failed_points, storage=url)


def _with_source(config: SweepConfig, source: str) -> SweepConfig:
    from dataclasses import replace

    return replace(config, source=source)


def _records(arm: str, t: optuna.trial.FrozenTrial) -> list[RunRecord]:
    a = t.user_attrs
    if "seeds" in a:  # a TPE trial: every seed of one (lr, λ)
        return [RunRecord(arm=arm, lr=float(t.params["lr"]), weight_decay=float(a["weight_decay"]),
                          seed=int(r["seed"]), value=float(r["value"]), diverged=bool(r["diverged"]),
                          metrics=r["metrics"], history=r["history"], seconds=float(r["seconds"]),
                          monitor=r.get("monitor"))
                for r in a["seeds"]]
    return [RunRecord(arm=arm, lr=float(t.params["lr"]), weight_decay=float(t.params["weight_decay"]),
                      seed=int(t.params["seed"]), value=float(t.value), diverged=bool(a.get("diverged", False)),
                      metrics=a.get("metrics", {}), history=a.get("history", []),
                      seconds=float(a.get("seconds", 0.0)), monitor=a.get("monitor"))]
