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
``power``       ``lr_t^p · λ``, p the group's lr_exponent  AXLearn ``learning_rate_exponent``
``stable``      ``lr_t · λ / sqrt(mean(v̂_t))``             AdamS (Xie et al. 2023); Adam only
``l2``          none: ``g ← g + λ·p`` before the moments   torch.optim.Adam / SGD ``weight_decay``
==============  =========================================  ==============================================

Each row carries what computes its shrink: ``s_t = λ · lr_t^a / peak_lr^b``, divided by ``sqrt(statistic)``
where the mode reads one from the optimizer's state; ``a`` is a number or a per-group key (:class:`LrExponent`).
:func:`shrink`, :func:`lr_coefficient`, :func:`check_shrink` and the conversions are generic over the rows, so a
new convention is one row here. Optimizers ask :func:`shrink` for ``s_t`` and never re-derive it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from weightdecay.errors import ShrinkTooLargeError, UserError

__all__ = ["DecayMode", "Statistic", "LrExponent", "MEAN_V_HAT", "DECAY_MODES", "MODE_NAMES", "get_mode", "shrink",
           "check_shrink", "lr_coefficient", "coupled_weight_decay", "mode_options"]


@dataclass(frozen=True)
class Statistic:
    """A training statistic that a mode's ``s_t`` divides by the square root of (AdamS's mean of v̂_t).

    ``name`` is the keyword it travels under, ``symbol`` how formulas write it, ``needs`` what the optimizer must
    keep to compute it (the optimizer registry's ``second_moment``).
    """

    name: str
    symbol: str
    needs: str


MEAN_V_HAT = Statistic("mean_v_hat", "mean v̂_t", "Adam's second moment")


@dataclass(frozen=True)
class LrExponent:
    """An exponent of ``lr_t`` set per parameter group, under the group key ``key`` (default ``default``)."""

    key: str
    default: float
    symbol: str = "p"


@dataclass(frozen=True)
class DecayMode:
    """One row of the table: a named convention, what computes its shrink, and the plain sentence that defines it.

    ``s_t = λ · lr_t^lr_power / peak_lr^peak_power`` (then ``/ sqrt(statistic)`` where ``statistic`` is set);
    ``lr_power`` None marks the coupled mode (``g ← g + λ·p``), which shrinks nothing.
    """

    name: str
    lr_power: float | LrExponent | None
    peak_power: float
    statistic: Statistic | None
    used_by: str
    sentence: str
    weight_decay_means: str = ""  # what λ is in this mode, for error messages

    @property
    def decoupled(self) -> bool:
        """It shrinks the weights (every mode but the coupled L2)."""
        return self.lr_power is not None

    @property
    def uses_peak_lr(self) -> bool:
        """``s_t`` divides by ``peak_lr``, which must then be > 0."""
        return self.peak_power != 0

    @property
    def options(self) -> dict[str, float]:
        """The group keys the shrink reads besides lr, weight_decay and peak_lr, with their defaults."""
        return {self.lr_power.key: self.lr_power.default} if isinstance(self.lr_power, LrExponent) else {}

    def exponent(self, options: Mapping[str, Any] | None = None) -> float:
        """The power of ``lr_t`` in ``s_t`` (a per-group key's value where the row says so)."""
        if isinstance(self.lr_power, LrExponent):
            value = (options or {}).get(self.lr_power.key, self.lr_power.default)
            return float(value)
        return 0.0 if self.lr_power is None else self.lr_power

    def formula(self, lr: str = "lr_t", peak_lr: str = "peak_lr", weight_decay: str = "λ",
                options: Mapping[str, Any] | None = None, exponent: str | None = None) -> str:
        """``s_t`` written out, e.g. ``(lr_t²/peak_lr)·λ``; with numbers for the names, this step's arithmetic."""
        if not self.decoupled:
            return f"(coupled: g <- g + {weight_decay}·p)"
        a = self.exponent(options)
        if isinstance(self.lr_power, LrExponent):
            power = f"^{exponent if exponent is not None else self.lr_power.symbol}"
        else:
            power = {0: "", 1: "", 2: "²"}.get(a, f"^{a:g}")
        core = "" if a == 0 and not isinstance(self.lr_power, LrExponent) else f"{lr}{power}"
        if self.peak_power:
            divisor = peak_lr if self.peak_power == 1 else f"{peak_lr}^{self.peak_power:g}"
            core = f"({core or '1'}/{divisor})"
        text = f"{core}·{weight_decay}" if core else weight_decay
        return f"{text}/sqrt({self.statistic.symbol})" if self.statistic is not None else text


def _power(x: Any, exponent: float) -> Any:
    """``x ** exponent``, by repeated multiplication for whole exponents so ``lr_t²`` is exactly ``lr_t·lr_t``."""
    if float(exponent).is_integer() and 0 < exponent <= 4:
        out = x
        for _ in range(int(exponent) - 1):
            out = out * x
        return out
    return 1.0 if exponent == 0 else x ** exponent


