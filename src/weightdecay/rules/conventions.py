"""One weight decay, written in every convention and framework: same per-step shrink, different numbers.

A convention is a row of the decay table (:data:`weightdecay.decay.DECAY_MODES`) and, for the normalized ones,
a scale: the framework's number ``w`` means ``λ = scale·w`` in that row's mode. Two settings are the same decay
when they shrink the weights by the same ``s_t`` (docs/math.md, "Decay conventions"), so

    λ_target = shrink(source, scale_s·w, lr_t, peak_lr) / (scale_t · shrink(target, 1, lr_t, peak_lr))

and the conversion is exact through a whole schedule when that ratio does not depend on ``lr_t`` (``torch`` ↔
``paper``, for instance); otherwise it holds at the given ``lr_t`` only.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from weightdecay.decay import DECAY_MODES, get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.checks import nonnegative, positive
from weightdecay.schedules import fixed_shrink_ratio, normalized_weight_decay

__all__ = ["Convention", "CONVENTIONS", "CONVENTION_NAMES", "FRAMEWORK_NAMES", "Conversion", "convert",
           "convert_all", "get_convention"]


@dataclass(frozen=True)
class Convention:
    """A way of writing weight decay: its decay mode, its scale and how a user passes the number."""

    name: str
    mode: str  # a row of weightdecay.decay.DECAY_MODES
    scale: str  # "1", or "normalized" (λ = w·sqrt(b/(B·T))), or "keras-adamw" (λ = w·sqrt(b/I))
    usage: str  # where the number goes; {wd} is replaced by it
    note: str = ""
    # Muon with AdamW has two λs: "muon" (the matrices), "adamw" (the rest), "" a convention for any optimizer.
    part: str = ""


_MODE_USAGE = "weightdecay.AdamW(..., decay={mode!r}, weight_decay={{wd}})"

CONVENTIONS: dict[str, Convention] = {
    **{name: Convention(name, name, "1", _MODE_USAGE.format(mode=name), mode.sentence)
       for name, mode in DECAY_MODES.items()},
    "normalized": Convention(
        "normalized", "paper", "normalized",
        "weightdecay.schedules.NormalizedWeightDecay with group weight_decay={wd} (λ_norm) and decay='paper'",
        "Loshchilov & Hutter: λ = λ_norm·sqrt(b/(B·T)) per step in paper units; best λ_norm ≈ 0.025–0.05."),
    "pytorch": Convention("pytorch", "torch", "1", "torch.optim.AdamW(..., weight_decay={wd})"),
    "optax": Convention("optax", "torch", "1", "optax.adamw(learning_rate=..., weight_decay={wd})",
                        "optax multiplies the decayed weights by the learning rate (or its schedule)."),
    "keras3": Convention("keras3", "torch", "1", "keras.optimizers.AdamW(learning_rate=..., weight_decay={wd})",
                         "Keras 3 subtracts variable·weight_decay·learning_rate."),
    "tf-addons": Convention("tf-addons", "constant", "1", "tfa.optimizers.AdamW(weight_decay={wd}, ...)",
                            "TF Addons never multiplies by the lr: schedule weight_decay like the lr to follow it."),
    "composer": Convention("composer", "paper", "1", "composer.optim.DecoupledAdamW(lr=..., weight_decay={wd})",
                           "Composer scales the decay by lr_t/initial_lr."),
    "timm": Convention("timm", "torch", "1", "timm.optim.create_optimizer_v2(model, 'adamw', weight_decay={wd})"),
    "timm-corrected": Convention("timm-corrected", "corrected", "1",
                                 "timm.optim.AdamW(..., weight_decay={wd}, corrected_weight_decay=True)",
                                 "AdamC's correction: the decay scales with lr_t²/peak_lr."),
    "bert": Convention("bert", "torch", "1", "AdamWeightDecay(learning_rate=..., weight_decay_rate={wd})",
                       "BERT: no bias correction, ε = 1e-6, clip to global norm 1.0, no decay for LayerNorm/bias."),
    "fastai": Convention("fastai", "torch", "1", "fastai Learner(..., opt_func=Adam, wd={wd}) (true_wd=True)",
                         "fastai's true weight decay: p·(1 - lr_t·wd) before the step."),
    "torch-muon": Convention("torch-muon", "torch", "1", "torch.optim.Muon(..., weight_decay={wd})",
                             "Muon decays by the group's lr_t·λ, not by its RMS-adjusted update lr.", "muon"),
    "torch-muon-adamw": Convention("torch-muon-adamw", "torch", "1",
                                   "torch.optim.AdamW(<Muon's non-matrix parameters>, weight_decay={wd})",
                                   "The AdamW half of a Muon split: its own λ, at AdamW's lr.", "adamw"),
    "keras-muon": Convention("keras-muon", "torch", "1", "keras.optimizers.Muon(learning_rate=..., weight_decay={wd})",
                             "Keras' Muon: weight_decay is the λ of the Muon-updated matrices.", "muon"),
    "keras-muon-adamw": Convention("keras-muon-adamw", "torch", "1",
                                   "keras.optimizers.Muon(..., adam_weight_decay={wd})",
                                   "Keras' Muon (keras#21885): adam_weight_decay is the λ of the variables it "
                                   "updates with AdamW, multiplied by the optimizer's learning_rate (Muon's), not by "
                                   "AdamW's learning_rate·adam_lr_ratio: pass learning_rate as the lr.", "adamw"),
    "weightdecay-muon": Convention("weightdecay-muon", "torch", "1",
                                   "weightdecay.muon_with_adamw(..., weight_decay={wd}, decay='torch')",
                                   "The Muon part's λ; any decay= works, this row is its torch reading.", "muon"),
    "weightdecay-muon-adamw": Convention("weightdecay-muon-adamw", "torch", "1",
                                         "weightdecay.muon_with_adamw(..., adamw_weight_decay={wd}, "
                                         "adamw_decay='torch')",
                                         "The AdamW part's λ, at adamw_lr; any adamw_decay= works.", "adamw"),
    "moonlight": Convention("moonlight", "torch", "1", "Moonlight Muon(..., wd={wd}) (0.1 in its recipe)",
                            "Moonlight: p·(1 - lr_t·λ) for Muon and AdamW parameters alike; update-RMS matching.",
                            "both"),
    "keras-adamw": Convention("keras-adamw", "paper", "keras-adamw",
                              "keras_adamw.AdamW(weight_decays={{...: {wd}}}, batch_size=b, total_iterations_wd=I)",
                              "keras-adamw normalizes by iterations: λ = w·sqrt(b/I) per step, times eta_t."),
}

CONVENTION_NAMES: tuple[str, ...] = tuple(CONVENTIONS)
FRAMEWORK_NAMES: tuple[str, ...] = tuple(n for n in CONVENTIONS if n not in DECAY_MODES and n != "normalized")


def get_convention(name: str) -> Convention:
    """Look up a convention or framework by name, with an error that lists the choices."""
    conv = CONVENTIONS.get(name) if isinstance(name, str) else None
    if conv is None:
        meant = _meant(name) if isinstance(name, str) else []
        what = {m: "a decay mode" if m in DECAY_MODES else CONVENTIONS[m].usage.split("(")[0] for m in meant}
        hint = "did you mean " + " or ".join(f"{m!r} ({w})" for m, w in what.items()) + "? C" if meant else "c"
        raise UserError(f"Unknown convention: {name!r}; {hint}hoose one of {', '.join(CONVENTION_NAMES)}")
    return conv


def _meant(name: str) -> list[str]:
    """The conventions a mistyped or shortened name may mean: those it begins (``keras`` → ``keras3``, ...), else the
    close spellings."""
    key = name.strip().lower()
    starts = [n for n in CONVENTION_NAMES if key and n.startswith(key)]
    return starts or difflib.get_close_matches(key, CONVENTION_NAMES, n=2)


@dataclass(frozen=True)
class Conversion:
    """One decay written in the ``target`` convention."""

    source: str
    target: str
    weight_decay: float  # the number to write in the target convention
    mode: str  # the target's decay mode
    shrink: float  # s_t at the given lr_t, the same for source and target
    exact: bool  # True when the two shrink alike at every lr_t of a schedule with this peak_lr
    usage: str
    note: str = ""
    part: str = ""  # the target's part of a Muon split ("muon", "adamw", "both"), "" for any optimizer


def _scale(conv: Convention, batch_size: float | None, dataset_size: float | None, epochs: float | None,
           total_steps: float | None) -> float:
    """``λ = scale · w`` for the normalized conventions; 1 for the others."""
    if conv.scale == "1":
        return 1.0
    if batch_size is None:
        raise UserError(f"Convention {conv.name!r} needs the batch size; pass batch_size (--batch-size)")
    if conv.scale == "normalized":
        if dataset_size is None:
            raise UserError("Convention 'normalized' needs the dataset size; pass dataset_size (--dataset-size)")
        if epochs is None:
            if total_steps is None:
                raise UserError("Convention 'normalized' needs the run's epochs (or total steps); pass epochs")
            epochs = total_steps * batch_size / dataset_size
        return normalized_weight_decay(1.0, batch_size, dataset_size, epochs)
    # keras-adamw: total_iterations_wd, the updates over which the decay is normalized
    if total_steps is None:
        if dataset_size is None or epochs is None:
            raise UserError("Convention 'keras-adamw' needs total_steps (its total_iterations_wd), or dataset_size "
                            "and epochs to count them")
        total_steps = dataset_size * epochs / batch_size
    return math.sqrt(batch_size / total_steps)


def _factor(mode: str, lr: float, peak_lr: float, mean_v_hat: float | None) -> float:
    """``shrink(mode, 1, lr, peak_lr)``: what multiplies λ in ``s_t``, from the decay table."""
    return shrink(mode, 1.0, lr, peak_lr, mean_v_hat)


def convert(weight_decay: float, source: str, target: str, *, lr: float, peak_lr: float | None = None,
            batch_size: int | None = None, dataset_size: int | None = None, epochs: float | None = None,
            total_steps: int | None = None, mean_v_hat: float | None = None) -> Conversion:
    """The weight decay in ``target`` that shrinks the weights as ``weight_decay`` does in ``source``.

    ``s_t = shrink(source, λ_s, lr_t, peak_lr)`` and ``λ_t = s_t / shrink(target, 1, lr_t, peak_lr)``, with the
    normalized conventions' scale applied on each side. ``Conversion.exact`` tells whether the two agree at
    every ``lr_t`` of a schedule peaking at ``peak_lr`` or only at the given ``lr_t``.

    Args:
        weight_decay: the number in the ``source`` convention.
        source: a name of :data:`CONVENTION_NAMES` (decay modes, ``normalized``, frameworks).
        target: the same, for the answer.
        lr: the learning rate ``lr_t`` at which the two must agree (the peak, for a schedule).
        peak_lr: the reference lr of ``paper``/``corrected``; defaults to ``lr``.
        batch_size, dataset_size, epochs, total_steps: for ``normalized`` and ``keras-adamw`` only.
        mean_v_hat: for ``stable`` only, ``mean(v̂_t)`` of the run.

    >>> convert(0.01, "torch", "paper", lr=1e-3).weight_decay
    1e-05
    >>> round(convert(1.26e-4, "paper", "pytorch", lr=1e-3).weight_decay, 6)
    0.126
    """
    src, tgt = get_convention(source), get_convention(target)
    weight_decay = nonnegative("weight_decay", weight_decay)
    lr = positive("lr", lr)
    peak_lr = lr if peak_lr is None else positive("peak_lr", peak_lr)
    for name, value in (("batch_size", batch_size), ("dataset_size", dataset_size), ("epochs", epochs),
                        ("total_steps", total_steps), ("mean_v_hat", mean_v_hat)):
        if value is not None:
            positive(name, value)
    for conv in (src, tgt):
        if not get_mode(conv.mode).decoupled:
            raise UserError(f"Convention {conv.name!r} is coupled L2 (g ← g + λ·p): no decoupled weight decay "
                            "equals it under Adam. Under plain SGD without momentum it equals 'torch' with the "
                            "same λ (docs/math.md, 'Decay conventions'); otherwise pick a decoupled convention")
        if get_mode(conv.mode).statistic is not None and mean_v_hat is None:
            raise UserError(f"Convention {conv.name!r} divides by sqrt(mean v̂_t), a training state; pass mean_v_hat "
                            "(--mean-v-hat) measured on your run")

    if src.part and tgt.part and "both" not in (src.part, tgt.part) and src.part != tgt.part:
        raise UserError(f"{source!r} is the λ of Muon's {src.part} part and {target!r} that of its {tgt.part} part: "
                        "a Muon split has two λs, each at its own lr; convert each to a convention of the same "
                        "part (or to a plain one such as 'torch')")
    sizes = (batch_size, dataset_size, epochs, total_steps)
    src_scale, tgt_scale = _scale(src, *sizes), _scale(tgt, *sizes)
    s = shrink(src.mode, src_scale * weight_decay, lr, peak_lr, mean_v_hat)
    denominator = tgt_scale * _factor(tgt.mode, lr, peak_lr, mean_v_hat)
    if denominator == 0:
        raise UserError(f"Convention {target!r} cannot express a decay at lr={lr}; give a positive lr")
    # Exact through a schedule when shrink(source)/shrink(target) is the same at any lr_t
    exact = fixed_shrink_ratio(src.mode, tgt.mode, peak_lr) is not None
    return Conversion(source, target, s / denominator, tgt.mode, s, exact, tgt.usage, tgt.note, tgt.part)


def convert_all(weight_decay: float, source: str, *, lr: float, peak_lr: float | None = None,
                **sizes: float | None) -> tuple[list[Conversion], dict[str, str]]:
    """``weight_decay`` from ``source`` in every convention and framework that the given values allow.

    Returns the conversions and, for each convention left out, the reason (its :class:`UserError` message).

    >>> rows, skipped = convert_all(0.1, "torch", lr=1e-3)
    >>> [r.target for r in rows][:4], sorted(skipped)[:2]
    (['torch', 'paper', 'constant', 'corrected'], ['keras-adamw', 'l2'])
    """
    convert(weight_decay, source, source, lr=lr, peak_lr=peak_lr, **sizes)  # bad input fails here, not silently
    rows, skipped = [], {}
    for name in CONVENTION_NAMES:
        try:
            rows.append(convert(weight_decay, source, name, lr=lr, peak_lr=peak_lr, **sizes))
        except UserError as exc:
            skipped[name] = str(exc)
    return rows, skipped
