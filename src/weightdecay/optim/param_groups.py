"""Which parameters get weight decay, decided by the model's structure rather than by parameter names."""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import torch
from torch import nn

from weightdecay.checks import nonnegative
from weightdecay.errors import UserTypeError

__all__ = ["param_groups", "NORM_LAYERS"]

# Normalization layers: their scales and shifts are exempt from decay.
NORM_LAYERS: tuple[type[nn.Module], ...] = tuple(
    cls for cls in (
        nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
    ) if cls is not None
)
EMBEDDINGS: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    no_decay_names: Iterable[str] = (),
    exempt_embeddings: bool = True,
    exempt_biases_and_norms: bool = True,
    **group_options: Any,
) -> list[dict[str, Any]]:
    """Split a model's trainable parameters into a decayed group and an exempt group (``weight_decay=0``).

    Exempt: tensors with ``ndim <= 1`` (biases, norm scales), every parameter of a normalization layer,
    embedding tables (unless ``exempt_embeddings=False``), and the names the model lists in its own
    ``no_weight_decay()`` (timm's convention) or in ``no_decay_names``; a name also matches a module prefix
    (``"pos_embed"`` matches ``"pos_embed.weight"``). A tensor shared by several modules (tied weights) is
    listed once, and exempt if any of its uses is.

    Args:
        model: the module whose ``named_parameters()`` to group.
        weight_decay: λ for the decayed group.
        no_decay_names: extra parameter names (or module prefixes) to exempt.
        exempt_embeddings: exempt ``nn.Embedding``/``nn.EmbeddingBag`` weights.
        exempt_biases_and_norms: exempt ``ndim <= 1`` tensors and normalization layers; False decays them too,
            as ``torch.optim.AdamW(model.parameters(), weight_decay=λ)`` does (PyTorch's tutorials).
        group_options: other keys for both groups (``decay="paper"``, ``lr=…``).

    Example:
        >>> import torch, weightdecay
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> decayed, exempt = weightdecay.param_groups(model, 0.1)
        >>> len(decayed["params"]), len(exempt["params"])
        (2, 4)
        >>> opt = weightdecay.AdamW([decayed, exempt], lr=1e-3)
    """
    if not isinstance(model, nn.Module):
        given = "model.parameters()" if isinstance(model, Iterable) else type(model).__name__
        raise UserTypeError(f"param_groups takes the model itself, not {given}: param_groups(model, "
                            f"weight_decay) reads its structure (biases, norm layers, embeddings)")
    if not isinstance(weight_decay, torch.Tensor):  # a Tensor λ (torch.compile's advice for the lr) passes as is
        real = isinstance(weight_decay, numbers.Real) and not isinstance(weight_decay, bool)  # numpy's floats too
        nonnegative("weight_decay", float(weight_decay) if real else weight_decay)
    names = set(no_decay_names)
    own = getattr(model, "no_weight_decay", None)
    if callable(own):
        names |= set(own())

    def listed(name: str) -> bool:
        return any(name == n or name.startswith(n + ".") for n in names)

    exempt_ids: set[int] = set()
    order: dict[int, torch.nn.Parameter] = {}
    for module_name, module in model.named_modules():
        structural = ((exempt_biases_and_norms and isinstance(module, NORM_LAYERS))
                      or (exempt_embeddings and isinstance(module, EMBEDDINGS)))
        for param_name, param in module.named_parameters(prefix=module_name, recurse=False):
            if not param.requires_grad:
                continue
            order.setdefault(id(param), param)
            if structural or (exempt_biases_and_norms and param.ndim <= 1) or listed(param_name):
                exempt_ids.add(id(param))
    decayed = [p for i, p in order.items() if i not in exempt_ids]
    exempt = [p for i, p in order.items() if i in exempt_ids]
    return [
        {"params": decayed, "weight_decay": weight_decay, **group_options},
        {"params": exempt, "weight_decay": 0.0, **group_options},
    ]
