"""One table of the optimizers: name → class, its hyperparameters with defaults and checks, and what it needs.

Tasks, ``weightdecay train``, sweep configs, the rules and the command line read this table and nothing else, so a
new optimizer is one file and one row here (:func:`register_optimizer` for a user's own). Modelled on timm's
``OptimInfo``.

>>> from weightdecay.optim.registry import get_optimizer
>>> info = get_optimizer("sgdw")
>>> info.takes("momentum"), info.takes("betas"), "stable" in info.decay_modes
(True, False, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from weightdecay.decay import DECAY_MODES, DecayMode, get_mode
from weightdecay.errors import UserError

__all__ = ["Hyperparameter", "OptimizerInfo", "OPTIMIZERS", "optimizer_names", "get_optimizer",
           "register_optimizer", "build_optimizer", "row_of"]


# --- checks: each returns the value in its canonical type, or raises UserError naming it -----------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fraction(name: str, v: Any) -> float:
    """A number in [0, 1) (a momentum, a β)."""
    if not (_is_number(v) and 0 <= v < 1):
        raise UserError(f"Invalid {name}: {v!r} (must be a number in [0, 1))")
    return float(v)


def betas(name: str, v: Any) -> tuple[float, float]:
    """A pair (β1, β2), each in [0, 1)."""
    if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in v):
        raise UserError(f"Invalid {name}: {list(v) if isinstance(v, (list, tuple)) else v!r} "
                        "(give two numbers in [0, 1))")
    return (float(v[0]), float(v[1]))


def nonnegative(name: str, v: Any) -> float:
    if not (_is_number(v) and v >= 0):
        raise UserError(f"Invalid {name}: {v!r} (must be a finite number >= 0)")
    return float(v)


def nonpositive(name: str, v: Any) -> float:
    if not (_is_number(v) and v <= 0):
        raise UserError(f"Invalid {name}: {v!r} (must be a finite number <= 0)")
    return float(v)


def at_least_one(name: str, v: Any) -> float:
    if not (_is_number(v) and v >= 1):
        raise UserError(f"Invalid {name}: {v!r} (must be a finite number >= 1)")
    return float(v)


def positive_int(name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise UserError(f"Invalid {name}: {v!r} (must be an integer >= 1)")
    return v


def boolean(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise UserError(f"Invalid {name}: {v!r} (must be true or false)")
    return v


def one_of(*choices: Any) -> Callable[[str, Any], Any]:
    def check(name: str, v: Any) -> Any:
        if v not in choices:
            raise UserError(f"Invalid {name}: {v!r}; choose one of {', '.join(map(repr, choices))}")
        return v
    return check


@dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter an optimizer takes besides lr, weight_decay and decay: its default, check and meaning."""

    name: str
    default: Any
    check: Callable[[str, Any], Any]
    doc: str

    def validate(self, value: Any) -> Any:
        return self.check(self.name, value)


def _betas(default: tuple[float, float] = (0.9, 0.999)) -> Hyperparameter:
    return Hyperparameter("betas", default, betas, "(β1, β2) of the moment averages")


_EPS = Hyperparameter("eps", 1e-8, nonnegative, "ε added to the denominator")
_CAUTIOUS = Hyperparameter("cautious", False, boolean,
                           "decay only where the update and the weight agree in sign (Chen et al. 2025)")


