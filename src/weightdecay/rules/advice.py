"""One setting seen through every rule: its value in each convention, its timescales and plausibility warnings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from weightdecay.checks import positive
from weightdecay.rules.conventions import Conversion, convert, convert_all, get_convention
from weightdecay.rules.equilibrium import equilibrium_rotation
from weightdecay.rules.precision import canonical_dtype, rounding_warning
from weightdecay.rules.timescales import ema_timescale, weight_decay_norm

__all__ = ["Advice", "advise"]

# Loshchilov & Hutter's best normalized weight decay; a value 10× outside it is worth a look.
_BEST_NORM = (0.025, 0.05)
# Conventions whose numbers look different for the same decay; the others repeat one of these at the peak lr.
_DISTINCT = ("torch", "paper", "constant")


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` found: the setting, its conversions, its timescales and the warnings."""

    lr: float
    peak_lr: float
    weight_decay: float
    convention: str
    batch_size: int
    dataset_size: int
    epochs: float
    optimizer: str
    total_steps: float  # B·T/b
    shrink: float  # per-step shrink at the given lr, s = lr·λ in torch units
    tau_iter: float
    tau_epoch: float
    weight_decay_norm: float  # λ_norm implied by the setting
    rotation: float  # expected equilibrium angle per step, radians
    dtype: str = "float32"  # the weights' format
    conversions: list[Conversion] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for ``json.dumps``."""
        return asdict(self)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _warnings(a: Advice) -> list[str]:
    out = []
    name = a.convention
    if a.shrink >= 1:
        out.append(f"weight_decay={_fmt(a.weight_decay)} in {name!r} shrinks the weights by {a.shrink:.0%} per step: "
                   "they are wiped out at every update.")
    implausible = a.tau_epoch < 1 or a.tau_epoch > a.epochs
    if a.tau_epoch < 1:
        out.append(f"τ_epoch = {_fmt(a.tau_epoch)} epochs: the weights forget everything older than "
                   f"{_fmt(a.tau_iter)} steps, less than one epoch. The weight decay is probably far too large.")
    elif a.tau_epoch > a.epochs:
        out.append(f"τ_epoch = {_fmt(a.tau_epoch)} epochs is longer than the whole run ({_fmt(a.epochs)} epochs): "
                   "the decay barely acts before training ends. The weight decay is probably too small to matter.")
    if implausible:
        for other in _DISTINCT:
            if other == get_convention(name).mode:
                continue
            read = ema_timescale(a.lr, a.weight_decay, convention=other, peak_lr=a.peak_lr,
                                 batch_size=a.batch_size, dataset_size=a.dataset_size)
            if 1 <= read.epochs <= a.epochs:
                same = convert(a.weight_decay, other, name, lr=a.lr, peak_lr=a.peak_lr, batch_size=a.batch_size,
                               dataset_size=a.dataset_size, epochs=a.epochs).weight_decay
                out.append(f"{_fmt(a.weight_decay)} is a typical {other!r}-convention value (read that way, "
                           f"τ_epoch = {_fmt(read.epochs)} epochs). If it came from a {other!r} recipe, the same "
                           f"decay in {name!r} is {_fmt(same)}; check --convention.")
                break
    rounding = rounding_warning(a.shrink, a.dtype)
    if rounding is not None:
        out.append(rounding)
    low, high = _BEST_NORM
    if a.weight_decay_norm < low / 10 or a.weight_decay_norm > high * 10:
        out.append(f"The implied normalized weight decay λ_norm = {_fmt(a.weight_decay_norm)} is far from the "
                   f"{low}–{high} Loshchilov & Hutter found best.")
    return out


def advise(*, lr: float, weight_decay: float, batch_size: int, dataset_size: int, epochs: float,
           convention: str = "torch", optimizer: str = "adamw", peak_lr: float | None = None, beta1: float = 0.9,
           momentum: float = 0.9, dtype: str = "float32") -> Advice:
    """Look at one weight-decay setting through every rule of docs/math.md, "Hyperparameter rules".

    ``s = lr·λ`` (torch units), ``τ_iter = 1/s``, ``τ_epoch = τ_iter·b/B``, ``λ_norm = λ_paper/sqrt(b/(B·T))``
    and the equilibrium rotation of :func:`weightdecay.rules.equilibrium_rotation`; warnings when ``τ_epoch``
    is under one epoch or longer than the run, when the number reads as a plausible value of another
    convention, when ``λ_norm`` is 10× outside 0.025–0.05, and when ``s`` is below the resolution of the
    weights' ``dtype`` (:func:`weightdecay.rules.rounding_warning`: in bfloat16 any ``s < 2^-9``).

    Args:
        lr: the (peak) learning rate.
        weight_decay: λ in ``convention``.
        batch_size, dataset_size, epochs: ``b``, ``B``, ``T``.
        convention: any name of :data:`weightdecay.rules.CONVENTION_NAMES` except ``l2`` and ``stable``.
        optimizer: ``adamw`` or ``sgdw`` (``sgd`` for torch.optim.SGD's coupled L2).
        peak_lr: reference lr for ``paper``/``corrected``; defaults to ``lr``.
        beta1: Adam's β1, for the rotation.
        momentum: SGD's momentum, for the rotation.
        dtype: the weights' format (``float32``, ``bfloat16``, ``float16``, ``float64``; ``bf16``, ``fp16``…).

    >>> a = advise(lr=1e-3, weight_decay=0.1, convention="paper", batch_size=128, dataset_size=50_000, epochs=100)
    >>> round(a.tau_iter), a.warnings[0][:10]
    (10, 'τ_epoch = ')
    """
    sizes = {"batch_size": batch_size, "dataset_size": dataset_size, "epochs": epochs}
    peak = lr if peak_lr is None else peak_lr
    rows, skipped = convert_all(weight_decay, convention, lr=lr, peak_lr=peak_lr, **sizes)
    s = convert(weight_decay, convention, "torch", lr=lr, peak_lr=peak_lr, **sizes).shrink
    tau = ema_timescale(lr, weight_decay, convention=convention, peak_lr=peak_lr, **sizes)
    paper_at_peak = convert(weight_decay, convention, "paper", lr=peak, peak_lr=peak, **sizes).weight_decay
    advice = Advice(
        lr=lr, peak_lr=peak, weight_decay=weight_decay, convention=convention, batch_size=batch_size,
        dataset_size=dataset_size, epochs=positive("epochs", epochs), optimizer=optimizer,
        total_steps=dataset_size * epochs / batch_size, shrink=s, tau_iter=tau.iterations,
        tau_epoch=tau.epochs if tau.epochs is not None else math.nan,
        weight_decay_norm=weight_decay_norm(paper_at_peak, batch_size, dataset_size, epochs),
        rotation=equilibrium_rotation(lr, weight_decay, optimizer=optimizer, beta1=beta1, momentum=momentum,
                                      convention=convention, peak_lr=peak_lr, **sizes),
        conversions=rows, skipped=skipped, dtype=canonical_dtype(dtype),
    )
    return Advice(**{**advice.__dict__, "warnings": _warnings(advice)})
