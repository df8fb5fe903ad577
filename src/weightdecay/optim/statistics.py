"""The training statistic a decay mode may read (:class:`weightdecay.decay.Statistic`), computed in one place.

``stable`` (AdamS) divides its shrink by ``sqrt(mean(v̂_t))``, the mean of the bias-corrected second moment over
every element the optimizer updates (all groups), after this step's moment update (docs/math.md, "Decay
conventions"). A step needs it before its moments move, so it is predicted from
``Σv_t = β2·Σv_{t-1} + (1-β2)·Σg²`` (:func:`predicted_mean_v_hat`: AdamW, every ``with_decay`` class with Adam's
second moment); the Monitor reads it from the state after the step (:func:`mean_v_hat_of_state`). Under FSDP2
each rank sums its shards and one all_reduce adds the rest.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor

from weightdecay.decay import coupled_weight_decay
from weightdecay.optim._base import _number
from weightdecay.optim._distributed import global_sum_and_count, is_sharded, local_shard

__all__ = ["predicted_mean_v_hat", "mean_v_hat_of_state"]


def predicted_mean_v_hat(groups: Iterable[tuple[dict[str, Any], dict[str, list]]], *,
                         grad_scale: Tensor | None = None, already: tuple[Any, int] = (0.0, 0)) -> Tensor | float:
    """mean(v̂_t) after this step's moment update, over every element of ``groups``, before any moment moves.

    Args:
        groups: ``(group, tensors)`` pairs; ``tensors`` holds the lists ``params``, ``grads``, ``exp_avg_sqs``
            (None for a tensor with no state yet) and ``steps`` (the steps taken: tensors, numbers, or None for 0).
        grad_scale: a GradScaler's scale, where the gradients arrive scaled (a fused step): divided out first.
        already: a (sum, count) of v̂ computed elsewhere (a one-pass kernel's), added in.

    Returns a tensor (no host sync, so a compiled step reads it in its graph), or 0.0 with nothing to average.
    The moments see ``(-g if maximize) + λ·p`` under a coupled mode, torch.optim.Adam's order; so does the mean.
    """
    params, sums = [], []
    for group, t in groups:
        if not t["params"]:
            continue
        # Sums over this rank's shards (all of each tensor outside FSDP2); global_sum_and_count adds the rest.
        grads = [local_shard(g) for g in t["grads"]]
        if grad_scale is not None:  # unscaled before l2's λ·p joins them, as the kernel will do
            grads = torch._foreach_div(grads, grad_scale)
        coupled = coupled_weight_decay(group["decay"], group["weight_decay"])
        if coupled != 0:
            grads = torch._foreach_add(torch._foreach_neg(grads) if group.get("maximize") else grads,
                                       [local_shard(p) for p in t["params"]], alpha=coupled)
        beta2 = _number(group["betas"][1])
        v_sum = torch.stack([local_shard(v).sum() if v is not None else g.new_zeros(())
                             for v, g in zip(t["exp_avg_sqs"], grads)]).to(torch.float64)
        g_sq = torch.stack(torch._foreach_norm(grads, 2)).to(torch.float64).square()
        new_sum = beta2 * v_sum + (1 - beta2) * g_sq
        if group.get("bias_correction", True):
            steps = torch.stack([s.to(torch.float64) if torch.is_tensor(s) else torch.tensor(float(s or 0))
                                 for s in t["steps"]]).to(device=v_sum.device, dtype=torch.float64) + 1
            new_sum = new_sum / (1 - beta2 ** steps)
        params += t["params"]
        sums.append(new_sum)
    if is_sharded(params):  # FSDP2: one all_reduce of [sum, count] over the shards
        total, numel = global_sum_and_count(params, torch.cat(sums))
    else:
        total = torch.cat(sums).sum() if sums else 0.0
        numel = sum(p.numel() for p in params)
    total, numel = total + already[0], numel + already[1]
    return total / numel if numel else 0.0


def mean_v_hat_of_state(optimizer: torch.optim.Optimizer) -> float | None:
    """mean(v̂_t) over every element with Adam state, as the last step left it (what ``stable`` divided by);
    None where no tensor has a second moment yet."""
    params, sums = [], []
    for group in optimizer.param_groups:
        beta2 = _number(group["betas"][1]) if "betas" in group else None
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "exp_avg_sq" not in state or beta2 is None:
                continue
            v = local_shard(state["exp_avg_sq"]).double().sum()
            if group.get("bias_correction", True):
                v = v / (1 - beta2 ** _number(state["step"]))
            params.append(p)
            sums.append(v)
    if not params:
        return None
    total, numel = global_sum_and_count(params, torch.stack(sums))
    return total / numel if numel else None
