"""Sums over sharded parameters: what ``stable``'s mean of v̂ and a monitor's global norms need under FSDP2.

A DTensor parameter (FSDP2's ``fully_shard``, tensor parallelism) holds only its local shard on each rank; a sum
over it is a sum over local shards, all-reduced over the ranks that hold the other shards. Plain tensors (one
process, or DistributedDataParallel, where every rank holds the whole parameter) need no collective: their local
sum is already the global one.

The reduction is grouped by shard layout (device mesh and the mesh dimensions the tensor is sharded over), so a
model sharded one way, as FSDP2 and HSDP shard it, costs one ``all_reduce`` per call, never one per tensor.
Mesh dimensions on which a tensor is replicated (HSDP's replicate dimension) are not reduced over: every replica
already holds the same values. The ranks of a mesh must all call with the same tensors in the same order, as
optimizers do (every rank steps every parameter).

Callers: :class:`weightdecay.AdamW`'s ``stable`` mode (:func:`global_sum_and_count`, one collective per step);
:class:`weightdecay.Monitor` (:func:`global_sums` of its per-tensor squares, one round of collectives per recorded step).
A monitor that reports weight, gradient or update norms under FSDP2 must take them from these, or it reports one
rank's shard (docs/distributed.md, 'What differs from one process').
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from weightdecay.errors import UserError

__all__ = ["local_shard", "global_sum_and_count", "global_sums", "global_norms", "check_fused_kernel"]

try:  # DTensor is public from torch 2.5, the oldest torch this package supports.
    from torch.distributed.tensor import DTensor
except ImportError:  # pragma: no cover - torch built without distributed support
    DTensor = None  # type: ignore[assignment,misc]


def _is_dtensor(tensor: Tensor) -> bool:
    return DTensor is not None and isinstance(tensor, DTensor)


def local_shard(tensor: Tensor) -> Tensor:
    """The part of ``tensor`` this rank holds: a DTensor's local shard, any other tensor itself."""
    return tensor.to_local() if _is_dtensor(tensor) else tensor


def is_sharded(tensors: Sequence[Tensor]) -> bool:
    """Whether any of ``tensors`` is a DTensor (FSDP2), whose sums must then be reduced across ranks."""
    return any(_is_dtensor(t) for t in tensors)


def _sharded_dims(tensor: Tensor) -> tuple[int, ...]:
    """The mesh dimensions a DTensor is sharded over (none for a plain or fully replicated tensor)."""
    if not _is_dtensor(tensor):
        return ()
    return tuple(i for i, placement in enumerate(tensor.placements) if placement.is_shard())


def _layouts(tensors: Sequence[Tensor]) -> dict[Hashable, list[int]]:
    """Indices of ``tensors`` by shard layout, in order of first appearance (the same order on every rank)."""
    layouts: dict[Hashable, list[int]] = {}
    for i, tensor in enumerate(tensors):
        dims = _sharded_dims(tensor)
        key = (tensor.device_mesh, dims) if dims else None
        layouts.setdefault(key, []).append(i)
    return layouts


def _all_reduce_over(values: Tensor, layout: Hashable) -> Tensor:
    """Sum ``values`` over the ranks holding the other shards of a layout: one collective per sharded mesh dim."""
    if layout is None:
        return values
    mesh, dims = layout
    # The collective runs on the mesh's device: with FSDP2's CPU offload the shards live on the CPU while the
    # process group is NCCL, which takes only GPU tensors.
    on_mesh = values.to(torch.device(mesh.device_type))
    for dim in dims:  # FSDP2 and HSDP shard over one mesh dimension: one all_reduce
        dist.all_reduce(on_mesh, op=dist.ReduceOp.SUM, group=mesh.get_group(mesh_dim=dim))
    return on_mesh.to(values.device)


def global_sum_and_count(tensors: Sequence[Tensor], local_sums: Tensor | Sequence[float]) -> tuple[float, int]:
    """The sum over all ranks of per-tensor local sums, and the number of elements they were taken over.

    ``local_sums[i]`` is a sum over the elements of ``local_shard(tensors[i])``; the result is what the same sums
    give over the whole (unsharded) tensors: ``(Σ_i Σ_ranks local_sums[i], Σ_i tensors[i].numel())``, as float64.

    Args:
        tensors: the tensors summed over (parameters, DTensor or plain), one per entry of ``local_sums``.
        local_sums: per-tensor sums over this rank's local shard (a 1-D tensor or a sequence of numbers).

    Example:
        >>> import torch
        >>> ps = [torch.ones(2, 3), torch.ones(4)]
        >>> global_sum_and_count(ps, [p.sum() for p in ps])
        (10.0, 10)
    """
    local_sums = torch.as_tensor(local_sums, dtype=torch.float64).reshape(-1)
    if len(tensors) != len(local_sums):
        raise ValueError(f"global_sum_and_count: {len(tensors)} tensors but {len(local_sums)} sums")
    total, count = 0.0, 0
    for layout, indices in _layouts(tensors).items():
        locals_ = [local_shard(tensors[i]) for i in indices]
        device = locals_[0].device
        sums = local_sums.to(device)
        sums = sums if len(indices) == len(tensors) else sums[torch.tensor(indices, device=device)]
        pair = torch.stack([sums.sum(),
                            torch.tensor(float(sum(t.numel() for t in locals_)), dtype=torch.float64, device=device)])
        pair = _all_reduce_over(pair, layout)
        total += float(pair[0])
        count += int(pair[1])
    return total, count


