"""Carry a tuned weight decay to a new learning rate, batch size, dataset size, run length or width.

Every rule fixes one quantity of the per-step shrink at the peak, ``s = lr·λ`` in ``torch`` units (the
decoupled quantity; it is ``λ`` itself in ``paper`` units):

- ``keep-lr-wd`` (default): ``s' = s``. With PyTorch's AdamW: when the lr doubles, halve the weight decay; in
  ``paper`` units λ stays put.
- ``keep-tau-epoch`` (Wang & Aitchison 2024): ``τ_epoch = b/(s·B)`` fixed, so ``s' = s·(b'/b)·(B/B')``.
- ``normalized`` (Loshchilov & Hutter 2019): ``λ_norm`` fixed, so ``s' = s·sqrt((b'/b)·(B/B')·(T/T'))``.

A width change applies μP's ``lr ∝ 1/fan_in`` to the new lr before the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from weightdecay.errors import UserError
from weightdecay.checks import positive
from weightdecay.rules.conventions import convert

__all__ = ["TRANSFER_RULES", "Transfer", "transfer", "transfer_muon"]

TRANSFER_RULES: dict[str, str] = {
    "keep-lr-wd": "keep the per-step decay lr·λ (torch units) fixed",
    "keep-tau-epoch": "keep the EMA timescale in epochs, τ_epoch = b/(lr·λ·B), fixed",
    "normalized": "keep the normalized weight decay λ_norm = λ_paper/sqrt(b/(B·T)) fixed",
}

Pair = float | tuple[float, float] | None


@dataclass(frozen=True)
class Transfer:
    """The new setting: ``weight_decay`` in the same convention, at the new ``lr``."""

    weight_decay: float
    lr: float
    rule: str
    convention: str
    shrink: float  # the new per-step shrink at the peak, s'


def _pair(name: str, value: Pair) -> tuple[float, float] | None:
    """``(before, after)`` from a pair or from one number (unchanged)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UserError(f"Invalid {name}: {value!r}; give (before, after) or one number for no change")
        return positive(f"{name} (before)", value[0]), positive(f"{name} (after)", value[1])
    v = positive(name, value)
    return v, v


def _ratio(pair: tuple[float, float] | None) -> float:
    """after/before, 1 when the quantity is not given."""
    return 1.0 if pair is None else pair[1] / pair[0]


def transfer(weight_decay: float, *, lr: Pair, rule: str = "keep-lr-wd", convention: str = "torch",
             batch_size: Pair = None, dataset_size: Pair = None, epochs: Pair = None, width: Pair = None
             ) -> Transfer:
    """A new weight decay for a changed setup, under a named rule (see :data:`TRANSFER_RULES`).

    Each quantity is ``(before, after)``, or one number when it does not change; ``lr`` is the peak lr.

    Args:
        weight_decay: the tuned λ, in ``convention``.
        lr: ``(before, after)`` peak learning rates, or one number.
        rule: ``keep-lr-wd`` (default), ``keep-tau-epoch`` or ``normalized``.
        convention: the convention of ``weight_decay`` and of the answer (``torch``, ``paper``, frameworks…).
        batch_size, dataset_size, epochs: ``(before, after)`` where they change.
        width: ``(before, after)`` fan-in; scales the new lr by ``before/after`` (μP).

    >>> transfer(0.1, lr=(1e-3, 2e-3)).weight_decay
    0.05
    >>> round(transfer(0.1, lr=1e-3, rule="keep-tau-epoch", dataset_size=(50_000, 100_000)).weight_decay, 12)
    0.05
    """
    if rule not in TRANSFER_RULES:
        raise UserError(f"Unknown transfer rule: {rule!r}; choose one of {', '.join(TRANSFER_RULES)}")
    lrs = _pair("lr", lr)
    if lrs is None:
        raise UserError("transfer needs lr: the tuned peak lr, or (before, after)")
    b, n, t, w = (_pair(k, v) for k, v in (("batch_size", batch_size), ("dataset_size", dataset_size),
                                            ("epochs", epochs), ("width", width)))
    new_lr = lrs[1] * (1.0 / _ratio(w))  # μP: lr ∝ 1/fan_in
    old = {"batch_size": b and b[0], "dataset_size": n and n[0], "epochs": t and t[0]}
    new = {"batch_size": b and b[1], "dataset_size": n and n[1], "epochs": t and t[1]}

    # s at the peak: the paper-units λ (paper's shrink at lr_t = peak_lr is λ itself)
    s = convert(weight_decay, convention, "paper", lr=lrs[0], **old).weight_decay
    if rule == "keep-tau-epoch":
        s *= _ratio(b) / _ratio(n)
    elif rule == "normalized":
        s *= math.sqrt(_ratio(b) / (_ratio(n) * _ratio(t)))
    new_wd = convert(s, "paper", convention, lr=new_lr, **new).weight_decay
    return Transfer(new_wd, new_lr, rule, convention, s)


def transfer_muon(weight_decay: float, adamw_weight_decay: float, *, lr: Pair, adamw_lr: Pair,
                  convention: str = "torch", adamw_convention: str | None = None, **changes: Pair
                  ) -> dict[str, Transfer]:
    """Both λs of a Muon split carried to a new setup: ``{"muon": …, "adamw": …}``, each at its own part's lr.

    The matrices Muon updates and the tensors AdamW updates run at different learning rates (Keras' Muon: AdamW
    at ``learning_rate·adam_lr_ratio``), so one λ carried with the other part's lr would be wrong by their ratio.
    A convention that names a part (``keras-muon``, ``keras-muon-adamw``…) must be given for that part.

    >>> t = transfer_muon(0.1, 0.01, lr=(0.02, 0.04), adamw_lr=(1e-3, 1e-3))
    >>> t["muon"].weight_decay, t["adamw"].weight_decay
    (0.05, 0.01)
    """
    from weightdecay.rules.conventions import get_convention

    adamw_convention = convention if adamw_convention is None else adamw_convention
    for part, name in (("muon", convention), ("adamw", adamw_convention)):
        own = get_convention(name).part
        if own not in ("", "both", part):
            raise UserError(f"Convention {name!r} is the λ of Muon's {own} part, given for its {part} part; "
                            f"pass it as the {own} part's convention")
    return {"muon": transfer(weight_decay, lr=lr, convention=convention, **changes),
            "adamw": transfer(adamw_weight_decay, lr=adamw_lr, convention=adamw_convention, **changes)}
