"""Two processes (gloo over 127.0.0.1) in lockstep with one: DDP, FSDP2, HSDP and DCP resume, every case.

The process group is started once for the module (torch.multiprocessing): tests/distributed_cases.py runs every
(optimizer factory, kwargs) case of its ``CASES`` table and writes what each rank saw; the tests below check it
case by case. One more test launches the same worker with torchrun. Run them alone with ``pytest -k distributed``.
"""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from conftest import ROOT, cli_env, free_port
from distributed_cases import CASES, HSDP_CASES, MONITORED_CASES, STEPS, WORLD_SIZE, spawn_worker

pytestmark = pytest.mark.distributed

NAMES = [case.name for case in CASES]
KWARGS = {case.name: case.kwargs for case in CASES}
# torch 2.13 has no DTensor sharding strategy for aten._fused_sgd_: SGDW(fused=True) refuses FSDP2 parameters.
REFUSED_UNDER_FSDP = {name for name in NAMES if name.startswith("sgdw-") and KWARGS[name].get("fused")}
# Float64 throughout: a sharded run differs from one process only in summation order (about 1e-16 seen).
TOL = dict(rtol=1e-10, atol=1e-12)


def _load(out: Path) -> list[dict]:
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Every case's results, one dict per rank, from one torch.multiprocessing process group."""
    out = tmp_path_factory.mktemp("distributed")
    context = mp.spawn(spawn_worker, args=(WORLD_SIZE, free_port(), str(out), None), nprocs=WORLD_SIZE,
                       join=False)
    deadline = time.monotonic() + 600
    while not context.join(timeout=2):  # raises, with the worker's traceback, if a rank fails
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the distributed worker did not finish in 600 s")
    return _load(out)


def _assert_params_close(got: dict, want: dict, **tol) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], **(tol or TOL), msg=lambda m: f"{name}: {m}")


