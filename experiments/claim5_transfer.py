"""Claim 5 (how λ* transfers): the best weight decay against the run's length, the data set's size and the batch
size, at fixed lr, AdamW in PyTorch's convention, against two predictions (docs/math.md, "Hyperparameter rules"):

    normalized weight decay (Loshchilov & Hutter):  λ = λ_norm·sqrt(b/(B·T))  →  λ* ∝ T^(−½), B^(−½), b^(+½)
    the EMA view, τ_epoch = b/(lr·λ·B) held fixed (Wang & Aitchison; Bergsma et al.'s "Power Lines"):
                                                        λ* flat in T,  λ* ∝ B^(−1) at fixed epochs,  λ* ∝ b^(+1)

    epochs  ridge (Schaipp's setup, batch 20, constant lr), T = 5, 15, 50, 150 epochs
    batch   ridge, 50 epochs, b = 10, 20, 40
    data    digits-mlp, 20 epochs, batch 32, constant lr, B = 314, 628, 1257 training images (¼, ½, all)

Each variant is a `weightdecay sweep` (λ on a quarter-decade grid, 3 seeds, 2 learning rates), so a rerun resumes.
λ* per lr is the analysis's refined best λ of the seed-averaged val_loss; an exponent is the least-squares slope
of log λ* against log X over the variants, ± its standard deviation over 300 bootstrap resamples of the seeds.

    python experiments/claim5_transfer.py --out runs/claim5 --publish docs
    python experiments/claim5_transfer.py --quick --out /tmp/claim5-quick      # a smoke test of the pipeline
"""

from __future__ import annotations

import math
import sys
import tomllib
from pathlib import Path

import numpy as np

from _publish import command_line, finished_sweep, pyplot, save_figure, write_csv, write_json
from weightdecay.reports.analysis import heatmap, refine_best_wd
from weightdecay.sweeps.config import parse_config

# Every variant. {extra} is filled in first (digits-mlp's training subset, itself a field); {{ }} are TOML's braces.
TEMPLATE = """\
name = "{name}"
task = "{task}"
metric = "val_loss"
epochs = {epochs}
batch_size = {batch}
schedule = "constant"
seeds = {seeds}
{extra}
[grid]
lr = {lrs}

[[arms]]
name = "AdamW torch"
optimizer = "adamw"
decay = "torch"
weight_decay = {{ min = {wd_min}, max = {wd_max}, num = {num} }}
"""
RIDGE = {"task": "ridge", "extra": "", "wd_min": 0.1, "wd_max": 316.228}
DIGITS = {"task": "digits-mlp", "batch": 32, "extra": "\n[extra]\ntrain_subset = {size}\n", "wd_min": 0.001,
          "wd_max": 3.16228}

# experiment: (the varied quantity, its values, template, fixed fields, predicted exponents)
EXPERIMENTS = {
    "epochs": ("T (epochs)", (5, 15, 50, 150), TEMPLATE, {**RIDGE, "batch": 20, "lrs": "[0.001, 0.00316228]"},
               {"normalized wd": -0.5, "EMA view": 0.0}),
    "batch": ("b (batch size)", (10, 20, 40), TEMPLATE, {**RIDGE, "epochs": 50, "lrs": "[0.001, 0.00316228]"},
              {"normalized wd": 0.5, "EMA view": 1.0}),
    "data": ("B (training examples)", (314, 628, 1257), TEMPLATE, {**DIGITS, "epochs": 20,
                                                                    "lrs": "[0.00316228, 0.01]"},
             {"normalized wd": -0.5, "EMA view": -1.0}),
}
FIELD = {"epochs": "epochs", "batch": "batch", "data": "size"}


def variant_config(experiment: str, value: int, quick: bool):
    _, _, template, fixed, _ = EXPERIMENTS[experiment]
    fields = {**fixed, FIELD[experiment]: value, "seeds": "[0, 1, 2]", "num": 15}
    if quick:  # 1-2 epochs, 3 λ, 2 seeds: exercises the pipeline, measures nothing
        fields.update(seeds="[0, 1]", num=3, **({"epochs": min(value, 2)} if experiment == "epochs" else {"epochs": 1}))
    fields["name"] = f"claim5-{experiment}-{value}" + ("-quick" if quick else "")
    text = template.replace("{extra}", fields["extra"]).format(**fields)
    return parse_config(tomllib.loads(text), source=text, default_name="claim5")


