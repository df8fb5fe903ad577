"""Claim 4 (AdamC): near the end of a schedule that decays to zero, ‖g‖/‖p‖ of normalized layers rises under AdamW
(``torch``: shrink lr_t·λ per step, steady state sqrt(2λ/lr_t), which grows as lr_t → 0) and stays flat under AdamC
(``corrected``: shrink (lr_t²/peak_lr)·λ, steady state sqrt(2λ/peak_lr)); docs/math.md, "Hyperparameter rules".
Two models: a CNN with batch norm and the Shakespeare character model with LayerNorm.

The small fashion-cnn of claim 6 (channels 8 and 16, a 32-unit head, batch norm, 2,000 images, batch 32), a
cosine schedule to 0 over 10 epochs, AdamW lr 3e-3 with λ = 1 and 3 (torch units), 2 seeds. Per epoch: the mean of
‖g‖/‖p‖ and of ‖g‖ over the epoch's steps (LayerDiagnostics, through the task API; `weightdecay train …
--diagnostics` does the same) against sqrt(2λ/lr_t) at the epoch's mean lr_t (torch) and sqrt(2λ/peak_lr)
(corrected), the prediction Defazio et al. derive for SGD's steady state. The rise is the claim; the SGD formula
is printed beside it, not expected to match AdamW's level.

The Shakespeare character model (``shakespeare-charlm``: 2 pre-LayerNorm blocks, width 64, context 64, batch 32),
800 steps with a cosine schedule to 0, AdamW lr 3e-3 with λ = 1 and 3 (τ_iter = 333 and 111 steps at the peak)
under both conventions, 2 seeds. A pre-LN block has no layer whose output goes straight into a LayerNorm: the
LayerNorms normalize the residual stream, which the attention output projections and the second MLP layers write
(``blocks.*.proj``, ``blocks.*.mlp.2``; scaling those with the embeddings leaves every LayerNorm's output
unchanged). So the measure is ‖g‖ and ‖g‖/‖p‖ of those residual writers taken together (and of all the decayed
weights, beside them), every 10 steps from ``weightdecay.Monitor``, over the second half of the run in windows of
a tenth of it, against sqrt(2λ/lr_t) (torch) and sqrt(2λ/peak_lr) (corrected); and the final val_loss of both.

One JSON file per run in ``--out``: a rerun skips it.

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
# The character model: 4 "epochs" of 200 batches of 32 windows (the task's sizes otherwise), every 10th step recorded.
LM_WDS, LM_EPOCHS, LM_EVERY = (1.0, 3.0), 4, 10
LM_OPTIONS = {"steps_per_epoch": 200}
LM_WINDOWS = (0.6, 0.7, 0.8, 0.9, 1.0)  # the ends of the second half's tenths
RESIDUAL_WRITERS = (".proj.weight", ".mlp.2.weight")  # what the LayerNorms normalize, through the residual sum
GROUPS = ("residual", "decayed")


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


def group_norms(records: list[dict], decayed: set[int]) -> list[dict]:
    """Per recorded step: lr_t, and ‖g‖, ‖p‖ of the residual writers together and of every decayed weight together
    (the norm of the concatenation: the root of the sum of the tensors' squared norms)."""
    steps: dict[int, dict] = {}
    for r in records:
        if r["group"] not in decayed:
            continue
        step = steps.setdefault(r["step"], {"step": r["step"], "lr": r["lr"], **{g: [0.0, 0.0] for g in GROUPS}})
        for group in GROUPS if r["name"].endswith(RESIDUAL_WRITERS) else ("decayed",):
            step[group][0] += r["grad_norm"] ** 2
            step[group][1] += r["weight_norm"] ** 2
    return [{"step": s["step"], "lr": s["lr"],
             **{f"{g}_{what}": math.sqrt(s[g][k]) for g in GROUPS for k, what in ((0, "grad_norm"), (1, "weight_norm"))}}
            for s in sorted(steps.values(), key=lambda s: s["step"])]


def run_lm(job: tuple[str, float, int, int, dict, int, str]) -> dict:
    decay, wd, seed, epochs, options, every, path = job
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    import torch

    from weightdecay import Monitor
    from weightdecay.tasks import TrainConfig, get_task

    torch.set_num_threads(1)
    monitor = Monitor(every=every)
    result = get_task("shakespeare-charlm").run(TrainConfig(
        lr=LR, weight_decay=wd, optimizer="adamw", decay=decay, schedule="cosine", epochs=epochs, seed=seed,
        extra=dict(options)), monitors=[monitor])
    decayed = {r["group"] for r in monitor.records if r["shrink"]}
    names = sorted({r["name"] for r in monitor.records if r["group"] in decayed})
    record = {"decay": decay, "weight_decay": wd, "seed": seed, "diverged": bool(result.diverged),
              "val_loss": result.metrics.get("val_loss"), "total_steps": epochs * options["steps_per_epoch"],
              "residual_writers": [n for n in names if n.endswith(RESIDUAL_WRITERS)], "decayed": names,
              "steps": group_norms(monitor.records, decayed)}
    write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim4", quick="2 short runs of each model: a smoke test",
                        publishes="DOCS/data/claim4-{adamc,lm}.csv and DOCS/figures/claim4-{adamc,lm}.png",
                        jobs="runs side by side").parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, options, wds, seeds = EPOCHS, OPTIONS, WDS, SEEDS
    lm_epochs, lm_options, lm_wds, lm_every = LM_EPOCHS, LM_OPTIONS, LM_WDS, LM_EVERY
    if args.quick:
        epochs, options, wds, seeds = 2, {**OPTIONS, "train_subset": 200}, WDS[:1], SEEDS[:1]
        lm_epochs, lm_wds, lm_every = 2, LM_WDS[:1], 2
        lm_options = {"steps_per_epoch": 20, "dim": 32, "context": 32, "val_windows": 16}
    tag = "-quick" if args.quick else ""
    jobs = [(decay, wd, seed, epochs, options, str(out / f"{decay}-wd{wd:g}-s{seed}{tag}.json"))
            for decay in ("torch", "corrected") for wd in wds for seed in seeds]
    lm_jobs = [(decay, wd, seed, lm_epochs, lm_options, lm_every, str(out / f"lm-{decay}-wd{wd:g}-s{seed}{tag}.json"))
               for decay in ("torch", "corrected") for wd in lm_wds for seed in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        cnn_runs, lm_runs = pool.map(run_one, jobs), pool.map(run_lm, lm_jobs)  # both queued before either is read
        records, lm_records = list(cnn_runs), list(lm_runs)

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
    print("claim 4, fashion-cnn: ‖g‖/‖p‖ of batch-normed layers (mean over layers and seeds), last epoch / middle "
          "epoch; final test loss")
    summary = []
    for decay in ("torch", "corrected"):
        for wd in wds:
            sel = [r for r in rows if r["decay"] == decay and r["weight_decay"] == wd]
            by_epoch = [np.mean([r["grad_to_weight"] for r in sel if r["epoch"] == e]) for e in range(1, epochs + 1)]
            mid = by_epoch[len(by_epoch) // 2 - 1] if len(by_epoch) > 1 else by_epoch[0]
            losses = [r["test_loss"] for r in records if r["decay"] == decay and r["weight_decay"] == wd]
            summary.append({"decay": decay, "weight_decay": wd, "by_epoch": [float(v) for v in by_epoch],
                            "rise": float(by_epoch[-1] / mid), **mean_sd("test_loss", losses)})
            s = summary[-1]
            print(f"  {decay:<9} λ {wd:g}: ‖g‖/‖p‖ per epoch {', '.join(f'{v:.3g}' for v in by_epoch)}; "
                  f"last/middle {s['rise']:.2f}; test loss {s['test_loss']:.4f} ± {s['test_loss_sd']:.4f}")

    lm_rows = lm_table(lm_records)
    lm_summary = lm_windows(lm_rows, lm_records)
    print("claim 4, shakespeare-charlm: residual writers' ‖g‖/‖p‖ (seed mean) in tenths of the run, against "
          "the window's mean of sqrt(2λ/lr_t) (torch) or sqrt(2λ/peak_lr) (corrected); final val_loss")
    for s in lm_summary:
        cells = ", ".join(f"{w:.0%}: {m:.3g} ({p:.3g})" for w, m, p in zip(s["window_end"], s["grad_to_weight"],
                                                                             s["prediction"]))
        print(f"  {s['decay']:<9} λ {s['weight_decay']:g}: {cells}; last/first {s['rise']:.2f}; ‖g‖ last/first "
              f"{s['grad_norm_rise']:.2f}; val_loss {s['val_loss']:.4f} ± {s['val_loss_sd']:.4f}")
    write_json(out / "summary.json", {"fashion-cnn": summary, "shakespeare-charlm": lm_summary})

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim4-adamc.csv", rows)
        write_csv(docs / "data" / "claim4-lm.csv", lm_rows)
        figure(summary, docs / "figures" / "claim4-adamc.png")
        lm_figure(lm_rows, docs / "figures" / "claim4-lm.png")
    return 0


def mean_sd(name: str, values: list[float]) -> dict[str, float]:
    return {name: float(np.mean(values)), f"{name}_sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan}


def lm_table(records: list[dict]) -> list[dict]:
    """One row per run, group and recorded step, with the steady state AdamC's argument predicts there."""
    rows = []
    for r in records:
        for step in r["steps"]:
            lr = step["lr"] if r["decay"] == "torch" else LR
            for group in GROUPS:
                grad, weight = step[f"{group}_grad_norm"], step[f"{group}_weight_norm"]
                rows.append({"decay": r["decay"], "weight_decay": r["weight_decay"], "seed": r["seed"],
                             "group": group, "step": step["step"], "fraction": step["step"] / r["total_steps"],
                             "lr": step["lr"], "grad_norm": grad, "weight_norm": weight,
                             "grad_to_weight": grad / weight, "sgd_prediction": math.sqrt(2 * r["weight_decay"] / lr),
                             "val_loss": r["val_loss"]})
    return rows


def lm_windows(rows: list[dict], records: list[dict]) -> list[dict]:
    """Per convention and λ: the residual writers' seed-mean ‖g‖/‖p‖, ‖g‖ and prediction in each window of
    LM_WINDOWS (a window ends at its fraction of the run and starts a tenth earlier)."""
    summary = []
    for decay in ("torch", "corrected"):
        for wd in sorted({r["weight_decay"] for r in records}):
            sel = [r for r in rows if r["decay"] == decay and r["weight_decay"] == wd and r["group"] == "residual"]
            if not sel:
                continue
            cells = {k: [] for k in ("grad_to_weight", "grad_norm", "sgd_prediction")}
            for end in LM_WINDOWS:
                inside = [r for r in sel if end - 0.1 < r["fraction"] <= end + 1e-9]
                for k in cells:
                    cells[k].append(float(np.mean([r[k] for r in inside])) if inside else math.nan)
            losses = [r["val_loss"] for r in records if r["decay"] == decay and r["weight_decay"] == wd]
            summary.append({"decay": decay, "weight_decay": wd, "window_end": list(LM_WINDOWS),
                            "grad_to_weight": cells["grad_to_weight"], "grad_norm": cells["grad_norm"],
                            "prediction": cells["sgd_prediction"],
                            "rise": cells["grad_to_weight"][-1] / cells["grad_to_weight"][0],
                            "grad_norm_rise": cells["grad_norm"][-1] / cells["grad_norm"][0],
                            **mean_sd("val_loss", losses)})
    return summary


def figure(summary: list[dict], path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(5, 3.4))
    for s in summary:
        e = np.arange(1, len(s["by_epoch"]) + 1)
        ax.plot(e, s["by_epoch"], "o-" if s["decay"] == "torch" else "s--", label=f"{s['decay']}, λ {s['weight_decay']:g}")
    ax.set(xlabel="epoch (cosine to 0)", ylabel="‖g‖/‖p‖, batch-normed layers", yscale="log")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def lm_figure(rows: list[dict], path: Path) -> None:
    """The residual writers' ‖g‖/‖p‖ and ‖g‖ against the run's fraction (seed mean), the prediction dotted."""
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(9, 3.4))
    for i, (decay, wd) in enumerate(sorted({(r["decay"], r["weight_decay"]) for r in rows})):
        sel = [r for r in rows if r["decay"] == decay and r["weight_decay"] == wd and r["group"] == "residual"]
        steps = sorted({r["step"] for r in sel})
        at = {k: [np.mean([r[k] for r in sel if r["step"] == t]) for t in steps]
              for k in ("fraction", "grad_to_weight", "grad_norm", "sgd_prediction")}
        colour = f"C{i}"
        ax1.plot(at["fraction"], at["grad_to_weight"], color=colour, label=f"{decay}, λ {wd:g}")
        ax1.plot(at["fraction"], at["sgd_prediction"], color=colour, ls=":", lw=0.9)
        ax2.plot(at["fraction"], at["grad_norm"], color=colour, label=f"{decay}, λ {wd:g}")
    ax1.set(xlabel="fraction of the run (cosine to 0)", ylabel="‖g‖/‖p‖, residual writers", yscale="log",
            title="dotted: sqrt(2λ/lr_t) (torch), sqrt(2λ/peak_lr) (corrected)")
    ax1.title.set_fontsize(8)
    ax2.set(xlabel="fraction of the run (cosine to 0)", ylabel="‖g‖, residual writers", yscale="log")
    ax1.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
