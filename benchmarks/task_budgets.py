"""Time each task against its budget from issue 4 (a benchmark, not a test: run it on a quiet machine).

    PYTHONPATH=src .venv/bin/python benchmarks/task_budgets.py [--threads 2] [--only ridge,digits-mlp]

Budgets on the 2-core development machine:
  ridge, digits-mlp                 a default run under 10 s
  fashion-mlp                       one epoch on the full 60k training set under 15 s
  fashion-cnn                       one epoch on a 10k-example subset under 60 s (batch norm on and off)
  shakespeare-charlm                validation loss clearly below the unigram baseline (by 0.5 nats) within 180 s

Each line: the task, what was run, the seconds measured, the budget, and whether it was met.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from weightdecay.data import load_fashion_mnist, load_shakespeare
from weightdecay.tasks import TrainConfig, get_task

CLEARLY_BELOW = 0.5  # nats per character under the unigram baseline


def timed(name: str, config: TrainConfig) -> tuple[float, dict]:
    started = time.perf_counter()
    result = get_task(name).run(config)
    return time.perf_counter() - started, result.metrics


def report(name: str, what: str, seconds: float, budget: float, detail: str) -> None:
    verdict = "ok" if seconds < budget else "OVER"
    print(f"{name:<19} {what:<44} {seconds:7.1f} s  budget {budget:4.0f} s  {verdict:<4}  {detail}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--only", default="", help="comma-separated task names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))
    want = lambda name: not only or name in only  # noqa: E731
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    load_fashion_mnist()  # decode once (or read the cache), so no timing below includes it

    if want("ridge"):
        s, m = timed("ridge", TrainConfig(lr=1e-2, weight_decay=0.1, schedule="constant"))
        report("ridge", "default run: 50 epochs, batch 20 (500 steps)", s, 10, f"test_loss {m['test_loss']:.4f}")
    if want("digits-mlp"):
        s, m = timed("digits-mlp", TrainConfig(lr=3e-3, weight_decay=0.01))
        report("digits-mlp", "default run: 20 epochs, batch 32", s, 10, f"test_error {m['test_error']:.4f}")
    if want("fashion-mlp"):
        s, m = timed("fashion-mlp", TrainConfig(lr=1e-3, weight_decay=0.01, epochs=1, extra={"val_size": 0}))
        report("fashion-mlp", "1 epoch, full 60k train set, batch 128", s, 15, f"test_error {m['test_error']:.4f}")
    if want("fashion-cnn"):
        for batch_norm in (True, False):
            s, m = timed("fashion-cnn", TrainConfig(lr=1e-3, weight_decay=0.05, epochs=1,
                                                    extra={"train_subset": 10000, "batch_norm": batch_norm}))
            report("fashion-cnn", f"1 epoch, 10k subset, batch 128, batch_norm={batch_norm}", s, 60,
                   f"test_error {m['test_error']:.4f} (incl. 15k eval)")
    if want("shakespeare-charlm"):
        baseline = load_shakespeare().unigram_cross_entropy()
        target = baseline - CLEARLY_BELOW
        started, reached = time.perf_counter(), None
        history = []

        def progress(done: int, total: int) -> None:
            history.append(time.perf_counter() - started)

        result = get_task("shakespeare-charlm").run(TrainConfig(lr=3e-3, weight_decay=0.1), progress=progress)
        for row, seconds in zip(result.history, history):
            if reached is None and row["val_loss"] < target:
                reached = seconds
        curve = ", ".join(f"{row['val_loss']:.2f}@{s:.0f}s" for row, s in zip(result.history, history))
        report("shakespeare-charlm", f"val_loss < unigram {baseline:.2f} - {CLEARLY_BELOW}", reached or float("inf"),
               180, f"val_loss by epoch: {curve}")


if __name__ == "__main__":
    main()
