"""How much memory one optimizer step holds beyond what it started with, read from torch's profiler.

Shared by the kernel tests (a fused step allocates nothing the size of the parameters) and
``benchmarks/step_speed.py`` (the peak it prints beside each timing).
"""

from __future__ import annotations

from typing import Protocol

import torch.profiler as tp


class Steppable(Protocol):
    def step(self) -> object: ...


def peak_extra_bytes(opt: Steppable) -> int:
    """The most memory the allocator held above its level at the step's start, during one ``opt.step()``.

    The profiler's memory events carry signed sizes (allocations positive, frees negative); their running sum in
    time order is the level above the start, and its maximum is the peak.
    """
    with tp.profile(activities=[tp.ProfilerActivity.CPU], profile_memory=True) as prof:
        opt.step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    level = peak = 0
    for event in events:
        level += event.nbytes()
        peak = max(peak, level)
    return peak
