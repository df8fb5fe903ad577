"""Which weights are scale-invariant: those whose layer's output goes straight into a normalization.

Detected from the forward graph of one real forward pass (forward hooks, no tracing), because the module order
lies: in a pre-LayerNorm transformer block ``proj`` is registered just before ``ln2`` but ``ln2`` normalizes the
residual stream, not ``proj``'s output. A weight counts when

* a ``Linear`` / ``Conv1d/2d/3d`` (and their transposes) produces the very tensor a normalization module takes as
  input, and
* the normalization is ``BatchNorm*`` (its mean subtraction cancels the layer's bias, so a bias is fine), or
  ``LayerNorm`` / ``GroupNorm`` / ``RMSNorm`` / ``InstanceNorm*`` with the layer having no bias (a bias the norm
  does not remove breaks the invariance).

Not detected (declare these with ``Monitor(..., scale_invariant=[names])``): a reshape, an activation or any
function between the layer and the norm; norms written as functions (``F.layer_norm``) or as custom modules;
weight-standardized or weight-normalized layers.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["LINEAR_LAYERS", "NORMALIZATIONS", "ScaleInvarianceProbe"]

LINEAR_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                                               nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORMS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
NORMALIZATIONS: tuple[type[nn.Module], ...] = (
    *_BATCH_NORMS, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))


class ScaleInvarianceProbe:
    """Watches the model's forward passes and collects the weights followed by a normalization.

    :meth:`finish` (the monitor calls it at the first optimizer step, when that step's forward passes have run,
    whatever method ran them: ``forward``, Lightning's ``training_step``, ...) removes the hooks and calls
    ``on_found(names)`` once. Batch norm in eval mode does not normalize by the batch and is not counted.

    >>> model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.LayerNorm(4), nn.Linear(4, 2))
    >>> found = []
    >>> probe = ScaleInvarianceProbe(model, found.extend)
    >>> _ = model(torch.zeros(2, 3))
    >>> probe.finish()
    >>> found
    ['0.weight']
    """

    def __init__(self, model: nn.Module, on_found: Callable[[list[str]], None]) -> None:
        self._on_found = on_found
        self._outputs: dict[int, tuple[weakref.ref, str, nn.Module]] = {}
        self._found: list[str] = []
        self._handles: list[Any] = []
        for name, module in model.named_modules():
            if isinstance(module, LINEAR_LAYERS) and isinstance(getattr(module, "weight", None), nn.Parameter):
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            elif isinstance(module, NORMALIZATIONS):
                self._handles.append(module.register_forward_pre_hook(self._norm_hook))

    def _layer_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            if torch.is_tensor(output):
                # A weak reference: an id reused by a later tensor no longer matches, and nothing is kept alive.
                self._outputs[id(output)] = (weakref.ref(output), name, module)
        return hook

    def _norm_hook(self, norm: nn.Module, inputs: tuple[Any, ...]) -> None:
        if not inputs or not torch.is_tensor(inputs[0]) or id(inputs[0]) not in self._outputs:
            return
        ref, name, layer = self._outputs[id(inputs[0])]
        if ref() is not inputs[0] or (isinstance(norm, _BATCH_NORMS) and not norm.training):
            return
        if isinstance(norm, _BATCH_NORMS) or getattr(layer, "bias", None) is None:
            weight = f"{name}.weight" if name else "weight"
            if weight not in self._found:
                self._found.append(weight)

    def finish(self) -> None:
        """Stop watching and report what was found (once; later calls do nothing)."""
        if not self._handles:
            return
        found = list(self._found)
        self.remove()
        self._on_found(found)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._outputs.clear()
