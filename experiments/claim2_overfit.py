"""Claims 2 and 3 where weight decay matters (issue 25; docs/results.md, "Claim 2 where decay matters"): first the
regime, chosen from runs without decay alone; then AdamW against Adam-L2 and SGDW against SGD-L2 in it; then
claim 3's schedules at the best setting found.

1. **The regime** (``--regime-only`` stops here). The scans experiments/claim2-overfit-scan-{cnn,mlp}.toml train
   each candidate with plain Adam (λ ≈ 0) at three lrs and two seeds. From each run's per-epoch history: the lowest
   val_loss v_min and its epoch e_min, the last val_loss v_end, the training loss at e_min (t_min) and at the end
   (t_end). The best lr has the lowest seed-mean v_min. A candidate *overfits* when at its best lr, for every seed,
   v_end ≥ (1 + RISE)·v_min with e_min ≤ LATE·epochs, and t_end ≤ TRAIN_FALL·t_min. The first candidate of
   CANDIDATES that overfits is the regime; the comparison's configs below were written for it.
2. **Claim 2** (experiments/claim2-overfit-{adam,sgd}.toml): per arm the cell with the best seed-mean val_loss (the
   last epoch's), its test error and test loss (mean ± sd over seeds), whether it sits on the grid's edge, the
   best at the arm's lowest λ (λ ≈ 0), the basin (cells within basin_tolerance of the best val_loss: cells, area in
   decades², orientation); between arms the relative improvement 1 − err/err_ref in test error and in test loss,
   ± the sd over paired bootstrap resamples of the seeds (selection redone on each; the functions of
   experiments/claim2_deep.py).
3. **Claim 3**: the AdamW `paper` arm's selected (lr*, λ*) and a half-decade either side of each (3 × 3 cells, the
   comparison's seeds) under each schedule of SCHEDULES (fixed, step, cosine, warm restarts, and warm restarts with
   normalized weight decay, λ_norm centred on λ*/sqrt(b/(B·T))); per schedule its best cell's test error after
   every epoch (anytime performance) and just before each restart.

    python experiments/claim2_overfit.py --regime-only --out runs/claim2-overfit --publish docs
    python experiments/claim2_overfit.py --out runs/claim2-overfit --publish docs
    python experiments/claim2_overfit.py --quick --out /tmp/claim2-overfit-quick      # a smoke test of the pipeline

Every stage resumes: a rerun reads the sweeps that finished and continues the others (`make
reproduce-claim2-overfit`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from _publish import command_line, finished_sweeps, pyplot, save_figure, write_csv, write_json
from claim2_deep import arm_summary, grids, relative_improvement
from claim3_schedules import best_curve
from claim3_schedules import figure as schedules_figure
from weightdecay.sweeps import load_config
from weightdecay.sweeps import log_grid

HERE = Path(__file__).resolve().parent
# In order of preference, round by round: each round written (configs and docs/results.md) when the one before
# found no candidate that overfits at its best lr, as the criterion says: half the images or twice the epochs.
# The CNN at 1,000 images and 40 epochs is left out of round 2, over the cost bound.
CANDIDATES = ("claim2-overfit-scan-cnn", "claim2-overfit-scan-mlp",  # round 1
              "claim2-overfit-scan-cnn-500", "claim2-overfit-scan-mlp-500", "claim2-overfit-scan-mlp-e40",  # round 2
              "claim2-overfit-scan-cnn-500-e40", "claim2-overfit-scan-mlp-500-e40",  # round 3
              "claim2-overfit-scan-mlp-e80")
RISE, LATE, TRAIN_FALL = 0.10, 0.7, 0.5  # the criterion's margins (docs/results.md)
CONFIGS = ("claim2-overfit-adam", "claim2-overfit-sgd")
COMPARISONS = (("AdamW torch", "Adam-L2"), ("AdamW paper", "Adam-L2"), ("SGDW torch", "SGD-L2"))
SCHEDULE_ARM = "AdamW paper"  # the paper's AdamW/AdamWR: the decay follows the schedule
SCHEDULES = ("constant", "step", "cosine", "sgdr", "adamwr")  # adamwr: sgdr with normalized decay per period
N_BOOT = 1000
HALF_DECADE = math.sqrt(10.0)


def overfit_check(history: list[dict], epochs: int) -> dict:
    """One run's overfitting measures from its per-epoch history, and whether it meets the criterion.

    >>> h = [{"epoch": e, "val_loss": v, "train_loss": t} for e, v, t in
    ...      [(1, 1.0, 1.2), (2, 0.5, 0.6), (3, 0.6, 0.3), (4, 0.7, 0.2)]]
    >>> c = overfit_check(h, 4)
    >>> (c["e_min"], round(c["rise"], 3), round(c["train_ratio"], 3), c["overfits"])
    (2, 0.4, 0.333, True)
    """
    val = [h["val_loss"] for h in history]
    k = int(np.argmin(val))
    e_min, v_min, v_end = int(history[k]["epoch"]), float(val[k]), float(val[-1])
    t_min, t_end = float(history[k]["train_loss"]), float(history[-1]["train_loss"])
    complete = len(history) == epochs
    rise, train_ratio = v_end / v_min - 1, t_end / t_min
    return {"e_min": e_min, "v_min": v_min, "v_end": v_end, "t_min": t_min, "t_end": t_end, "rise": rise,
            "train_ratio": train_ratio,
            "overfits": bool(complete and rise >= RISE and e_min <= LATE * epochs and train_ratio <= TRAIN_FALL)}


def regime(results, epochs: int) -> dict:
    """A candidate's scan: per (lr, seed) the overfit measures; the best lr (lowest seed-mean v_min) and whether
    every seed overfits there."""
    runs = [{"lr": r.lr, "seed": r.seed, "seconds": r.seconds, **overfit_check(r.history, epochs)}
            for r in results.records if not r.diverged and r.history]
    lrs = sorted({r["lr"] for r in runs})
    best_lr = min(lrs, key=lambda lr: np.mean([r["v_min"] for r in runs if r["lr"] == lr]))
    at_best = [r for r in runs if r["lr"] == best_lr]
    return {"runs": runs, "best_lr": best_lr, "overfits": bool(at_best) and all(r["overfits"] for r in at_best),
            "seconds_per_run": float(np.mean([r["seconds"] for r in runs]))}


def regime_figure(scans: dict[str, tuple], path: Path) -> None:
    """Per candidate, val_loss (solid) and train_loss (dashed) per epoch at its best lr, one line per seed."""
    cols = min(len(scans), 4)
    rows = -(-len(scans) // cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(scans):]:
        ax.axis("off")
    for ax, (name, (results, summary)) in zip(axes.ravel(), scans.items()):
        for r in results.records:
            if r.lr == summary["best_lr"] and r.history:
                e = [h["epoch"] for h in r.history]
                line, = ax.plot(e, [h["val_loss"] for h in r.history], label=f"val, seed {r.seed}")
                ax.plot(e, [h["train_loss"] for h in r.history], ls="--", color=line.get_color(),
                        label=f"train, seed {r.seed}")
        ax.set(xlabel="epoch", ylabel="loss", yscale="log",
               title=f"{name.removeprefix('claim2-overfit-scan-')}: lr {summary['best_lr']:.3g}, λ ≈ 0"
                     f"{' (overfits)' if summary['overfits'] else ''}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6)
    save_figure(fig, path)


def scan_config(name: str, quick: bool):
    config = load_config(HERE / f"{name}.toml")
    if quick:  # 2 epochs on 256 images, 1 lr, 1 seed: measures nothing
        extra = {**config.extra, "train_subset": 256, "val_size": 256, "test_subset": 256}
        config = replace(config, name=f"{name}-quick", epochs=2, seeds=(0,), lr=config.lr[:1], extra=extra)
    return config


def comparison_config(name: str, quick: bool):
    config = load_config(HERE / f"{name}.toml")
    if quick:  # 1 epoch on 256 images, 1 lr × 2 λ (each arm's two smallest), 2 seeds: measures nothing
        arms = tuple(replace(a, weight_decay=a.weight_decay[:2]) for a in config.arms)
        extra = {**config.extra, "train_subset": 256, "val_size": 256, "test_subset": 256}
        config = replace(config, name=f"{name}-quick", epochs=1, seeds=(0, 1), lr=config.lr[1:2], arms=arms,
                         extra=extra)
    return config


def schedule_configs(base, lr: float, weight_decay: float, quick: bool) -> dict:
    """Claim 3's sweeps: ``base`` (the Adam comparison's config) with its AdamW `paper` arm only, on lr × λ of
    the selected cell and a half-decade either side, under each schedule. Step drops ×0.1 at 50% and 75% of the
    run; warm restarts have periods of a quarter of the run then three quarters (T_0 = epochs/4, T_mult = 3);
    AdamWR's λ_norm is centred on λ*/sqrt(b/(B·T)), T the run's epochs, so its middle row decays as much over the
    run as λ* does."""
    arm = next(a for a in base.arms if a.name == SCHEDULE_ARM)
    if quick:  # 4 epochs (the step drops and restarts need a few), 1 cell, 1 seed
        base = replace(base, epochs=4, seeds=base.seeds[:1])
    epochs = base.epochs
    t0 = max(epochs // 4, 1)
    lrs = log_grid(lr / HALF_DECADE, lr * HALF_DECADE, 3)
    wds = log_grid(weight_decay / HALF_DECADE, weight_decay * HALF_DECADE, 3)
    train_size = base.extra.get("train_subset") or 1
    norm = weight_decay / math.sqrt(base.batch_size / (train_size * epochs))
    options = {"constant": ("constant", {}, wds, False),
               "step": ("step", {"milestones": [epochs // 2, (3 * epochs) // 4], "gamma": 0.1}, wds, False),
               "cosine": ("cosine", {}, wds, False),
               "sgdr": ("sgdr", {"T_0": t0, "T_mult": 3}, wds, False),
               "adamwr": ("sgdr", {"T_0": t0, "T_mult": 3}, log_grid(norm / HALF_DECADE, norm * HALF_DECADE, 3),
                          True)}
    configs = {}
    for schedule in SCHEDULES:
        name, schedule_options, grid, normalized = options[schedule]
        extra = {k: v for k, v in base.extra.items() if k != "schedule_options"}
        if schedule_options:
            extra["schedule_options"] = schedule_options
        config = replace(base, name=f"{base.name.removesuffix('-quick').replace('-adam', '')}-schedule-{schedule}"
                                    f"{'-quick' if quick else ''}",
                         schedule=name, lr=lrs[1:2] if quick else lrs, extra=extra,
                         arms=(replace(arm, weight_decay=grid[1:2] if quick else grid, normalized_wd=normalized),))
        configs[schedule] = config
    return configs


def restart_epochs(epochs: int) -> list[int]:
    """The last epoch of each warm-restart period (T_0 = epochs // 4, T_mult = 3), within the run."""
    ends, period, end = [], max(epochs // 4, 1), 0
    while end + period <= epochs:
        end += period
        ends.append(end)
        period *= 3
    return ends


def comparison(configs, finished, n_boot: int) -> tuple[dict, dict, list, list]:
    """Claim 2's per-arm summaries and between-arm improvements (test error and test loss)."""
    maps, summaries, trials = {}, {}, []
    for config in configs:
        results = finished[config.name]
        for arm in config.arms:
            hm, err = grids(results.records, arm.name)
            _, loss = grids(results.records, arm.name, metric="test_loss")
            maps[arm.name] = (hm, err, loss)
            s = arm_summary(hm, err, config.basin_tolerance)
            i, j = list(hm.wds).index(s["weight_decay"]), list(hm.lrs).index(s["lr"])
            s["test_loss"] = float(loss[:, i, j].mean())
            s["test_loss_sd"] = float(np.std(loss[:, i, j], ddof=1)) if loss.shape[0] > 1 else math.nan
            summaries[arm.name] = s
        trials += [{"sweep": config.name, "arm": r.arm, "lr": r.lr, "weight_decay": r.weight_decay, "seed": r.seed,
                    "val_loss": r.value, "test_error": r.metrics.get("test_error", math.nan),
                    "test_loss": r.metrics.get("test_loss", math.nan), "diverged": int(r.diverged)}
                   for r in results.records]
    rows = []
    for arm, reference in COMPARISONS:
        if arm in maps and reference in maps:
            (hm_a, err_a, loss_a), (hm_b, err_b, loss_b) = maps[arm], maps[reference]
            gain, sd = relative_improvement((hm_a.values, err_a), (hm_b.values, err_b), n_boot=n_boot)
            gain_loss, sd_loss = relative_improvement((hm_a.values, loss_a), (hm_b.values, loss_b), n_boot=n_boot)
            rows.append({"arm": arm, "reference": reference, "relative_improvement": gain, "bootstrap_sd": sd,
                         "relative_improvement_test_loss": gain_loss, "bootstrap_sd_test_loss": sd_loss})
    return maps, summaries, trials, rows


def main(argv: list[str] | None = None) -> int:
    p = command_line(__doc__, "claim2-overfit", quick="tiny runs of every stage: a smoke test",
                     publishes="DOCS/data/claim2-overfit-*.csv and DOCS/figures/claim2-overfit-*.png",
                     jobs="worker processes per sweep")
    p.add_argument("--regime-only", action="store_true", help="stop after choosing the regime (no decay runs)")
    args = p.parse_args(argv)
    out, docs = Path(args.out), Path(args.publish) if args.publish else None

    scan_configs = [scan_config(name, args.quick) for name in CANDIDATES]
    scans = finished_sweeps(scan_configs, out, args.jobs, "claim2-overfit")
    if scans is None:
        return 1
    found = {c.name: (scans[c.name], regime(scans[c.name], c.epochs)) for c in scan_configs}
    chosen = next((name for name, (_, s) in found.items() if s["overfits"]), None)
    print(f"regime: per candidate at λ ≈ 0 and its best lr (lowest seed-mean min val_loss), per seed: the epoch of "
          f"the lowest val_loss, the val_loss rise after it (≥ {RISE:.0%}, minimum by epoch ≤ {LATE:.0%} of the run)"
          f" and t_end/t_min (≤ {TRAIN_FALL})")
    for name, (_, s) in found.items():
        seeds = "; ".join(f"seed {r['seed']}: e_min {r['e_min']}, rise {r['rise']:+.1%}, train ×{r['train_ratio']:.3f}"
                          for r in s["runs"] if r["lr"] == s["best_lr"])
        print(f"  {name}: lr {s['best_lr']:.3g}: {seeds} → {'overfits' if s['overfits'] else 'does not'} "
              f"({s['seconds_per_run']:.1f} s wall per run)")
    print(f"  chosen: {chosen or 'none'}")
    regime_rows = [{"candidate": name, "best_lr": s["best_lr"], **r} for name, (_, s) in found.items()
                   for r in s["runs"]]
    summary = {"regime": {name: {k: v for k, v in s.items() if k != "runs"} for name, (_, s) in found.items()},
               "chosen": chosen}
    if docs:
        write_csv(docs / "data" / "claim2-overfit-regime.csv", regime_rows)
        regime_figure(found, docs / "figures" / "claim2-overfit-regime.png")
    if args.regime_only or (chosen is None and not args.quick):  # --quick goes on: it tests the pipeline
        write_json(out / "summary.json", summary)
        return 0 if args.regime_only else 1

    configs = [comparison_config(name, args.quick) for name in CONFIGS]
    finished = finished_sweeps(configs, out, args.jobs, "claim2-overfit")
    if finished is None:
        write_json(out / "summary.json", summary)
        return 1
    maps, summaries, trials, rows = comparison(configs, finished, n_boot=50 if args.quick else N_BOOT)
    summary.update(arms=summaries, comparisons=rows)
    print("claim 2: per arm the cell with the best val_loss (seed mean), its test error and loss (± sd over seeds); "
          "the best at the arm's lowest λ (λ ≈ 0); the basin within basin_tolerance of the best val_loss")
    for s in summaries.values():
        print(f"  {s['arm']:<12} lr {s['lr']:.3g} λ {s['weight_decay']:.3g}{' (ON THE GRID EDGE)' if s['edge'] else ''}"
              f": test error {s['test_error']:.4f} ± {s['test_error_sd']:.4f}, loss {s['test_loss']:.4f} ± "
              f"{s['test_loss_sd']:.4f}; at λ {s['zero_wd']:.3g}: {s['zero_wd_test_error']:.4f} (lr "
              f"{s['zero_wd_lr']:.3g}); basin {s['basin_cells']} cells, {s['basin_area']:.2f} dec², "
              f"{s['basin_orientation']}")
    for c in rows:
        print(f"  {c['arm']} against {c['reference']}: relative improvement in test error "
              f"{c['relative_improvement']:+.1%} ± {c['bootstrap_sd']:.1%}, in test loss "
              f"{c['relative_improvement_test_loss']:+.1%} ± {c['bootstrap_sd_test_loss']:.1%} (paired bootstrap)")
    if docs:
        from claim2_deep import figure

        write_csv(docs / "data" / "claim2-overfit-trials.csv", trials)
        write_csv(docs / "data" / "claim2-overfit-arms.csv", list(summaries.values()))
        write_csv(docs / "data" / "claim2-overfit-comparisons.csv", rows)
        figure({arm: m[:2] for arm, m in maps.items()}, summaries, docs / "figures" / "claim2-overfit-test-error.png")

    best = summaries[SCHEDULE_ARM]
    base = next(c for c in configs if any(a.name == SCHEDULE_ARM for a in c.arms))
    schedules = schedule_configs(base, best["lr"], best["weight_decay"], args.quick)
    done = finished_sweeps(schedules.values(), out, args.jobs, "claim2-overfit")
    if done is None:
        write_json(out / "summary.json", summary)
        return 1
    curves = {schedule: best_curve(done[config.name]) for schedule, config in schedules.items()}
    summary["schedules"] = curves
    write_json(out / "summary.json", summary)
    marks = restart_epochs(schedules["sgdr"].epochs)
    print(f"claim 3: each schedule's best cell (final val_loss) around lr {best['lr']:.3g}, λ {best['weight_decay']:.3g}"
          f"; test error at the end (± sd over seeds) and at epochs {marks}")
    for schedule, b in curves.items():
        at = ", ".join(f"{e}: {b['test_error'][b['epochs'].index(e)]:.4f}" for e in marks if e in b["epochs"])
        print(f"  {schedule:<8} lr {b['lr']:.3g} λ {b['weight_decay']:.3g}: {b['final_test_error']:.4f} ± "
              f"{b['final_test_error_sd']:.4f}; {at}")
    if docs:
        write_csv(docs / "data" / "claim2-overfit-schedules.csv",
                  [{"schedule": schedule, "lr": b["lr"], "weight_decay": b["weight_decay"], "epoch": e,
                    "test_error_mean": f"{m:.5f}", "test_error_sd": f"{s:.5f}"}
                   for schedule, b in curves.items()
                   for e, m, s in zip(b["epochs"], b["test_error"], b["test_error_sd"])])
        schedules_figure(curves, docs / "figures" / "claim2-overfit-schedules.png", restarts=tuple(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
