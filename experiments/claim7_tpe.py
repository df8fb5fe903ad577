"""Claim 7 (tuning efficiency): Optuna's TPE in raw (lr, λ) against decoupled (lr, s) and timescale (lr, τ_epoch)
coordinates on Schaipp's ridge setup, AdamW in PyTorch's convention (where the good region is the diagonal valley
λ ∝ 1/lr; in (lr, s) it is axis-aligned).

For each coordinate system, ``--searches`` independent searches of ``--trials`` trials each; search k uses TPE
seed k and training seed k (one run per trial), so its target is the grid's best at seed k: the reference grid
(``experiments/claim7-grid.toml``, 7 lr × 13 λ, seeds 0..19) runs first. A search "arrives" at the first trial
whose val_loss is within 1% of that best. Everything is a ``weightdecay sweep`` study, so a rerun resumes.

    python experiments/claim7_tpe.py --out runs/claim7 --publish docs      # 1,820 + 2,400 ridge runs
    python experiments/claim7_tpe.py --quick --out /tmp/claim7-quick       # a smoke test of the pipeline

The three boxes have the same lr range and the same width (6 decades) in their second coordinate:
λ ∈ [1e-2, 1e4] (the grid's), s = lr·λ ∈ [1e-6, 1], τ_epoch = b/(B·s) ∈ [0.1, 1e5] (b = 20, B = 200). The
timescale box is the decoupled one mirrored in log space, so those two should need the same number of trials.
"""

from __future__ import annotations

import math
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from _publish import command_line, finished_sweep, pyplot, save_figure, write_csv, write_json
from weightdecay.sweeps import load_config, load_results, run_sweep
from weightdecay.sweeps import log_grid, parse_config

HERE = Path(__file__).resolve().parent
COORDINATES = ("raw", "decoupled", "timescale")
TOLERANCE = 0.01  # "within 1% of the grid's best"

# One search; {coords} picks the box. The TOML text is kept with the run (runs/claim7/NAME/sweep.toml).
TEMPLATE = """\
name = "claim7-{coords}-{k:02d}"
task = "ridge"
metric = "val_loss"
epochs = {epochs}
batch_size = 20
schedule = "constant"
seeds = [{k}]   # TPE seed and training seed

[search]
sampler = "tpe"
trials = {trials}
coordinates = "{coords}"
lr = {{ min = 1e-4, max = 1e-1 }}
{box}

[[arms]]
name = "AdamW torch"
optimizer = "adamw"
decay = "torch"
"""
BOXES = {"raw": "weight_decay = { min = 1e-2, max = 1e4 }",
         "decoupled": "shrink = { min = 1e-6, max = 1.0 }",
         "timescale": "tau_epoch = { min = 0.1, max = 1e5 }\ntrain_size = 200"}


def grid_config(quick: bool):
    config = load_config(HERE / "claim7-grid.toml")
    if quick:  # a 2×2 grid, 2 seeds, 2 epochs: exercises the pipeline, measures nothing
        arm = replace(config.arms[0], weight_decay=log_grid(1e-1, 1e1, 2))
        config = replace(config, name="claim7-grid-quick", epochs=2, seeds=(0, 1), lr=log_grid(1e-3, 1e-2, 2),
                         arms=(arm,))
    return config


def search_config(coords: str, k: int, trials: int, epochs: int):
    text = TEMPLATE.format(coords=coords, k=k, trials=trials, epochs=epochs, box=BOXES[coords])
    return parse_config(tomllib.loads(text), source=text, default_name="claim7")


def _complete(out: Path, trials: int) -> bool:
    try:
        return len(load_results(out).records) >= trials
    except Exception:  # not started yet (no sweep.json or journal): run it
        return False


def run_search(coords: str, k: int, trials: int, epochs: int, out: Path) -> Path:
    config = search_config(coords, k, trials, epochs)
    folder = out / config.name
    if not _complete(folder, trials):
        # One worker per search: TPE then asks its trials one after another, so a search is reproducible.
        run_sweep(config, out_dir=folder, jobs=1, threads=1, quiet=True)
    return folder


def grid_bests(results) -> dict[int, float]:
    """Per seed, the grid's best finite val_loss."""
    best: dict[int, float] = {}
    for r in results.records:
        if math.isfinite(r.value) and not r.diverged:
            best[r.seed] = min(best.get(r.seed, math.inf), r.value)
    return best


def arrival(values: list[float], target: float) -> int | None:
    """1-based index of the first value within the target, or None if the search never got there."""
    for i, v in enumerate(values, 1):
        if v <= target:
            return i
    return None


def summarize(arrivals: list[int | None], trials: int) -> dict[str, float]:
    n = len(arrivals)
    hit = [a for a in arrivals if a is not None]
    # Censored searches count as trials + 1 for the quantiles (they need more than the budget).
    filled = np.array([a if a is not None else trials + 1 for a in arrivals], dtype=float)
    q25, q50, q75 = np.percentile(filled, [25, 50, 75]) if n else (math.nan,) * 3
    return {"searches": n, "arrived": len(hit), "median": float(q50), "q25": float(q25), "q75": float(q75),
            "mean_arrived": float(np.mean(hit)) if hit else math.nan,
            "sd_arrived": float(np.std(hit, ddof=1)) if len(hit) > 1 else math.nan}


