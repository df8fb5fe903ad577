"""Steady states of weight decay on scale-invariant weights (those followed by a normalization layer).

There the gradient is orthogonal to the weight and shrinks as 1/‖p‖, so the decay's pull and the updates' push
balance at an equilibrium norm, where each step rotates the weight by a fixed expected angle (Kosson et al.
2024), and the gradient-to-weight ratio settles where AdamC's correction aims it (Defazio 2025).
"""

from __future__ import annotations

import math

from weightdecay.errors import UserError
from weightdecay.checks import fraction, positive
from weightdecay.optim.registry import OPTIMIZERS as _REGISTRY
from weightdecay.rules.conventions import convert, get_convention

__all__ = ["OPTIMIZERS", "rotation_kind", "equilibrium_rotation", "equilibrium_norm", "adamc_target_ratio"]

# The registry's rows with a derived formula (their ``rotation``): "adam" (AdamW), "sgd" (torch.optim.SGD's
# weight_decay, coupled L2 through the momentum, Kosson's setting), "sgdw" (decoupled: the decay bypasses the
# momentum buffer).
OPTIMIZERS: tuple[str, ...] = tuple(name for name, info in _REGISTRY.items() if info.rotation)


def rotation_kind(optimizer: str) -> str:
    """Which formula applies to a registered optimizer: ``adam``, ``sgd`` or ``sgdw``."""
    info = _REGISTRY.get(optimizer) if isinstance(optimizer, str) else None
    if info is None or info.rotation is None:
        names = [n for n, i in _REGISTRY.items() if i.rotation]
        raise UserError(f"Unknown optimizer: {optimizer!r}; choose one of {', '.join(names)} (the others have no "
                        "derived equilibrium)")
    return info.rotation


def _shrink(lr: float, weight_decay: float, optimizer: str, convention: str, peak_lr: float | None,
            **sizes: float | None) -> float:
    """The per-step decay ``lr·λ`` (``torch`` units) of the setting, the quantity every formula here uses."""
    if rotation_kind(optimizer) == "sgd" and get_convention(convention).mode == "l2":
        # torch.optim.SGD's own λ is an L2 coefficient: it decays by lr·λ per step (through the momentum buffer)
        return positive("lr", lr) * positive("weight_decay", weight_decay)
    # Any other convention (for "sgd" too) is read in its own units: the rotation follows s = lr·λ_torch.
    return convert(positive("weight_decay", weight_decay), convention, "torch", lr=lr, peak_lr=peak_lr,
                   **sizes).shrink


def equilibrium_rotation(lr: float, weight_decay: float, *, optimizer: str = "adamw", beta1: float = 0.9,
                         momentum: float = 0.0, convention: str = "torch", peak_lr: float | None = None,
                         **sizes: float | None) -> float:
    """Expected angle (radians) a scale-invariant weight turns per step at equilibrium.

    With ``s = lr·λ`` (torch units): AdamW ``sqrt(2·s·(1−β1)/(1+β1))``; SGD with L2 weight decay and momentum μ
    (``torch.optim.SGD``) ``sqrt(2·s/(1+μ))``, as in docs/math.md, "Hyperparameter rules"; decoupled SGDW with momentum μ
    ``sqrt(2·s·(1−μ)/(1+μ))``, since its decay does not pass through the momentum buffer while the updates do.

    Args:
        lr: learning rate.
        weight_decay: λ in ``convention``; for ``optimizer="sgd"``, ``torch.optim.SGD``'s L2 λ is the same
            number in ``torch`` or ``l2`` (``s = lr·λ``), and a value in another convention is converted first.
        optimizer: ``adamw``, ``sgd`` (coupled L2) or ``sgdw`` (decoupled).
        beta1: Adam's β1.
        momentum: SGD's μ (no dampening, PyTorch's form).
        convention: the convention of ``weight_decay``.
        peak_lr: reference lr for ``paper``/``corrected``.

    >>> round(equilibrium_rotation(1e-3, 0.1), 6)
    0.003244
    """
    s = _shrink(lr, weight_decay, optimizer, convention, peak_lr, **sizes)
    if rotation_kind(optimizer) == "adam":
        beta1 = fraction("beta1", beta1)
        return math.sqrt(2 * s * (1 - beta1) / (1 + beta1))
    mu = fraction("momentum", momentum)
    if rotation_kind(optimizer) == "sgd":
        return math.sqrt(2 * s / (1 + mu))
    return math.sqrt(2 * s * (1 - mu) / (1 + mu))


