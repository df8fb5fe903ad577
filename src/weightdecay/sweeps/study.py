"""One Optuna study per arm: its name, and creating or loading it with the config it was made for.

A study keeps the config (``weightdecay:config``, ``weightdecay:source``) and a fingerprint of everything that
defines its trials, so a resume with a changed grid, task or arm is refused instead of mixing two runs. The study
is a plain Optuna study on a plain Optuna storage: ``optuna-dashboard STORAGE`` shows it while it runs.
"""

from __future__ import annotations

import json

import optuna
from optuna.storages import BaseStorage

from weightdecay.errors import ConfigError
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.spec import SweepConfig
from weightdecay.sweeps.strategies import strategy_for

__all__ = ["study_name", "open_arm_study"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_name(config: SweepConfig, arm: Arm) -> str:
    """The Optuna study holding one arm's trials: ``SWEEP/ARM``."""
    return f"{config.name}/{arm.name}"


def open_arm_study(storage: BaseStorage, config: SweepConfig, arm: Arm) -> optuna.Study:
    """Create or load an arm's study; refuse one that a different config created (resuming would mix runs)."""
    direction = "maximize" if config.direction == "maximize" else "minimize"
    study = optuna.create_study(storage=storage, study_name=study_name(config, arm), direction=direction,
                                sampler=strategy_for(config).sampler(), load_if_exists=True)
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
