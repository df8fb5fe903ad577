"""TPE: Optuna's Tree-structured Parzen Estimator samples ``(lr, second)`` per trial, ``trials`` per arm.

The second coordinate is raw ``λ``, the decoupled per-step shrink ``s`` or the timescale ``τ_epoch``
(``[search] coordinates``); one trial trains every seed at its point and reports their mean. The per-arm budget
is asked under the setup lock, so workers on all machines together never overshoot it. Its config is the
``[search]`` table: ``sampler = "tpe"``, ``trials``, ``coordinates``, ``lr`` and the second coordinate's range
(``weight_decay``, ``shrink`` or ``tau_epoch``), ``train_size`` for τ_epoch.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from weightdecay.decay import get_mode
from weightdecay.errors import ConfigError
from weightdecay.rules import convert, weight_decay_for_timescale
from weightdecay.sweeps._toml import log_range, positive_int, typed
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.lease import fail_stale_trials
from weightdecay.sweeps.spec import SearchSpace
from weightdecay.sweeps.storages import setup_lock
from weightdecay.sweeps.strategies.base import ArmStatus, RunRecord, SearchStrategy, WorkerOptions
from weightdecay.tasks import get_task

__all__ = ["TpeSearch", "SECOND_PARAM"]

# The name of a TPE trial's second parameter in each coordinate system (also the config key of its range).
SECOND_PARAM: dict[str, str] = {"raw": "weight_decay", "decoupled": "shrink", "timescale": "tau_epoch"}


class TpeSearch(SearchStrategy):
    """Optuna's TPE over a box in raw, decoupled or timescale coordinates; ``trials`` per arm, every seed each."""

    name = "tpe"
    keys = frozenset({"trials", "coordinates", "lr", "weight_decay", "shrink", "tau_epoch", "train_size"})
    grid = False

    @classmethod
    def parse(cls, table: dict[str, Any], lr: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
        """TPE's budget and box: ``trials``, ``coordinates`` and the ranges of lr and of the second coordinate."""
        trials = positive_int(table, "trials", None, "search.")
        if trials is None:
            raise ConfigError("search.trials: missing; TPE needs a trial budget per arm, e.g. trials = 30")
        coordinates = typed(table, "coordinates", str, "raw", "search.")
        if coordinates not in SECOND_PARAM:
            raise ConfigError(f"search.coordinates: {coordinates!r}; choose one of {', '.join(SECOND_PARAM)}")
        lr_range = log_range(table["lr"], "search.lr") if "lr" in table else ((min(lr), max(lr)) if lr else None)
        if lr_range is None:
            raise ConfigError("search.lr: missing; give lr = { min = 1e-4, max = 1e-2 }")
        key = SECOND_PARAM[coordinates]
        for other in set(SECOND_PARAM.values()) - {key}:
            if other in table:
                raise ConfigError(f"search.{other}: not used with coordinates = {coordinates!r}; give search.{key}")
        if key in table:
            second = log_range(table[key], f"search.{key}")
        elif coordinates == "raw" and arms[0].weight_decay and min(arms[0].weight_decay) > 0:
            second = (min(arms[0].weight_decay), max(arms[0].weight_decay))
        else:
            raise ConfigError(f"search.{key}: missing; give {key} = {{ min = ..., max = ... }}")
        if coordinates != "raw":
            for a in arms:
                if not get_mode(a.decay).decoupled or get_mode(a.decay).statistic is not None:
                    raise ConfigError(f"search.coordinates: {coordinates!r} needs a decay mode whose shrink is "
                                      f"linear in λ; arm {a.name!r} uses {a.decay!r}: use coordinates = \"raw\"")
        return SearchSpace(sampler="tpe", trials=trials, coordinates=coordinates, lr=lr_range, second=second,
                           train_size=positive_int(table, "train_size", None, "search."))

    def describe(self) -> str:
        return f"TPE, {self.config.search.trials} trials per arm in {self.config.search.coordinates} coordinates"

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
