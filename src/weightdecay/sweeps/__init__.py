"""lr × weight-decay sweeps on Optuna: a TOML config, resumable parallel workers, one study per arm.

The modules, one idea each, lowest first: ``_toml`` (reading the file, the checks every table uses), ``arms``
(an ``[[arms]]`` table), ``spec`` (the validated sweep, as data), ``workloads/`` (what a trial runs: a task, a
command, a function; one module each), ``strategies/`` (how trials are chosen: grid, TPE; one module each),
``config`` (the file, checked: each table handed to its owner), ``lease`` (which worker holds a trial, its
heartbeat), ``storages/`` (journal / SQLite / PostgreSQL and their locks), ``study`` (one Optuna study per arm),
``worker`` (a worker process), ``progress``, ``run_dir`` (the output folder), ``api`` (``run_sweep``,
``weightdecay.sweep``), ``results`` (the records read back).

>>> from weightdecay.sweeps import load_config, run_sweep, load_results  # doctest: +SKIP
>>> summary = run_sweep(load_config("experiments/demo.toml"), jobs=2)  # doctest: +SKIP
>>> results = load_results(summary.out_dir)  # doctest: +SKIP
"""

from weightdecay.sweeps._toml import log_grid
from weightdecay.sweeps.api import SweepSummary, run_sweep, sweep
from weightdecay.sweeps.arms import Arm, train_config
from weightdecay.sweeps.config import check_environment, check_schema, load_config, parse_config
from weightdecay.sweeps.results import SweepResults, list_sweeps, load_results
from weightdecay.sweeps.run_dir import read_run_dir, trial_dir
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.storages import open_storage, resolve_storage
from weightdecay.sweeps.strategies import STRATEGIES, ArmStatus, RunRecord, SearchStrategy, strategy_for

__all__ = ["Arm", "SearchSpace", "SweepConfig", "check_environment", "check_schema", "load_config", "log_grid",
           "parse_config", "train_config", "RunRecord", "SweepResults", "list_sweeps", "load_results",
           "SweepSummary", "run_sweep", "sweep", "ArmStatus", "SearchStrategy", "STRATEGIES", "strategy_for",
           "open_storage", "resolve_storage", "read_run_dir", "trial_dir"]
