"""lr × weight-decay sweeps on Optuna: a TOML config, resumable parallel workers, one study per arm.

The modules, one idea each: ``config`` (the file, checked), ``search`` (grid or TPE: the one place that knows),
``trial`` (run one training run: the seam), ``lease`` (which worker holds a trial, its heartbeat),
``storage`` (journal / SQLite / PostgreSQL and the setup lock), ``study`` (one Optuna study per arm),
``worker`` (a worker process), ``runner`` (the sweep command), ``results`` (the records read back).

>>> from weightdecay.sweeps import load_config, run_sweep, load_results  # doctest: +SKIP
>>> summary = run_sweep(load_config("experiments/demo.toml"), jobs=2)  # doctest: +SKIP
>>> results = load_results(summary.out_dir)  # doctest: +SKIP
"""

from weightdecay.sweeps.config import (Arm, SearchSpace, SweepConfig, check_environment, check_schema, load_config,
                                       log_grid, parse_config, train_config)
from weightdecay.sweeps.results import SweepResults, list_sweeps, load_results
from weightdecay.sweeps.runner import SweepSummary, run_sweep
from weightdecay.sweeps.search import ArmStatus, RunRecord, SearchStrategy, strategy_for
from weightdecay.sweeps.storage import open_storage, resolve_storage

__all__ = ["Arm", "SearchSpace", "SweepConfig", "check_environment", "check_schema", "load_config", "log_grid",
           "parse_config", "train_config", "RunRecord", "SweepResults", "list_sweeps", "load_results",
           "SweepSummary", "run_sweep", "ArmStatus", "SearchStrategy", "strategy_for", "open_storage",
           "resolve_storage"]