def _same_groups(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g["decay"] == w["decay"]
        assert g.keys() == w.keys()
        for key in w:
            if key != "decay":
                assert g[key] == pytest.approx(w[key], rel=1e-15), key


@pytest.mark.parametrize("name", NAMES)
def test_distributed_ddp_matches_single_process(ranks, name):
    for r in ranks:
        case = r[name]
        _assert_params_close(case["ddp"]["params"], case["single"]["params"])
        _same_groups(case["ddp"]["groups"], case["single"]["groups"])
        # Every rank holds the whole v under DDP: stable needs no collective of its own.
        assert case["ddp"]["optimizer_all_reduces"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_distributed_fsdp2_matches_single_process(ranks, name):
    for r in ranks:
        fsdp = r[name]["fsdp"]
        if name in REFUSED_UNDER_FSDP:
            assert "fused=True" in fsdp["error"] and "foreach=True" in fsdp["error"], fsdp
            continue
        assert fsdp["param_is_dtensor"]
        _assert_params_close(fsdp["params"], r[name]["single"]["params"])
        _same_groups(fsdp["groups"], r[name]["single"]["groups"])


@pytest.mark.parametrize("name", [n for n in NAMES if n not in REFUSED_UNDER_FSDP])
def test_distributed_stable_reduces_once_per_step(ranks, name):
    """stable's mean of v̂ over all parameters costs one all_reduce per step under FSDP2; other modes none."""
    want = 1 if KWARGS[name].get("decay") == "stable" else 0
    for r in ranks:
        assert r[name]["fsdp"]["all_reduce_per_step"] == [want] * STEPS


@pytest.mark.parametrize("name", HSDP_CASES)
def test_distributed_hsdp_matches_single_process(ranks, name):
    """A (replicate=2, shard=1) mesh: no reduction over the replicate dimension, the same result."""
    for r in ranks:
        _assert_params_close(r[name]["hsdp"]["params"], r[name]["single"]["params"])


@pytest.mark.parametrize("name", [n for n in NAMES if KWARGS[n].get("fused") and n not in REFUSED_UNDER_FSDP])
def test_distributed_fused_stays_on_torch_kernel_with_dtensors(ranks, name):
    kernel = "aten::_fused_adam_" if KWARGS[name].get("decay") == "l2" else "aten::_fused_adamw_"
    for r in ranks:
        assert kernel in r[name]["fsdp"]["kernels"], r[name]["fsdp"]["kernels"]


# A resumed NAdam run matches to 2e-10 absolute, not bit for bit (seen on the case added with the wrapped classes;
# the cause, presumably NAdam's running mu_product state through DCP, is not pinned down yet: issue 13's note).
RESUME_ATOL = {"nadam-paper": 1e-9}


@pytest.mark.parametrize("name", [n for n in NAMES if n not in REFUSED_UNDER_FSDP])
def test_distributed_dcp_resume_in_lockstep(ranks, name):
    """Saved after 2 steps through torch.distributed.checkpoint, loaded into a fresh model (other init) and a
    fresh optimizer built with another decay, peak_lr and λ: the saved ones come back and the run goes on
    bit for bit as the uninterrupted one."""
    for r in ranks:
        resumed, uninterrupted = r[name]["resumed"], r[name]["fsdp"]
        assert len(resumed["groups_after_load"]) == len(uninterrupted["groups"])
        for loaded, built in zip(resumed["groups_after_load"], r[name]["single"]["groups"]):
            assert loaded["decay"] == built["decay"]
            assert loaded["weight_decay"] == built["weight_decay"]
            assert loaded["peak_lr"] == built["peak_lr"] == KWARGS[name]["lr"]  # default: lr at construction
        _same_groups(resumed["groups"], uninterrupted["groups"])
        _assert_params_close(resumed["params"], uninterrupted["params"], rtol=0.0, atol=RESUME_ATOL.get(name, 0.0))


@pytest.mark.parametrize("layout", ["fsdp", "hsdp"])
def test_distributed_global_norms_and_sums_over_shards(ranks, layout):
    """global_norms and global_sum_and_count of sharded parameters equal those of the whole tensors."""
    for r in ranks:
        run = r[HSDP_CASES[0]][layout]
        whole = list(run["params"].values())
        assert run["norms"] == pytest.approx([p.norm().item() for p in whole], rel=1e-12)
        assert run["norms_l1"] == pytest.approx([p.abs().sum().item() for p in whole], rel=1e-12)
        total, count = run["sum_and_count"]
        assert total == pytest.approx(sum(p.sum().item() for p in whole), rel=1e-12)
        assert count == sum(p.numel() for p in whole)


@pytest.mark.parametrize("name", MONITORED_CASES)
def test_distributed_monitor_records_what_one_process_does(ranks, name):
    """A Monitor under DDP and under FSDP2 (DTensor shards, uneven: 8 and 3 rows on 2 ranks) records on every
    rank the norms, angles, shrinks and predictions of the same run in one process, not one rank's shard."""
    from weightdecay.monitors import FIELDS

    for r in ranks:
        single = r[name]["monitored"]["single"]
        assert len(single) == STEPS * 4  # 4 tensors, every step
        assert all(x["predicted_rotation"] for x in single if x["name"] == "0.weight")
        for layout in ("ddp", "fsdp"):
            got = r[name]["monitored"][layout]
            assert [(x["step"], x["name"]) for x in got] == [(x["step"], x["name"]) for x in single]
            for g, w in zip(got, single):
                for key in FIELDS:
                    want = w[key]
                    assert g[key] == (pytest.approx(want, rel=1e-10, abs=1e-12) if isinstance(want, float)
                                      else want), (layout, g["step"], g["name"], key)


def test_distributed_helpers_in_one_process():
    """Without a process group the helpers are plain sums and norms (DDP and single-process use)."""
    from weightdecay.optim._distributed import global_norms, global_sum_and_count, global_sums

    tensors = [torch.randn(3, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)]
    torch.testing.assert_close(global_sums(tensors, [t.sum() for t in tensors]),
                               torch.stack([t.sum() for t in tensors]))
    assert global_sum_and_count(tensors, [t.sum() for t in tensors]) == pytest.approx(
        (sum(t.sum().item() for t in tensors), 17))
    torch.testing.assert_close(global_norms(tensors, 3.0),
                               torch.stack([torch.linalg.vector_norm(t, 3.0) for t in tensors]))
    with pytest.raises(ValueError):
        global_sum_and_count(tensors, [1.0])
    with pytest.raises(ValueError):
        global_sums(tensors, [1.0])


def test_distributed_torchrun_launch(tmp_path):
    """The same worker started by torchrun (python -m torch.distributed.run), env:// rendezvous on 127.0.0.1."""
    names = ["adamw-stable-fused", "sgdw-paper-nesterov"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(WORLD_SIZE),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           str(ROOT / "tests" / "distributed_cases.py"), "--out", str(tmp_path), "--cases", ",".join(names)]
    env = cli_env(ROOT / "tests")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for r in _load(tmp_path):
        assert sorted(r) == sorted(names)
        for name in names:
            _assert_params_close(r[name]["fsdp"]["params"], r[name]["single"]["params"])
            _assert_params_close(r[name]["ddp"]["params"], r[name]["single"]["params"])


EXAMPLE_RUNS = 3  # the example aborted at exit in about 1 run in 4 before its process group ended cleanly


def test_distributed_example_ddp_train(tmp_path):
    """examples/ddp_train.py under torchrun at a tiny size, EXAMPLE_RUNS times in a row: FSDP2 with stable trains,
    evaluates on both ranks' shares and saves a DCP checkpoint (resuming one is checked case by case above), and
    every run exits with status 0, with the same metrics (same seed)."""
    from weightdecay.tasks import get_task

    available, why = get_task("fashion-cnn").available()
    if not available:
        pytest.skip(why)
    env = cli_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    seen = []
    for run in range(EXAMPLE_RUNS):
        checkpoint, metrics = tmp_path / f"checkpoint{run}", tmp_path / f"metrics{run}.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), str(ROOT / "examples" / "ddp_train.py"), "--parallel", "fsdp",
               "--decay", "stable", "--train-subset", "256", "--test-subset", "100", "--batch-size", "64",
               "--max-steps", "3", "--checkpoint", str(checkpoint), "--out", str(metrics)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"run {run + 1} of {EXAMPLE_RUNS}: {proc.stderr[-4000:]}"
        metrics = json.loads(metrics.read_text())
        assert metrics["steps"] == 3 and (checkpoint / ".metadata").is_file()
        assert 0.0 <= metrics["test_error"] <= 1.0 and math.isfinite(metrics["test_loss"])
        assert math.isfinite(metrics["train_loss"])
        seen.append(metrics)
    assert all(m == seen[0] for m in seen), seen


@pytest.mark.parametrize("outcome", ["finished", "raised"])
def test_distributed_process_group_ends_in_both_outcomes(outcome):
    """The group is gone after the block either way; an error inside the block comes out unchanged."""
    import torch.distributed as dist

    from weightdecay.process_group import process_group

    def block() -> None:
        with process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
                           timeout=datetime.timedelta(seconds=60)):
            assert dist.is_initialized()
            total = torch.ones(2)
            dist.all_reduce(total)
            if outcome == "raised":
                raise ValueError("the block failed")

    if outcome == "raised":
        with pytest.raises(ValueError, match="the block failed"):
            block()
    else:
        block()
    assert not dist.is_initialized()
