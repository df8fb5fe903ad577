"""The best λ for a run from its settings alone, with an interval and a measured account of how sure it is.

The rule is normalized weight decay at Loshchilov & Hutter's λ_norm = 0.05: of the settings-only rules scored in
docs/results.md ("Claim 9") against the project's ground-truth grids, it came nearest λ* on both tasks with
enough columns (median |log10(λ̂/λ*)| 0.38 on ridge, 0.30 on digits), and it was not fitted on any of them. The
EMA timescale as a fixed fraction of the run does not transfer between those tasks: the best τ_iter/T is 0.38 on
ridge and 2.4 on digits (geometric means), so a fraction fitted on one misses the other by 5×.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from weightdecay.checks import positive
from weightdecay.rules.conventions import convert
from weightdecay.rules.timescales import ema_timescale
from weightdecay.schedules import normalized_weight_decay

__all__ = ["Suggestion", "suggest_weight_decay", "SUGGEST_NORM", "SUGGEST_NORM_INTERVAL"]

# Loshchilov & Hutter's best normalized weight decay, measured training image classifiers from scratch (`advise`
# warns 10× outside it). suggest takes its upper end as written: it is not fitted on the project's grids.
BEST_NORM = (0.025, 0.05)
SUGGEST_NORM = BEST_NORM[1]
# Fine-tuning: no measured λ_norm yet. Provisionally the low end of the from-scratch range, since decay toward zero
# pulls the weights away from the pretrained ones the run starts from (`advise --fine-tuning` gives the same).
FINE_TUNING_NORM = BEST_NORM[0]
# The 10th and 90th percentiles of λ_norm at λ* over the 24 interior columns of the committed ridge and digits
# grids (experiments/claim9_suggest.py; tests/test_suggest.py recomputes them from docs/data).
SUGGEST_NORM_INTERVAL = (0.031, 0.21)
# What the scoring measured for SUGGEST_NORM (docs/results.md, "Claim 9"), said with every answer.
CONFIDENCE = ("low: on the project's grids this rule came within 2× of λ* in 26% of ridge's 19 columns and 50% of "
              "digits' 6 (median regret 2.8% and 15%), and overshot a short fashion-cnn run where decay barely "
              "matters (regret 18%); sweep the interval")


@dataclass(frozen=True)
class Suggestion:
    """What :func:`suggest_weight_decay` found: the value and its interval in ``convention`` at ``lr``, the rule
    and its measured accuracy, and what a probe measured (empty: from the settings alone)."""

    weight_decay: float
    low: float
    high: float
    convention: str
    lr: float
    peak_lr: float
    batch_size: int
    dataset_size: int
    epochs: float
    total_steps: float
    lambda_norm: float
    tau_iter: float
    tau_epoch: float
    # exp(−T/τ_iter): what the decay alone leaves of a weight over the run at the peak lr (constant schedule;
    # a decaying schedule shrinks less). Near 0 wipes out where the run started: pretrained weights, in fine-tuning.
    run_shrink: float
    rule: str
    confidence: str
    fine_tuning: bool = False
    measured: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, for ``json.dumps``."""
        return asdict(self)


def suggest_weight_decay(*, lr: float, batch_size: int, dataset_size: int, epochs: float,
                         convention: str = "torch", peak_lr: float | None = None,
                         fine_tuning: bool = False) -> Suggestion:
    """The best λ from the settings alone: ``λ_paper = λ_norm·sqrt(b/(B·T))`` with ``λ_norm = 0.05``, written in
    ``convention`` at ``lr``; the interval is ``λ_norm`` 0.031–0.21, the spread of the measured λ_norm at λ*.

    Args:
        lr: the learning rate (the peak, for a schedule).
        batch_size, dataset_size, epochs: ``b``, ``B``, ``T``.
        convention: the convention of the answer (:data:`weightdecay.rules.CONVENTION_NAMES`).
        peak_lr: reference lr for ``paper``/``corrected``; defaults to ``lr``.
        fine_tuning: the run starts from pretrained weights: ``λ_norm = 0.025`` (unmeasured, provisional).

    >>> s = suggest_weight_decay(lr=1e-3, batch_size=20, dataset_size=200, epochs=50)
    >>> round(s.weight_decay, 3), round(s.tau_iter / s.total_steps, 2)
    (2.236, 0.89)
    """
    peak = positive("lr", lr) if peak_lr is None else positive("peak_lr", peak_lr)
    sizes = {"batch_size": int(positive("batch_size", batch_size)),
             "dataset_size": int(positive("dataset_size", dataset_size)), "epochs": positive("epochs", epochs)}
    norm = FINE_TUNING_NORM if fine_tuning else SUGGEST_NORM

    def in_convention(lam_norm: float) -> float:
        paper = normalized_weight_decay(lam_norm, **sizes)
        return convert(paper, "paper", convention, lr=lr, peak_lr=peak, **sizes).weight_decay

    value = in_convention(norm)
    low, high = (in_convention(n * norm / SUGGEST_NORM) for n in SUGGEST_NORM_INTERVAL)
    tau = ema_timescale(lr, value, convention=convention, peak_lr=peak, **sizes)
    total = sizes["dataset_size"] * sizes["epochs"] / sizes["batch_size"]
    if fine_tuning:
        rule = (f"normalized weight decay λ = λ_norm·sqrt(b/(B·T)) at λ_norm = {FINE_TUNING_NORM}, the low end of "
                "Loshchilov & Hutter's from-scratch range, since decay toward zero pulls the weights away from the "
                "pretrained ones")
        confidence = ("unmeasured: no fine-tuning grid has been scored yet; check how much of the pretrained "
                      "weights the decay leaves over the run (run_shrink), and sweep the interval")
    else:
        rule = (f"normalized weight decay λ = λ_norm·sqrt(b/(B·T)) at λ_norm = {SUGGEST_NORM} (Loshchilov & "
                "Hutter), from the settings alone")
        confidence = CONFIDENCE
    return Suggestion(weight_decay=value, low=min(low, high), high=max(low, high), convention=convention, lr=lr,
                      peak_lr=peak, total_steps=total, lambda_norm=norm, tau_iter=tau.iterations,
                      tau_epoch=tau.epochs if tau.epochs is not None else float("nan"),
                      run_shrink=math.exp(-total / tau.iterations), rule=rule,
                      confidence=confidence, fine_tuning=fine_tuning, **sizes)