def best_wd(values: np.ndarray, wds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refined λ* per lr column of per-seed values ``(seeds, n_λ, n_lr)`` (seed mean), and whether it is interior."""
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=0)
    mean = np.where(np.isfinite(mean), mean, np.inf)
    return refine_best_wd(mean, wds)


def exponent(xs: np.ndarray, wd_star: np.ndarray) -> float:
    ok = np.isfinite(wd_star)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(xs[ok]), np.log(wd_star[ok]), 1)[0])


def analyse(experiment: str, maps: dict[int, object], n_boot: int = 300) -> list[dict]:
    """Per lr: λ* at every variant and the fitted exponent with its bootstrap-over-seeds spread."""
    xs = np.array(sorted(maps), dtype=float)
    first = maps[int(xs[0])]
    rows = []
    rng = np.random.default_rng(0)
    for j, lr in enumerate(first.lrs):
        stars, interior = [], []
        for x in xs:
            hm = maps[int(x)]
            star, inside = best_wd(hm.values[:, :, [j]], hm.wds)
            stars.append(star[0])
            interior.append(bool(inside[0]))
        stars = np.array(stars)
        boots = []
        for _ in range(n_boot):
            b = []
            for x in xs:
                hm = maps[int(x)]
                pick = rng.integers(0, hm.values.shape[0], hm.values.shape[0])
                b.append(best_wd(hm.values[pick][:, :, [j]], hm.wds)[0][0])
            boots.append(exponent(xs, np.array(b)))
        rows.append({"experiment": experiment, "lr": float(lr), "x": xs.tolist(), "wd_star": stars.tolist(),
                     "interior": interior, "exponent": exponent(xs, stars),
                     "exponent_sd": float(np.nanstd(boots)),
                     "tau_epoch": [_tau_epoch(experiment, x, float(lr), s) for x, s in zip(xs, stars)]})
    return rows


def _tau_epoch(experiment: str, x: float, lr: float, wd: float) -> float:
    """τ_epoch = b/(lr·λ·B) at λ*: the EMA view's quantity, which it predicts stays put."""
    batch, size = {"epochs": (20, 200), "batch": (x, 200), "data": (32, x)}[experiment]
    return batch / (lr * wd * size)


def figure(all_rows: list[dict], path: Path) -> None:
    ran = [e for e in EXPERIMENTS if any(r["experiment"] == e for r in all_rows)]  # --only runs a subset
    fig, axes = pyplot().subplots(1, len(ran), figsize=(3.7 * len(ran), 3.4), squeeze=False)
    for ax, experiment in zip(axes[0], ran):
        label, _, _, _, predictions = EXPERIMENTS[experiment]
        rows = [r for r in all_rows if r["experiment"] == experiment]
        for r in rows:
            x, y = np.array(r["x"]), np.array(r["wd_star"])
            ax.plot(x, y, "o-", label=f"lr {r['lr']:.3g}: {r['exponent']:+.2f} ± {r['exponent_sd']:.2f}")
        anchor_x, anchor_y = np.array(rows[0]["x"]), np.array(rows[0]["wd_star"])
        x0, y0 = anchor_x[0], anchor_y[0]
        for (name, k), style in zip(predictions.items(), (":", "--")):
            ax.plot(anchor_x, y0 * (anchor_x / x0) ** k, "k" + style, lw=0.9, label=f"{name}: {k:+.1f}")
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="λ* (torch units)", title=experiment)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = command_line(__doc__, "claim5", quick="2 variants per experiment, tiny grids: a smoke test",
                     publishes="DOCS/data/claim5-*.csv and DOCS/figures/claim5-transfer.png",
                     jobs="worker processes per sweep")
    p.add_argument("--only", choices=tuple(EXPERIMENTS), action="append", help="run only this experiment")
    args = p.parse_args(argv)
    out = Path(args.out)
    experiments = args.only or list(EXPERIMENTS)

    all_rows, trials = [], []
    for experiment in experiments:
        values = EXPERIMENTS[experiment][1][:2] if args.quick else EXPERIMENTS[experiment][1]
        maps = {}
        for value in values:
            config = variant_config(experiment, value, args.quick)
            results = finished_sweep(config, out / config.name, args.jobs, "claim5")
            if results is None:
                return 1
            maps[value] = heatmap(results.records, "AdamW torch")
            trials += [{"experiment": experiment, "x": value, "lr": f"{r.lr:.6g}", "weight_decay": f"{r.weight_decay:.6g}",
                        "seed": r.seed, "val_loss": f"{r.value:.6g}", "diverged": int(r.diverged)}
                       for r in results.records]
        all_rows += analyse(experiment, maps, n_boot=20 if args.quick else 300)

    write_json(out / "summary.json", all_rows)
    print("claim 5: exponent of λ* (torch units) against the varied quantity, at fixed lr; ± bootstrap over seeds")
    for r in all_rows:
        label, _, _, _, predictions = EXPERIMENTS[r["experiment"]]
        stars = ", ".join(f"{x:g}: {s:.3g}{'' if inside else ' (edge)'}"
                          for x, s, inside in zip(r["x"], r["wd_star"], r["interior"]))
        taus = ", ".join(f"{t:.3g}" for t in r["tau_epoch"])
        pred = ", ".join(f"{k} {v:+.1f}" for k, v in predictions.items())
        print(f"  {r['experiment']:<6} lr {r['lr']:.3g}: {r['exponent']:+.2f} ± {r['exponent_sd']:.2f} "
              f"(predicted: {pred}); λ* at {label}: {stars}; τ_epoch at λ*: {taus}")

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim5-trials.csv", trials)
        write_csv(docs / "data" / "claim5-exponents.csv",
                  [{"experiment": r["experiment"], "lr": r["lr"], "x": f"{x:g}", "wd_star": f"{s:.4g}",
                    "interior": int(inside), "tau_epoch": f"{t:.4g}", "exponent": f"{r['exponent']:.3f}",
                    "exponent_sd": f"{r['exponent_sd']:.3f}"}
                   for r in all_rows for x, s, inside, t in zip(r["x"], r["wd_star"], r["interior"], r["tau_epoch"])])
        figure(all_rows, docs / "figures" / "claim5-transfer.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
