"""What AdamW and SGDW share: argument checks, the ``decay``/``peak_lr`` group keys and their state dict."""

from __future__ import annotations

import math
from typing import Any

import torch

from weightdecay.decay import get_mode, shrink
from weightdecay.errors import UserError


def _number(value: Any) -> float:
    return float(value.item()) if torch.is_tensor(value) else float(value)


def check_nonnegative(name: str, value: Any, label: str | None = None) -> None:
    """``Invalid learning rate: -1.0 (must be >= 0)``, in torch.optim's words."""
    v = _number(value)
    if not (v >= 0.0) or math.isinf(v):
        raise UserError(f"Invalid {label or name}: {v} (must be a finite number >= 0)")


class DecayOptimizer(torch.optim.Optimizer):
    """Base class: validates each group and fills ``decay`` and ``peak_lr`` (see ``SPEC.md`` section 1).

    ``peak_lr`` defaults to the group's ``lr`` when the group is added, before any scheduler scales it, so
    warm-up schedulers leave it alone. It lives in the group, so it is saved in the state dict and restored.
    """

    _adam = True  # whether the Adam-only mode "stable" is allowed
    _group_defaults: dict[str, Any] = {}  # keys back-filled into state dicts of older versions / torch.optim

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        explicit_peak = param_group.get("peak_lr", self.defaults.get("peak_lr"))
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group, explicit_peak)
        except Exception:
            self.param_groups.pop()
            raise

    def _check_group(self, group: dict[str, Any], explicit_peak: Any) -> None:
        check_nonnegative("lr", group["lr"], "learning rate")
        check_nonnegative("weight_decay", group["weight_decay"], "weight_decay value")
        mode = get_mode(group["decay"], adam=self._adam, optimizer=type(self).__name__)
        cautious = group.setdefault("cautious", False)
        if not isinstance(cautious, bool):
            raise UserError(f"Invalid cautious: {cautious!r} (must be True or False)")
        if cautious and not mode.decoupled:
            raise UserError("Invalid cautious=True with decay='l2': cautious weight decay masks a decoupled shrink; "
                            "choose a decoupled decay mode or cautious=False")
        if explicit_peak is not None:
            peak = _number(explicit_peak)
            if not (peak > 0.0) or math.isinf(peak):
                raise UserError(f"Invalid peak_lr: {peak} (must be a finite number > 0)")
            group["peak_lr"] = peak
        else:
            group["peak_lr"] = _number(group["lr"])
            if mode.uses_peak_lr and group["peak_lr"] <= 0:
                raise UserError(
                    f"Invalid peak_lr: {group['peak_lr']} (decay={mode.name!r} divides by peak_lr, which defaults "
                    "to the group's lr; pass peak_lr > 0 explicitly when building with lr=0)"
                )
        if group.get("fused") and group.get("foreach"):
            raise UserError("Invalid arguments: fused=True and foreach=True cannot both be set; choose one")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self._group_defaults.items():
                group.setdefault(key, value)
            group.setdefault("decay", "torch")
            group.setdefault("cautious", False)
            group.setdefault("peak_lr", _number(group.get("initial_lr", group["lr"])))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, from this class or from the matching torch.optim class.

        Group keys the saved dict lacks (``decay``, ``peak_lr``, ``bias_correction`` from a torch.optim state dict)
        keep this optimizer's current values, so a torch.optim.AdamW state dict continues under mode torch.
        """
        groups = state_dict["param_groups"]
        if len(groups) == len(self.param_groups):
            filled = []
            for saved, current in zip(groups, self.param_groups):
                merged = {k: v for k, v in current.items() if k != "params"}
                merged.update(saved)
                filled.append(merged)
            state_dict = {**state_dict, "param_groups": filled}
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            get_mode(group["decay"], adam=self._adam, optimizer=type(self).__name__)

    def _group_shrink(self, group: dict[str, Any], mean_v_hat: float | None = None) -> float:
        """``s_t`` of the group this step: the one place a subclass asks for it (checks on s_t belong here)."""
        return shrink(group["decay"], group["weight_decay"], _number(group["lr"]), group["peak_lr"], mean_v_hat)

