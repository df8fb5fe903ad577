"""Claim 4 (AdamC): near the end of a schedule that decays to zero, ‖g‖/‖p‖ of the weights that batch norm follows
rises under AdamW (``torch``: shrink lr_t·λ per step, steady state sqrt(2λ/lr_t), which grows as lr_t → 0) and
stays flat under AdamC (``corrected``: shrink (lr_t²/peak_lr)·λ, steady state sqrt(2λ/peak_lr)); docs/math.md,
"Hyperparameter rules".

The small fashion-cnn of claim 6 (channels 8 and 16, a 32-unit head, batch norm, 2,000 images, batch 32), a
cosine schedule to 0 over 10 epochs, AdamW lr 3e-3 with λ = 1 and 3 (torch units), 2 seeds. Per epoch: the mean of
‖g‖/‖p‖ and of ‖g‖ over the epoch's steps (LayerDiagnostics, through the task API; `weightdecay train …
--diagnostics` does the same) against sqrt(2λ/lr_t) at the epoch's mean lr_t (torch) and sqrt(2λ/peak_lr)
(corrected), the prediction Defazio et al. derive for SGD's steady state. The rise is the claim; the SGD formula
is printed beside it, not expected to match AdamW's level. One JSON file per run in ``--out``: a rerun skips it.

    python experiments/claim4_adamc.py --out runs/claim4 --publish docs
    python experiments/claim4_adamc.py --quick --out /tmp/claim4-quick       # a smoke test of the pipeline
"""

from __future__ import annotations

import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from _publish import command_line, pyplot, save_figure, write_csv, write_json

LR, WDS, SEEDS, EPOCHS = 3e-3, (1.0, 3.0), (0, 1), 10
OPTIONS = {"channels": [8, 16], "width": 32, "train_subset": 2000, "val_size": 0}
BATCH = 32


def epoch_mean_lr(epochs: int, steps_per_epoch: int) -> list[float]:
    """The cosine schedule's mean multiplier over each epoch's steps (the steps the diagnostics average over)."""
    from weightdecay.schedules.lr import make_multiplier

    eta = make_multiplier("cosine", total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch)
    return [float(np.mean([eta(e * steps_per_epoch + k) for k in range(steps_per_epoch)])) for e in range(epochs)]


def run_one(job: tuple[str, float, int, int, dict, str]) -> dict:
    decay, wd, seed, epochs, options, path = job
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    import torch

    from weightdecay.tasks import TrainConfig, get_task

    torch.set_num_threads(1)
    result = get_task("fashion-cnn").run(TrainConfig(
        lr=LR, weight_decay=wd, optimizer="adamw", decay=decay, schedule="cosine", epochs=epochs, batch_size=BATCH,
        seed=seed, diagnostics=True, extra=dict(options)))
    d = result.diagnostics
    record = {"decay": decay, "weight_decay": wd, "seed": seed, "diverged": bool(result.diverged),
              "test_loss": result.metrics.get("test_loss"), "test_error": result.metrics.get("test_error"),
              "grad_to_weight": {n: d["grad_to_weight"][n] for n in d["scale_invariant"]},
              "grad_norm": {n: d["grad_norm"][n] for n in d["scale_invariant"]}}
    write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim4", quick="2 epochs on 200 images, 2 runs: a smoke test",
                        publishes="DOCS/data/claim4-adamc.csv and DOCS/figures/claim4-adamc.png",
                        jobs="runs side by side").parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, options, wds, seeds = EPOCHS, OPTIONS, WDS, SEEDS
    if args.quick:
        epochs, options, wds, seeds = 2, {**OPTIONS, "train_subset": 200}, WDS[:1], SEEDS[:1]
    jobs = [(decay, wd, seed, epochs, options, str(out / f"{decay}-wd{wd:g}-s{seed}{'-quick' if args.quick else ''}.json"))
            for decay in ("torch", "corrected") for wd in wds for seed in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(run_one, jobs))

    from weightdecay.tasks.training import batches_per_epoch

    steps_per_epoch = batches_per_epoch(options["train_subset"], BATCH)
    lr_mean = [LR * m for m in epoch_mean_lr(epochs, steps_per_epoch)]
    rows = []
    for r in records:
        for layer, ratios in r["grad_to_weight"].items():
            for e, ratio in enumerate(ratios):
                target = math.sqrt(2 * r["weight_decay"] / (lr_mean[e] if r["decay"] == "torch" else LR))
                rows.append({"decay": r["decay"], "weight_decay": r["weight_decay"], "seed": r["seed"], "layer": layer,
                             "epoch": e + 1, "lr_mean": lr_mean[e], "grad_to_weight": ratio,
                             "grad_norm": r["grad_norm"][layer][e], "sgd_prediction": target,
                             "test_loss": r["test_loss"]})
    print("claim 4: ‖g‖/‖p‖ of batch-normed layers (mean over layers and seeds), last epoch / middle epoch; "
          "final test loss")
    summary = []
    for decay in ("torch", "corrected"):
        for wd in wds:
            sel = [r for r in rows if r["decay"] == decay and r["weight_decay"] == wd]
            by_epoch = [np.mean([r["grad_to_weight"] for r in sel if r["epoch"] == e]) for e in range(1, epochs + 1)]
            mid = by_epoch[len(by_epoch) // 2 - 1] if len(by_epoch) > 1 else by_epoch[0]
            losses = [r["test_loss"] for r in records if r["decay"] == decay and r["weight_decay"] == wd]
            summary.append({"decay": decay, "weight_decay": wd, "by_epoch": [float(v) for v in by_epoch],
                            "rise": float(by_epoch[-1] / mid), "test_loss": float(np.mean(losses)),
                            "test_loss_sd": float(np.std(losses, ddof=1)) if len(losses) > 1 else math.nan})
            s = summary[-1]
            print(f"  {decay:<9} λ {wd:g}: ‖g‖/‖p‖ per epoch {', '.join(f'{v:.3g}' for v in by_epoch)}; "
                  f"last/middle {s['rise']:.2f}; test loss {s['test_loss']:.4f} ± {s['test_loss_sd']:.4f}")
    write_json(out / "summary.json", summary)

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim4-adamc.csv", rows)
        figure(summary, docs / "figures" / "claim4-adamc.png")
    return 0


def figure(summary: list[dict], path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(5, 3.4))
    for s in summary:
        e = np.arange(1, len(s["by_epoch"]) + 1)
        ax.plot(e, s["by_epoch"], "o-" if s["decay"] == "torch" else "s--", label=f"{s['decay']}, λ {s['weight_decay']:g}")
    ax.set(xlabel="epoch (cosine to 0)", ylabel="‖g‖/‖p‖, batch-normed layers", yscale="log")
    ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
