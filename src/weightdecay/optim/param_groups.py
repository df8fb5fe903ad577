"""Which parameters get weight decay, decided by the model's structure rather than by parameter names; per-group
weight-decay multipliers (Megatron's ``wd_mult``) and layer-wise learning-rate decay (timm's and BEiT's
``layer_decay``) on top."""

from __future__ import annotations

import fnmatch
import numbers
import re
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from weightdecay.checks import nonnegative
from weightdecay.decay import get_mode, shrink
from weightdecay.errors import UserError, UserTypeError

__all__ = ["param_groups", "NORM_LAYERS", "HF_NO_DECAY_PATTERNS", "layer_ids", "layer_decay_weight_decay"]

# transformers' Trainer.get_decay_parameter_names: regular expressions searched in each lowercased parameter name
# (besides the nn.LayerNorm type). Pass them as ``no_decay_patterns`` to exempt what Trainer exempts.
HF_NO_DECAY_PATTERNS: tuple[str, ...] = (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")

# Normalization layers: their scales and shifts are exempt from decay.
NORM_LAYERS: tuple[type[nn.Module], ...] = tuple(
    cls for cls in (
        nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
    ) if cls is not None
)
EMBEDDINGS: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


def _is_norm(module: nn.Module) -> bool:
    """A normalization layer by type, or by a class name ending in "Norm" (``LlamaRMSNorm``, ``T5LayerNorm``, a
    model's own ``RMSNorm``): custom norm classes are what name- and type-lists miss (transformers#35927)."""
    return isinstance(module, NORM_LAYERS) or type(module).__name__.lower().endswith("norm")


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    no_decay_names: Iterable[str] = (),
    exempt_embeddings: bool = True,
    exempt_biases_and_norms: bool = True,
    no_decay_types: Iterable[type[nn.Module] | str] = (),
    no_decay_patterns: Iterable[str] = (),
    wd_mult: Mapping[str, float] | None = None,
    layer_decay: float | None = None,
    layer_of: Callable[[str], int] | None = None,
    decay_follows_lr: bool | None = None,
    **group_options: Any,
) -> list[dict[str, Any]]:
    """Split a model's trainable parameters into a decayed group and an exempt group (``weight_decay=0``).

    Exempt: tensors with ``ndim <= 1`` (biases, norm scales), every parameter of a normalization layer,
    embedding tables (unless ``exempt_embeddings=False``), and the names the model lists in its own
    ``no_weight_decay()`` (timm's convention) or in ``no_decay_names``; a name also matches a module prefix
    (``"pos_embed"`` matches ``"pos_embed.weight"``) and may hold wildcards (``"*.gate"``). A module whose class
    name ends in "Norm" (a model's own ``RMSNorm``) counts as a normalization layer. A tensor shared by several
    modules (tied weights) is listed once, and exempt if any of its uses is.

    Two options split the groups further; both leave their factors in each group (``wd_mult``, ``lr_scale``), so
    the state dict saves them and :class:`weightdecay.Monitor` records them beside the shrink:

    - ``wd_mult`` (Megatron's per-group multiplier): the decayed tensors a pattern matches get ``λ·wd_mult``.
    - ``layer_decay`` (timm's and BEiT's layer-wise lr decay): layer ``i`` of ``depth + 1`` gets
      ``lr_scale = layer_decay^(depth + 1 − i)`` (layer 0 the embeddings, ``1…depth`` the blocks, ``depth + 1`` the
      head), and its ``lr`` (and ``peak_lr``, if given) is multiplied by it. Whether the layer's weight decay
      follows its lr is ``decay_follows_lr``, which this option requires: under ``torch`` the shrink
      ``s_t = lr_layer·λ`` follows it unless λ is divided by ``lr_scale``; under ``paper`` ``η_t = lr_t/peak_lr``
      is a ratio, so it does not unless λ is multiplied by it (:func:`layer_decay_weight_decay`).

    Args:
        model: the module whose ``named_parameters()`` to group.
        weight_decay: λ for the decayed group.
        no_decay_names: extra parameter names (or module prefixes) to exempt.
        exempt_embeddings: exempt ``nn.Embedding``/``nn.EmbeddingBag`` weights.
        exempt_biases_and_norms: exempt ``ndim <= 1`` tensors and normalization layers; False decays them too,
            as ``torch.optim.AdamW(model.parameters(), weight_decay=λ)`` does (PyTorch's tutorials).
        no_decay_types: module classes (or class names) whose parameters are exempt, as Hugging Face's
            ``forbidden_layer_types``.
        no_decay_patterns: regular expressions searched in each lowercased parameter name; a match is exempt
            (:data:`HF_NO_DECAY_PATTERNS` are Trainer's).
        wd_mult: ``{pattern: multiplier}`` for decayed tensors; a pattern is a name, a module prefix or a wildcard
            pattern, and the first that matches wins (others get 1).
        layer_decay: the per-layer lr factor (0.65–0.75 in BEiT's and timm's fine-tuning recipes); needs ``lr``
            in ``group_options`` and ``decay_follows_lr``.
        layer_of: ``name -> layer index`` (0 the embeddings); default :func:`layer_ids`, which finds the model's
            stack of blocks (its longest ``ModuleList``).
        decay_follows_lr: with ``layer_decay``: True keeps ``s_t`` proportional to the layer's lr (timm's and
            BEiT's behaviour under ``torch``), False gives every layer the shrink it would have at ``lr_scale = 1``.
        group_options: other keys for every group (``decay="paper"``, ``lr=…``).

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
        return any(_matches(name, n) for n in names)

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
    _exempt_by_type_and_pattern(model, exempt_ids, no_decay_types, no_decay_patterns, exempt_biases_and_norms)
    if wd_mult is None and layer_decay is None:
        decayed = [p for i, p in order.items() if i not in exempt_ids]
        exempt = [p for i, p in order.items() if i in exempt_ids]
        return [
            {"params": decayed, "weight_decay": weight_decay, **group_options},
            {"params": exempt, "weight_decay": 0.0, **group_options},
        ]
    return _split_groups(model, order, exempt_ids, weight_decay, wd_mult or {}, layer_decay, layer_of,
                         decay_follows_lr, group_options)


def _matches(name: str, pattern: str) -> bool:
    """A name, a module prefix (``"blocks.0"``) or a wildcard pattern (``"*.gate"``, timm's fnmatch)."""
    return name == pattern or name.startswith(pattern + ".") or fnmatch.fnmatchcase(name, pattern)


def _exempt_by_type_and_pattern(model: nn.Module, exempt_ids: set[int], types: Iterable[type[nn.Module] | str],
                                patterns: Iterable[str], norms_by_name: bool) -> None:
    """Add to ``exempt_ids`` the tensors of the listed module types, of custom norm classes and those whose
    lowercased name a pattern finds (Hugging Face's ``get_parameter_names`` rule)."""
    classes = tuple(t for t in types if isinstance(t, type))
    class_names = {t for t in types if isinstance(t, str)}
    compiled = [re.compile(p) for p in patterns]
    for module_name, module in model.named_modules():
        by_type = (isinstance(module, classes) or type(module).__name__ in class_names
                   or (norms_by_name and _is_norm(module)))
        for name, param in module.named_parameters(prefix=module_name, recurse=False):
            if by_type or any(c.search(name.lower()) for c in compiled):
                exempt_ids.add(id(param))


def layer_ids(model: nn.Module) -> dict[str, int]:
    """Each parameter's layer for layer-wise lr decay, BEiT's numbering: the model's stack of blocks is its longest
    ``ModuleList``/``Sequential`` of modules with parameters (the model itself only when it is a bare
    ``Sequential``); block ``i`` is layer ``i + 1``, what comes before
    the stack (embeddings, ``cls_token``) layer 0, what comes after it (final norm, head) layer ``depth + 1``.

    >>> model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)]))
    >>> model.append(torch.nn.Linear(4, 2))
    Sequential(...)
    >>> layer_ids(model)
    {'0.weight': 0, '1.0.weight': 1, '1.0.bias': 1, '1.1.weight': 2, '1.1.bias': 2, '2.weight': 3, '2.bias': 3}
    """
    stacks = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.ModuleList, nn.Sequential)) and len(m) > 1
              and all(any(True for _ in child.parameters()) for child in m)]
    if not stacks:
        raise UserError("layer_decay found no stack of blocks in the model (a ModuleList or Sequential of two or "
                        "more modules with parameters); pass layer_of=(name -> layer index)")
    inner = [item for item in stacks if item[0]] or stacks  # the model itself only when it is a bare Sequential
    stack_name, stack = max(inner, key=lambda item: len(item[1]))  # the first longest, in registration order
    prefix = f"{stack_name}." if stack_name else ""
    depth, ids, seen_stack = len(stack), {}, False
    for name, _ in model.named_parameters(remove_duplicate=False):
        if name.startswith(prefix) and name[len(prefix):].split(".", 1)[0].isdigit():
            ids[name], seen_stack = int(name[len(prefix):].split(".", 1)[0]) + 1, True
        else:
            ids[name] = depth + 1 if seen_stack else 0
    return ids