def equilibrium_norm(lr: float, weight_decay: float, *, optimizer: str = "adamw", numel: int | None = None,
                     grad_sq_norm: float | None = None, momentum: float = 0.0, convention: str = "torch",
                     peak_lr: float | None = None, **sizes: float | None) -> float:
    """The norm a scale-invariant weight settles at, where the decay balances the updates (Kosson et al. 2024).

    With ``s = lr·λ``: AdamW ``sqrt(lr·C/(2λ)) = lr·sqrt(C/(2s))`` for ``C`` elements (Adam's update has unit
    size per element); SGD ``(lr²·E‖g̃‖²/(2·s·(1−μ)))^(1/4)`` with L2 decay and
    ``(lr²·E‖g̃‖²/(2·s·(1−μ)²))^(1/4)`` for decoupled SGDW, ``E‖g̃‖²`` the squared gradient norm the weight would
    have at unit norm.

    Args:
        lr: learning rate.
        weight_decay: λ (see :func:`equilibrium_rotation`).
        optimizer: ``adamw``, ``sgd`` or ``sgdw``.
        numel: ``C``, the weight's number of elements (AdamW).
        grad_sq_norm: ``E‖g̃‖²`` at unit weight norm (SGD).
        momentum: SGD's μ.

    >>> round(equilibrium_norm(1e-3, 0.1, numel=1000), 6)
    2.236068
    """
    s = _shrink(lr, weight_decay, optimizer, convention, peak_lr, **sizes)
    lr = positive("lr", lr)
    if rotation_kind(optimizer) == "adam":
        if numel is None:
            raise UserError("AdamW's equilibrium norm needs numel, the weight's number of elements")
        return lr * math.sqrt(positive("numel", numel) / (2 * s))
    if grad_sq_norm is None:
        raise UserError("SGD's equilibrium norm needs grad_sq_norm, E‖g‖² of the weight at unit norm")
    mu = fraction("momentum", momentum)
    carried = (1 - mu) if rotation_kind(optimizer) == "sgd" else (1 - mu) ** 2
    return (lr * lr * positive("grad_sq_norm", grad_sq_norm) / (2 * s * carried)) ** 0.25


def adamc_target_ratio(lr: float, weight_decay: float, *, convention: str = "torch", peak_lr: float | None = None,
                       **sizes: float | None) -> float:
    """Steady-state ``‖g‖/‖p‖`` of a normalized layer under SGD: ``sqrt(2·s_t)/lr_t``.

    That is ``sqrt(2λ/lr_t)`` in ``torch`` mode, which grows as ``lr_t → 0`` at the end of a schedule, and
    ``sqrt(2λ/peak_lr)`` in ``corrected`` mode, AdamC's fix (Defazio 2025).

    Args:
        lr: the current learning rate ``lr_t``.
        weight_decay: λ in ``convention``.
        convention: e.g. ``torch`` or ``corrected``.
        peak_lr: the schedule's peak lr; defaults to ``lr``.

    >>> round(adamc_target_ratio(1e-4, 0.1, convention="corrected", peak_lr=1e-3), 4)
    14.1421
    """
    s = convert(positive("weight_decay", weight_decay), convention, "torch", lr=lr, peak_lr=peak_lr,
                **sizes).shrink
    return math.sqrt(2 * s) / positive("lr", lr)
