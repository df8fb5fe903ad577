"""Claim 9, a first look at a probe: one short run per ground-truth column (its lr and batch, λ from `weightdecay
suggest`'s settings-only rule, a fifth of the column's epochs, seed 0, constant lr), and whether what it shows
says which way λ* lies from that λ.

Signals at the probe's end: the generalization ratio val_loss/train_loss, and the val loss's trend (its log
slope against log epoch over the probe's second half, with ≥ 4 epochs of history). The target is
log10(λ*/λ̂). A linear correction log10(λ*/λ̂) = a + b·log(ratio) is fitted on ridge and scored on the digits
and fashion-mlp columns, against λ̂ uncorrected. Probe compute: a fifth of one run (floor(epochs/5), at least 1 epoch).

    python experiments/claim9_probe.py --publish docs      # about 30 probes, a minute or two on 2 cores
    python experiments/claim9_probe.py --quick             # three probes: a smoke test
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from _publish import command_line, write_csv
from claim9_suggest import ground_truth
from weightdecay.rules import suggest_weight_decay
from weightdecay.tasks import get_task
from weightdecay.tasks.base import TrainConfig

TASKS = {"ridge": "ridge", "digits": "digits-mlp", "digits lengths": "digits-mlp", "fashion-mlp": "fashion-mlp"}
# The options of claim 9's fashion-mlp grids (experiments/claim9-fashion-mlp-e*.toml).
FASHION = {"train_subset": 2000, "val_size": 2000, "test_subset": 1000}


def probe(column, task_key: str) -> dict:
    """One probe run for ``column``: its signals and the target log10(λ*/λ̂)."""
    lam = suggest_weight_decay(lr=column.lr, batch_size=column.batch_size, dataset_size=column.dataset_size,
                               epochs=column.epochs).weight_decay
    epochs = max(1, int(column.epochs // 5))
    extra = {"ridge": {}, "fashion-mlp": FASHION}.get(TASKS[task_key], {"train_subset": column.dataset_size})
    result = get_task(TASKS[task_key]).run(TrainConfig(lr=column.lr, weight_decay=lam, schedule="constant",
                                                       epochs=epochs, batch_size=column.batch_size, seed=0,
                                                       extra=extra))
    val = np.array([h["val_loss"] for h in result.history])
    trend = math.nan
    if len(val) >= 4:
        half = len(val) // 2
        trend = float(np.polyfit(np.log(np.arange(half, len(val)) + 1.0), np.log(val[half:]), 1)[0])
    return {"task": task_key, "column": column.task, "lr": column.lr, "probe_epochs": epochs,
            "probe_fraction": epochs / column.epochs, "suggested": lam, "best": column.best()[0],
            "target": math.log10(column.best()[0] / lam),
            "ratio": result.metrics["val_loss"] / result.metrics["train_loss"], "val_trend": trend}


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim9-probe", "three probes: a smoke test", "data/claim9-probe.csv").parse_args(argv)
    truth = ground_truth()
    rows = []
    for key in TASKS:
        columns = [c for c in truth.get(key, []) if c.best()[1]]
        for c in columns[:1] if args.quick else columns:
            rows.append(probe(c, key))
            r = rows[-1]
            print(f"{key:<15} {c.task:<22} lr {c.lr:<8.3g} log10(λ*/λ̂) {r['target']:+.2f}  val/train "
                  f"{r['ratio']:.3g}  val trend {r['val_trend']:+.2f}", flush=True)
    fit_rows = [r for r in rows if r["task"] == "ridge"]
    scored = [r for r in rows if r["task"] != "ridge"]
    if len(fit_rows) >= 2 and scored:
        b, a = np.polyfit(np.log([r["ratio"] for r in fit_rows]), [r["target"] for r in fit_rows], 1)
        before = np.median([abs(r["target"]) for r in scored])
        after = np.median([abs(r["target"] - (a + b * math.log(r["ratio"]))) for r in scored])
        print(f"correction fitted on ridge: log10(λ*/λ̂) = {a:+.3f} {b:+.3f}·ln(val/train); on the other tasks the "
              f"median |log10(λ*/λ̂)| goes {before:.2f} → {after:.2f}")
    if args.publish:
        write_csv(Path(args.publish) / "data" / "claim9-probe.csv", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