def bootstrap_median_diff(a: list[int | None], b: list[int | None], trials: int, n_boot: int = 2000) -> tuple[float, float]:
    """Median(a) − median(b) (censored as trials + 1) and its bootstrap standard deviation."""
    fa = np.array([x if x is not None else trials + 1 for x in a], dtype=float)
    fb = np.array([x if x is not None else trials + 1 for x in b], dtype=float)
    rng = np.random.default_rng(0)
    diffs = [np.median(rng.choice(fa, len(fa))) - np.median(rng.choice(fb, len(fb))) for _ in range(n_boot)]
    return float(np.median(fa) - np.median(fb)), float(np.std(diffs))


def figure(per_coords: dict[str, list[list[float]]], bests: list[float], trials: int, path: Path) -> None:
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(9, 3.4))
    n = np.arange(1, trials + 1)
    for coords, searches in per_coords.items():
        gaps = []
        for values, best in zip(searches, bests):
            running = np.minimum.accumulate(np.where(np.isfinite(values), values, np.inf))
            gaps.append(running / best - 1)
        gaps = np.array(gaps)
        arrived = (gaps <= TOLERANCE).mean(axis=0)
        ax1.step(n, arrived, where="post", label=coords)
        med = np.median(gaps, axis=0)
        ax2.plot(n, np.maximum(med, 1e-4), label=coords)
        ax2.fill_between(n, np.maximum(np.percentile(gaps, 25, axis=0), 1e-4),
                         np.maximum(np.percentile(gaps, 75, axis=0), 1e-4), alpha=0.2)
    ax1.set(xlabel="trials", ylabel="searches within 1% of the grid's best", ylim=(0, 1.02))
    ax2.axhline(TOLERANCE, color="k", lw=0.8, ls="--")
    ax2.set(xlabel="trials", ylabel="best so far / grid best − 1", yscale="log")
    ax1.legend(title="TPE coordinates", fontsize=8)
    ax2.set_title("median and quartiles over searches", fontsize=9)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = command_line(__doc__, "claim7", quick="1 search × 4 trials of 2-epoch runs: a smoke test",
                     publishes="DOCS/data/claim7-*.csv and DOCS/figures/claim7-tpe.png",
                     jobs="searches run side by side (and grid workers)")
    p.add_argument("--searches", type=int, default=20, help="independent searches per coordinate system")
    p.add_argument("--trials", type=int, default=40, help="trials per search")
    args = p.parse_args(argv)
    if args.quick:
        args.searches, args.trials = 1, 4
    out = Path(args.out)
    grid = grid_config(args.quick)
    epochs = grid.epochs

    grid_results = finished_sweep(grid, out / "grid", args.jobs, "claim7")
    if grid_results is None:
        return 1
    bests = grid_bests(grid_results)
    missing = [k for k in range(args.searches) if k not in bests]
    if missing:
        print(f"claim7: the grid has no finite result for seeds {missing}; extend its seeds", file=sys.stderr)
        return 1

    jobs = [(c, k) for c in COORDINATES for k in range(args.searches)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        folders = dict(zip(jobs, pool.map(lambda ck: run_search(*ck, args.trials, epochs, out), jobs)))

    rows, per_coords, summary = [], {c: [] for c in COORDINATES}, {}
    arrivals = {c: [] for c in COORDINATES}
    for (coords, k), folder in folders.items():
        records = load_results(folder).records  # one record per trial, in trial order (one seed per search)
        values = [r.value if math.isfinite(r.value) else math.inf for r in records][: args.trials]
        values += [math.inf] * (args.trials - len(values))  # a failed trial never counts as arrived
        per_coords[coords].append(values)
        arrivals[coords].append(arrival(values, (1 + TOLERANCE) * bests[k]))
        for i, r in enumerate(records[: args.trials], 1):
            rows.append({"coordinates": coords, "search": k, "trial": i, "lr": f"{r.lr:.6g}",
                         "weight_decay": f"{r.weight_decay:.6g}", "shrink": f"{r.lr * r.weight_decay:.6g}",
                         "val_loss": f"{r.value:.6g}", "grid_best": f"{bests[k]:.6g}"})
    for coords in COORDINATES:
        summary[coords] = summarize(arrivals[coords], args.trials)
        summary[coords]["arrivals"] = arrivals[coords]
    for coords in ("decoupled", "timescale"):
        diff, sd = bootstrap_median_diff(arrivals["raw"], arrivals[coords], args.trials)
        summary[f"raw_minus_{coords}"] = {"median_difference": diff, "bootstrap_sd": sd}
    summary["trials"], summary["tolerance"] = args.trials, TOLERANCE
    write_json(out / "summary.json", summary)

    print(f"claim 7: trials until val_loss is within {TOLERANCE:.0%} of the grid's best ({args.searches} searches "
          f"per coordinate system, budget {args.trials}; a search that never arrives counts as {args.trials + 1})")
    for coords in COORDINATES:
        s = summary[coords]
        print(f"  {coords:<10} median {s['median']:.0f} (quartiles {s['q25']:.0f}–{s['q75']:.0f}), arrived "
              f"{s['arrived']}/{s['searches']}, mean of those that arrived {s['mean_arrived']:.1f} ± "
              f"{s['sd_arrived']:.1f} (sd)")
    for coords in ("decoupled", "timescale"):
        d = summary[f"raw_minus_{coords}"]
        print(f"  median(raw) − median({coords}) = {d['median_difference']:+.1f} ± {d['bootstrap_sd']:.1f} "
              f"(bootstrap sd)")

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim7-tpe-trials.csv", rows)
        write_csv(docs / "data" / "claim7-grid.csv",
                  [{"lr": r.lr, "weight_decay": r.weight_decay, "seed": r.seed, "val_loss": r.value,
                    "diverged": int(r.diverged)} for r in grid_results.records])
        figure(per_coords, [bests[k] for k in range(args.searches)], args.trials, docs / "figures" / "claim7-tpe.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
