"""Time one optimizer step of every weightdecay.AdamW mode and of SGDW, against torch.optim's fused kernels.

For each size (float32 parameters split over ~100 tensors of uneven shapes, all in one process) and each path
(fused, foreach; single with --paths), every candidate is stepped in alternation with its torch baseline
(torch.optim.AdamW(fused=True) for AdamW rows, torch.optim.SGD(fused=True) for SGDW rows): one step of each, round
after round, so that load from other processes hits both alike. It prints the median time per step of each and
the median of the round-by-round ratios, and the peak memory allocated above the step's starting level during one
more step (torch.profiler's memory events; torch's foreach AdamW, listed for scale, allocates a copy of the
parameters). Cautious rows (``cautious``, fused path) are timed against the same optimizer and mode without it.
With the fused path, the AMP step (``GradScaler.step(opt)`` then ``update()``, the scaler handing its scale to the
fused kernel) of every AdamW mode is timed against torch.optim.AdamW(fused=True) stepped through the same scaler.
``--wrapped`` times each weightdecay.with_decay class (every lr-based mode) against the torch.optim class it wraps,
on the same path; ``--cautious`` adds cautious rows on the foreach path and for a wrapped class. ``--bf16`` adds
rows on the same parameters in bfloat16: weightdecay's compensated step (the default ``rounding``: the decay kept,
a 2-byte compensation buffer per parameter, stated per size) and its ``stochastic`` and ``nearest`` roundings,
against torch.optim.AdamW(fused=True) / torch.optim.SGD(fused=True) on the same bfloat16 weights.

On the CPU, fused SGDW with momentum and fused AdamW ``stable`` run weightdecay's one-pass kernels
(weightdecay/optim/_kernels.py), built once per machine; ``WEIGHTDECAY_CPU_KERNELS=0`` times torch's path instead.

Usage:
    python benchmarks/step_speed.py                      # 1e6, 1e7, 5e7 params; fused and foreach
    python benchmarks/step_speed.py --sizes 1e5,1e6 --steps 20 --paths fused,foreach,single
    WEIGHTDECAY_CPU_KERNELS=0 python benchmarks/step_speed.py --paths fused   # without the one-pass kernels
    python benchmarks/step_speed.py --wrapped --cautious    # also with_decay classes vs their bases, cautious vs plain
    python benchmarks/step_speed.py --bf16 --paths fused,foreach   # also bfloat16 weights: compensated vs torch
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import functools
import logging
import time

import torch

import weightdecay
from weightdecay._profiling import peak_extra_bytes
from weightdecay.optim import _kernels

# Defaults, each with its reason.
N_TENSORS = 100  # a mid-sized model's parameter count: per-tensor overheads show, as they do in practice
LR, WEIGHT_DECAY = 1e-3, 1e-2  # torch.optim.AdamW's defaults; the modes differ only in a scalar, not in cost
MOMENTUM = 0.9  # SGDW as usually run (without momentum torch's fused SGD takes a different kernel)
WARMUP_STEPS = 3  # the first steps allocate state and pick kernels
ADAM_MODES = ("torch", "paper", "constant", "corrected", "stable", "l2")
SGD_MODES = ("torch", "paper", "constant", "corrected", "l2")
PATH_KWARGS = {"fused": dict(fused=True), "foreach": dict(foreach=True), "single": dict(foreach=False)}


def make_params(total: int, n_tensors: int = N_TENSORS, seed: int = 0) -> list[torch.Tensor]:
    """About ``total`` float32 parameters in ``n_tensors`` 2-D tensors of uneven sizes, each with a fixed gradient."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.rand(n_tensors, generator=gen) + 0.5  # sizes vary by up to 3x, like real layers
    sizes = (weights / weights.sum() * total).round().long().clamp(min=1).tolist()
    params = []
    for size in sizes:
        shape = (max(1, round(size / 256)), 256) if size >= 256 else (size,)
        p = torch.randn(shape, generator=gen)
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
        params.append(p)
    return params