@dataclass(frozen=True)
class OptimizerInfo:
    """One row of the table.

    Attributes:
        name: what configs and ``--optimizer`` call it.
        factory: the class (or a callable taking ``params, lr=, weight_decay=, decay=, **hyperparameters``).
        hyperparameters: what else it takes, with the defaults tasks and sweeps use.
        second_moment: it keeps Adam's second moment, so ``decay="stable"`` applies.
        updates: which parameters it may update: ``"all"``, or ``"matrices"`` (2-D only; the rest goes to
            ``companion``).
        companion: the optimizer for the parameters it may not update.
        rotation: which equilibrium-rotation formula of :mod:`weightdecay.rules` applies (None: none derived).
        description: one line for listings.
        own_decay: its decay is its own (Amos), none of the table's modes: ``weight_decay`` must be 0 and
            ``decay`` left at its default.
        drop_in_for: torch.optim classes whose steps it takes when built alike (weightdecay.AdamW for
            torch.optim.AdamW and Adam), so an instance of those is read by this row (:func:`row_of`).
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    second_moment: bool = False
    updates: str = "all"
    companion: str | None = None
    rotation: str | None = None
    description: str = ""
    own_decay: bool = False
    drop_in_for: tuple[type, ...] = ()
    decay_modes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        modes = tuple(n for n, m in DECAY_MODES.items() if self.second_moment or m.statistic is None)
        modes = () if self.own_decay else modes
        object.__setattr__(self, "decay_modes", modes)

    @property
    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hyperparameters}

    def takes(self, key: str) -> bool:
        return any(h.name == key for h in self.hyperparameters)

    def check_decay(self, decay: str) -> DecayMode:
        """The decay mode, or a UserError saying why this optimizer cannot run it (``stable`` needs Adam's v̂)."""
        if self.own_decay and decay != "torch":
            raise UserError(f"{self.name} has its own weight decay, not decay={decay!r}; leave decay at its default")
        return get_mode(decay, adam=self.second_moment, optimizer=self.name)

    def check_hyperparameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values checked and in canonical types; an unknown key names the ones this optimizer takes."""
        known = {h.name: h for h in self.hyperparameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            takers = [o.name for o in OPTIMIZERS.values() if o.takes(unknown[0])]
            hint = f" (only {', '.join(takers)} take it)" if takers else ""
            raise UserError(f"{self.name} does not take {unknown[0]!r}{hint}; its hyperparameters: "
                            f"{', '.join(known) or 'none'}")
        return {k: known[k].validate(v) for k, v in values.items()}

    def build(self, params: Iterable[Any], *, lr: float, weight_decay: float, decay: str = "torch",
              **hyperparameters: Any) -> torch.optim.Optimizer:
        """The optimizer over ``params`` (groups may set their own keys), with this row's defaults filled in.

        An optimizer with ``updates="matrices"`` gets the 2-D tensors; the rest go to ``companion`` with the same
        lr, λ and convention, both stepped as one (:class:`weightdecay.optim.combined.CombinedOptimizer`).
        """
        self.check_decay(decay)
        options = {**self.defaults, **self.check_hyperparameters(hyperparameters)}
        if self.own_decay:
            if weight_decay != 0:
                raise UserError(f"{self.name} has its own weight decay: weight_decay must be 0, got {weight_decay!r}")
            groups = list(params)
            if groups and isinstance(groups[0], dict):  # the table's keys mean nothing to it
                groups = [{k: v for k, v in g.items() if k not in ("weight_decay", "decay")} for g in groups]
            return self.factory(groups, lr=lr, **options)
        if self.updates == "all":
            return self.factory(params, lr=lr, weight_decay=weight_decay, decay=decay, **options)
        from weightdecay.optim.combined import CombinedOptimizer
        from weightdecay.optim.muon import split_matrices

        groups = list(params)
        groups = groups if groups and isinstance(groups[0], dict) else [{"params": groups}]
        matrices, rest = split_matrices(groups)
        companion = get_optimizer(self.companion or "adamw")
        shared = {k: v for k, v in options.items() if companion.takes(k) and k == "cautious"}
        parts = []
        if matrices:
            parts.append(self.factory(matrices, lr=lr, weight_decay=weight_decay, decay=decay, **options))
        if rest:
            parts.append(companion.build(rest, lr=lr, weight_decay=weight_decay, decay=decay, **shared))
        return parts[0] if len(parts) == 1 else CombinedOptimizer(parts)


OPTIMIZERS: dict[str, OptimizerInfo] = {}


def register_optimizer(info: OptimizerInfo, *, replace: bool = False) -> OptimizerInfo:
    """Add a row (a user's own optimizer becomes usable by ``train``, sweeps and the CLI)."""
    if info.name in OPTIMIZERS and not replace:
        raise UserError(f"Optimizer {info.name!r} is already registered; pass replace=True to replace it")
    if info.updates not in ("all", "matrices"):
        raise UserError(f"Invalid updates: {info.updates!r}; choose 'all' or 'matrices'")
    OPTIMIZERS[info.name] = info
    return info


def optimizer_names() -> tuple[str, ...]:
    return tuple(OPTIMIZERS)


def row_of(optimizer: torch.optim.Optimizer) -> OptimizerInfo | None:
    """The row an optimizer instance belongs to, or None: its class or the nearest base class that is a row's
    class, a class a row is a drop-in for, or the torch.optim class a row wraps (:func:`weightdecay.with_decay`).

    >>> row_of(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)).name
    'sgd'
    """
    for cls in type(optimizer).__mro__:
        for info in OPTIMIZERS.values():
            if cls is info.factory or cls in info.drop_in_for or cls is getattr(info.factory, "_base", None):
                return info
    return None


def get_optimizer(name: str) -> OptimizerInfo:
    """The row for ``name``, or a UserError listing the registered names."""
    info = OPTIMIZERS.get(name) if isinstance(name, str) else None
    if info is None:
        raise UserError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return info


def build_optimizer(name: str, params: Iterable[Any], *, lr: float, weight_decay: float, decay: str = "torch",
                    **hyperparameters: Any) -> torch.optim.Optimizer:
    """``get_optimizer(name).build(...)``.

    >>> import torch
    >>> opt = build_optimizer("nadam", torch.nn.Linear(3, 2).parameters(), lr=1e-3, weight_decay=0.1, decay="paper")
    >>> type(opt).__name__, opt.param_groups[0]["decay"]
    ('NAdam', 'paper')
    """
    return get_optimizer(name).build(params, lr=lr, weight_decay=weight_decay, decay=decay, **hyperparameters)


def _rows() -> None:
    from weightdecay.optim import wrap
    from weightdecay.optim.amos import Amos
    from weightdecay.optim.lion import Lion
    from weightdecay.optim.adamw import AdamW
    from weightdecay.optim.sgdw import SGDW

    momentum = Hyperparameter("momentum", 0.9, fraction, "momentum μ (tasks' default; the class's own is 0)")
    nesterov = Hyperparameter("nesterov", False, boolean, "Nesterov momentum")
    dampening = Hyperparameter("dampening", 0.0, fraction, "dampening of the momentum")
    rows = [
        OptimizerInfo("adamw", AdamW, (_betas(), _EPS, Hyperparameter("amsgrad", False, boolean, "AMSGrad"),
                                       _CAUTIOUS),
                      second_moment=True, rotation="adam", description="weightdecay.AdamW (l2: Adam-L2)",
                      drop_in_for=(torch.optim.AdamW, torch.optim.Adam)),
        OptimizerInfo("sgdw", SGDW, (momentum, dampening, nesterov, _CAUTIOUS), rotation="sgdw",
                      description="weightdecay.SGDW, decoupled SGD with momentum"),
        OptimizerInfo("nadam", wrap.NAdam, (_betas((0.9, 0.999)), _EPS,
                                            Hyperparameter("momentum_decay", 4e-3, nonnegative, "ψ"), _CAUTIOUS),
                      second_moment=True, description="torch.optim.NAdam with a named convention"),
        OptimizerInfo("radam", wrap.RAdam, (_betas(), _EPS, _CAUTIOUS), second_moment=True,
                      description="torch.optim.RAdam with a named convention"),
        OptimizerInfo("muon", wrap.Muon, (
            Hyperparameter("momentum", 0.95, fraction, "momentum μ"),
            Hyperparameter("nesterov", True, boolean, "Nesterov momentum"),
            Hyperparameter("adjust_lr_fn", None, one_of(None, "original", "match_rms_adamw"),
                           "how the update's lr is scaled by the matrix shape (the decay uses the group's lr)"),
            Hyperparameter("ns_steps", 5, positive_int, "Newton-Schulz iterations"), _CAUTIOUS),
            updates="matrices", companion="adamw",
            description="torch.optim.Muon on 2-D weights, AdamW on the rest, one convention"),
        OptimizerInfo("adafactor", wrap.Adafactor, (
            Hyperparameter("beta2_decay", -0.8, nonpositive, "decay rate of β2"),
            Hyperparameter("d", 1.0, at_least_one, "update clipping threshold"), _CAUTIOUS),
            description="torch.optim.Adafactor with a named convention"),
        OptimizerInfo("adamax", wrap.Adamax, (_betas(), _EPS, _CAUTIOUS),
                      description="torch.optim.Adamax; decoupled modes are one foreach shrink"),
        OptimizerInfo("rmsprop", wrap.RMSprop, (
            Hyperparameter("alpha", 0.99, fraction, "smoothing constant"), _EPS,
            Hyperparameter("momentum", 0.0, fraction, "momentum μ"),
            Hyperparameter("centered", False, boolean, "centered RMSprop"), _CAUTIOUS),
            description="torch.optim.RMSprop; decoupled modes are one foreach shrink"),
        OptimizerInfo("adagrad", wrap.Adagrad, (
            Hyperparameter("lr_decay", 0.0, nonnegative, "lr decay (the shrink uses the group's lr)"),
            Hyperparameter("eps", 1e-10, nonnegative, "ε added to the denominator"), _CAUTIOUS),
            description="torch.optim.Adagrad; decoupled modes are one foreach shrink"),
        OptimizerInfo("sgd", wrap.SGD, (momentum, dampening, nesterov, _CAUTIOUS), rotation="sgd",
                      description="torch.optim.SGD; decay='l2' is its own coupled weight_decay"),
        OptimizerInfo("lion", Lion, (_betas((0.9, 0.99)), _CAUTIOUS),
                      description="Lion (Chen et al. 2023): the sign of an interpolated momentum"),
        OptimizerInfo("amos", Amos, (
            Hyperparameter("beta", 0.999, fraction, "β of the second moment"),
            Hyperparameter("zeta", 0.25, nonnegative, "ζ, how fast the decay factors fall"),
            Hyperparameter("momentum", 0.0, fraction, "μ of the moving average of updates"),
            Hyperparameter("scalar_v", False, boolean, "one second-moment scalar per tensor")),
            own_decay=True, description="Amos (Tian & Parikh 2022): its own decay toward each tensor's scale"),
    ]
    for row in rows:
        register_optimizer(row)


_rows()
