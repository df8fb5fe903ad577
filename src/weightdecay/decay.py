"""The decay conventions: what multiplies the weight decay λ. One table, one place.

Every decoupled convention shrinks the weights by a factor ``(1 - s_t)`` before the gradient step; the modes
differ only in ``s_t`` (``docs/math.md``, "Decay conventions"). ``lr_t`` is the group's current learning rate (what a scheduler
writes into ``group["lr"]``), ``peak_lr`` its reference learning rate and ``η_t = lr_t / peak_lr``:

==============  =========================================  ==============================================
mode            s_t                                        used by
==============  =========================================  ==============================================
``torch``       ``lr_t · λ``                               torch.optim.AdamW, optax, Keras 3, BERT, timm
``paper``       ``η_t · λ``                                Loshchilov & Hutter, Composer, optimi
``constant``    ``λ``                                      TF Addons AdamW, pytorch_optimizer fixed_decay
``corrected``   ``(lr_t² / peak_lr) · λ``                  AdamC / SGDC (Defazio 2025), timm
``stable``      ``lr_t · λ / sqrt(mean(v̂_t))``             AdamS (Xie et al. 2023); Adam only
``l2``          none: ``g ← g + λ·p`` before the moments   torch.optim.Adam / SGD ``weight_decay``
==============  =========================================  ==============================================

Optimizers ask :func:`shrink` for ``s_t`` and never re-derive it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from weightdecay.errors import ShrinkTooLargeError, UserError

__all__ = ["DecayMode", "DECAY_MODES", "MODE_NAMES", "get_mode", "shrink", "check_shrink", "lr_coefficient",
           "coupled_weight_decay"]


@dataclass(frozen=True)
class DecayMode:
    """One row of the table: a named convention and the plain sentence that defines it."""

    name: str
    factor: str  # what multiplies λ in s_t, as written in docs/math.md
    decoupled: bool  # False only for "l2", which adds λ·p to the gradient instead of shrinking
    adam_only: bool  # "stable" needs Adam's second moment
    uses_peak_lr: bool  # s_t divides by peak_lr, which must then be > 0
    used_by: str
    sentence: str
    weight_decay_means: str = ""  # what λ is in this mode, for error messages


DECAY_MODES: dict[str, DecayMode] = {
    m.name: m
    for m in (
        DecayMode("torch", "lr_t", True, False, False,
                  "torch.optim.AdamW, optax.adamw, Keras 3, BERT AdamWeightDecay, timm adamw",
                  "Each step shrinks the weights by lr_t·λ: the decay moves with the learning rate.",
                  "λ is a rate per unit of learning rate: each step removes the fraction lr_t·λ of the weights"),
        DecayMode("paper", "lr_t / peak_lr", True, False, True,
                  "Loshchilov & Hutter AdamW/SGDW, Composer DecoupledAdamW/SGDW, optimi decouple_lr",
                  "Each step shrinks the weights by η_t·λ: the decay follows the schedule, not the lr's size.",
                  "λ is the fraction of the weights removed per step at the schedule's peak (lr_t = peak_lr)"),
        DecayMode("constant", "1", True, False, False,
                  "TF Addons AdamW, pytorch_optimizer fixed_decay=True",
                  "Each step shrinks the weights by λ, whatever the learning rate.",
                  "λ is the fraction of the weights removed at every step, whatever the learning rate"),
        DecayMode("corrected", "lr_t^2 / peak_lr", True, False, True,
                  "AdamC / SGDC (Defazio 2025), timm corrected_weight_decay",
                  "Each step shrinks the weights by (lr_t²/peak_lr)·λ: AdamC's correction.",
                  "λ is a rate per unit of learning rate at the peak, scaled down by η_t = lr_t/peak_lr below it"),
        DecayMode("stable", "lr_t / sqrt(mean(v_hat_t))", True, True, False,
                  "AdamS / Stable Weight Decay (Xie et al. 2023)",
                  "Each step shrinks the weights by lr_t·λ/sqrt(mean v̂_t), over all parameters.",
                  "λ is a rate per unit of learning rate, divided by the RMS size of Adam's second moment"),
        DecayMode("l2", "(coupled: g <- g + λ·p)", False, False, False,
                  "torch.optim.Adam(weight_decay=...), torch.optim.SGD(weight_decay=...)",
                  "No shrink: λ·p is added to the gradient before the moments (an L2 penalty).",
                  "λ is the coefficient of an L2 penalty (λ/2)·|p|² whose gradient λ·p enters the moments"),
    )
}

MODE_NAMES: tuple[str, ...] = tuple(DECAY_MODES)


def get_mode(name: str, *, adam: bool = True, optimizer: str = "SGDW") -> DecayMode:
    """Look up a decay mode by name, with an error that lists the valid choices.

    ``adam`` says whether the optimizer has Adam's second moment (``stable`` needs it; the optimizer registry's
    ``second_moment``); ``optimizer`` names it in the error.
    """
    mode = DECAY_MODES.get(name) if isinstance(name, str) else None
    if mode is None:
        raise UserError(f"Invalid decay mode: {name!r}; choose one of {', '.join(MODE_NAMES)}")
    if mode.adam_only and not adam:
        valid = ", ".join(n for n, m in DECAY_MODES.items() if not m.adam_only)
        raise UserError(f"Invalid decay mode for {optimizer}: {name!r} needs Adam's second moment; "
                        f"choose one of {valid}")
    return mode


def shrink(mode: str, weight_decay: float, lr: float, peak_lr: float, mean_v_hat: float | None = None) -> float:
    """The per-step shrink ``s_t`` of a decoupled mode (``p ← p·(1 - s_t) - …``); 0.0 for ``l2``.

    Args:
        mode: a name from :data:`DECAY_MODES`.
        weight_decay: the group's λ.
        lr: the group's current learning rate ``lr_t``.
        peak_lr: the group's reference learning rate.
        mean_v_hat: for ``stable`` only, the mean of the bias-corrected second moment over every element the
            optimizer updates, after this step's moment update.

    >>> shrink("paper", 0.1, lr=5e-4, peak_lr=1e-3)
    0.05
    """
    if mode == "torch":
        return lr * weight_decay
    if mode == "paper":
        return (lr / peak_lr) * weight_decay
    if mode == "constant":
        return weight_decay
    if mode == "corrected":
        return (lr * lr / peak_lr) * weight_decay
    if mode == "stable":
        if mean_v_hat is None:
            raise ValueError("decay mode 'stable' needs mean_v_hat")
        # AdamS divides by sqrt(mean v̂); with no second moment yet (all-zero gradients) nothing is normalized.
        return lr * weight_decay / math.sqrt(mean_v_hat) if mean_v_hat > 0 else 0.0
    if mode == "l2":
        return 0.0
    raise UserError(f"Invalid decay mode: {mode!r}; choose one of {', '.join(MODE_NAMES)}")


def check_shrink(mode: str, shrink_t: float, weight_decay: float, lr: float, peak_lr: float,
                 where: str = "") -> None:
    """Refuse a step whose shrink ``s_t`` is 1 or more: ``p·(1 - s_t)`` would zero the weights or flip their sign.

    Call it before the step touches any tensor. The message states ``s_t``, the mode's formula with this step's
    numbers and what λ means in the mode, so the fix (a smaller λ, or the schedule's real ``peak_lr``) is plain.

    Args:
        mode: a name from :data:`DECAY_MODES`.
        shrink_t: this step's ``s_t`` (from :func:`shrink`).
        weight_decay, lr, peak_lr: the group's λ, ``lr_t`` and ``peak_lr``, quoted in the message.
        where: names the parameter group, e.g. ``"param_groups[1]: "``.

    >>> check_shrink("paper", shrink("paper", 0.1, lr=1e-3, peak_lr=1e-3), 0.1, lr=1e-3, peak_lr=1e-3)
    >>> check_shrink("constant", 1.5, 1.5, lr=1e-3, peak_lr=1e-3)
    Traceback (most recent call last):
    ...
    weightdecay.errors.UserError: decay='constant' would shrink the weights by s_t = 1.5 this step ...
    """
    if not shrink_t >= 1.0:
        return
    m = get_mode(mode)
    formula = {"torch": "lr_t·λ", "paper": "(lr_t/peak_lr)·λ", "constant": "λ", "corrected": "(lr_t²/peak_lr)·λ",
               "stable": "lr_t·λ/sqrt(mean v̂_t)"}.get(mode, "λ")
    numbers = {"torch": f"{lr:g}·{weight_decay:g}", "paper": f"({lr:g}/{peak_lr:g})·{weight_decay:g}",
               "constant": f"{weight_decay:g}", "corrected": f"({lr:g}²/{peak_lr:g})·{weight_decay:g}",
               "stable": f"{lr:g}·{weight_decay:g}/sqrt(mean v̂_t)"}.get(mode, "")
    fix = ("; if the schedule peaks above peak_lr, pass its real peak as peak_lr=" if m.uses_peak_lr else "")
    raise ShrinkTooLargeError(
        f"{where}decay={mode!r} would shrink the weights by s_t = {shrink_t:.4g} this step (s_t = {formula} = "
        f"{numbers}), which zeroes the weights (s_t = 1) or flips their sign (s_t > 1). In mode {mode!r}, "
        f"{m.weight_decay_means}; lower weight_decay so that s_t stays well below 1{fix}"
    )


def coupled_weight_decay(mode: str, weight_decay: float) -> float:
    """The λ added to the gradient (``g ← g + λ·p``): the group's λ for ``l2``, 0 for every decoupled mode."""
    return weight_decay if mode == "l2" else 0.0


def lr_coefficient(mode: str, weight_decay: float, lr: float, peak_lr: float,
                   mean_v_hat: float | None = None) -> float | None:
    """``c_t`` with ``s_t = lr_t · c_t``: the weight decay to hand to a torch kernel that shrinks by ``lr·wd``.

    This is how every decoupled mode runs through torch's fused and foreach AdamW kernels: ``torch`` passes λ,
    ``paper`` λ/peak_lr, ``constant`` λ/lr_t, ``corrected`` λ·lr_t/peak_lr, ``stable`` λ/sqrt(mean v̂_t).
    Returns None where no such coefficient exists (``lr_t = 0`` with a shrink that is not zero): the caller then
    applies :func:`shrink` itself. Returns 0.0 for ``l2``.

    >>> lr_coefficient("paper", 0.1, lr=5e-4, peak_lr=1e-3)
    100.0
    """
    if mode == "torch":
        return weight_decay  # exactly what torch.optim.AdamW hands its kernels
    if mode == "paper":
        return weight_decay / peak_lr
    if mode == "corrected":
        return weight_decay * lr / peak_lr
    if mode == "l2":
        return 0.0
    s = shrink(mode, weight_decay, lr, peak_lr, mean_v_hat)
    if lr > 0:
        return s / lr
    return 0.0 if s == 0 else None