def _over_statistic(mode: DecayMode, value: Any, statistic: Any) -> Any:
    """``value / sqrt(statistic)`` for a row that reads a statistic, else ``value``; 0 while the statistic is 0
    (all-zero gradients so far: nothing to normalize by). ``statistic`` is a float, or a tensor in a traced step."""
    if mode.statistic is None:
        return value
    if statistic is None:
        raise ValueError(f"decay mode {mode.name!r} needs {mode.statistic.name}")
    if hasattr(statistic, "rsqrt"):  # a tensor: no host read
        return value * (statistic.clamp(min=1e-300).rsqrt() * (statistic > 0))
    return value / math.sqrt(statistic) if statistic > 0 else 0.0


def _row(mode: str | DecayMode) -> DecayMode:
    return mode if isinstance(mode, DecayMode) else get_mode(mode)


DECAY_MODES: dict[str, DecayMode] = {
    m.name: m
    for m in (
        DecayMode("torch", 1, 0, None,
                  "torch.optim.AdamW, optax.adamw, Keras 3, BERT AdamWeightDecay, timm adamw",
                  "Each step shrinks the weights by lr_t·λ: the decay moves with the learning rate.",
                  "λ is a rate per unit of learning rate: each step removes the fraction lr_t·λ of the weights"),
        DecayMode("paper", 1, 1, None,
                  "Loshchilov & Hutter AdamW/SGDW, Composer DecoupledAdamW/SGDW, optimi decouple_lr",
                  "Each step shrinks the weights by η_t·λ: the decay follows the schedule, not the lr's size.",
                  "λ is the fraction of the weights removed per step at the schedule's peak (lr_t = peak_lr)"),
        DecayMode("constant", 0, 0, None,
                  "TF Addons AdamW, pytorch_optimizer fixed_decay=True",
                  "Each step shrinks the weights by λ, whatever the learning rate.",
                  "λ is the fraction of the weights removed at every step, whatever the learning rate"),
        DecayMode("corrected", 2, 1, None,
                  "AdamC / SGDC (Defazio 2025), timm corrected_weight_decay",
                  "Each step shrinks the weights by (lr_t²/peak_lr)·λ: AdamC's correction.",
                  "λ is a rate per unit of learning rate at the peak, scaled down by η_t = lr_t/peak_lr below it"),
        DecayMode("power", LrExponent("lr_exponent", 1.0), 0, None,
                  "AXLearn add_decayed_weights(learning_rate_exponent=p)",
                  "Each step shrinks the weights by lr_t^p·λ, p the group's lr_exponent (0: constant, 1: torch).",
                  "λ is the fraction of the weights removed per step at lr_t = 1, scaled by lr_t^p (p = lr_exponent, "
                  "default 1)"),
        DecayMode("stable", 1, 0, MEAN_V_HAT,
                  "AdamS / Stable Weight Decay (Xie et al. 2023)",
                  "Each step shrinks the weights by lr_t·λ/sqrt(mean v̂_t), over all parameters.",
                  "λ is a rate per unit of learning rate, divided by the RMS size of Adam's second moment"),
        DecayMode("l2", None, 0, None,
                  "torch.optim.Adam(weight_decay=...), torch.optim.SGD(weight_decay=...)",
                  "No shrink: λ·p is added to the gradient before the moments (an L2 penalty).",
                  "λ is the coefficient of an L2 penalty (λ/2)·|p|² whose gradient λ·p enters the moments"),
    )
}

MODE_NAMES: tuple[str, ...] = tuple(DECAY_MODES)


def get_mode(name: str, *, adam: bool = True, optimizer: str = "SGDW") -> DecayMode:
    """Look up a decay mode by name, with an error that lists the valid choices.

    ``adam`` says whether the optimizer keeps Adam's second moment, which a mode's statistic may need (the
    optimizer registry's ``second_moment``); ``optimizer`` names it in the error.
    """
    mode = DECAY_MODES.get(name) if isinstance(name, str) else None
    if mode is None:
        raise UserError(f"Invalid decay mode: {name!r}; choose one of {', '.join(MODE_NAMES)}")
    if mode.statistic is not None and not adam:
        valid = ", ".join(n for n, m in DECAY_MODES.items() if m.statistic is None)
        raise UserError(f"Invalid decay mode for {optimizer}: {name!r} needs {mode.statistic.needs}; "
                        f"choose one of {valid}")
    return mode


def mode_options(mode: str | DecayMode, group: Mapping[str, Any]) -> dict[str, float]:
    """The group keys the mode's shrink reads (defaults filled in), each checked: a finite number >= 0.

    >>> mode_options("torch", {"lr": 1e-3})
    {}
    """
    out = {}
    for key, default in _row(mode).options.items():
        value = group.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
            raise UserError(f"Invalid {key}: {value!r} (decay={_row(mode).name!r} reads it as the exponent of lr_t "
                            "in s_t; it must be a finite number >= 0)")
        out[key] = float(value)
    return out


