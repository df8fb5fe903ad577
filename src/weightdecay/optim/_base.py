"""What every optimizer with a named decay shares: argument checks, the ``decay``/``peak_lr`` group keys and their
state dict. How the decay reaches the weights each step is :mod:`weightdecay.optim.delivery`."""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from typing import Any, Callable

import torch

from weightdecay.decay import get_mode, mode_options
from weightdecay.errors import UserError, UserTypeError
from weightdecay.optim._precision import DEFAULT_ROUNDING, check_rounding


def _number(value: Any) -> float:
    return float(value.item()) if torch.is_tensor(value) else float(value)


def check_number(name: str, value: Any, *, tensor_ok: bool = False) -> None:
    """A real number (not a bool, not a string), or, where torch.optim takes one (``lr``, ``betas``), a 1-element
    Tensor; anything else is refused at construction, naming the argument, instead of failing inside a step."""
    if torch.is_tensor(value):
        if not tensor_ok:
            raise UserTypeError(f"Invalid {name}: a Tensor; {name} must be a float (torch.optim takes Tensors only "
                                "for lr and betas)")
        if value.numel() != 1:
            raise UserError(f"Tensor {name} must be 1-element (got shape {tuple(value.shape)})")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kinds = "a float or a 1-element Tensor" if tensor_ok else "a float"
        raise UserTypeError(f"Invalid {name}: {value!r} is a {type(value).__name__}; {name} must be {kinds}")


def check_flag(name: str, value: Any, *, none_ok: bool = False) -> None:
    """``amsgrad``, ``foreach``… must be True or False (or None where torch.optim picks a default)."""
    if not (isinstance(value, bool) or (none_ok and value is None)):
        allowed = "True, False or None" if none_ok else "True or False"
        raise UserTypeError(f"Invalid {name}: {value!r} is a {type(value).__name__}; {name} must be {allowed}")


def refuse_unsupported_modes(group: dict[str, Any]) -> None:
    """torch.optim's ``capturable`` and ``differentiable``: False (their default) is accepted, True is refused."""
    check_flag("capturable", group.get("capturable", False))
    check_flag("differentiable", group.get("differentiable", False))
    if group.get("capturable"):
        raise UserError(
            "capturable=True is not supported: a capturable step (for CUDA-graph capture) must not sync with the "
            "host, and this step reads lr_t and s_t on the host to pick the decay coefficient and to refuse "
            "s_t >= 1. Use capturable=False; to compile the step, use torch.compile with lr as a Tensor (README)"
        )
    if group.get("differentiable"):
        raise UserError(
            "differentiable=True is not supported: the step shrinks the weights in place and runs torch's "
            "fused/foreach kernels, which autograd cannot differentiate through. Use differentiable=False"
        )


def check_nonnegative(name: str, value: Any, label: str | None = None, *, tensor_ok: bool = False) -> None:
    """``Invalid learning rate: -1.0 (must be >= 0)``, in torch.optim's words."""
    check_number(name, value, tensor_ok=tensor_ok)
    v = _number(value)
    if not (v >= 0.0) or math.isinf(v):
        raise UserError(f"Invalid {label or name}: {v} (must be a finite number >= 0)")


