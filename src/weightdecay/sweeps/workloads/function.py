"""Function sweeps: each trial calls your Python function ``objective(lr, weight_decay, decay, seed, **extra)``.

>>> import weightdecay
>>> def objective(lr, weight_decay, decay, seed):
...     return train_my_model(lr, weight_decay, decay, seed)  # a number, or {"val_loss": ..., "history": [...]}
>>> weightdecay.sweep(objective, "sweep.toml", "runs/mine", jobs=2)  # doctest: +SKIP

(:func:`weightdecay.sweeps.api.sweep` is that call; this module is the workload it runs.)

The config is a sweep config without ``task`` (``metric`` names what the function returns). The function gets
the trial's ``lr``, ``weight_decay`` and ``seed``, the arm's ``decay``, every key of ``[extra]`` (and of the
arm's ``extra``) as a keyword, ``epochs`` and ``batch_size`` when the config sets them, and ``optimizer`` when
it names that parameter. It returns a number (the metric) or a dict of metrics, optionally with a ``history``
list of per-epoch dicts for the report's learning curves. An exception fails the trial (with its traceback);
a NaN/inf metric marks it diverged.

Workers are separate processes, so they import the function by its module path: ``"package.module:name"`` or
``"path/to/file.py:name"`` (``function = ...`` in a TOML config, for ``weightdecay sweep``). A function defined
in the script that calls :func:`sweep` is found by that script's path; as with :mod:`multiprocessing`, the
call must then sit under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
import time
from pathlib import Path
from typing import Any, Callable

from weightdecay.errors import ConfigError, UserError
from weightdecay.sweeps.arms import Arm
from weightdecay.sweeps.outcome import TrialFailed, TrialOutcome, outcome_from_metrics
from weightdecay.sweeps.spec import SearchSpace, SweepConfig
from weightdecay.sweeps.workloads.base import check_own_code, check_train_size

__all__ = ["FunctionWorkload", "function_spec", "load_function", "check_function", "run_objective"]

ALWAYS = ("lr", "weight_decay", "decay", "seed")


def function_spec(objective: Callable[..., Any] | str) -> str:
    """The ``module:name`` (or ``/abs/file.py:name``) by which workers import ``objective``."""
    if isinstance(objective, str):
        return objective
    if not callable(objective):
        raise UserError(f"weightdecay.sweep: objective {objective!r} is not a function")
    name, module = getattr(objective, "__qualname__", ""), getattr(objective, "__module__", None)
    if not name or "<" in name or module is None:
        raise UserError(f"weightdecay.sweep: {objective!r} is not a module-level function (a lambda or a "
                        f"function defined inside another one): workers in other processes cannot import it; "
                        f"define it at the top level of a module or script")
    if module in ("__main__", "__mp_main__"):
        path = getattr(sys.modules.get(module), "__file__", None)
        if not path:
            raise UserError(f"weightdecay.sweep: {name} is defined in an interactive session, which worker "
                            f"processes cannot import; put it in a .py file and import it from there")
        return f"{Path(path).resolve()}:{name}"
    return f"{module}:{name}"


def load_function(spec: str, base_dir: str | Path = ".") -> Callable[..., Any]:
    """Import ``module:name`` or ``file.py:name`` (relative to ``base_dir``); raises :class:`ConfigError`."""
    return _load(spec, str(Path(base_dir).resolve()))


@functools.lru_cache(maxsize=None)
def _load(spec: str, base_dir: str) -> Callable[..., Any]:
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ConfigError(f"function: {spec!r}; give \"package.module:name\" or \"path/to/file.py:name\"")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(base_dir, where).resolve()
        module = _main_module_at(path)
        if module is None:
            if not path.is_file():
                raise ConfigError(f"function: no file {str(path)!r}; give the path relative to the config's folder")
            module_name = f"_weightdecay_objective_{path.stem}_{abs(hash(str(path))) % 10**8}"
            module = sys.modules.get(module_name)
            if module is None:
                file_spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(file_spec)
                sys.modules[module_name] = module
                try:
                    file_spec.loader.exec_module(module)
                except Exception as exc:  # any error in the user's file
                    del sys.modules[module_name]
                    raise ConfigError(f"function: importing {str(path)!r} failed: {type(exc).__name__}: {exc}") \
                        from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:  # any import failure is the user's module
            raise ConfigError(f"function: cannot import {where!r} ({type(exc).__name__}: {exc}); check the module "
                              f"name and PYTHONPATH") from None
    target: Any = module
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"function: {where!r} has no {name!r}")
    if not callable(target):
        raise ConfigError(f"function: {spec!r} is a {type(target).__name__}, not a function")
    return target


def _main_module_at(path: Path) -> Any:
    # The script running the sweep (or, in a spawned worker, its copy): reuse it rather than run it twice.
    for name in ("__main__", "__mp_main__"):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            return module
    return None


def check_function(raw: dict[str, Any], arms: list[Any], base_dir: Path) -> str:
    """Validate a config's ``function`` against its settings; returns the spec.

    The function must accept every value the config passes (``lr, weight_decay, decay, seed``, each
    ``[extra]`` key, ``epochs``/``batch_size`` if set, ``optimizer`` if an arm sets it) and must not require
    one the config does not give.
    """
    spec = raw["function"]
    if not isinstance(spec, str):
        raise ConfigError(f"function: {spec!r}; give \"package.module:name\" or \"path/to/file.py:name\"")
    fn = load_function(spec, base_dir)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return spec  # a builtin or C function: its arguments are checked when it runs
    params = signature.parameters
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for i, (arm, arm_raw) in enumerate(zip(arms, raw["arms"])):
        given = set(_kwargs_keys(raw, arm, named))
        if "optimizer" in arm_raw and "optimizer" not in named:
            raise ConfigError(f"arms[{i}].optimizer: set, but {spec} has no `optimizer` parameter to receive it; "
                              f"add one")
        for key in sorted(given):
            if key not in named and not var_kw:
                where = "extra." if key in raw.get("extra", {}) else (
                    f"arms[{i}].extra." if key in arm.extra else "")
                raise ConfigError(f"{where}{key}: {spec} takes no {key!r} argument (nor **kwargs); add it to the "
                                  f"function or remove it from the config")
        for n, p in params.items():
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in given:
                raise ConfigError(f"function: {spec} requires {n!r}, which the config does not give; set it in "
                                  f"[extra] (or epochs/batch_size), or give it a default")
            if p.kind == p.POSITIONAL_ONLY and p.default is p.empty:
                raise ConfigError(f"function: {spec} has a positional-only parameter {n!r}; the sweep passes "
                                  f"keywords")
    return spec


def _kwargs_keys(raw: dict[str, Any], arm: Any, named: set[str]) -> list[str]:
    # The keywords objective_kwargs will pass, from the raw config (before it is a SweepConfig).
    keys = list(ALWAYS) + list(raw.get("extra", {})) + list(arm.extra)
    keys += [k for k in ("epochs", "batch_size") if raw.get(k) is not None]
    if "optimizer" in named:
        keys.append("optimizer")
    return keys


def objective_kwargs(config: Any, arm: Any, lr: float, weight_decay: float, seed: int,
                     fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of one trial's call."""
    try:
        named = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        named = set()
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay, "decay": arm.decay, "seed": seed,
                              **config.extra, **arm.extra}
    for key in ("epochs", "batch_size"):
        if getattr(config, key) is not None:
            kwargs[key] = getattr(config, key)
    if "optimizer" in named:
        kwargs["optimizer"] = arm.optimizer
    return kwargs


