"""The (optimizer factory, kwargs) cases of tests/test_distributed.py and the worker that runs them all.

One process group serves the whole test module: :func:`run_cases` trains every case in one process, under
DistributedDataParallel, under FSDP2 (``fully_shard``, DTensor parameters) and HSDP, saves and resumes the FSDP2
run through torch.distributed.checkpoint, and writes what it saw to ``rank{r}.pt``; the tests then check case by
case. Started by torch.multiprocessing (:func:`spawn_worker`) or as a script under torchrun::

    python -m torch.distributed.run --nproc-per-node 2 tests/distributed_cases.py --out DIR [--cases a,b]

A new optimizer (issue 9's wrapped classes, the ``cautious`` flag) joins every check with one line in ``CASES``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

import weightdecay
from weightdecay.errors import UserError
from weightdecay.optim._distributed import global_norms, global_sum_and_count, local_shard
from weightdecay.process_group import process_group
from optimizer_cases import ADAMW, SGDW

WORLD_SIZE = 2
STEPS = 5  # every run takes STEPS steps under _schedule
RESUME_AT = 2  # the checkpointed run saves after this many steps and resumes in fresh objects
BATCH = 8  # split evenly over the ranks, so the averaged gradient is the full batch's
TIMEOUT = datetime.timedelta(minutes=5)  # how long a rank waits for the other in a collective


@dataclass(frozen=True)
class Case:
    """One optimizer configuration: ``factory(params, **kwargs)`` builds it."""

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    kwargs: dict[str, Any]


_IMPLS = {"": {}, "-foreach": {"foreach": True}, "-fused": {"fused": True}}


def _wd(mode: str) -> float:
    # constant shrinks by λ every step, whatever lr; stable divides lr·λ by sqrt(mean v̂), which is small for this
    # model's gradients (λ = 0.1 gives s_t ≈ 1.07, a step the optimizers refuse).
    return {"constant": 0.01, "stable": STABLE_WD}.get(mode, 0.1)


STABLE_WD = 0.005


def _adamw_l2_first_layer(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    """Two groups: the first layer's weight in l2 (its λ enters the moments), the rest in the given mode."""
    params = list(params)
    return weightdecay.AdamW([{"params": params[:1], "decay": "l2", "weight_decay": 0.05}, {"params": params[1:]}],
                             **kwargs)


CASES: list[Case] = [
    *(Case(f"adamw-{mode}{impl}", weightdecay.AdamW, dict(lr=0.05, weight_decay=_wd(mode), decay=mode, **kw))
      for mode in ADAMW.modes for impl, kw in _IMPLS.items()),
    *(Case(f"sgdw-{mode}{impl}", weightdecay.SGDW,
           dict(lr=0.1, momentum=0.9, weight_decay=_wd(mode), decay=mode, **kw))
      for mode in SGDW.modes for impl, kw in _IMPLS.items()),
    Case("adamw-stable-amsgrad-nobias", weightdecay.AdamW,
         dict(lr=0.05, weight_decay=STABLE_WD, decay="stable", amsgrad=True, bias_correction=False)),
    Case("adamw-stable-with-l2-group-fused", _adamw_l2_first_layer,
         dict(lr=0.05, weight_decay=STABLE_WD, decay="stable", fused=True)),
    Case("sgdw-paper-nesterov", weightdecay.SGDW,
         dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, decay="paper")),
    Case("nadam-paper", weightdecay.NAdam, dict(lr=0.05, weight_decay=0.1, decay="paper")),
    Case("radam-corrected-foreach", weightdecay.RAdam, dict(lr=0.05, weight_decay=0.1, decay="corrected",
                                                            foreach=True)),
    Case("adamw-paper-cautious", weightdecay.AdamW, dict(lr=0.05, weight_decay=0.1, decay="paper", cautious=True)),
    Case("adamw-torch-cautious-fused", weightdecay.AdamW, dict(lr=0.05, weight_decay=0.1, cautious=True, fused=True)),
    Case("sgdw-paper-cautious-foreach", weightdecay.SGDW,
         dict(lr=0.1, momentum=0.9, weight_decay=0.1, decay="paper", cautious=True, foreach=True)),
]
HSDP_CASES = ("adamw-stable-fused", "adamw-paper")  # also run on a (replicate=2, shard=1) mesh
# Also watched by a weightdecay.Monitor in one process, under DDP and under FSDP2 (stable: its s_t needs the mean
# of v̂ over every shard; SGDW: the AdamC prediction). "0.weight" is declared scale-invariant, for the predictions.
MONITORED_CASES = ("adamw-stable", "sgdw-torch")


