"""lr × weight-decay sweeps on Optuna: a TOML config, resumable parallel workers, one study per arm.

>>> from weightdecay.sweeps import load_config, run_sweep, load_results  # doctest: +SKIP
>>> summary = run_sweep(load_config("experiments/demo.toml"), jobs=2)  # doctest: +SKIP
>>> results = load_results(summary.out_dir)  # doctest: +SKIP
"""

from weightdecay.sweeps.config import Arm, SearchSpace, SweepConfig, load_config, log_grid, parse_config
from weightdecay.sweeps.results import RunRecord, SweepResults, list_sweeps, load_results
from weightdecay.sweeps.runner import SweepSummary, run_sweep
from weightdecay.sweeps.storage import open_storage, resolve_storage

__all__ = ["Arm", "SearchSpace", "SweepConfig", "load_config", "log_grid", "parse_config", "RunRecord",
           "SweepResults", "list_sweeps", "load_results", "SweepSummary", "run_sweep", "open_storage",
           "resolve_storage"]