def _user_stacklevel() -> int:
    """``warnings.warn``'s stacklevel for the first frame outside weightdecay.optim and torch: the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("weightdecay.optim", "torch")):
        frame, level = frame.f_back, level + 1
    return level


def resolve_peak_lr(group: dict[str, Any]) -> float:
    """The ``peak_lr`` a step of this group divides by, written back into the group (so the state dict holds it).

    An explicit ``peak_lr=`` always wins. Otherwise a peak that a scheduler declares in the group wins:
    ``OneCycleLR`` writes ``max_lr`` into every group (torch 2.13's ``CyclicLR`` keeps its ``max_lrs`` to itself,
    so pass ``peak_lr=`` with it). Otherwise it is the lr the group was built with.

    Any optimizer whose groups carry ``peak_lr`` and ``peak_lr_explicit`` can call it once per group per step.

    >>> group = {"lr": 1e-3, "peak_lr": 1e-3, "peak_lr_explicit": False, "max_lr": 1e-2}
    >>> resolve_peak_lr(group), group["peak_lr"]
    (0.01, 0.01)
    """
    if not group.get("peak_lr_explicit", True) and group.get("max_lr") is not None:
        group["peak_lr"] = _number(group["max_lr"])
    return group["peak_lr"]


def evaluate_closure(closure: Callable[[], float] | None) -> float | None:
    """The loss ``closure()`` returns, computed with gradients on (a step runs under ``torch.no_grad``), or None
    without a closure: torch.optim's convention for ``step(closure)``."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class DecayOptimizer(torch.optim.Optimizer):
    """Base class: validates each group and fills ``decay`` and ``peak_lr`` (see ``docs/math.md``, "Decay conventions").

    ``peak_lr`` defaults to the group's ``lr`` when the group is added, before any scheduler scales it, so
    warm-up schedulers leave it alone; a scheduler that declares its peak in the group (OneCycleLR's ``max_lr``)
    overrides that default, an explicit ``peak_lr=`` overrides both (:func:`resolve_peak_lr`). It lives in the
    group, with ``peak_lr_explicit``, so it is saved in the state dict and restored.
    """

    _adam = True  # whether the Adam-only mode "stable" is allowed
    _group_defaults: dict[str, Any] = {}  # keys back-filled into state dicts of older versions / torch.optim

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        # As torch.optim: the hyperparameters are refused before the parameters are even looked at.
        self._check_group(dict(defaults), defaults.get("peak_lr"))
        super().__init__(params, defaults)

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
        check_nonnegative("lr", group["lr"], "learning rate", tensor_ok=True)
        check_nonnegative("weight_decay", group["weight_decay"], "weight_decay value")
        # Not every wrapped base has these keys (Muon has no foreach/fused): check those it has.
        check_flag("maximize", group.get("maximize", False))
        check_flag("foreach", group.get("foreach"), none_ok=True)
        check_flag("fused", group.get("fused"), none_ok=True)
        refuse_unsupported_modes(group)
        mode = get_mode(group["decay"], adam=self._adam, optimizer=type(self).__name__)
        group.update(mode_options(mode, group))  # the keys the mode's shrink reads (its lr exponent), checked
        cautious = group.setdefault("cautious", False)
        if not isinstance(cautious, bool):
            raise UserError(f"Invalid cautious: {cautious!r} (must be True or False)")
        check_rounding(group.setdefault("rounding", DEFAULT_ROUNDING))
        if cautious and not mode.decoupled:
            raise UserError("Invalid cautious=True with decay='l2': cautious weight decay masks a decoupled shrink; "
                            "choose a decoupled decay mode or cautious=False")
        if explicit_peak is not None:
            check_number("peak_lr", explicit_peak)
            peak = _number(explicit_peak)
            if not (peak > 0.0) or math.isinf(peak):
                raise UserError(f"Invalid peak_lr: {peak} (must be a finite number > 0)")
            group["peak_lr"], group["peak_lr_explicit"] = peak, True
        else:
            group["peak_lr"], group["peak_lr_explicit"] = _number(group["lr"]), False
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
            group.setdefault("rounding", DEFAULT_ROUNDING)
            group.setdefault("peak_lr", _number(group.get("initial_lr", group["lr"])))
            group.setdefault("peak_lr_explicit", False)

    def _saved_decay(self, saved_group: dict[str, Any]) -> str:
        """The mode whose meaning λ has in a saved group without a ``decay`` key (a torch.optim state dict)."""
        return "torch"

    def _warn_if_weight_decay_changes_meaning(self, groups: list[dict[str, Any]]) -> None:
        """A torch.optim dict's λ continued under a mode where it means something else: say which decay= keeps it."""
        changed = [(i, self._saved_decay(saved), current["decay"]) for i, (saved, current)
                   in enumerate(zip(groups, self.param_groups))
                   if "decay" not in saved and _number(saved.get("weight_decay", 0.0)) != 0
                   and self._saved_decay(saved) != current["decay"]]
        if changed:
            where = ", ".join(f"param_groups[{i}] (saved as {was!r}, continues as {now!r})" for i, was, now in changed)
            keep = sorted({was for _, was, _ in changed})
            warnings.warn(
                f"This state dict has no 'decay' key, so it comes from torch.optim, where weight_decay means "
                f"decay={' / '.join(map(repr, keep))}; {type(self).__name__} continues it under another convention "
                f"in {where}, which changes what the same λ does. To keep its meaning, build "
                f"{type(self).__name__}(..., decay={keep[0]!r}) before loading (docs/math.md, 'Decay conventions').",
                UserWarning, stacklevel=_user_stacklevel(),
            )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, from this class or from the matching torch.optim class.

        Group keys the saved dict lacks (``decay``, ``peak_lr``, ``bias_correction`` from a torch.optim state dict)
        keep this optimizer's current values, so a torch.optim.AdamW state dict continues under mode torch. Where
        the saved λ meant something else (torch.optim.SGD's or torch.optim.Adam's coupled L2 loaded into a
        decoupled mode, torch.optim.AdamW's λ loaded into ``paper``), it warns and names the ``decay=`` that keeps
        its meaning. The other way, torch.optim.AdamW ignores a ``decay`` key it finds: a ``paper`` state dict
        loaded into it continues in torch's convention, with the same λ.
        """
        groups = state_dict["param_groups"]
        if len(groups) == len(self.param_groups):
            self._warn_if_weight_decay_changes_meaning(groups)
            _warn_if_peak_lr_changes(groups, self.param_groups)
            filled = []
            for saved, current in zip(groups, self.param_groups):
                merged = {k: v for k, v in current.items() if k != "params"}
                merged.update(saved)
                filled.append(merged)
            state_dict = {**state_dict, "param_groups": filled}
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            get_mode(group["decay"], adam=self._adam, optimizer=type(self).__name__)


def _warn_if_peak_lr_changes(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> None:
    """Resuming with a new lr: the loaded ``peak_lr`` (and lr) win, as torch.optim's load does; say, once, what
    each group's mode then does and how to make the new lr the reference (docs/trainers.md, "Resuming")."""
    def built_peak(group: dict[str, Any]) -> float:  # resolve_peak_lr's answer, without writing it
        declared = not group.get("peak_lr_explicit", True) and group.get("max_lr") is not None
        return _number(group["max_lr"]) if declared else group["peak_lr"]

    # A peak the saved run set explicitly is compared only with one set explicitly now: rebuilding with the same
    # lr and no peak_lr= is how its own state comes back.
    moved = [(i, _number(old["peak_lr"]), built_peak(now), old.get("decay", now["decay"]))
             for i, (old, now) in enumerate(zip(saved, current)) if old.get("peak_lr") is not None
             and (not old.get("peak_lr_explicit", False) or now.get("peak_lr_explicit", False))]
    moved = [m for m in moved if not math.isclose(m[1], m[2], rel_tol=1e-9)]
    if not moved:
        return
    where = ", ".join(f"param_groups[{i}] (decay={mode!r}: saved {old:g}, now {new:g}, {new / old:.3g}x)"
                      for i, old, new, mode in moved)
    warnings.warn(
        f"The loaded state dict's peak_lr differs from the lr this optimizer was built with in {where}; the loaded "
        "peak_lr (and lr) are kept. What the new lr then does: under 'torch' (and 'stable') the shrink is "
        "lr_t·λ whatever peak_lr, so it scales with the new lr; under 'constant' it stays λ; under 'paper' and "
        "'corrected' it is measured against the loaded peak_lr, so training at the new lr decays by the ratio "
        "above times what λ means at the peak. To make the new lr the reference, call "
        "weightdecay.optim.rebase_peak_lr(optimizer, new_peak_lr) after loading (docs/trainers.md, 'Resuming').",
        UserWarning, stacklevel=_user_stacklevel(),
    )
