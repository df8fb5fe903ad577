"""The usual Muon split: Muon for the hidden matrices, AdamW for everything else, each part with its own λ and, if
wished, its own decay convention (Keras' ``weight_decay`` / ``adam_weight_decay``, levanter#1147).

torch.optim.Muon updates only 2-D parameters. Its decay is ``p ← p·(1 - lr·λ)`` with the group's ``lr``, not
the RMS-adjusted lr of its update, under every ``adjust_lr_fn`` (``None``/``"original"``: update lr
``lr·sqrt(max(1, A/B))``; ``"match_rms_adamw"``: ``0.2·lr·sqrt(max(A, B))``). :class:`weightdecay.Muon` keeps that:
``s_t`` of the table uses the group's ``lr_t`` (docs/math.md, "Decay conventions").
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from weightdecay.optim.adamw import AdamW
from weightdecay.optim.combined import CombinedOptimizer
from weightdecay.optim.param_groups import param_groups
from weightdecay.optim.wrap import Muon

__all__ = ["muon_param_groups", "split_matrices", "muon_with_adamw"]


def split_matrices(groups: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split parameter groups into the 2-D tensors (for Muon) and the rest, each keeping its group's keys."""
    matrices, rest = [], []
    for group in groups:
        params = list(group["params"])
        options = {k: v for k, v in group.items() if k != "params"}
        two_d = [p for p in params if p.ndim == 2]
        other = [p for p in params if p.ndim != 2]
        if two_d:
            matrices.append({"params": two_d, **options})
        if other:
            rest.append({"params": other, **options})
    return matrices, rest


def muon_param_groups(model: nn.Module, weight_decay: float, *, adamw_names: Iterable[str] = (),
                      adamw_weight_decay: float | None = None,
                      **group_options: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(muon_groups, adamw_groups)``: decayed 2-D weights for Muon, everything else for AdamW.

    ``weight_decay`` is the λ of the matrices Muon updates, ``adamw_weight_decay`` (default: the same) the λ of
    the decayed tensors AdamW updates; each group's ``weight_decay`` holds its part's λ.

    Built on :func:`weightdecay.param_groups`: biases, norm parameters and embeddings are exempt from decay and
    go to AdamW with the other non-matrix tensors; ``adamw_names`` (module prefixes, e.g. the output head, which
    Muon's authors leave to AdamW) send matrices to AdamW as well.

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> muon, adamw = weightdecay.muon_param_groups(model, 0.1, decay="paper")
        >>> [len(g["params"]) for g in muon], [len(g["params"]) for g in adamw]
        ([2], [2])
    """
    names = tuple(adamw_names)
    to_adamw = {id(p) for n, p in model.named_parameters()
                if any(n == a or n.startswith(a + ".") for a in names)}
    decayed, exempt = param_groups(model, weight_decay, **group_options)
    matrices, rest = split_matrices([decayed])
    muon = [{**g, "params": [p for p in g["params"] if id(p) not in to_adamw]} for g in matrices]
    moved = [p for g in matrices for p in g["params"] if id(p) in to_adamw]
    adamw = [*rest, *([{**decayed, "params": moved}] if moved else [])]
    if adamw_weight_decay is not None:
        adamw = [{**g, "weight_decay": adamw_weight_decay} for g in adamw]
    adamw.append(exempt)
    return [g for g in muon if g["params"]], [g for g in adamw if g["params"]]


def muon_with_adamw(muon_groups: list[dict[str, Any]], adamw_groups: list[dict[str, Any]], *, lr: float,
                    weight_decay: float, decay: str = "torch", adamw_lr: float | None = None,
                    adamw_betas: tuple[float, float] = (0.9, 0.999), cautious: bool = False,
                    adamw_weight_decay: float | None = None, adamw_decay: str | None = None,
                    **muon_options: Any) -> torch.optim.Optimizer:
    """:class:`weightdecay.Muon` over the matrices and :class:`weightdecay.AdamW` over the rest, as one optimizer.

    The two parts have two λs: ``weight_decay`` in ``decay`` for Muon, ``adamw_weight_decay`` in ``adamw_decay``
    for AdamW (each defaults to Muon's). A group that sets its own ``weight_decay`` or ``decay`` keeps it. Both use
    ``cautious``; each group's ``peak_lr`` is its own lr, so one scheduler scales both.

    Args:
        muon_groups, adamw_groups: from :func:`muon_param_groups` or :func:`split_matrices`.
        lr: Muon's learning rate; ``adamw_lr`` AdamW's (default: the same).
        weight_decay: Muon's λ in the units of ``decay``, for groups that do not set their own.
        adamw_weight_decay, adamw_decay: AdamW's λ and its convention (default: ``weight_decay``, ``decay``).
        muon_options: Muon's own arguments (``momentum``, ``nesterov``, ``adjust_lr_fn``, ``ns_steps``).

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> opt = weightdecay.muon_with_adamw(*weightdecay.muon_param_groups(model, 0.1), lr=0.02,
        ...                                   weight_decay=0.1, adamw_lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
    """
    parts = []
    if muon_groups:
        parts.append(Muon(muon_groups, lr=lr, weight_decay=weight_decay, decay=decay, cautious=cautious,
                          **muon_options))
    if adamw_groups:
        parts.append(AdamW(adamw_groups, lr=lr if adamw_lr is None else adamw_lr, betas=adamw_betas,
                           weight_decay=weight_decay if adamw_weight_decay is None else adamw_weight_decay,
                           decay=decay if adamw_decay is None else adamw_decay, cautious=cautious))
    return parts[0] if len(parts) == 1 else CombinedOptimizer(parts)
