"""Schedule multipliers as pure functions of the step: ``η(k) = lr_k / peak_lr``.

Each multiplier is a small frozen dataclass whose ``__call__(k)`` returns ``η(k)`` in closed form, where ``k`` is
the number of optimizer steps taken so far (0 before the first update). Being closed forms, they depend on ``k``
only, so a resumed run continues exactly; being plain objects with plain fields, torch's ``LambdaLR`` saves and
restores them with its state dict.

Warm-up is shared by all of them: a linear ramp ``min(1, (k+1)/W)`` multiplies the schedule, so the first
update uses ``peak_lr/W`` and update ``W-1`` the full value. Decays that span the run (cosine, linear, WSD)
start when the warm-up ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Multiplier",
    "Constant",
    "Cosine",
    "Linear",
    "WarmupStableDecay",
    "StepDrop",
    "WarmRestarts",
    "KerasDecay",
    "restart_period",
]


def restart_period(epoch: float, T_0: float, T_mult: float) -> tuple[int, float, float]:
    """Which warm-restart period holds ``epoch``: returns ``(i, T_cur, T_i)``, all in (fractional) epochs.

    Periods are ``T_i = T_0 · T_mult^i`` and period ``i`` starts at ``T_0 · (T_mult^i − 1)/(T_mult − 1)``
    (``i · T_0`` when ``T_mult = 1``); ``T_cur = epoch − start_i`` (docs/math.md, "Hyperparameter rules", SGDR).

    Args:
        epoch: fractional epochs done so far, ``k / steps_per_epoch``.
        T_0: length of the first period in epochs (> 0, may be fractional).
        T_mult: growth factor of the periods (>= 1, may be fractional).

    >>> restart_period(3.5, T_0=1.0, T_mult=2.0)
    (2, 0.5, 4.0)
    """

    def start(i: int) -> float:
        return i * T_0 if T_mult == 1 else T_0 * (T_mult**i - 1) / (T_mult - 1)

    if T_mult == 1:
        i = int(epoch // T_0)
    else:
        i = int(math.log(epoch / T_0 * (T_mult - 1) + 1) / math.log(T_mult))
    # The float estimate can land one period off at a boundary; a relative tolerance puts a step that is a
    # boundary in exact arithmetic at the start of the new period, as torch's integer counter does.
    tol = 1e-9 * max(1.0, epoch)
    while start(i + 1) <= epoch + tol:
        i += 1
    while i > 0 and start(i) > epoch + tol:
        i -= 1
    return i, max(0.0, epoch - start(i)), T_0 * T_mult**i


def _half_cosine(progress: float) -> float:
    """``½(1 + cos(π·p))``: 1 at p = 0, 0 at p = 1."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Multiplier:
    """A schedule ``η(k) = ramp(k) · shape(k)`` with a linear warm-up ``ramp(k) = min(1, (k+1)/W)``."""

    warmup_steps: int = 0

    def __call__(self, k: int) -> float:
        ramp = min(1.0, (k + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        return ramp * self.shape(k)

    def shape(self, k: int) -> float:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Multiplier):
    """``η(k) = 1`` (after the warm-up)."""

    def shape(self, k: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Cosine(Multiplier):
    """Cosine decay to a floor: ``η(k) = f + (1−f)·½(1 + cos(π·p))``, ``p = (k−W)/(K−W)`` clipped to [0, 1].

    ``K`` is ``total_steps``, ``f`` the floor as a fraction of the peak; ``η`` reaches ``f`` at ``k = K``, the
    step after the last update, as torch's ``CosineAnnealingLR(T_max=K)`` does.
    """

    total_steps: int = 1
    floor: float = 0.0

    def shape(self, k: int) -> float:
        progress = min(1.0, max(0.0, (k - self.warmup_steps) / (self.total_steps - self.warmup_steps)))
        return self.floor + (1.0 - self.floor) * _half_cosine(progress)


@dataclass(frozen=True)
class Linear(Multiplier):
    """Linear decay to a floor: ``η(k) = 1 − (1−f)·p``, ``p = (k−W)/(K−W)`` clipped to [0, 1]."""

    total_steps: int = 1
    floor: float = 0.0

    def shape(self, k: int) -> float:
        progress = min(1.0, max(0.0, (k - self.warmup_steps) / (self.total_steps - self.warmup_steps)))
        return 1.0 - (1.0 - self.floor) * progress


@dataclass(frozen=True)
class WarmupStableDecay(Multiplier):
    """Warmup-stable-decay: ``η = 1`` until ``D = K − decay_steps``, then a decay to the floor ``f`` at ``K``.

    With ``p = (k−D)/decay_steps`` clipped to [0, 1], the decay is ``1 − (1−f)·p`` (``linear``),
    ``f + (1−f)·½(1 + cos(π·p))`` (``cosine``) or ``1 − (1−f)·sqrt(p)`` (``sqrt``, the "1−sqrt" cool-down).
    """

    total_steps: int = 1
    decay_steps: int = 1
    floor: float = 0.0
    decay_shape: str = "linear"

    def shape(self, k: int) -> float:
        progress = min(1.0, max(0.0, (k - (self.total_steps - self.decay_steps)) / self.decay_steps))
        if self.decay_shape == "cosine":
            return self.floor + (1.0 - self.floor) * _half_cosine(progress)
        if self.decay_shape == "sqrt":
            return 1.0 - (1.0 - self.floor) * math.sqrt(progress)
        return 1.0 - (1.0 - self.floor) * progress


@dataclass(frozen=True)
class StepDrop(Multiplier):
    """Step drops: ``η(k) = γ^n`` with ``n`` the number of milestone steps ``m_j <= k``."""

    milestone_steps: tuple[int, ...] = ()
    gamma: float = 0.1

    def shape(self, k: int) -> float:
        return self.gamma ** sum(1 for m in self.milestone_steps if k >= m)


@dataclass(frozen=True)
class WarmRestarts(Multiplier):
    """SGDR, stepped per batch: ``η = f + (1−f)·½(1 + cos(π·T_cur/T_i))`` with ``T_cur`` in fractional epochs.

    ``(i, T_cur, T_i) = restart_period(k / steps_per_epoch, T_0, T_mult)``; ``f`` is the floor
    ``η_min/η_max`` (docs/math.md, "Hyperparameter rules", warm restarts).
    """

    steps_per_epoch: int = 1
    T_0: float = 1.0
    T_mult: float = 2.0
    floor: float = 0.0

    def period(self, k: int) -> tuple[int, float, float]:
        """``(i, T_cur, T_i)`` at step ``k``, in epochs."""
        return restart_period(k / self.steps_per_epoch, self.T_0, self.T_mult)

    def restart_steps(self, total_steps: int) -> list[int]:
        """The steps ``0 < k < total_steps`` at which a new period starts; evaluate the model just before them.

        >>> WarmRestarts(steps_per_epoch=10, T_0=1.0, T_mult=2.0).restart_steps(100)
        [10, 30, 70]
        """
        return [k for k in range(1, total_steps) if self.period(k)[0] != self.period(k - 1)[0]]

    def shape(self, k: int) -> float:
        _, t_cur, t_i = self.period(k)
        return self.floor + (1.0 - self.floor) * _half_cosine(t_cur / t_i)


@dataclass(frozen=True)
class OneCycle(Multiplier):
    """torch's ``OneCycleLR`` (two phases) as a multiplier of the peak ``max_lr``, stepped per batch.

    From ``1/div_factor`` up to 1 over the first ``pct_start·K − 1`` steps, then down to
    ``1/(div_factor·final_div_factor)`` at step ``K − 1``, each phase a half cosine (or a line with
    ``anneal="linear"``), exactly as ``torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps=K)``. The group's
    ``lr`` is the peak, so ``peak_lr`` is ``max_lr``. The momentum is not cycled (torch's ``cycle_momentum=False``).
    """

    total_steps: int = 1
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"

    def shape(self, k: int) -> float:
        start, peak = 1.0 / self.div_factor, 1.0
        end = start / self.final_div_factor
        up_end = float(self.pct_start * self.total_steps) - 1
        phases = ((0.0, up_end, start, peak), (up_end, float(self.total_steps - 1), peak, end))
        for i, (begin, stop, a, b) in enumerate(phases):
            if k <= stop or i == len(phases) - 1:
                pct = (k - begin) / (stop - begin)
                if self.anneal == "linear":
                    return (b - a) * pct + a
                return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class KerasDecay(Multiplier):
    """The legacy Keras ``decay`` argument, a learning-rate schedule: ``η(k) = 1 / (1 + decay·k)``."""

    decay: float = 0.0

    def shape(self, k: int) -> float:
        return 1.0 / (1.0 + self.decay * k)
