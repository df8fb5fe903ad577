"""One setting seen through every rule: its value in each convention, its timescales and plausibility warnings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from weightdecay.checks import positive
from weightdecay.errors import UserError
from weightdecay.optim.param_groups import layer_decay_weight_decay
from weightdecay.rules.conventions import Conversion, convert, convert_all, get_convention
from weightdecay.rules.equilibrium import equilibrium_rotation
from weightdecay.rules.precision import canonical_dtype, rounding_warning
from weightdecay.rules.suggestion import BEST_NORM, FINE_TUNING_NORM, suggest_weight_decay
from weightdecay.rules.timescales import ema_timescale, weight_decay_norm

__all__ = ["Advice", "advise", "SUGGEST_POINTER"]

# Where a warned user finds a value, not only a warning.
SUGGEST_POINTER = ("For a value with an interval and how sure it is: `weightdecay suggest` with the same --lr, "
                   "--batch-size, --dataset-size, --epochs and --convention.")

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
    fine_tuning: bool = False
    # A value to start from, in ``convention`` at ``lr``, and the rule that gave it (fine-tuning only for now).
    suggested_weight_decay: float | None = None
    suggestion: str = ""
    # Layer-wise lr decay (layer_decay, depth given): per layer i, lr_scale = layer_decay^(depth+1−i) and the
    # per-step shrink (torch units) with the same λ in every group, and with λ set so the decay follows / does not.
    layer_decay: float | None = None
    layers: list[dict[str, float]] = field(default_factory=list)
    layer_note: str = ""
    # Where to get a value rather than a warning (set when there are warnings or fine_tuning).
    see_also: str = ""

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
    low, high = BEST_NORM
    if a.weight_decay_norm < low / 10 or a.weight_decay_norm > high * 10:
        out.append(f"The implied normalized weight decay λ_norm = {_fmt(a.weight_decay_norm)} is far from the "
                   f"{low}–{high} Loshchilov & Hutter found best training from scratch.")
    return out


def _fine_tuning_suggestion(lr: float, peak_lr: float, convention: str, batch_size: int, dataset_size: int,
                            epochs: float) -> tuple[float, str]:
    """A provisional λ for fine-tuning, in ``convention`` at ``lr``, and the sentence that names its rule."""
    s = suggest_weight_decay(lr=lr, peak_lr=peak_lr, convention=convention, batch_size=batch_size,
                             dataset_size=dataset_size, epochs=epochs, fine_tuning=True)
    value = s.weight_decay
    low, high = BEST_NORM
    return value, (f"The normalized-decay range λ_norm ≈ {low}–{high} comes from training image classifiers from "
                   f"scratch (Loshchilov & Hutter); no value is measured for fine-tuning yet. Provisional: "
                   f"weight_decay = {_fmt(value)} ({convention!r} at lr = {_fmt(lr)}; τ_epoch = {_fmt(s.tau_epoch)} "
                   f"epochs), by the normalized rule λ = λ_norm·sqrt(b/(B·T)) at the range's low end λ_norm = "
                   f"{FINE_TUNING_NORM}, since decay toward zero pulls the weights away from the pretrained ones. "
                   f"Sweep around it; `weightdecay suggest --fine-tuning` gives it with an interval.")


def _layers(s: float, mode: str, layer_decay: float, depth: int) -> tuple[list[dict[str, float]], str]:
    """Per layer: ``lr_scale``, the shrink at the peak with the same λ in every group (what ``mode`` does by
    itself), and with the decay following the layer's lr or not (:func:`weightdecay.param_groups`'s
    ``decay_follows_lr``)."""
    rows = []
    for i in range(depth + 2):
        scale = layer_decay ** (depth + 1 - i)
        own = layer_decay_weight_decay(1.0, scale, mode, follows_lr=False)  # 1/native: λ that keeps s as at scale 1
        rows.append({"layer": i, "lr_scale": scale, "shrink_same_lambda": s / own, "shrink_follows_lr": s * scale,
                     "shrink_fixed": s})
    follows = layer_decay_weight_decay(1.0, layer_decay, mode, follows_lr=True) == 1.0
    note = (f"With layer_decay={layer_decay:g}, the same λ in every group under {mode!r} makes each layer's decay "
            + ("follow its lr (s_t = lr_layer·λ): the embeddings decay "
               f"{layer_decay ** (depth + 1):.3g}x as hard as the head, as in timm and BEiT. "
               if follows else
               "independent of its lr (η_t = lr_t/peak_lr is a ratio per group): every layer decays as the head. ")
            + "weightdecay.param_groups(..., layer_decay=, decay_follows_lr=True|False) sets λ per group for either "
            "choice: True keeps s_t proportional to the layer's lr, False gives every layer the head's s_t.")
    return rows, note


def advise(*, lr: float, weight_decay: float, batch_size: int, dataset_size: int, epochs: float,
           convention: str = "torch", optimizer: str = "adamw", peak_lr: float | None = None, beta1: float = 0.9,
           momentum: float = 0.9, fine_tuning: bool = False, layer_decay: float | None = None,
           depth: int | None = None, dtype: str = "float32") -> Advice:
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
        fine_tuning: the run starts from pretrained weights: say that the λ_norm range comes from training from
            scratch, and suggest a provisional value (``suggested_weight_decay``, its rule in ``suggestion``).
        layer_decay, depth: layer-wise lr decay over ``depth`` blocks (timm, BEiT): adds, per layer, the shrink
            with the same λ everywhere and with the decay following the layer's lr or not, and a sentence on what
            the convention does.
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
    extra: dict[str, Any] = {}
    if layer_decay is not None or depth is not None:
        if layer_decay is None or depth is None:
            raise UserError("layer-wise lr decay needs both layer_decay (--layer-decay) and depth (--depth)")
        if not 0 < layer_decay <= 1:
            raise UserError(f"Invalid layer_decay: {layer_decay} (must be in (0, 1]; BEiT and timm use 0.65–0.75)")
        rows, note = _layers(s, get_convention(convention).mode, layer_decay, int(positive("depth", depth)))
        extra = {"layer_decay": layer_decay, "layers": rows, "layer_note": note}
    suggested, suggestion = (_fine_tuning_suggestion(lr, peak, convention, batch_size, dataset_size, epochs)
                             if fine_tuning else (None, ""))
    warned = _warnings(advice)
    return Advice(**{**advice.__dict__, "warnings": warned, "fine_tuning": fine_tuning,
                     "suggested_weight_decay": suggested, "suggestion": suggestion,
                     "see_also": SUGGEST_POINTER if warned or fine_tuning else "", **extra})
