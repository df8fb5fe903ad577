"""Read a sweep's finished trials back from its storage as plain records (what analysis and reports use)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.trial import TrialState

from weightdecay.errors import UserError
from weightdecay.sweeps.run_dir import read_run_dir
from weightdecay.sweeps.spec import SweepConfig
from weightdecay.sweeps.storages import open_storage, resolve_storage
from weightdecay.sweeps.strategies import RunRecord, strategy_for
from weightdecay.sweeps.study import study_name

__all__ = ["RunRecord", "SweepResults", "load_results", "list_sweeps"]


@dataclass
class SweepResults:
    """A sweep's config and every completed run (one record per seed, TPE trials expanded).

    ``failed`` counts the trials that failed with an error at a point (an ``(lr, λ, seed)`` of the grid, or a
    TPE trial) that has no completed trial, ``failed_points`` those points: a failure that a resumed run fixed
    counts in neither. ``run_dir`` is the output folder the sweep was loaded from (None from a storage), where
    the runs' monitor logs (``RunRecord.monitor_log``) lie.
    """

    config: SweepConfig
    records: list[RunRecord]
    failed: int = 0
    failed_points: int = 0
    storage: str = ""
    run_dir: Path | None = None

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
    run_dir = None
    if Path(str(source)).is_dir():
        run_dir = Path(source)
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
            config = replace(SweepConfig.from_dict(s.user_attrs["weightdecay:config"]),
                             source=s.user_attrs.get("weightdecay:source", ""))
            break
    if config is None:
        raise UserError(f"{source}: no sweep named {sweep!r}; it holds {', '.join(list_sweeps(url)) or 'none'}")
    strategy = strategy_for(config)
    records: list[RunRecord] = []
    failed, failed_points = 0, 0
    for arm in config.arms:
        name = study_name(config, arm)
        if name not in summaries:
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        completed, errored = set(), []
        for t in study.get_trials(deepcopy=False):
            point = strategy.point(t)
            if t.state == TrialState.FAIL and "error" in t.user_attrs:
                errored.append(point)
            if t.state != TrialState.COMPLETE:
                continue
            completed.add(point)
            records.extend(strategy.records(arm, t))
        still_failed = [p for p in errored if p not in completed]
        failed += len(still_failed)
        failed_points += len(set(still_failed))
    return SweepResults(config=config, records=records, failed=failed, failed_points=failed_points, storage=url,
                        run_dir=run_dir)