def layer_decay_weight_decay(weight_decay: float, lr_scale: float, decay: str, *, follows_lr: bool) -> float:
    """The λ a layer whose lr is scaled by ``lr_scale`` needs so that its shrink follows the scale or not.

    With the layer's ``lr_t`` and ``peak_lr`` both scaled, a mode's own shrink scales by
    ``native = s(scale·lr_t, scale·peak_lr) / s(lr_t, peak_lr)``: ``lr_scale`` under ``torch``, ``corrected`` and
    ``stable``, 1 under ``paper`` and ``constant`` (and ``lr_scale`` for ``l2`` under SGD, where the penalty's
    pull ``λ·p`` goes through the lr). The answer is ``λ·target/native`` with ``target = lr_scale`` when the
    decay follows the lr, 1 when it does not.

    >>> layer_decay_weight_decay(0.1, 0.5, "torch", follows_lr=False), layer_decay_weight_decay(0.1, 0.5, "paper", follows_lr=True)
    (0.2, 0.05)
    """
    mode = get_mode(decay)
    if not mode.decoupled:
        native = lr_scale
    else:
        statistic = 1.0 if mode.statistic is not None else None
        native = shrink(decay, 1.0, lr_scale, lr_scale, statistic) / shrink(decay, 1.0, 1.0, 1.0, statistic)
    target = lr_scale if follows_lr else 1.0
    return weight_decay * (target / native)  # exactly λ where the two agree


