"""Claim 6 (rotational equilibrium): the measured angular update per step of weights followed by batch norm,
against Kosson et al.'s equilibrium (docs/math.md, "Hyperparameter rules"), torch-convention lr and λ:

    AdamW:                 sqrt(2·lr·λ·(1−β1)/(1+β1))
    SGD with momentum μ:   sqrt(2·lr·λ/(1+μ))

on a small fashion-cnn with batch norm (channels 8 and 16, a 32-unit head, 2,000 training images, batch 32,
constant lr, 10 epochs = 630 steps), over lr and λ with lr·λ = 1e-3, 3e-3, 1e-2 (τ_iter = 1,000 to 100 steps), 2
seeds. The measure is the tasks' LayerDiagnostics ``rotation_per_row`` (mean angle of each output row, a
scale-invariant neuron, per step) averaged over the last 3 epochs, for every conv and hidden layer that batch norm
follows. Runs through the task API (`weightdecay train … --diagnostics` does the same), one JSON file per run in
``--out``, so a rerun skips what is done.

    python experiments/claim6_rotation.py --out runs/claim6 --publish docs
    python experiments/claim6_rotation.py --quick --out /tmp/claim6-quick       # a smoke test of the pipeline
"""

from __future__ import annotations

import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from _publish import command_line, pyplot, save_figure, write_csv, write_json

SHRINKS = (1e-3, 3e-3, 1e-2)  # lr·λ per step
LRS = {"adamw": (1e-3, 3e-3), "sgdw": (1e-2, 3e-2)}
SEEDS = (0, 1)
EPOCHS, LAST = 10, 3
OPTIONS = {"channels": [8, 16], "width": 32, "train_subset": 2000, "val_size": 0}
BETA1, MOMENTUM = 0.9, 0.9


def predicted(optimizer: str, lr: float, wd: float) -> float:
    if optimizer == "adamw":
        return math.sqrt(2 * lr * wd * (1 - BETA1) / (1 + BETA1))
    return math.sqrt(2 * lr * wd / (1 + MOMENTUM))


def run_one(job: tuple[str, float, float, int, int, dict, str]) -> dict:
    optimizer, lr, wd, seed, epochs, options, path = job
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    import torch

    from weightdecay.tasks import TrainConfig, get_task

    torch.set_num_threads(1)
    kwargs = {"betas": (BETA1, 0.999)} if optimizer == "adamw" else {"momentum": MOMENTUM}
    result = get_task("fashion-cnn").run(TrainConfig(
        lr=lr, weight_decay=wd, optimizer=optimizer, decay="torch", schedule="constant", epochs=epochs,
        batch_size=32, seed=seed, diagnostics=True, extra=dict(options), **kwargs))
    d = result.diagnostics
    record = {"optimizer": optimizer, "lr": lr, "weight_decay": wd, "seed": seed, "diverged": bool(result.diverged),
              "test_error": result.metrics.get("test_error"), "layers": {}}
    last = min(LAST, len(d["epoch"]))
    for name in d["scale_invariant"]:
        record["layers"][name] = {"rotation_per_row": float(np.mean(d["rotation_per_row"][name][-last:])),
                                  "rotation": float(np.mean(d["rotation"][name][-last:])),
                                  "per_epoch": d["rotation_per_row"][name]}
    write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim6", quick="1 epoch, 200 images, 2 runs: a smoke test",
                        publishes="DOCS/data/claim6-rotation.csv and DOCS/figures/claim6-rotation.png",
                        jobs="runs side by side").parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, options = EPOCHS, OPTIONS
    grid = [(o, lr, s / lr, seed) for o in LRS for lr in LRS[o] for s in SHRINKS for seed in SEEDS]
    if args.quick:
        epochs, options = 1, {**OPTIONS, "train_subset": 200}
        grid = [("adamw", 1e-3, 10.0, 0), ("sgdw", 1e-2, 1.0, 0)]
    jobs = [(o, lr, wd, seed, epochs, options, str(out / f"{o}-lr{lr:g}-wd{wd:g}-s{seed}{'-quick' if args.quick else ''}.json"))
            for o, lr, wd, seed in grid]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(run_one, jobs))

    rows = []
    for r in records:
        pred = predicted(r["optimizer"], r["lr"], r["weight_decay"])
        for layer, m in r["layers"].items():
            rows.append({"optimizer": r["optimizer"], "lr": r["lr"], "weight_decay": r["weight_decay"],
                         "shrink": r["lr"] * r["weight_decay"], "seed": r["seed"], "layer": layer,
                         "measured": m["rotation_per_row"], "measured_whole": m["rotation"], "predicted": pred,
                         "ratio": m["rotation_per_row"] / pred, "test_error": r["test_error"]})
    print(f"claim 6: mean rotation per step over the last {min(LAST, epochs)} epochs / predicted equilibrium "
          f"(per-row angle; mean ± sd over layers and seeds)")
    summary = []
    for optimizer in LRS:
        for lr in sorted({r["lr"] for r in rows if r["optimizer"] == optimizer}):
            for s in SHRINKS:
                sel = [r["ratio"] for r in rows if r["optimizer"] == optimizer and r["lr"] == lr
                       and math.isclose(r["shrink"], s, rel_tol=1e-6)]
                if not sel:
                    continue
                pred = predicted(optimizer, lr, s / lr)
                summary.append({"optimizer": optimizer, "lr": lr, "shrink": s, "predicted": pred,
                                "ratio_mean": float(np.mean(sel)), "ratio_sd": float(np.std(sel, ddof=1)) if len(sel) > 1 else math.nan,
                                "n": len(sel)})
                print(f"  {optimizer} lr {lr:g} lr·λ {s:g}: predicted {pred:.4f} rad/step, measured/predicted "
                      f"{np.mean(sel):.2f} ± {summary[-1]['ratio_sd']:.2f} (n={len(sel)})")
    write_json(out / "summary.json", summary)

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim6-rotation.csv", rows)
        figure(rows, docs / "figures" / "claim6-rotation.png")
    return 0


def figure(rows: list[dict], path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(4.6, 3.8))
    for optimizer, marker in (("adamw", "o"), ("sgdw", "s")):
        sel = [r for r in rows if r["optimizer"] == optimizer]
        if sel:
            ax.scatter([r["predicted"] for r in sel], [r["measured"] for r in sel], marker=marker, s=14, alpha=0.6,
                       label=optimizer)
    lo = min(min(r["predicted"], r["measured"]) for r in rows) * 0.7
    hi = max(max(r["predicted"], r["measured"]) for r in rows) * 1.4
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="measured = predicted")
    ax.set(xscale="log", yscale="log", xlabel="predicted equilibrium rotation (rad/step)",
           ylabel="measured, last 3 epochs (rad/step)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