def _schedule(step: int) -> float:
    """Warm-up then decay: lr_t moves every step, so paper/corrected/stable see lr_t ≠ peak_lr."""
    return min(1.0, (step + 1) / 2) * 0.8**step


def build_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    # float64, so a sharded run's different summation order stays far below the tolerances.
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()  # 8 and 3 rows: uneven shards


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return (torch.randn(BATCH, 6, generator=g, dtype=torch.float64),
            torch.randn(BATCH, 3, generator=g, dtype=torch.float64))


def _train(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, steps: int, part: slice,
           on_step: Callable[[int], Any] | None = None) -> None:
    for _ in range(steps):
        x, y = _batch(sched.last_epoch)  # the schedule's step picks the batch, so a resumed run sees the same data
        (model(x[part]) - y[part]).square().mean().backward()
        if on_step is None:
            opt.step()
        else:
            on_step(sched.last_epoch)
        sched.step()
        opt.zero_grad(set_to_none=True)


def _full(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter whole (DTensors gathered), under the single-process names."""
    out = {}
    for name, p in model.named_parameters():
        whole = p.full_tensor() if isinstance(p, DTensor) else p
        out[name.removeprefix("module.")] = whole.detach().clone()
    return out


def _groups(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    keys = ("decay", "peak_lr", "weight_decay", "lr")
    return [{k: float(g[k]) if k != "decay" else g[k] for k in keys if k in g} for g in opt.param_groups]


def _shard(model: nn.Module, mesh: Any) -> nn.Module:
    fully_shard(model[0], mesh=mesh)
    fully_shard(model[2], mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _make(case: Case, model: nn.Module, **overrides: Any) -> tuple[torch.optim.Optimizer, Any]:
    opt = case.factory(model.parameters(), **{**case.kwargs, **overrides})
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _schedule)


class _CountingAllReduce:
    """Counts ``torch.distributed.all_reduce`` calls, the collective :mod:`weightdecay.optim._distributed` uses."""

    def __enter__(self) -> "_CountingAllReduce":
        self.calls, self._original = 0, dist.all_reduce

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self._original(*args, **kwargs)

        dist.all_reduce = counted
        return self

    def __exit__(self, *exc: Any) -> None:
        dist.all_reduce = self._original


def _fsdp_run(case: Case, mesh: Any, part: slice) -> dict[str, Any]:
    model = _shard(build_model(), mesh)
    opt, sched = _make(case, model)
    counts: list[int] = []
    kernels: set[str] = set()

    def step(index: int) -> None:
        with _CountingAllReduce() as counter:
            if index == 0 and case.kwargs.get("fused"):
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    opt.step()
                kernels.update(e.key for e in prof.key_averages() if "fused" in e.key)
            else:
                opt.step()
        counts.append(counter.calls)

    _train(model, opt, sched, STEPS, part, on_step=step)
    params = list(model.parameters())
    return {"params": _full(model), "groups": _groups(opt), "all_reduce_per_step": counts,
            "kernels": sorted(kernels), "param_is_dtensor": all(isinstance(p, DTensor) for p in params),
            "norms": global_norms(params).tolist(), "norms_l1": global_norms(params, 1.0).tolist(),
            "sum_and_count": global_sum_and_count(params, [local_shard(p).sum() for p in params])}


def _monitored_run(case: Case, model: nn.Module, part: slice, named: nn.Module | None = None) -> list[dict]:
    """The records of Monitor(every=1) over a run (``named``: the module that names the parameters)."""
    opt, sched = _make(case, model)
    monitor = weightdecay.Monitor(opt, named or model, every=1, scale_invariant=["0.weight"])
    _train(model, opt, sched, STEPS, part)
    monitor.remove()
    return monitor.records


def _resumed_run(case: Case, mesh: Any, part: slice, checkpoint: Path) -> dict[str, Any]:
    """RESUME_AT steps, save through DCP, then fresh objects (other init, other decay and peak_lr) load and go on."""
    model = _shard(build_model(), mesh)
    opt, sched = _make(case, model)
    _train(model, opt, sched, RESUME_AT, part)
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd, "schedule": sched.state_dict()}, checkpoint_id=checkpoint)
    del model, opt, sched

    other = "paper" if case.kwargs.get("decay") == "torch" else "torch"
    model = _shard(build_model(seed=1), mesh)
    opt, sched = _make(case, model, decay=other, peak_lr=7.0, weight_decay=0.5)
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd, "schedule": sched.state_dict()}
    dcp.load(state, checkpoint_id=checkpoint)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    sched.load_state_dict(state["schedule"])
    groups_after_load = _groups(opt)
    _train(model, opt, sched, STEPS - RESUME_AT, part)
    return {"params": _full(model), "groups": _groups(opt), "groups_after_load": groups_after_load}


def run_cases(rank: int, world_size: int, out: Path, names: list[str] | None = None) -> None:
    """Run every case (or those named) on this rank of an initialized gloo process group; write rank{r}.pt."""
    part = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    mesh = init_device_mesh("cpu", (world_size,))
    hsdp_mesh = init_device_mesh("cpu", (world_size, 1), mesh_dim_names=("replicate", "shard"))
    results: dict[str, Any] = {}
    for case in CASES:
        if names is not None and case.name not in names:
            continue
        single_model = build_model()
        opt, sched = _make(case, single_model)
        _train(single_model, opt, sched, STEPS, slice(None))
        r: dict[str, Any] = {"single": {"params": _full(single_model), "groups": _groups(opt)}}
        params = list(single_model.parameters())
        r["single"]["norms"] = [p.detach().norm().item() for p in params]
        r["single"]["norms_l1"] = [p.detach().abs().sum().item() for p in params]
        r["single"]["sum_and_count"] = (sum(p.detach().sum().item() for p in params), sum(p.numel() for p in params))

        ddp_model = DistributedDataParallel(build_model())
        opt, sched = _make(case, ddp_model)
        with _CountingAllReduce() as counter:  # DDP's own gradient all-reduce runs in backward, not through here
            _train(ddp_model, opt, sched, STEPS, part)
        r["ddp"] = {"params": _full(ddp_model), "groups": _groups(opt), "optimizer_all_reduces": counter.calls}

        try:
            r["fsdp"] = _fsdp_run(case, mesh, part)
        except UserError as exc:  # a configuration the optimizer refuses under FSDP2 (the tests say which)
            r["fsdp"] = {"error": str(exc)}
        else:
            if case.name in HSDP_CASES:
                r["hsdp"] = _fsdp_run(case, hsdp_mesh, part)
            r["resumed"] = _resumed_run(case, mesh, part, out / "checkpoints" / case.name)
        if case.name in MONITORED_CASES:
            ddp_model = DistributedDataParallel(build_model())
            r["monitored"] = {"single": _monitored_run(case, build_model(), slice(None)),
                              "ddp": _monitored_run(case, ddp_model, part, named=ddp_model.module),
                              "fsdp": _monitored_run(case, _shard(build_model(), mesh), part)}
        results[case.name] = r
    torch.save(results, out / f"rank{rank}.pt.tmp")
    os.replace(out / f"rank{rank}.pt.tmp", out / f"rank{rank}.pt")


def spawn_worker(rank: int, world_size: int, port: int, out: str, names: list[str] | None) -> None:
    """torch.multiprocessing.spawn's entry point: join the group on 127.0.0.1:port and run the cases."""
    torch.set_num_threads(1)
    with process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                       timeout=TIMEOUT):
        run_cases(rank, world_size, Path(out), names)


def main(argv: list[str] | None = None) -> None:
    """Under torchrun: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT come from the environment."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with process_group("gloo", timeout=TIMEOUT):
        run_cases(dist.get_rank(), dist.get_world_size(), Path(args.out),
                  args.cases.split(",") if args.cases else None)


if __name__ == "__main__":
    sys.exit(main())
