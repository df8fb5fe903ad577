"""Weight decay in bfloat16: the Shakespeare character model trained with its weights in bfloat16 by
torch.optim.AdamW (the decay rounds away), by weightdecay.AdamW (compensated write-back, the default), and with
float32 master weights (float32 parameters, bfloat16 autocast forward) as the reference, 2 seeds.

AdamW, lr 2e-3 constant after 50 warm-up steps, λ 0.1 (s_t = 2e-4, below bfloat16's 2^-9), on the matrices
(the embeddings included; LayerNorm and biases undecayed); the task's model (2 blocks, width 64, context 64),
batch 32, 1,200 steps. Records the decayed weights' norm every 50 steps and the validation loss (128 fixed
windows) at the end. One JSON file per run in ``--out``, so a rerun skips what is done.

    python experiments/bf16_decay.py --out runs/bf16-decay --publish docs
    python experiments/bf16_decay.py --quick --out /tmp/bf16-quick       # a smoke test of the pipeline
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _publish import command_line, pyplot, save_figure, write_csv, write_json

ARMS = ("torch-bf16", "weightdecay-bf16", "float32-master")
LABELS = {"torch-bf16": "torch.optim.AdamW, bf16 weights", "weightdecay-bf16": "weightdecay.AdamW, bf16 weights",
          "float32-master": "float32 master weights (torch.optim.AdamW)"}
SEEDS = (0, 1)
STEPS, WARMUP, EVERY = 1200, 50, 50
LR, WD, BATCH = 2e-3, 0.1, 32
MODEL = dict(dim=64, layers=2, heads=4)
CONTEXT, VAL_WINDOWS = 64, 128


def run_one(job: tuple[str, int, int, str]) -> dict:
    arm, seed, steps, path = job
    if Path(path).exists():
        return json.loads(Path(path).read_text())
    import torch
    import torch.nn.functional as F

    import weightdecay
    from weightdecay.data import load_shakespeare
    from weightdecay.tasks.models import CharTransformer
    from weightdecay.tasks.shakespeare import windows

    torch.set_num_threads(1)
    corpus = load_shakespeare()
    train, val = (torch.from_numpy(a.astype("int64")) for a in (corpus.train, corpus.val))
    vocab = len(corpus.vocab)
    val_x, val_y = windows(val, torch.linspace(0, len(val) - CONTEXT - 1, VAL_WINDOWS).long(), CONTEXT)

    # 1. The model: the same initial weights in every arm (float32 init, then cast).
    torch.manual_seed(seed)
    model = CharTransformer(vocab, CONTEXT, **MODEL)
    low = arm != "float32-master"
    if low:
        model = model.to(torch.bfloat16)
    decayed = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decayed}, {"params": rest, "weight_decay": 0.0}]

    # 2. The optimizer: torch's in two arms, ours (rounding="compensated" by default for bf16) in one.
    opt = (weightdecay.AdamW(groups, lr=LR, weight_decay=WD) if arm == "weightdecay-bf16"
           else torch.optim.AdamW(groups, lr=LR, weight_decay=WD))
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / WARMUP))

    def loss_of(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not low):
            logits = model(x)
        return F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))

    def weight_norm() -> float:
        return float(torch.cat([p.detach().double().flatten() for p in decayed]).norm())

    # 3. Training: random windows from a seeded generator, the norm every EVERY steps.
    generator = torch.Generator().manual_seed(1000 + seed)
    norms = [(0, weight_norm())]
    train_losses = []
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(train) - CONTEXT - 1, (BATCH,), generator=generator)
        loss = loss_of(*windows(train, starts, CONTEXT))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        train_losses.append(float(loss.detach()))
        if step % EVERY == 0 or step == steps:
            norms.append((step, weight_norm()))

    # 4. Validation loss on the fixed windows.
    with torch.no_grad():
        val_loss = sum(float(loss_of(xb, yb)) * len(xb)
                       for xb, yb in zip(val_x.split(64), val_y.split(64))) / len(val_x)
    record = {"arm": arm, "seed": seed, "steps": steps, "lr": LR, "weight_decay": WD, "val_loss": val_loss,
              "train_loss_last100": sum(train_losses[-100:]) / len(train_losses[-100:]),
              "norms": norms, "extra_bytes_per_param": 2 if arm == "weightdecay-bf16" else 0}
    write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = command_line(__doc__, "bf16-decay", quick="60 steps, 1 seed: a smoke test",
                        publishes="DOCS/data/bf16-decay.csv and DOCS/figures/bf16-decay.png",
                        jobs="runs side by side").parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps, seeds = (60, SEEDS[:1]) if args.quick else (STEPS, SEEDS)
    jobs = [(arm, seed, steps, str(out / f"{arm}-s{seed}{'-quick' if args.quick else ''}.json"))
            for seed in seeds for arm in ARMS]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(run_one, jobs))

    rows = [{"arm": r["arm"], "seed": r["seed"], "step": step, "weight_norm": norm,
             "relative_to_start": norm / r["norms"][0][1]} for r in records for step, norm in r["norms"]]
    summary = []
    master = {r["seed"]: r for r in records if r["arm"] == "float32-master"}
    print(f"bf16 decay: AdamW lr {LR:g}, λ {WD:g} (s_t = {LR * WD:g}), {steps} steps; decayed weights' norm")
    for r in records:
        ref = master[r["seed"]]
        final, ref_final = r["norms"][-1][1], ref["norms"][-1][1]
        summary.append({"arm": r["arm"], "seed": r["seed"], "final_norm": final,
                        "norm_vs_master": final / ref_final, "val_loss": r["val_loss"],
                        "extra_bytes_per_param": r["extra_bytes_per_param"]})
        print(f"  {r['arm']:<17} seed {r['seed']}: norm {final:.3f} ({final / ref_final - 1:+.1%} vs float32 "
              f"master weights), val loss {r['val_loss']:.4f}")
    write_json(out / "summary.json", summary)
    if args.publish:
        docs = Path(args.publish)
        write_csv(docs / "data" / "bf16-decay.csv", rows)
        write_csv(docs / "data" / "bf16-decay-summary.csv", summary)
        figure(records, docs / "figures" / "bf16-decay.png")
    return 0


def figure(records: list[dict], path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(5.2, 3.6))
    colors = {"torch-bf16": "tab:red", "weightdecay-bf16": "tab:blue", "float32-master": "black"}
    for arm in ARMS:
        for i, r in enumerate(x for x in records if x["arm"] == arm):
            steps, norms = zip(*r["norms"])
            ax.plot(steps, norms, color=colors[arm], lw=1.2, ls="-" if i == 0 else "--",
                    label=f"{LABELS[arm]} (val {r['val_loss']:.3f})" if i == 0 else None)
    ax.set(xlabel="step", ylabel="norm of the decayed weights")
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
