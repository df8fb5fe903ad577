"""How a sweep chooses its trials: one module per search strategy, read through one table, :data:`STRATEGIES`.

``[search] sampler = "NAME"`` picks the row (``grid`` by default). Adding a strategy is a module with a
:class:`~weightdecay.sweeps.strategies.base.SearchStrategy` subclass (its config keys, sampler or queue, worker
loop, status, records and report text) and one row here.
"""

from __future__ import annotations

from typing import Any

from weightdecay.errors import ConfigError
from weightdecay.sweeps._toml import check_keys, typed
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.strategies.base import ArmStatus, RunRecord, SearchStrategy, WorkerOptions
from weightdecay.sweeps.strategies.grid import GridSearch
from weightdecay.sweeps.strategies.tpe import TpeSearch

__all__ = ["STRATEGIES", "strategy_for", "parse_search", "SearchStrategy", "RunRecord", "ArmStatus",
           "WorkerOptions"]

# sampler name → strategy (the first is the default).
STRATEGIES: dict[str, type[SearchStrategy]] = {s.name: s for s in (GridSearch, TpeSearch)}


def strategy_for(config: SweepConfig) -> SearchStrategy:
    """The search strategy of a validated config."""
    return STRATEGIES[config.search.sampler](config)


def parse_search(table: dict[str, Any], lr: tuple[float, ...], arms: tuple[Arm, ...]) -> SearchSpace:
    """The ``[search]`` table, read by the strategy its ``sampler`` names (the keys it owns, nothing else)."""
    check_keys(table, {"sampler"} | {k for s in STRATEGIES.values() for k in s.keys}, "search.")
    sampler = typed(table, "sampler", str, next(iter(STRATEGIES)), "search.")
    if sampler not in STRATEGIES:
        raise ConfigError(f"search.sampler: {sampler!r}; choose one of {', '.join(STRATEGIES)}")
    strategy = STRATEGIES[sampler]
    for key in sorted(table):
        if key != "sampler" and key not in strategy.keys:
            users = [name for name, s in STRATEGIES.items() if key in s.keys]
            raise ConfigError(f"search.{key}: only used with sampler = \"{users[0]}\"; remove it or set the sampler")
    return strategy.parse(table, lr, arms)
