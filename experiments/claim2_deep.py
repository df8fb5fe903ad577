"""Claim 2 on a deep network: AdamW (torch and paper) vs Adam-L2 and SGDW vs SGD-L2 on Fashion-MNIST's CNN with
batch norm and a cosine schedule, plus cautious AdamW against its plain twin (issue 14, "Beyond the seeds"). The two
`weightdecay sweep` configs experiments/claim2-fashion-cnn-{adam,sgd}.toml hold the grids; this script runs (or
resumes, or finds finished) both, then reads what the sweep report does not show: the test error.

Per arm: the cell with the best seed-mean val_loss (selection on validation data) and its test error, mean ± sd
over seeds; the same for the arm's lowest λ (λ ≈ 0: the best lr at that λ), and the difference; the basin (cells
within the config's basin_tolerance of the best val_loss), its cells and area in decades². Between arms:
AdamW's relative improvement in test error over Adam-L2 (1 − err_AdamW/err_L2; the paper reports about 15% on
CIFAR-10), SGDW's over SGD-L2, cautious against plain AdamW torch, each ± the sd over bootstrap resamples of the
seeds (the same resampled seeds for both arms, since seed k is the same initialization and data order in every
arm; the selection is redone on each resample).

    python experiments/claim2_deep.py --out runs/claim2 --publish docs
    python experiments/claim2_deep.py --quick --out /tmp/claim2-quick      # a smoke test of the pipeline

``--out runs/claim2`` is also where `weightdecay sweep experiments/claim2-fashion-cnn-adam.toml
experiments/claim2-fashion-cnn-sgd.toml --out runs/claim2 --jobs 2` puts them, so after that command this
script only reads.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from _publish import command_line, finished_sweeps, pyplot, save_figure, write_csv, write_json
from weightdecay.reports.analysis import basin, heatmap
from weightdecay.sweeps import load_config

HERE = Path(__file__).resolve().parent
CONFIGS = ("claim2-fashion-cnn-adam", "claim2-fashion-cnn-sgd")
# (arm, its reference): the relative improvement in test error of the first over the second.
COMPARISONS = (("AdamW torch", "Adam-L2"), ("AdamW paper", "Adam-L2"), ("SGDW torch", "SGD-L2"),
               ("AdamW torch cautious", "AdamW torch"))
N_BOOT = 1000


def config_for(name: str, quick: bool):
    config = load_config(HERE / f"{name}.toml")
    if quick:  # 1 epoch on 256 images, 1 lr × 2 λ (each arm's two smallest), 1 seed: measures nothing
        arms = tuple(replace(a, weight_decay=a.weight_decay[:2]) for a in config.arms)
        extra = {**config.extra, "train_subset": 256, "val_size": 256, "test_subset": 256}
        config = replace(config, name=f"{name}-quick", epochs=1, seeds=(0,), lr=config.lr[1:2], arms=arms,
                         extra=extra)
    return config


def grids(records, arm: str, metric: str = "test_error") -> tuple[object, np.ndarray]:
    """The arm's val_loss heatmap and its ``metric`` (test error) on the same grid ``(seeds, n_λ, n_lr)``, inf where
    diverged."""
    hm = heatmap(records, arm)
    test = heatmap([{"arm": r.arm, "lr": r.lr, "weight_decay": r.weight_decay, "seed": r.seed, "diverged": r.diverged,
                     "value": math.inf if r.diverged else r.metrics.get(metric, math.nan)}
                    for r in records if r.arm == arm], arm)
    return hm, test.values


def select(val: np.ndarray, test: np.ndarray) -> tuple[int, int, float, float]:
    """The cell (i, j) with the best seed-mean val_loss (a cell where a seed diverged or did not run never wins);
    its seed-mean val_loss and test error."""
    with np.errstate(invalid="ignore"):
        mean = val.mean(axis=0)
    flat = np.where(np.isfinite(mean), mean, np.inf)
    i, j = np.unravel_index(int(np.argmin(flat)), flat.shape)
    return int(i), int(j), float(val[:, i, j].mean()), float(test[:, i, j].mean())


def arm_summary(hm, test: np.ndarray, tolerance: float) -> dict:
    i, j, val, err = select(hm.values, test)
    _, j0, val0, err0 = select(hm.values[:, :1], test[:, :1])  # the lowest λ row: λ ≈ 0
    shape = basin(hm, tolerance)
    sd = float(np.std(test[:, i, j], ddof=1)) if test.shape[0] > 1 else math.nan
    return {"arm": hm.arm, "seeds": len(hm.seeds), "lr": float(hm.lrs[j]), "weight_decay": float(hm.wds[i]),
            "val_loss": val, "test_error": err, "test_error_sd": sd,
            "edge": bool(i in (0, len(hm.wds) - 1) or j in (0, len(hm.lrs) - 1)),
            "zero_wd": float(hm.wds[0]), "zero_wd_lr": float(hm.lrs[j0]), "zero_wd_val_loss": val0,
            "zero_wd_test_error": err0, "basin_cells": int(shape.cells.sum()), "basin_area": shape.area,
            "basin_orientation": shape.orientation}


def relative_improvement(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                         n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """1 − err_a/err_b at each arm's val-selected cell, and its sd over paired bootstrap resamples of the seeds."""
    def ratio(pick):
        err_a = select(a[0][pick], a[1][pick])[3]
        err_b = select(b[0][pick], b[1][pick])[3]
        return 1 - err_a / err_b if err_b > 0 else math.nan

    n = min(a[0].shape[0], b[0].shape[0])
    rng = np.random.default_rng(seed)
    boots = [ratio(rng.integers(0, n, n)) for _ in range(n_boot)]
    return ratio(np.arange(n)), float(np.nanstd(boots))


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim2", quick="1 epoch on 256 images, 2 cells × 1 seed per arm: a smoke test",
                        publishes="DOCS/data/claim2-*.csv and DOCS/figures/claim2-test-error.png",
                        jobs="worker processes per sweep").parse_args(argv)
    out = Path(args.out)
    configs = [config_for(name, args.quick) for name in CONFIGS]
    finished = finished_sweeps(configs, out, args.jobs, "claim2")
    if finished is None:
        return 1
    maps, summaries, trials = {}, {}, []
    for config in configs:
        results = finished[config.name]
        for arm in config.arms:
            maps[arm.name] = grids(results.records, arm.name)
            summaries[arm.name] = arm_summary(maps[arm.name][0], maps[arm.name][1], config.basin_tolerance)
        trials += [{"sweep": config.name, "arm": r.arm, "lr": r.lr, "weight_decay": r.weight_decay, "seed": r.seed,
                    "val_loss": r.value, "test_error": r.metrics.get("test_error", math.nan),
                    "diverged": int(r.diverged)} for r in results.records]
    comparisons = []
    for arm, reference in COMPARISONS:
        if arm in maps and reference in maps:
            gain, sd = relative_improvement((maps[arm][0].values, maps[arm][1]),
                                            (maps[reference][0].values, maps[reference][1]),
                                            n_boot=50 if args.quick else N_BOOT)
            comparisons.append({"arm": arm, "reference": reference, "relative_improvement": gain,
                                "bootstrap_sd": sd})
    write_json(out / "summary.json", {"arms": summaries, "comparisons": comparisons})

    print("claim 2: per arm, the cell with the best val_loss (seed mean) and its test error (± sd over seeds); "
          "the best at the arm's lowest λ (λ ≈ 0); the basin within basin_tolerance of the best val_loss")
    for s in summaries.values():
        print(f"  {s['arm']:<21} lr {s['lr']:.3g} λ {s['weight_decay']:.3g}{' (edge)' if s['edge'] else ''}: "
              f"test error {s['test_error']:.4f} ± {s['test_error_sd']:.4f}; at λ {s['zero_wd']:.3g}: "
              f"{s['zero_wd_test_error']:.4f} (lr {s['zero_wd_lr']:.3g}); basin {s['basin_cells']} cells, "
              f"{s['basin_area']:.2f} dec², {s['basin_orientation']}")
    for c in comparisons:
        print(f"  {c['arm']} against {c['reference']}: relative improvement in test error "
              f"{c['relative_improvement']:+.1%} ± {c['bootstrap_sd']:.1%} (bootstrap over seeds)")

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim2-trials.csv", trials)
        write_csv(docs / "data" / "claim2-arms.csv", list(summaries.values()))
        if comparisons:
            write_csv(docs / "data" / "claim2-comparisons.csv", comparisons)
        figure(maps, summaries, docs / "figures" / "claim2-test-error.png")
    return 0


