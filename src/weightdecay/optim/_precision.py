"""Weight decay that acts on bfloat16 and float16 weights: the step's change written back without losing it.

A shrink ``p·(1 - s_t)`` rounded to the weight's format rounds back to ``p`` whenever ``s_t·|p|`` is below half
the spacing of the format at ``p``: for every ``s_t < 2^-9`` in bfloat16, ``s_t < 2^-12`` in float16
(docs/math.md, "Low precision"). Usual settings (``s_t`` 1e-6…1e-4) lose the decay entirely. Here the step's
full change ``Δ`` (decay included), computed in float32, is written back in one of three ways (``rounding=``):

``compensated`` (the default): Kahan summation with a buffer ``c`` in the weight's format (2 bytes per parameter,
the state key ``compensation``) holding what the last write dropped::

    y = Δ + c          p_new = round(p + y)          c ← (p + y) - p_new

``stochastic``: ``p_new`` rounded up or down at random, with the probability that makes ``E[p_new] = p + Δ``
(no state; the run then depends on the random generator).

``nearest``: ``p_new = round(p + Δ)``, what torch.optim does: the decay is lost. Float32 and float64 weights are
always written this way, by torch's own kernels, bit for bit as before.

Why ``compensated`` is the default (docs/results.md, "Decay in bfloat16"): with zero gradients, s_t = 1e-5 and
1000 steps on a 48×48 tensor, the bfloat16 weights' shrink is off float32's by +0.16% compensated, -1.1%
stochastic (float16: -0.11%, +0.76%) and -100% nearest; it is deterministic, and the CPU's one-pass kernel takes
it (stochastic rounding runs torch's ops, drawing a float32 random number per weight and step). Its cost is the
buffer, 2 bytes per parameter. On an MLP (300 AdamW steps, lr 1e-3, λ 0.5) the weight norm ends -0.03%
(compensated), -0.06% (stochastic) and +8.6% (nearest) off the float32 master-weights run.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from weightdecay.errors import UserError

__all__ = ["LOW_PRECISION", "ROUNDINGS", "DEFAULT_ROUNDING", "check_rounding", "is_low_precision", "kept_by",
           "split_kept", "compensation_buffers", "float32_gradient", "write_back_", "stochastic_round",
           "ChangeKeeper"]

LOW_PRECISION = (torch.bfloat16, torch.float16)
ROUNDINGS = ("compensated", "stochastic", "nearest")
DEFAULT_ROUNDING = "compensated"
STATE_KEY = "compensation"


def check_rounding(value: Any) -> str:
    """``rounding=`` of a group: one of :data:`ROUNDINGS`, else a UserError naming the choices."""
    if value not in ROUNDINGS:
        raise UserError(f"Invalid rounding: {value!r}; choose one of {', '.join(map(repr, ROUNDINGS))} "
                        "('nearest' reproduces torch.optim's bits on bfloat16/float16 weights)")
    return value


def is_low_precision(p: Tensor) -> bool:
    return p.dtype in LOW_PRECISION


def kept_by(group: dict[str, Any]) -> str | None:
    """How a group keeps the change of its low-precision weights: ``compensated``/``stochastic``, or None."""
    rounding = group.get("rounding", DEFAULT_ROUNDING)
    return None if rounding == "nearest" else rounding


def split_kept(group: dict[str, Any], lists: dict[str, list]) -> tuple[dict[str, list] | None, dict[str, list]]:
    """``(kept, rest)``: a group's per-tensor lists split into its low-precision tensors (when the group keeps
    their change) and the rest, which steps exactly as before. Each list is indexed like ``lists["params"]``;
    lists of another length (amsgrad's empty ``max_exp_avg_sqs``) are split only where they match."""
    params = lists["params"]
    if kept_by(group) is None or not any(map(is_low_precision, params)):
        return None, lists
    low = [is_low_precision(p) for p in params]
    kept: dict[str, list] = {}
    rest: dict[str, list] = {}
    for key, values in lists.items():
        if not isinstance(values, list):  # a kernel plan kept for the whole list: not one for either part
            continue
        if len(values) != len(params):
            kept[key], rest[key] = list(values), list(values)
            continue
        kept[key] = [v for v, lo in zip(values, low) if lo]
        rest[key] = [v for v, lo in zip(values, low) if not lo]
    return kept, rest


def compensation_buffers(state: Any, params: Sequence[Tensor], rounding: str | None) -> list[Tensor | None]:
    """Each tensor's compensation buffer (``state[p]["compensation"]``, zeros in p's format and layout, made on
    first sight), for ``compensated``; Nones otherwise."""
    if rounding != "compensated":
        return [None] * len(params)
    out = []
    for p in params:
        st = state[p]
        c = st.get(STATE_KEY)
        if c is None:
            c = st[STATE_KEY] = torch.zeros_like(p, memory_format=torch.preserve_format)
        out.append(c)
    return out


def float32_gradient(grad: Tensor, p32: Tensor, *, grad_scale: Tensor | None, maximize: bool,
                     coupled: float) -> Tensor:
    """The gradient a step of a low-precision tensor sees, in float32: divided by AMP's ``grad_scale``, negated
    with ``maximize``, plus ``coupled·p`` for ``l2`` (in torch.optim's order)."""
    g = grad.float()
    if grad_scale is not None:
        g = g / grad_scale
    if maximize:
        g = -g
    return g.add(p32, alpha=coupled) if coupled != 0 else g


def stochastic_round(exact: Tensor, dtype: torch.dtype, generator: torch.Generator | None = None) -> Tensor:
    """``exact`` (float32) rounded to ``dtype`` up or down at random, unbiased: ``E[result] = exact``.

    The nearest value ``r`` is kept, or replaced by its neighbour on the other side of ``exact`` with probability
    ``|exact - r| / |neighbour - r|``, which makes the expectation exact.
    """
    nearest = exact.to(dtype)
    error = exact - nearest.float()
    towards = torch.where(error >= 0, torch.tensor(float("inf"), dtype=dtype, device=exact.device),
                          torch.tensor(float("-inf"), dtype=dtype, device=exact.device))
    neighbour = torch.nextafter(nearest, towards)
    gap = (neighbour.float() - nearest.float()).abs()
    u = torch.rand(exact.shape, generator=generator, device=exact.device, dtype=torch.float32)
    take = (u * gap < error.abs()) & torch.isfinite(gap)
    return torch.where(take, neighbour, nearest)


def write_back_(params: Sequence[Tensor], changes: Sequence[Tensor], rounding: str,
                buffers: Sequence[Tensor | None] | None = None, generator: torch.Generator | None = None) -> None:
    """``p ← p + Δ`` for each tensor, ``Δ`` a float32 change (decay included), rounded by ``rounding``.

    ``compensated`` needs ``buffers`` (:func:`compensation_buffers`): ``y = Δ + c``, ``p ← round(p + y)``,
    ``c ← (p + y) - p_new``; the sum is taken in float32, where ``p`` and ``c`` are exact.
    """
    for i, (p, delta) in enumerate(zip(params, changes)):
        exact = p.float()
        if rounding == "compensated":
            c = buffers[i]  # type: ignore[index]
            exact.add_(delta + c.float())
            p.copy_(exact)
            c.copy_(exact.sub_(p.float()))
        elif rounding == "stochastic":
            p.copy_(stochastic_round(exact.add_(delta), p.dtype, generator))
        else:
            p.copy_(exact.add_(delta))


class ChangeKeeper:
    """The decay kept around a base that writes its own low-precision update (the wrapped classes, Amos).

    The base steps with no decay of its own; ``finish`` reads its change ``p_b - p_t`` (exact in float32, both in
    the weight's format), puts ``p_t`` back and writes ``Δ = (p_b - p_t) - s_t·p_t`` (masked by
    ``1[u_t⊙p_t ≥ 0]`` for cautious decay, ``u_t = (p_t - p_b)/lr_t`` in sign) through :func:`write_back_`. The
    decay and whatever earlier writes dropped are kept; the base's own update is rounded as the base rounds it.

    The buffers are asked for only in ``finish``, after the base's step: a base that makes its state on first
    sight of an empty ``state[p]`` (torch.optim's do) must find it empty.

    Example:
        >>> p = torch.ones(4, dtype=torch.bfloat16)
        >>> keeper = ChangeKeeper([p], 1e-4, "compensated")
        >>> _ = p.sub_(0.0)   # the base's step (no change here)
        >>> c = [torch.zeros_like(p)]
        >>> keeper.finish(c)
        >>> p[0].item(), c[0][0].item() < 0   # the shrink 1e-4 waits in the buffer, below bfloat16's spacing
        (1.0, True)
    """

    def __init__(self, params: Sequence[Tensor], shrink_t: float, rounding: str, *, cautious: bool = False) -> None:
        self.params, self.shrink_t, self.rounding = list(params), float(shrink_t), rounding
        self.cautious = cautious
        self.before = [p.detach().clone() for p in self.params]

    def finish(self, buffers: Sequence[Tensor | None], skipped: bool = False) -> None:
        """Write back the kept change (``buffers``: :func:`compensation_buffers` of the params); on a step a
        GradScaler skipped (``skipped``), put the weights back only."""
        if skipped:
            for p, old in zip(self.params, self.before):
                p.copy_(old)
            return
        changes = []
        for p, old in zip(self.params, self.before):
            old32 = old.float()
            delta = p.float().sub_(old32)
            if self.shrink_t != 0:
                decay = old32 * self.shrink_t
                if self.cautious:  # u_t ∝ -(p_b - p_t): the shrink where u_t·p_t >= 0
                    decay = decay * ((-delta) * old32 >= 0)
                delta.sub_(decay)
            p.copy_(old)
            changes.append(delta)
        write_back_(self.params, changes, self.rounding, buffers)