def _split_groups(model: nn.Module, order: dict[int, torch.nn.Parameter], exempt_ids: set[int],
                  weight_decay: float, wd_mult: Mapping[str, float], layer_decay: float | None,
                  layer_of: Callable[[str], int] | None, decay_follows_lr: bool | None,
                  group_options: dict[str, Any]) -> list[dict[str, Any]]:
    """One group per (layer, multiplier), decayed groups before exempt ones within a layer, layers in order."""
    for pattern, mult in wd_mult.items():
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or not mult >= 0:
            raise UserError(f"Invalid wd_mult[{pattern!r}]: {mult!r} (must be a number >= 0)")
    names: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), name)
    layer: dict[int, int] = {i: 0 for i in order}
    scales: dict[int, float] = {}
    if layer_decay is not None:
        if isinstance(layer_decay, bool) or not isinstance(layer_decay, (int, float)) or not 0 < layer_decay <= 1:
            raise UserError(f"Invalid layer_decay: {layer_decay!r} (must be in (0, 1]; BEiT and timm use 0.65–0.75)")
        if decay_follows_lr is None:
            raise UserError(
                "layer_decay needs decay_follows_lr=True or False: True keeps each layer's shrink s_t proportional "
                "to its lr (timm's and BEiT's behaviour with PyTorch's AdamW), False gives every layer the shrink "
                "it has at lr_scale 1 (docs/trainers.md, 'Per-layer learning rates')")
        if "lr" not in group_options or "decay" not in group_options:
            raise UserError("layer_decay needs lr= and decay= here (they go into every group): each group's lr is "
                            "lr·lr_scale, and decay= says how its shrink moves with that lr")
        of = layer_of or layer_ids(model).__getitem__
        layer = {i: int(of(names[i])) for i in order}
        top = max(layer.values())
        scales = {lid: float(layer_decay) ** (top - lid) for lid in set(layer.values())}

    def mult_of(i: int) -> float:
        return next((float(m) for pattern, m in wd_mult.items() if _matches(names[i], pattern)), 1.0)

    groups: dict[tuple[int, float], dict[str, Any]] = {}
    for i, param in order.items():
        key = (layer[i], 0.0 if i in exempt_ids else mult_of(i))
        if key not in groups:
            lid, mult = key
            group = {"params": [], **group_options, "wd_mult": mult}
            wd = weight_decay * mult
            if layer_decay is not None:
                scale = scales[lid]
                group["lr_scale"] = scale
                group["lr"] = group_options["lr"] * scale
                if group_options.get("peak_lr") is not None:
                    group["peak_lr"] = group_options["peak_lr"] * scale
                wd = layer_decay_weight_decay(wd, scale, group_options["decay"], follows_lr=bool(decay_follows_lr))
            group["weight_decay"] = wd
            groups[key] = group
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], k[1] == 0.0))]