def run_objective(config: Any, arm: Any, lr: float, weight_decay: float, seed: int) -> TrialOutcome:
    """Call the config's function for one trial and turn what it returns into an outcome.

    An exception propagates (the worker records the traceback, as for a task).
    """
    fn = load_function(config.function, config.base_dir or ".")
    start = time.perf_counter()
    returned = fn(**objective_kwargs(config, arm, lr, weight_decay, seed, fn))
    seconds = time.perf_counter() - start
    source = f"function {config.function}"
    history: Any = []
    if isinstance(returned, dict):
        metrics = dict(returned)
        history = metrics.pop("history", [])
        if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
            raise TrialFailed(f"{source} returned history = {history!r}; give a list of per-epoch dicts")
    elif not isinstance(returned, bool) and _number(returned) is not None:
        metrics = {config.metric: returned}
    else:
        raise TrialFailed(f"{source} returned {returned!r}; return a number (the {config.metric}) or a dict of "
                          f"metrics")
    metrics = {k: _number(v) if _number(v) is not None else v for k, v in metrics.items()}
    history = [{k: _number(v) if _number(v) is not None else v for k, v in h.items()} for h in history]
    return outcome_from_metrics(config.metric, config.direction, metrics, history, seconds, source=source)


def _number(value: Any) -> float | int | None:
    # Python numbers, 0-d tensors and NumPy scalars; None for anything else.
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (ValueError, RuntimeError):
            return None
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return None


class FunctionWorkload:
    key = "function"

    def check(self, raw: dict[str, Any], arms: list[Arm], search: SearchSpace, base_dir: Path) -> dict[str, Any]:
        check_own_code(raw, "your function", search)
        if "result" in raw:
            raise ConfigError("result: a function returns its metrics; only a command sweep says where to read "
                              "them; remove it")
        if "timeout" in raw:
            raise ConfigError("timeout: a function runs inside the worker and cannot be timed out; use a command "
                              "sweep for a per-trial timeout")
        return {"function": check_function(raw, arms, base_dir)}

    def check_environment(self, config: SweepConfig) -> SweepConfig:
        return check_train_size(config)

    def keeps_folder(self, config: SweepConfig) -> bool:
        return False

    def run(self, config: SweepConfig, arm: Arm, lr: float, weight_decay: float, seed: int, *,
            workdir: str | None, threads: int | None) -> dict[str, Any]:
        return run_objective(config, arm, lr, weight_decay, seed).record()
