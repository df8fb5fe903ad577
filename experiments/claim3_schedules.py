"""Claim 3 (schedules): fixed vs step-drop vs cosine vs warm restarts on the same task, four `weightdecay sweep`
configs that differ only in the schedule (experiments/claim3-*.toml: the digits MLP, 300 images, 70 epochs,
AdamW paper convention, 5 lr × 7 λ × 2 seeds), and a fifth, AdamWR proper: the warm restarts with normalized
weight decay per restart period (claim3-adamwr.toml, λ_norm on the same kind of grid). Per schedule, the
configuration with the best final val_loss (seed mean); its test error after every epoch (anytime performance), at
the end, and under warm restarts just before each restart (after epochs 10 and 30) and at the end of the last
period (epoch 70).

    python experiments/claim3_schedules.py --out runs/claim3 --publish docs
    python experiments/claim3_schedules.py --quick --out /tmp/claim3-quick      # a smoke test of the pipeline
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from _publish import command_line, finished_sweeps, pyplot, save_figure, write_csv, write_json
from weightdecay.sweeps import load_config, log_grid

HERE = Path(__file__).resolve().parent
SCHEDULES = ("constant", "step", "cosine", "sgdr", "adamwr")  # adamwr: sgdr with normalized decay per period
RESTART_EPOCHS = (10, 30, 70)  # sgdr with T_0 = 10, T_mult = 2: the ends of its periods


def config_for(schedule: str, quick: bool):
    config = load_config(HERE / f"claim3-{schedule}.toml")
    if quick:  # 3 epochs, one λ, 2 lr, 1 seed: exercises the pipeline, measures nothing
        extra = dict(config.extra)
        if config.schedule == "step":
            extra["schedule_options"] = {"milestones": [1, 2], "gamma": 0.1}
        if config.schedule == "sgdr":
            extra["schedule_options"] = {"T_0": 1, "T_mult": 2}
        arm = replace(config.arms[0], weight_decay=log_grid(1e-3, 1e-3, 1))
        config = replace(config, name=f"{config.name}-quick", epochs=3, seeds=(0,), lr=log_grid(1e-3, 1e-2, 2),
                         arms=(arm,), extra=extra)
    return config


def best_curve(results) -> dict:
    """The best (lr, λ) by seed-mean final val_loss, and its per-epoch test error (mean, sd over seeds)."""
    cells: dict[tuple[float, float], list] = {}
    for r in results.records:
        cells.setdefault((r.lr, r.weight_decay), []).append(r)
    finite = {k: v for k, v in cells.items() if all(np.isfinite(r.value) and not r.diverged for r in v)}
    (lr, wd), runs = min(finite.items(), key=lambda kv: np.mean([r.value for r in kv[1]]))
    curves = np.array([[h["test_error"] for h in r.history] for r in runs], dtype=float)
    return {"lr": lr, "weight_decay": wd, "seeds": len(runs), "val_loss": float(np.mean([r.value for r in runs])),
            "epochs": [int(h["epoch"]) for h in runs[0].history], "test_error": curves.mean(axis=0).tolist(),
            "test_error_sd": curves.std(axis=0, ddof=1).tolist() if len(runs) > 1 else [float("nan")] * curves.shape[1],
            "final_test_error": float(curves[:, -1].mean()),
            "final_test_error_sd": float(curves[:, -1].std(ddof=1)) if len(runs) > 1 else float("nan")}


def figure(best: dict[str, dict], path: Path, restarts: tuple[int, ...] = RESTART_EPOCHS) -> None:
    """Each schedule's best test-error curve; dotted lines at the warm restarts (``restarts`` but the last)."""
    fig, ax = pyplot().subplots(figsize=(6, 3.6))
    for schedule, b in best.items():
        e, m = np.array(b["epochs"]), np.array(b["test_error"])
        ax.plot(e, m, label=f"{schedule}: lr {b['lr']:.3g}, λ {b['weight_decay']:.3g}")
    for e in restarts[:-1]:
        ax.axvline(e, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="epoch", ylabel="test error (mean over seeds)", yscale="log",
           title="each schedule's best config (final val_loss); dotted: sgdr restarts")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "claim3", quick="3-epoch runs on a 2-point grid: a smoke test",
                        publishes="DOCS/data/claim3-best-curves.csv and DOCS/figures/claim3-schedules.png",
                        jobs="worker processes per sweep").parse_args(argv)
    out = Path(args.out)
    configs = {schedule: config_for(schedule, args.quick) for schedule in SCHEDULES}
    results = finished_sweeps(configs.values(), out, args.jobs, "claim3")
    if results is None:
        return 1
    best = {schedule: best_curve(results[config.name]) for schedule, config in configs.items()}
    write_json(out / "summary.json", best)

    print("claim 3: each schedule's best configuration (final val_loss, seed mean) and its test error (± sd over seeds)")
    for schedule, b in best.items():
        line = (f"  {schedule:<8} lr {b['lr']:.3g} λ {b['weight_decay']:.3g}: final test error "
                f"{b['final_test_error']:.4f} ± {b['final_test_error_sd']:.4f}")
        marks = [e for e in RESTART_EPOCHS if e in b["epochs"]]
        if marks:
            line += "; at epochs " + ", ".join(f"{e}: {b['test_error'][b['epochs'].index(e)]:.4f}" for e in marks)
        print(line)

    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "claim3-best-curves.csv",
                  [{"schedule": schedule, "lr": b["lr"], "weight_decay": b["weight_decay"], "epoch": e,
                    "test_error_mean": f"{m:.5f}", "test_error_sd": f"{s:.5f}"}
                   for schedule, b in best.items()
                   for e, m, s in zip(b["epochs"], b["test_error"], b["test_error_sd"])])
        figure(best, docs / "figures" / "claim3-schedules.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
