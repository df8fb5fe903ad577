"""The step-time overhead of weightdecay.Monitor(every=10) against no monitor, measured side by side.

Two copies of each model (same initialization, same batches) train in alternation in one process: a block of
``every`` full training steps (forward, backward, AdamW step) of the unwatched copy, then the same block of the
watched copy, block after block, so that load from other processes hits both alike. A block holds exactly one
recorded step, so its time is the monitor's amortized cost. It prints the median time per step of each and the
overhead, the median of the block-by-block ratios minus one (target: below 5%).

Models: ``fashion-cnn`` (the task's SmallCNN with batch norm, channels 32/64, hidden 128, 28×28 grey images,
batch 128) and, per ``--sizes``, an MLP of bias-free Linear → LayerNorm blocks with about that many parameters.

Usage:
    python benchmarks/monitor_overhead.py                          # fashion-cnn and a 1e7-parameter MLP
    python benchmarks/monitor_overhead.py --sizes 1e4 --blocks 2 --channels 4,8 --batch-size 8   # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import weightdecay
from weightdecay.tasks.models import SmallCNN

# Defaults, each with its reason.
EVERY = 10  # the Monitor's default: one recorded step in ten
BLOCKS = 12  # blocks of EVERY steps per model (median over blocks); about 1.5-2 min in all on 2 quiet cores
WARMUP_BLOCKS = 1  # the first steps allocate optimizer state and pick kernels
LR, WEIGHT_DECAY = 1e-3, 0.1
TARGET = 1.05  # issue 10: every=10 costs less than 5% of the step time


def lnmlp(params: int, width_in: int = 256, depth: int = 4) -> tuple[nn.Module, Callable[[int], tuple]]:
    """Bias-free Linear → LayerNorm → ReLU blocks of one width, sized to about ``params`` parameters."""
    # (depth − 1)·w² hidden-to-hidden, (width_in + 2·depth + 1)·w for the first layer, the LayerNorms and the
    # head, + 1 for the head's bias: solve for w
    a, b = max(1, depth - 1), width_in + 2 * depth + 1
    w = max(4, int((-b + math.sqrt(b ** 2 + 4 * a * max(params - 1, 0))) / (2 * a)))
    layers: list[nn.Module] = []
    previous = width_in
    for _ in range(depth):
        layers += [nn.Linear(previous, w, bias=False), nn.LayerNorm(w), nn.ReLU()]
        previous = w
    layers.append(nn.Linear(w, 1))
    return nn.Sequential(*layers), lambda batch: (torch.randn(batch, width_in), torch.randn(batch, 1))


def cnn(channels: tuple[int, ...], hidden: int) -> tuple[nn.Module, Callable[[int], tuple]]:
    model = SmallCNN(1, 10, channels=channels, hidden=hidden, image_size=28, batch_norm=True)
    return model, lambda batch: (torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,)))


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if y.dtype == torch.long:
        return nn.functional.cross_entropy(out, y)
    return ((out - y) ** 2).mean()


def compare(name: str, model: nn.Module, batches: Callable[[int], tuple], *, batch_size: int, blocks: int,
            every: int) -> None:
    watched_model = copy.deepcopy(model)
    plain_opt = weightdecay.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    watched_opt = weightdecay.AdamW(watched_model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    monitor = weightdecay.Monitor(watched_opt, watched_model, every=every)
    torch.manual_seed(0)
    data = [batches(batch_size) for _ in range(every)]

    def block(m: nn.Module, opt: torch.optim.Optimizer) -> float:
        start = time.perf_counter()
        for x, y in data:
            opt.zero_grad(set_to_none=True)
            loss_of(m, x, y).backward()
            opt.step()
        return (time.perf_counter() - start) / every

    plain, watched = [], []
    for k in range(WARMUP_BLOCKS + blocks):
        a, b = block(model, plain_opt), block(watched_model, watched_opt)
        if k >= WARMUP_BLOCKS:
            plain.append(a)
            watched.append(b)
    monitor.remove()
    ratio = statistics.median(w / p for p, w in zip(plain, watched))
    n = sum(p.numel() for p in model.parameters())
    verdict = "within" if ratio < TARGET else "OVER"
    print(f"{name:<24} {n:>11,d} params  no monitor {statistics.median(plain) * 1e3:9.3f} ms/step  "
          f"every={every} {statistics.median(watched) * 1e3:9.3f} ms/step  overhead {ratio - 1:+6.1%} "
          f"({verdict} the {TARGET - 1:.0%} target; {len(monitor.records)} records, "
          f"{len(monitor.scale_invariant)} scale-invariant tensors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e7", help="MLP parameter counts, comma-separated (default %(default)s)")
    parser.add_argument("--blocks", type=int, default=BLOCKS, help="timed blocks per model (default %(default)s)")
    parser.add_argument("--every", type=int, default=EVERY, help="the monitor's every (default %(default)s)")
    parser.add_argument("--channels", default="32,64", help="fashion-cnn conv channels (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=128, help="fashion-cnn hidden width (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default %(default)s)")
    args = parser.parse_args()
    torch.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; block = {args.every} steps, "
          f"{args.blocks} timed blocks per model, batch {args.batch_size}")
    compare(f"fashion-cnn {args.channels}", *cnn(channels, args.hidden), batch_size=args.batch_size,
            blocks=args.blocks, every=args.every)
    for size in args.sizes.split(","):
        torch.manual_seed(0)
        compare(f"LayerNorm MLP ~{float(size):.0e}", *lnmlp(int(float(size))), batch_size=args.batch_size,
                blocks=args.blocks, every=args.every)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
