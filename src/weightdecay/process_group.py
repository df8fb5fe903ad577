"""Start a torch.distributed process group and end it so that a run which succeeded exits with status 0.

Why the end needs more than ``destroy_process_group()``: on torch 2.13 a DTensor keeps a reference to the
process group's backend that ``destroy_process_group()`` does not drop, and FSDP2 parameters are DTensors. After
an FSDP2 run the gloo backend therefore outlives ``destroy_process_group()``: its two worker threads, its TCP
loop thread (and, where this process hosts the rendezvous store, the store's thread) keep running until the
interpreter exits (seen in ``/proc/self/task``; after a DDP-only run they are gone once the call returns). Each
rank then tears gloo down at interpreter exit, whenever it gets there: rank 0, which writes the checkpoint's
metadata and the metrics, gets there last, while its peers are already gone, and was seen to abort in about one
run in four of the FSDP2 example (``terminate called without an active exception``, SIGABRT, after the metrics
were printed).

:func:`process_group` therefore ends a block that finished with a ``barrier()`` before ``destroy_process_group()``:
no rank starts tearing down until every rank has finished every collective, so the ranks leave together. A block
that raised skips the barrier (a failed peer may never reach it, and the others would wait out the timeout) and
only destroys the group, then re-raises.

Example (two processes started by ``torchrun --nproc-per-node 2``)::

    with process_group("gloo"):
        train()
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch.distributed as dist

__all__ = ["process_group", "end_process_group"]


def end_process_group(*, finished: bool = True) -> None:
    """Destroy the default process group; first, when this rank ``finished`` its work, wait for every rank.

    Args:
        finished: this rank completed everything it had to do (the others should too): meet them in a
            ``barrier()`` first. False on an error path: destroy at once, without waiting for peers that may
            never come.
    """
    if not dist.is_initialized():
        return
    try:
        if finished:
            dist.barrier()
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(backend: str = "gloo", **init_kwargs: Any) -> Iterator[None]:
    """``dist.init_process_group(backend, **init_kwargs)`` for the block, ended by :func:`end_process_group`.

    Under torchrun the rank, world size and rendezvous come from the environment; elsewhere pass them
    (``init_method="tcp://127.0.0.1:PORT", rank=r, world_size=w``).
    """
    dist.init_process_group(backend, **init_kwargs)
    try:
        yield
    except BaseException:
        end_process_group(finished=False)
        raise
    end_process_group()
