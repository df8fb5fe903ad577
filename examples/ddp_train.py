"""Train the ``fashion-cnn`` task on several processes: DDP or FSDP2, weightdecay.AdamW/SGDW unchanged.

Each process takes its share of every global batch (rank r gets rows r, r+W, r+2W, … of it), so the averaged
gradient is the full batch's and the run follows the single-process one. Evaluation is sharded the same way and
the error counts are all-reduced. ``--checkpoint DIR`` saves model, optimizer (``decay`` and ``peak_lr``
included) and schedule through torch.distributed.checkpoint at the end; ``--resume`` loads it first. See
docs/distributed.md.

Run it (CPU, gloo over 127.0.0.1):
    PYTHONPATH=src .venv/bin/python -m torch.distributed.run --nproc-per-node 2 examples/ddp_train.py
    PYTHONPATH=src .venv/bin/python -m torch.distributed.run --nproc-per-node 2 examples/ddp_train.py \\
        --parallel fsdp --decay stable
or without torchrun (it then starts --nproc processes itself with torch.multiprocessing):
    PYTHONPATH=src .venv/bin/python examples/ddp_train.py --nproc 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

import weightdecay
from weightdecay.decay import MODE_NAMES
from weightdecay.process_group import process_group
from weightdecay.schedules import make_lr_schedule
from weightdecay.tasks import get_task
from weightdecay.tasks.classification import make_splits
from weightdecay.tasks.training import shuffled_batches

TIMEOUT = datetime.timedelta(minutes=10)  # how long a rank waits for the others in a collective


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parallel", choices=["ddp", "fsdp"], default="ddp",
                   help="DistributedDataParallel (replicated weights) or FSDP2 fully_shard (sharded weights)")
    p.add_argument("--optimizer", choices=["adamw", "sgdw"], default="adamw")
    p.add_argument("--decay", choices=MODE_NAMES, default="paper")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128, help="global batch size, split over the processes")
    p.add_argument("--train-subset", type=int, default=4000, help="training images (short by default)")
    p.add_argument("--test-subset", type=int, default=2000)
    p.add_argument("--max-steps", type=int, default=None, help="cap the run (the schedule's horizon) at N steps")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop (and save --checkpoint) after step N of the run; --resume goes on from there")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="directory: save a DCP checkpoint there at the end")
    p.add_argument("--resume", action="store_true", help="load --checkpoint before training, then go on")
    p.add_argument("--out", default=None, help="write the final metrics as JSON here (rank 0)")
    p.add_argument("--nproc", type=int, default=2, help="processes to start when not launched by torchrun")
    args = p.parse_args(argv)
    if args.resume and not args.checkpoint:
        p.error("--resume needs --checkpoint DIR")
    return args


def build(args: argparse.Namespace, world: int):
    """The task's model, wrapped for DDP or sharded by FSDP2, its optimizer and a warm-up-cosine schedule."""
    task = get_task("fashion-cnn")
    opts = {k: o.default for k, o in task.all_options().items()}
    data = task.load_dataset(opts)
    splits = make_splits(data, val_size=0, train_subset=args.train_subset, test_subset=args.test_subset)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = task.build_model(opts, data.num_classes)
    if args.parallel == "ddp":
        model = DistributedDataParallel(model)  # batch norm: per-rank statistics, rank 0's buffers broadcast
    else:
        mesh = init_device_mesh("cpu", (world,))
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
    groups = [g for g in weightdecay.param_groups(model, args.weight_decay) if g["params"]]
    # peak_lr explicit: the schedule's peak, whatever a warm-up scheduler writes into lr at construction.
    if args.optimizer == "adamw":
        opt = weightdecay.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay, decay=args.decay,
                                peak_lr=args.lr)
    else:
        opt = weightdecay.SGDW(groups, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay,
                               decay=args.decay, peak_lr=args.lr)
    steps_per_epoch = len(splits.train_y) // args.batch_size
    total = steps_per_epoch * args.epochs
    if args.max_steps is not None:
        total = min(total, args.max_steps)
    sched = make_lr_schedule("warmup-cosine", opt, total_steps=max(total, 1), steps_per_epoch=steps_per_epoch,
                             warmup_steps=max(1, total // 10))
    return task, splits, model, opt, sched, steps_per_epoch, total


def my_rows(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's rows of a global batch, trimmed so every rank gets the same number (equal-weight means)."""
    batch = batch[: len(batch) - len(batch) % world]
    return batch[rank::world]


@torch.no_grad()
def evaluate(task, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rank: int, world: int) -> dict[str, float]:
    """Test loss and error over every rank's share, summed with one all_reduce."""
    model.eval()
    rows = my_rows(torch.arange(len(y)), rank, world)
    sums = torch.zeros(3, dtype=torch.float64)
    for chunk in rows.split(500):  # the same number of chunks on every rank: FSDP2 gathers per forward
        logits = model(task.prepare(x[chunk]))
        sums += torch.tensor([F.cross_entropy(logits, y[chunk], reduction="sum").item(),
                              (logits.argmax(1) != y[chunk]).sum().item(), len(chunk)], dtype=torch.float64)
    dist.all_reduce(sums)
    model.train()
    return {"test_loss": sums[0].item() / sums[2].item(), "test_error": sums[1].item() / sums[2].item()}


def train(args: argparse.Namespace) -> dict[str, float]:
    rank, world = dist.get_rank(), dist.get_world_size()
    task, splits, model, opt, sched, steps_per_epoch, total = build(args, world)
    if args.resume:
        model_sd, optim_sd = get_state_dict(model, opt)
        state = {"model": model_sd, "optim": optim_sd, "schedule": sched.state_dict()}
        dcp.load(state, checkpoint_id=args.checkpoint)
        set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
        sched.load_state_dict(state["schedule"])
    start = sched.last_epoch  # steps already taken (0 unless resumed)
    stop = total if args.stop_after is None else min(args.stop_after, total)
    loss = torch.tensor(float("nan"))
    for step in range(start, stop):
        epoch, index = divmod(step, steps_per_epoch)
        # Every rank draws the same permutation for the epoch, then keeps its rows of each global batch.
        batches = list(shuffled_batches(len(splits.train_y), args.batch_size,
                                        torch.Generator().manual_seed(args.seed * 1000 + epoch)))
        rows = my_rows(batches[index], rank, world)
        loss = F.cross_entropy(model(task.prepare(splits.train_x[rows])), splits.train_y[rows])
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if rank == 0 and (step + 1) % 10 == 0:
            print(f"step {step + 1}/{total}  lr {opt.param_groups[0]['lr']:.2e}  loss {loss.item():.4f}",
                  flush=True)
    metrics = {"steps": sched.last_epoch, "train_loss": loss.item(),
               **evaluate(task, model, splits.test_x, splits.test_y, rank, world)}
    if args.checkpoint:
        model_sd, optim_sd = get_state_dict(model, opt)
        dcp.save({"model": model_sd, "optim": optim_sd, "schedule": sched.state_dict()},
                 checkpoint_id=args.checkpoint)
    return metrics


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.get_world_size()))
    metrics = train(args)
    if dist.get_rank() == 0:
        print(json.dumps(metrics), flush=True)
        if args.out:
            tmp = f"{args.out}.tmp"
            with open(tmp, "w") as f:
                json.dump(metrics, f)
            os.replace(tmp, args.out)


def _spawned(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    with process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                       timeout=TIMEOUT):
        run(args)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "RANK" in os.environ:  # launched by torchrun: rank, world size and rendezvous from the environment
        with process_group("gloo", timeout=TIMEOUT):
            run(args)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_spawned, args=(args.nproc, port, args), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    sys.exit(main())