def figure(maps: dict[str, tuple], summaries: dict[str, dict], path: Path) -> None:
    """Each arm's seed-mean test error on its (lr, λ) grid, one colour scale, the val-selected cell boxed."""
    arms = list(maps)
    fig, axes = pyplot().subplots(1, len(arms), figsize=(2.7 * len(arms), 2.9), squeeze=False)
    finite = [v for hm, t in maps.values() for v in np.nanmean(t, axis=0).ravel() if np.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    for ax, arm in zip(axes[0], arms):
        hm, test = maps[arm]
        with np.errstate(invalid="ignore"):
            mean = test.mean(axis=0)
        image = ax.imshow(np.where(np.isfinite(mean), mean, np.nan), origin="lower", cmap="viridis_r", vmin=lo,
                          vmax=hi, aspect="auto")
        s = summaries[arm]
        i, j = list(hm.wds).index(s["weight_decay"]), list(hm.lrs).index(s["lr"])
        ax.add_patch(pyplot().Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
        ax.set_xticks(range(len(hm.lrs)), [f"{v:.2g}" for v in hm.lrs], fontsize=6, rotation=45)
        ax.set_yticks(range(len(hm.wds)), [f"{v:.0e}" for v in hm.wds], fontsize=6)
        ax.set_title(f"{arm}\n{s['test_error']:.4f} ± {s['test_error_sd']:.4f}", fontsize=8)
        ax.set_xlabel("lr", fontsize=7)
    axes[0][0].set_ylabel("λ (the arm's convention)", fontsize=7)
    fig.colorbar(image, ax=axes[0][-1]).set_label("test error (seed mean)", fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