def shrink(mode: str | DecayMode, weight_decay: float, lr: Any, peak_lr: float, statistic: Any = None,
           options: Mapping[str, Any] | None = None) -> Any:
    """The per-step shrink ``s_t`` of a decoupled mode (``p ← p·(1 - s_t) - …``); 0.0 for ``l2``.

    Args:
        mode: a name from :data:`DECAY_MODES` (or its row).
        weight_decay: the group's λ.
        lr: the group's current learning rate ``lr_t`` (a float; a tensor inside a traced step).
        peak_lr: the group's reference learning rate.
        statistic: the value of the row's :class:`Statistic` where it has one (``stable``: the mean of the
            bias-corrected second moment over every element the optimizer updates, after this step's moment update).
        options: the group keys the row reads (the parameter group itself will do); missing keys take the row's
            defaults.

    >>> shrink("paper", 0.1, lr=5e-4, peak_lr=1e-3)
    0.05
    """
    m = _row(mode)
    if not m.decoupled:
        return 0.0
    s = _power(lr, m.exponent(options))
    if m.peak_power:
        s = s / _power(peak_lr, m.peak_power)
    return _over_statistic(m, s * weight_decay, statistic)


def check_shrink(mode: str | DecayMode, shrink_t: float, weight_decay: float, lr: float, peak_lr: float,
                 where: str = "", options: Mapping[str, Any] | None = None) -> None:
    """Refuse a step whose shrink ``s_t`` is 1 or more: ``p·(1 - s_t)`` would zero the weights or flip their sign.

    Call it before the step touches any tensor. The message states ``s_t``, the mode's formula with this step's
    numbers and what λ means in the mode, so the fix (a smaller λ, or the schedule's real ``peak_lr``) is plain.

    Args:
        mode: a name from :data:`DECAY_MODES`.
        shrink_t: this step's ``s_t`` (from :func:`shrink`).
        weight_decay, lr, peak_lr: the group's λ, ``lr_t`` and ``peak_lr``, quoted in the message.
        where: names the parameter group, e.g. ``"param_groups[1]: "``.
        options: the group keys the row reads, quoted in the message.

    >>> check_shrink("paper", shrink("paper", 0.1, lr=1e-3, peak_lr=1e-3), 0.1, lr=1e-3, peak_lr=1e-3)
    >>> check_shrink("constant", 1.5, 1.5, lr=1e-3, peak_lr=1e-3)
    Traceback (most recent call last):
    ...
    weightdecay.errors.ShrinkTooLargeError: decay='constant' would shrink the weights by s_t = 1.5 this step ...
    """
    if not shrink_t >= 1.0:
        return
    m = _row(mode)
    numbers = m.formula(f"{lr:g}", f"{peak_lr:g}", f"{weight_decay:g}", options, f"{m.exponent(options):g}")
    fix = ("; if the schedule peaks above peak_lr, pass its real peak as peak_lr=" if m.uses_peak_lr else "")
    raise ShrinkTooLargeError(
        f"{where}decay={m.name!r} would shrink the weights by s_t = {shrink_t:.4g} this step (s_t = {m.formula()} = "
        f"{numbers}), which zeroes the weights (s_t = 1) or flips their sign (s_t > 1). In mode {m.name!r}, "
        f"{m.weight_decay_means}; lower weight_decay so that s_t stays well below 1{fix}"
    )


def coupled_weight_decay(mode: str | DecayMode, weight_decay: float) -> float:
    """The λ added to the gradient (``g ← g + λ·p``): the group's λ for ``l2``, 0 for every decoupled mode."""
    return 0.0 if _row(mode).decoupled else weight_decay


def lr_coefficient(mode: str | DecayMode, weight_decay: float, lr: float, peak_lr: float, statistic: Any = None,
                   options: Mapping[str, Any] | None = None) -> float | None:
    """``c_t`` with ``s_t = lr_t · c_t``: the weight decay to hand to a torch kernel that shrinks by ``lr·wd``.

    This is how every decoupled mode runs through torch's fused and foreach AdamW kernels:
    ``c_t = λ · lr_t^(a-1) / peak_lr^b`` (``/ sqrt(statistic)``): ``torch`` passes λ itself, ``paper`` λ/peak_lr,
    ``constant`` λ/lr_t, ``corrected`` λ·lr_t/peak_lr, ``stable`` λ/sqrt(mean v̂_t). Returns None where no such
    coefficient exists (``lr_t = 0`` with a shrink that is not zero): the caller then applies :func:`shrink`
    itself. Returns 0.0 for ``l2``.

    >>> lr_coefficient("paper", 0.1, lr=5e-4, peak_lr=1e-3)
    100.0
    """
    m = _row(mode)
    if not m.decoupled:
        return 0.0
    a = m.exponent(options)
    if a < 1 and lr == 0:
        return 0.0 if shrink(m, weight_decay, lr, peak_lr, statistic, options) == 0 else None
    c = weight_decay  # torch: exactly what torch.optim.AdamW hands its kernels
    if a > 1:
        c = c * _power(lr, a - 1)
    elif a < 1:
        c = c / _power(lr, 1 - a)
    if m.peak_power:
        c = c / _power(peak_lr, m.peak_power)
    return _over_statistic(m, c, statistic)
