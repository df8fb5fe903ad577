"""One table of optimizer cases that the generic optimizer tests iterate (torch's ``OptimizerInfo`` is the model).

Each row: the registry name, the class under test, the torch.optim class it wraps (or, for our own AdamW and SGDW,
the torch.optim class it is a drop-in for), the kwargs that make that base's own decay equal the ``torch``
convention (or its coupled L2), the paths it runs on, the decay modes it supports, and the parameter shapes it
accepts. A new optimizer is one row here. ``ADAMW`` and ``SGDW`` are the rows the reference, equivalence, state,
identity, AMP, compile, kernel and distributed tests iterate; ``WRAPPED`` are the rows of tests/test_optim_wrapped.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

import weightdecay
from weightdecay.decay import DECAY_MODES, shrink
from weightdecay.optim import wrap
from weightdecay.optim.lion import LionUpdate

# The modes by what their rows say, never by name: a new row joins every test below.
DECOUPLED = tuple(n for n, m in DECAY_MODES.items() if m.decoupled and m.statistic is None)
STATISTIC = tuple(n for n, m in DECAY_MODES.items() if m.statistic is not None)  # need Adam's second moment
COUPLED = tuple(n for n, m in DECAY_MODES.items() if not m.decoupled)
# A value for each per-group key a row reads (its lr exponent) other than its default, so that tests see it act.
OPTION_VALUE = 0.5


def mode_lambda(mode: str, lr: float, shrink_t: float = 0.02, peak_lr: float | None = None,
                options: dict | None = None, coupled: float = 0.2) -> float:
    """λ that makes the mode shrink by about ``shrink_t`` at this lr (``statistic`` taken as 1), ``coupled`` for L2.

    Only picks a test's λ: the expected results come from the float64 oracle (tests/reference.py)."""
    factor = shrink(mode, 1.0, lr, lr if peak_lr is None else peak_lr, 1.0, options)
    return shrink_t / factor if factor else coupled


def mode_options(mode: str) -> dict:
    """The row's per-group keys set to :data:`OPTION_VALUE` (empty for rows that read none)."""
    return {key: OPTION_VALUE for key in DECAY_MODES[mode].options}


@dataclass(frozen=True)
class OptimizerCase:
    name: str  # the registry's name
    cls: type  # the class under test
    base: type  # the torch.optim class with the same update
    kwargs: dict  # hyperparameters for both (no lr, weight_decay, decay)
    torch_kwargs: dict = field(default_factory=dict)  # what makes the base decay as decay="torch"
    l2_kwargs: dict | None = None  # what makes the base's decay coupled L2 (None: the base has no L2)
    paths: tuple[str, ...] = ("single", "foreach")
    modes: tuple[str, ...] = (*DECOUPLED, *COUPLED)
    shapes: tuple[tuple[int, ...], ...] = ((4, 3), (5,))
    shrinks_by_lr: bool = True  # the base's kernels shrink by lr·wd (else: coupled only)
    native: bool = False  # our own class (AdamW, SGDW), not made by with_decay: the wrapped-class tests skip it

    @property
    def desc(self) -> str:
        return self.name


PATH_KWARGS = {"single": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True),
               "default": {}}

ADAMW = OptimizerCase("adamw", weightdecay.AdamW, torch.optim.AdamW, {}, paths=("single", "foreach", "fused"),
                      modes=(*DECOUPLED, *STATISTIC, *COUPLED), native=True)
SGDW = OptimizerCase("sgdw", weightdecay.SGDW, torch.optim.SGD, dict(momentum=0.9), l2_kwargs={},
                     paths=("single", "foreach", "fused"), shrinks_by_lr=False, native=True)
NATIVE = [ADAMW, SGDW]

CASES: list[OptimizerCase] = [
    *NATIVE,
    OptimizerCase("adam", wrap.Adam, torch.optim.Adam, dict(betas=(0.8, 0.95)),
                  torch_kwargs=dict(decoupled_weight_decay=True), l2_kwargs={},
                  paths=("single", "foreach", "fused"), modes=(*DECOUPLED, *STATISTIC, *COUPLED)),
    OptimizerCase("nadam", weightdecay.NAdam, torch.optim.NAdam, dict(betas=(0.8, 0.95)),
                  torch_kwargs=dict(decoupled_weight_decay=True), l2_kwargs={}, modes=(*DECOUPLED, *STATISTIC, *COUPLED)),
    OptimizerCase("radam", weightdecay.RAdam, torch.optim.RAdam, dict(betas=(0.8, 0.95)),
                  torch_kwargs=dict(decoupled_weight_decay=True), l2_kwargs={}, modes=(*DECOUPLED, *STATISTIC, *COUPLED)),
    OptimizerCase("muon", weightdecay.Muon, torch.optim.Muon, dict(momentum=0.9), paths=("default",),
                  shapes=((4, 3), (3, 5))),
    OptimizerCase("muon-match-rms", weightdecay.Muon, torch.optim.Muon,
                  dict(momentum=0.9, adjust_lr_fn="match_rms_adamw", nesterov=False), paths=("default",),
                  shapes=((4, 3), (3, 5))),
    OptimizerCase("adafactor", weightdecay.Adafactor, torch.optim.Adafactor, dict(beta2_decay=-0.8),
                  shapes=((4, 3), (5,), (2, 3, 2))),
    OptimizerCase("adamax", wrap.Adamax, torch.optim.Adamax, {}, l2_kwargs={}, shrinks_by_lr=False),
    OptimizerCase("rmsprop", wrap.RMSprop, torch.optim.RMSprop, dict(momentum=0.5, centered=True), l2_kwargs={},
                  shrinks_by_lr=False),
    OptimizerCase("adagrad", wrap.Adagrad, torch.optim.Adagrad, dict(lr_decay=0.01), l2_kwargs={},
                  shrinks_by_lr=False),
    OptimizerCase("sgd", wrap.SGD, torch.optim.SGD, dict(momentum=0.9, nesterov=True), l2_kwargs={},
                  shrinks_by_lr=False),
    OptimizerCase("lion", weightdecay.Lion, LionUpdate, dict(betas=(0.8, 0.95))),
]


WRAPPED = [c for c in CASES if not c.native]


def case_paths() -> list[tuple[OptimizerCase, str]]:
    """(row, path) for every wrapped class and each path its base supports."""
    return [(c, p) for c in WRAPPED for p in c.paths]