def global_sums(tensors: Sequence[Tensor], local_sums: Tensor | Sequence[float]) -> Tensor:
    """Per-tensor sums over all ranks: ``local_sums[i]``, a sum over ``local_shard(tensors[i])``, added up over
    the shards of ``tensors[i]``; one collective per shard layout.

    What the same sums give over the whole tensors, for sums computed one tensor at a time (a caller need not
    hold every summand at once, as :func:`global_norms` would need).

    Args:
        tensors: the tensors (DTensor or plain) whose layouts say which ranks hold the other shards.
        local_sums: one sum per tensor over this rank's local shard.

    Returns:
        A float64 tensor of ``len(tensors)`` sums, on the CPU, identical on every rank of a mesh.

    Example:
        >>> import torch
        >>> ps = [torch.ones(2, 3), torch.ones(4)]
        >>> global_sums(ps, [p.sum() for p in ps]).tolist()
        [6.0, 4.0]
    """
    local_sums = torch.as_tensor(local_sums, dtype=torch.float64).reshape(-1)
    if len(tensors) != len(local_sums):
        raise ValueError(f"global_sums: {len(tensors)} tensors but {len(local_sums)} sums")
    sums = torch.zeros(len(tensors), dtype=torch.float64)
    for layout, indices in _layouts(tensors).items():
        device = local_shard(tensors[indices[0]]).device
        part = local_sums.to(device)[torch.tensor(indices, device=device)]
        sums[indices] = _all_reduce_over(part, layout).cpu()
    return sums


def global_norms(tensors: Sequence[Tensor], norm_type: float = 2.0) -> Tensor:
    """The p-norm of each whole tensor, DTensor shards reduced across ranks: one collective per shard layout.

    The norm a single process would report for the unsharded tensors, where ``torch.linalg.vector_norm`` of a
    local shard would give only that rank's part.

    Args:
        tensors: tensors (DTensor or plain), e.g. parameters or their gradients.
        norm_type: p of the p-norm; finite and > 0.

    Returns:
        A float64 tensor of ``len(tensors)`` norms, on the CPU, identical on every rank of a mesh.

    Example:
        >>> import torch
        >>> global_norms([torch.tensor([3.0, 4.0]), torch.ones(4)]).tolist()
        [5.0, 2.0]
    """
    if not (norm_type > 0) or norm_type == float("inf"):
        raise ValueError(f"global_norms: norm_type must be finite and > 0, got {norm_type}")
    norms = torch.zeros(len(tensors), dtype=torch.float64)
    for layout, indices in _layouts(tensors).items():
        locals_ = [local_shard(tensors[i]) for i in indices]
        # Σ|x|^p is additive over shards; the p-th root comes after the reduction.
        powers = torch.stack([torch.linalg.vector_norm(t.detach().to(torch.float64), norm_type) ** norm_type
                              for t in locals_])
        powers = _all_reduce_over(powers, layout)
        norms[indices] = powers.cpu() ** (1.0 / norm_type)
    return norms


def _has_sharding_strategy(op: Any) -> bool:
    """Whether DTensor knows how to run ``op`` on shards (torch registers fused Adam/AdamW, not fused SGD)."""
    propagator = getattr(getattr(DTensor, "_op_dispatcher", None), "sharding_propagator", None)
    registries = [getattr(propagator, name, None) for name in
                  ("op_strategy_funcs", "op_single_dim_strategy_funcs", "op_to_rules")]
    registries = [r for r in registries if r is not None]
    if not registries:  # a torch whose private layout differs: let torch itself decide
        return True
    return any(op in registry for registry in registries)


def check_fused_kernel(params: Sequence[Tensor], op: Any, optimizer: str) -> None:
    """UserError, before any update, when ``fused=True`` meets DTensor parameters that ``op`` cannot run on.

    torch 2.13 runs ``aten._fused_adam(w)_`` on DTensors but has no sharding strategy for ``aten._fused_sgd_``,
    so a fused SGD step on FSDP2 parameters would fail inside torch with a NotImplementedError.
    """
    if DTensor is None or not any(_is_dtensor(p) for p in params) or _has_sharding_strategy(op):
        return
    raise UserError(f"{optimizer}(fused=True) cannot step DTensor (FSDP2) parameters: this torch has no DTensor "
                    f"sharding strategy for {op}; use foreach=True, which runs on DTensors")
