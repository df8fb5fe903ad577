"""The built-in tasks' per-epoch layer diagnostics, and the angle between two weights that every monitor uses."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

__all__ = ["angle_between", "rotation_angle", "LayerDiagnostics"]


def _norm64(t: torch.Tensor) -> torch.Tensor:
    # accumulated in float64, as the Monitor does, so the two report the same norms to float64 rounding
    return torch.linalg.vector_norm(t, dtype=torch.float64)


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def rotation_angle(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """The angle (radians, float64) between two tensors seen as one vector each.

    Uses ``2·atan2(‖â − b̂‖, ‖â + b̂‖)`` (``â`` the unit vectors), accurate for the tiny angles of one step where
    ``acos`` of a cosine near 1 loses most digits in float32.

    >>> round(float(rotation_angle(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))), 6)
    0.785398
    """
    a, b = _unit(before.reshape(1, -1).double()), _unit(after.reshape(1, -1).double())
    return 2 * torch.atan2((a - b).norm(), (a + b).norm())


def angle_between(before: torch.Tensor, after: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The angle (radians) between two tensors seen as vectors, over the whole tensor and per leading row.

    Returns ``(whole, per_row)``; see :func:`rotation_angle` for the formula.
    """
    a, b = before.reshape(before.shape[0], -1).double(), after.reshape(after.shape[0], -1).double()
    rows = 2 * torch.atan2((_unit(a) - _unit(b)).norm(dim=-1), (_unit(a) + _unit(b)).norm(dim=-1))
    return rotation_angle(before, after), rows


class LayerDiagnostics:
    """Per-layer diagnostics collected every step and summarized per epoch (what ``TrainConfig.diagnostics``
    switches on in the built-in tasks; :class:`weightdecay.Monitor` is the general, per-step tool).

    For every weight with ``ndim >= 2`` (one per layer): its norm ``‖p‖`` at the end of the epoch, the mean over
    the epoch's steps of the loss-gradient norm ``‖g‖`` (before any coupled ``λ·p``) and of ``‖g‖/‖p‖`` (the ratio
    AdamC holds at ``sqrt(2λ/peak_lr)`` for normalized layers; docs/math.md, 'Claim 4'). For the scale-invariant
    weights (those followed by a normalization), the mean angular update per step: of the whole tensor
    (``rotation``) and averaged over output rows, each a scale-invariant neuron (``rotation_per_row``;
    Kosson et al.'s measure, expected ``sqrt(2·lr·λ·(1-β1)/(1+β1))`` under AdamW).
    Everything is accumulated in tensors; nothing synchronizes per parameter.

    Args:
        scale_invariant: parameter names followed by a normalization; default the model's own
            ``scale_invariant`` attribute, if any.

    It attaches like a monitor: ``diagnostics.attach(optimizer, model)``, ``end_epoch(epoch)`` after each epoch,
    ``remove()`` at the end; :func:`weightdecay.tasks.fit` does all three.
    """

    def __init__(self, scale_invariant: Iterable[str] | None = None) -> None:
        self._declared = None if scale_invariant is None else list(scale_invariant)
        self._handles: list[Any] = []
        self.summary: dict[str, Any] = {}

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module, **_context: Any) -> "LayerDiagnostics":
        named = dict(model.named_parameters())
        declared = self._declared if self._declared is not None else list(getattr(model, "scale_invariant", ()))
        unknown = sorted(set(declared) - set(named))
        if unknown:
            raise ValueError(f"scale_invariant names not in the model: {unknown}")
        self.names = [n for n, p in named.items() if p.requires_grad and p.ndim >= 2]
        self.params = [named[n] for n in self.names]
        self.invariant_names = [n for n in self.names if n in set(declared)]
        self.invariant_params = [named[n] for n in self.invariant_names]
        self.summary = {
            "layers": list(self.names), "scale_invariant": list(self.invariant_names), "epoch": [],
            "weight_norm": {n: [] for n in self.names}, "grad_norm": {n: [] for n in self.names},
            "grad_to_weight": {n: [] for n in self.names},
            "rotation": {n: [] for n in self.invariant_names},
            "rotation_per_row": {n: [] for n in self.invariant_names},
        }
        self._reset()
        self._handles = [optimizer.register_step_pre_hook(lambda *_: self.before_step()),
                         optimizer.register_step_post_hook(lambda *_: self.after_step())]
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _reset(self) -> None:
        self.steps = 0
        self.grad_sum = torch.zeros(len(self.params), dtype=torch.float64)
        self.ratio_sum = torch.zeros(len(self.params), dtype=torch.float64)
        self.rot_sum = torch.zeros(len(self.invariant_params), dtype=torch.float64)
        self.rot_row_sum = torch.zeros(len(self.invariant_params), dtype=torch.float64)
        self._before: list[torch.Tensor] = []

    @torch.no_grad()
    def before_step(self) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        g = torch.stack([_norm64(t) for t in grads]) if grads else self.grad_sum
        w = torch.stack([_norm64(p) for p in self.params]) if self.params else self.grad_sum
        self.grad_sum += g
        self.ratio_sum += g / w.clamp_min(1e-30)
        self._before = [p.detach().clone() for p in self.invariant_params]

    @torch.no_grad()
    def after_step(self) -> None:
        self.steps += 1
        for i, (before, p) in enumerate(zip(self._before, self.invariant_params)):
            whole, rows = angle_between(before, p.detach())
            self.rot_sum[i] += whole
            self.rot_row_sum[i] += rows.mean()

    @torch.no_grad()
    def end_epoch(self, epoch: int) -> None:
        steps = max(self.steps, 1)
        self.summary["epoch"].append(epoch)
        for i, (name, p) in enumerate(zip(self.names, self.params)):
            self.summary["weight_norm"][name].append(float(p.norm()))
            self.summary["grad_norm"][name].append(float(self.grad_sum[i]) / steps)
            self.summary["grad_to_weight"][name].append(float(self.ratio_sum[i]) / steps)
        for i, name in enumerate(self.invariant_names):
            self.summary["rotation"][name].append(float(self.rot_sum[i]) / steps)
            self.summary["rotation_per_row"][name].append(float(self.rot_row_sum[i]) / steps)
        self._reset()