def paired_median_times(candidate: torch.optim.Optimizer, baseline: torch.optim.Optimizer,
                        steps: int) -> tuple[float, float, float]:
    """Median seconds per step of each and the median of the per-round ratios, stepping them alternately.

    The ratio is taken round by round (one candidate step against the baseline step right after it) so that a
    burst of load from another process, which slows both, cancels out rather than landing on one of them.
    """
    cand_times, base_times = [], []
    for i in range(WARMUP_STEPS + steps):
        pair = []
        for opt in (candidate, baseline):
            start = time.perf_counter()
            opt.step()
            pair.append(time.perf_counter() - start)
        if i >= WARMUP_STEPS:
            cand_times.append(pair[0])
            base_times.append(pair[1])
    ratio = statistics.median(c / b for c, b in zip(cand_times, base_times))
    return statistics.median(cand_times), statistics.median(base_times), ratio


class ScaledStep:
    """``step()`` is an AMP step: ``scaler.step(opt)`` (the scaler hands grad_scale/found_inf to a fused kernel)
    and ``scaler.update()``; candidate and baseline share one scaler, as in one training loop."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        self.optimizer, self.scaler = optimizer, scaler

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


def amp_scaler() -> torch.amp.GradScaler:
    # Scale 1 and no growth: the fused kernel divides the fixed gradients by the scale in place at every step, and
    # any other scale would drive them into subnormals, whose arithmetic is slow on CPUs; the work is the same.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    scaler = torch.amp.GradScaler(device, init_scale=1.0, growth_interval=2**30)
    scaler.scale(torch.ones((), device=device))  # creates the scale tensor step() reads
    return scaler


def candidates(paths: list[str]) -> list[tuple[str, str, str, Callable, Callable]]:
    """Rows as (optimizer, mode, path, build candidate, build baseline); builders take the parameter list."""

    def adam_base(ps):
        return torch.optim.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY, fused=True)

    def sgd_base(ps):
        return torch.optim.SGD(ps, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, fused=True)

    rows = [("torch.optim.AdamW", "-", "foreach",
             lambda ps: torch.optim.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY, foreach=True), adam_base)]
    for path in paths:
        kw = PATH_KWARGS[path]
        for mode in ADAM_MODES:
            rows.append(("AdamW", mode, path, lambda ps, m=mode, kw=kw: weightdecay.AdamW(
                ps, lr=LR, weight_decay=WEIGHT_DECAY, decay=m, **kw), adam_base))
        for mode in SGD_MODES:
            rows.append(("SGDW", mode, path, lambda ps, m=mode, kw=kw: weightdecay.SGDW(
                ps, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, decay=m, **kw), sgd_base))
    if "fused" in paths and _kernels.available():
        adam_c = functools.partial(weightdecay.AdamW, cautious=True)
        sgd_c = functools.partial(weightdecay.SGDW, cautious=True)
        for mode in ("torch", "stable"):
            rows.append(("AdamW cautious", mode, "fused",
                         lambda ps, m=mode: adam_c(ps, lr=LR, weight_decay=WEIGHT_DECAY, decay=m, fused=True),
                         lambda ps, m=mode: weightdecay.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY, decay=m,
                                                              fused=True)))
        sgd_kwargs = dict(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, decay="torch", fused=True)
        rows.append(("SGDW cautious", "torch", "fused", lambda ps: sgd_c(ps, **sgd_kwargs),
                     lambda ps: weightdecay.SGDW(ps, **sgd_kwargs)))
    if "fused" in paths:
        scaler = amp_scaler()
        for mode in ADAM_MODES:
            rows.append(("AdamW+GradScaler", mode, "fused", lambda ps, m=mode: ScaledStep(weightdecay.AdamW(
                ps, lr=LR, weight_decay=WEIGHT_DECAY, decay=m, fused=True), scaler),
                lambda ps: ScaledStep(adam_base(ps), scaler)))
    return [(*row, baseline_name(row[0], row[1])) for row in rows]


def wrapped_candidates(paths: list[str]) -> list[tuple[str, str, str, Callable, Callable, str]]:
    """with_decay classes against their torch.optim bases, each on the paths the base has."""
    bases = [(torch.optim.NAdam, dict(decoupled_weight_decay=True), ("foreach", "single")),
             (torch.optim.RAdam, dict(decoupled_weight_decay=True), ("foreach", "single")),
             (torch.optim.Adam, dict(decoupled_weight_decay=True), ("fused", "foreach", "single")),
             (torch.optim.Adafactor, {}, ("foreach", "single")),
             (torch.optim.Muon, {}, ("default",)),
             (torch.optim.RMSprop, {}, ("foreach", "single"))]
    rows = []
    for base, own, base_paths in bases:
        wrapped = weightdecay.with_decay(base)
        for path in [p for p in (*paths, "default") if p in base_paths]:
            kw = PATH_KWARGS.get(path, {})
            modes = ("torch", "paper", "constant", "corrected") if base is not torch.optim.RMSprop else ("torch",)
            for mode in modes:
                rows.append((f"wd.{base.__name__}", mode, path,
                             lambda ps, w=wrapped, m=mode, kw=kw: w(ps, lr=LR, weight_decay=WEIGHT_DECAY, decay=m,
                                                                    **kw),
                             lambda ps, b=base, kw=kw, own=own: b(ps, lr=LR, weight_decay=WEIGHT_DECAY, **own, **kw),
                             f"torch.optim.{base.__name__}({path})"))
    return rows


def cautious_candidates(paths: list[str]) -> list[tuple[str, str, str, Callable, Callable, str]]:
    """cautious=True against the same optimizer and mode with it off."""
    rows = []
    for path in paths:
        kw = PATH_KWARGS[path]
        for name, make in (("AdamW", lambda ps, c, kw: weightdecay.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY,
                                                                         cautious=c, **kw)),
                           ("SGDW", lambda ps, c, kw: weightdecay.SGDW(ps, lr=LR, momentum=MOMENTUM,
                                                                       weight_decay=WEIGHT_DECAY, cautious=c, **kw))):
            rows.append((f"{name} cautious", "torch", path, lambda ps, mk=make, kw=kw: mk(ps, True, kw),
                         lambda ps, mk=make, kw=kw: mk(ps, False, kw), f"{name}({path}), cautious=False"))
    for path in ("foreach",):
        rows.append(("wd.NAdam cautious", "torch", path,
                     lambda ps: weightdecay.NAdam(ps, lr=LR, weight_decay=WEIGHT_DECAY, cautious=True, foreach=True),
                     lambda ps: weightdecay.NAdam(ps, lr=LR, weight_decay=WEIGHT_DECAY, foreach=True),
                     "wd.NAdam(foreach), cautious=False"))
    return rows


def bf16_candidates(paths: list[str]) -> list[tuple[str, str, str, Callable, Callable, str]]:
    """Rows on bfloat16 weights (their names end in "bf16"; the mode column names the rounding, decay "torch"):
    each rounding against torch's fused step on the same
    weights, which loses the decay (weightdecay/optim/_precision.py)."""

    def adam_base(ps):
        return torch.optim.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY, fused=True)

    def sgd_base(ps):
        return torch.optim.SGD(ps, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, fused=True)

    rows = []
    for path in paths:
        kw = PATH_KWARGS[path]
        for rounding in ("compensated", "stochastic", "nearest"):
            if rounding == "stochastic" and path == "fused":
                continue  # no one-pass kernel for it: the fused flag runs the torch-ops path, as foreach does
            rows.append(("AdamW bf16", rounding, path,
                         lambda ps, r=rounding, kw=kw: weightdecay.AdamW(ps, lr=LR, weight_decay=WEIGHT_DECAY,
                                                                         rounding=r, **kw),
                         adam_base, "torch.optim.AdamW(fused) bf16"))
        rows.append(("SGDW bf16", "compensated", path,
                     lambda ps, kw=kw: weightdecay.SGDW(ps, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                                                        **kw),
                     sgd_base, "torch.optim.SGD(fused) bf16"))
    return rows


def bf16_params(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """bfloat16 copies of the parameters and their gradients."""
    out = []
    for p in params:
        q = p.detach().to(torch.bfloat16)
        q.grad = p.grad.to(torch.bfloat16)
        out.append(q)
    return out


def baseline_name(name: str, mode: str) -> str:
    if name.endswith("cautious"):
        return f"weightdecay.{name.split()[0]}({mode}, fused)"
    if name == "AdamW+GradScaler":
        return "torch.optim.AdamW(fused)+GradScaler"
    return "torch.optim.SGD(fused)" if name == "SGDW" else "torch.optim.AdamW(fused)"


def kernel_status() -> str:
    """Whether the one-pass kernels are in use, and what building them cost in this run (0 s: already cached)."""
    start = time.perf_counter()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # the build's (or fallback's) one line
    ok = _kernels.available()
    took = time.perf_counter() - start
    return f"one-pass CPU kernels: {'loaded' if ok else 'unavailable (torch path)'} in {took:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7,5e7", help="comma-separated parameter counts (default %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per optimizer (median; default 20)")
    parser.add_argument("--paths", default="fused,foreach", help="any of fused,foreach,single (default %(default)s)")
    parser.add_argument("--tensors", type=int, default=N_TENSORS, help="tensors the parameters are split over")
    parser.add_argument("--wrapped", action="store_true", help="also: with_decay classes against their bases")
    parser.add_argument("--cautious", action="store_true", help="also: cautious rows on foreach and a wrapped class")
    parser.add_argument("--bf16", action="store_true", help="also: bfloat16 weights, compensated vs torch's fused")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    paths = [p.strip() for p in args.paths.split(",")]
    unknown = [p for p in paths if p not in PATH_KWARGS]
    if unknown or args.steps < 1:
        parser.error(f"--paths takes {', '.join(PATH_KWARGS)} (got {unknown}); --steps must be >= 1")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.steps} steps after "
          f"{WARMUP_STEPS} warm-up; lr={LR}, weight_decay={WEIGHT_DECAY}, SGD momentum={MOMENTUM}")
    print(kernel_status())
    for size in sizes:
        params = make_params(size, args.tensors)
        n = sum(p.numel() for p in params)
        print(f"\n{n:.2e} float32 parameters in {len(params)} tensors")
        print(f"{'optimizer':<18} {'mode':<11} {'path':<8} {'ms/step':>9} {'baseline ms':>12} {'ratio':>7} "
              f"{'peak MB':>8}  baseline")
        rows = candidates(paths)
        rows += wrapped_candidates(paths) if args.wrapped else []
        rows += cautious_candidates(paths) if args.cautious else []
        low = None
        if args.bf16:
            rows += bf16_candidates(paths)
            low = bf16_params(params)
            print(f"(bf16 rows: the compensation buffer holds {2 * n / 1e6:.1f} MB, 2 bytes per parameter, beside "
                  f"torch's moments {4 * n / 1e6:.1f} MB; 'peak MB' is what one step allocates on top)")
        for name, mode, path, build, build_base, base_name in rows:
            # Muon updates only matrices: it and its base get the 2-D tensors
            ps = [p for p in params if p.ndim == 2] if name.endswith("Muon") else params
            ps = low if name.endswith("bf16") else ps
            if not ps:
                print(f"{name:<18} {mode:<11} {path:<8} (no 2-D tensors at this size)")
                continue
            candidate, baseline = build(ps), build_base(ps)
            t, t_base, ratio = paired_median_times(candidate, baseline, args.steps)
            peak_mb = peak_extra_bytes(candidate) / 1e6
            print(f"{name:<18} {mode:<11} {path:<8} {t * 1e3:9.2f} {t_base * 1e3:12.2f} {ratio:7.2f} {peak_mb:8.2f}  "
                  f"{base_name}", flush=True)
            del candidate, baseline  # free the optimizer state before the next row
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
