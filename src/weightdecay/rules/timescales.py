"""The EMA view of weight decay (Wang & Aitchison 2024) and normalized weight decay (Loshchilov & Hutter 2019).

Under decoupled decay the weights are an exponential moving average of recent updates over ``τ_iter = 1/s``
steps, ``s`` the per-step shrink (``lr·λ`` in ``torch`` units); in epochs ``τ_epoch = τ_iter·b/B``.
"""

from __future__ import annotations

from dataclasses import dataclass

from weightdecay.errors import UserError
from weightdecay.checks import nonnegative, positive
from weightdecay.rules.conventions import convert
from weightdecay.schedules import normalized_weight_decay

__all__ = ["Timescale", "ema_timescale", "weight_decay_for_timescale", "normalized_weight_decay",
           "weight_decay_norm"]


@dataclass(frozen=True)
class Timescale:
    """How far back the weights remember: ``iterations = 1/s`` and ``epochs = iterations·b/B`` (None without b, B)."""

    iterations: float
    epochs: float | None


def ema_timescale(lr: float, weight_decay: float, *, convention: str = "torch", peak_lr: float | None = None,
                  batch_size: int | None = None, dataset_size: int | None = None, **sizes: float | None
                  ) -> Timescale:
    """The EMA timescale of decoupled weight decay: ``τ_iter = 1/(lr·λ)`` steps, ``τ_epoch = τ_iter·b/B``.

    In other conventions ``lr·λ`` is the per-step shrink ``s_t`` of the decay table at ``lr``.

    Args:
        lr: the learning rate (the peak, for a schedule).
        weight_decay: λ in ``convention``.
        convention: a name of :data:`weightdecay.rules.CONVENTION_NAMES`.
        peak_lr: reference lr for ``paper``/``corrected``; defaults to ``lr``.
        batch_size, dataset_size: ``b`` and ``B``, for ``τ_epoch``.
        sizes: ``epochs``/``total_steps`` for the normalized conventions.

    >>> ema_timescale(1e-3, 0.1, batch_size=128, dataset_size=50_000)
    Timescale(iterations=10000.0, epochs=25.6)
    """
    s = convert(weight_decay, convention, "torch", lr=lr, peak_lr=peak_lr, batch_size=batch_size,
                dataset_size=dataset_size, **sizes).shrink
    if s == 0:
        raise UserError("weight_decay is 0: there is no decay, so no timescale; give a positive weight_decay")
    tau_iter = 1.0 / s
    if batch_size is None or dataset_size is None:
        return Timescale(tau_iter, None)
    return Timescale(tau_iter, tau_iter * positive("batch_size", batch_size) / positive("dataset_size", dataset_size))


def weight_decay_for_timescale(*, lr: float, tau_epoch: float | None = None, tau_iter: float | None = None,
                               batch_size: int | None = None, dataset_size: int | None = None,
                               convention: str = "torch", peak_lr: float | None = None) -> float:
    """The λ that gives an EMA timescale: ``λ = b / (lr · B · τ_epoch)`` (or ``1/(lr·τ_iter)``) in ``torch`` units.

    Keeping the best ``τ_epoch`` while scaling gives λ ∝ 1/B at fixed epochs, and λ ∝ fan_in under μP
    (lr ∝ 1/fan_in). The answer is written in ``convention``.

    Args:
        lr: the learning rate (the peak, for a schedule).
        tau_epoch: the timescale in epochs (needs ``batch_size`` and ``dataset_size``), or
        tau_iter: the timescale in steps.
        convention: the convention of the answer.
        peak_lr: reference lr for ``paper``/``corrected``; defaults to ``lr``.

    >>> weight_decay_for_timescale(lr=1e-3, tau_epoch=25.6, batch_size=128, dataset_size=50_000)
    0.1
    """
    if (tau_epoch is None) == (tau_iter is None):
        raise UserError("Give exactly one of tau_epoch and tau_iter")
    if tau_epoch is not None:
        if batch_size is None or dataset_size is None:
            raise UserError("tau_epoch needs batch_size and dataset_size to count steps; pass them or use tau_iter")
        tau_iter = positive("tau_epoch", tau_epoch) * positive("dataset_size", dataset_size) / positive(
            "batch_size", batch_size)
    lam_torch = 1.0 / (positive("tau_iter", tau_iter) * positive("lr", lr))
    return convert(lam_torch, "torch", convention, lr=lr, peak_lr=peak_lr, batch_size=batch_size,
                   dataset_size=dataset_size).weight_decay


def weight_decay_norm(weight_decay: float, batch_size: int, dataset_size: int, epochs: float) -> float:
    """The inverse of :func:`normalized_weight_decay`: ``λ_norm = λ / sqrt(b / (B·T))``, λ in ``paper`` units.

    Args:
        weight_decay: the per-step λ in ``paper`` units.
        batch_size: ``b``.
        dataset_size: ``B``.
        epochs: ``T`` (the current restart period under warm restarts).

    >>> round(weight_decay_norm(1.26e-4, 128, 50_000, 100), 4)
    0.0249
    """
    return nonnegative("weight_decay", weight_decay) / normalized_weight_decay(1.0, batch_size, dataset_size, epochs)
