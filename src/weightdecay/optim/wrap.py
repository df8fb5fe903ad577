"""Any torch optimizer with a named decay convention: ``with_decay(torch.optim.NAdam)`` and friends.

The base optimizer takes its step with no decay of its own, or, where it already shrinks by ``lr_t·wd``, with
``wd = c_t`` (the per-step coefficient with ``s_t = lr_t·c_t``, :func:`weightdecay.decay.lr_coefficient`), so
its own kernels run at its own cost (docs/math.md, "Decay conventions", "Any base optimizer"). Where the base
only knows coupled L2, the decoupled shrink is one foreach pass over the weights before its step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from weightdecay.decay import DECAY_MODES
from weightdecay.errors import UserError
from weightdecay.optim import _precision
from weightdecay.optim._base import DecayOptimizer, check_nonnegative, evaluate_closure
from weightdecay.optim.delivery import GroupPlan, plan_step, reads_statistic, skipped_by_scaler
from weightdecay.optim.statistics import predicted_mean_v_hat

__all__ = ["with_decay", "BaseDecay", "NAdam", "RAdam", "Adam", "Muon", "Adafactor", "Adamax", "RMSprop",
           "Adagrad", "SGD"]


@dataclass(frozen=True)
class BaseDecay:
    """How a base optimizer applies its own ``weight_decay``, which decides how a convention reaches it.

    ``shrinks_by_lr``: its kernels apply ``p ← p·(1 - lr·wd)`` (decoupled); otherwise it only knows coupled L2.
    ``switch``: the group key that turns its decay decoupled (True) or coupled (False), if it has one.
    ``coupled``: it has a coupled L2 of its own (``g ← g + wd·p``); without one, ``l2`` adds λ·p to the gradient.
    ``second_moment``: the group's state holds Adam's ``exp_avg_sq``, ``step`` and ``betas`` (``stable`` allowed).
    """

    shrinks_by_lr: bool
    switch: str | None = None
    coupled: bool = True
    second_moment: bool = False


_ADAM_LIKE = BaseDecay(shrinks_by_lr=True, switch="decoupled_weight_decay", second_moment=True)
KNOWN_BASES: dict[type, BaseDecay] = {
    torch.optim.AdamW: _ADAM_LIKE,
    torch.optim.Adam: _ADAM_LIKE,
    torch.optim.NAdam: _ADAM_LIKE,
    torch.optim.RAdam: _ADAM_LIKE,
    torch.optim.Muon: BaseDecay(shrinks_by_lr=True, coupled=False),
    torch.optim.Adafactor: BaseDecay(shrinks_by_lr=True, coupled=False),
    torch.optim.Adamax: BaseDecay(shrinks_by_lr=False),
    torch.optim.RMSprop: BaseDecay(shrinks_by_lr=False),
    torch.optim.Adagrad: BaseDecay(shrinks_by_lr=False),
    torch.optim.SGD: BaseDecay(shrinks_by_lr=False),
}


def _how(base: type, given: BaseDecay | None) -> BaseDecay:
    if given is not None:
        return given
    for cls in base.__mro__:
        if cls in KNOWN_BASES:
            return KNOWN_BASES[cls]
    known = ", ".join(sorted(c.__name__ for c in KNOWN_BASES))
    raise UserError(f"with_decay: how {base.__name__} applies its weight_decay is unknown (known: {known}); pass "
                    "base_decay=BaseDecay(shrinks_by_lr=True) if it shrinks by lr·weight_decay, or "
                    "BaseDecay(shrinks_by_lr=False) if its weight_decay is a coupled L2 penalty")


def with_decay(base: type[torch.optim.Optimizer], *, base_decay: BaseDecay | None = None, name: str | None = None
               ) -> type[torch.optim.Optimizer]:
    """A subclass of ``base`` whose weight-decay convention is named: ``decay="torch"`` by default.

    The subclass takes ``base``'s own arguments plus ``decay=``, ``peak_lr=`` and ``cautious=``, checks and stores
    them per group like :class:`weightdecay.AdamW` (state dict, schedulers, errors), and steps as::

        p ← p·(1 - s_t) - lr_t·u_t        (u_t: the base's own update, taken with no decay of its own)

    with ``s_t`` from :mod:`weightdecay.decay` (docs/math.md, "Decay conventions"). Bases that shrink by
    ``lr·wd`` themselves (Adam, AdamW, NAdam, RAdam, Muon, Adafactor) are handed ``wd = c_t`` with
    ``s_t = lr_t·c_t``, so their kernels run unchanged and ``decay="torch"`` is the base bit for bit. Bases whose
    ``weight_decay`` is coupled L2 (Adamax, RMSprop, Adagrad, SGD) step with no decay, after one foreach pass
    ``p ← p·(1 - s_t)``; for them ``decay="l2"`` is the base's own behaviour. For Muon and Adafactor, which have no
    coupled L2, ``l2`` adds ``λ·p`` to the gradient the base sees. ``stable`` needs Adam's second moment.
    ``cautious=True`` decays only where the step and the weight agree in sign (:mod:`weightdecay.optim.cautious`).

    Args:
        base: a torch.optim class (or a subclass of one), or any optimizer class with ``base_decay`` given.
        base_decay: how ``base`` applies its ``weight_decay``; looked up for torch.optim's classes.
        name: the new class's name (default: the base's).

    Example:
        >>> import torch, weightdecay
        >>> NAdam = weightdecay.with_decay(torch.optim.NAdam)
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = NAdam(model.parameters(), lr=1e-3, weight_decay=0.1, decay="paper")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Loshchilov & Hutter, ICLR 2019; Chen et al. 2025 (cautious weight decay, arXiv 2510.12402).
    """
    if not (isinstance(base, type) and issubclass(base, torch.optim.Optimizer)):
        raise UserError(f"with_decay: {base!r} is not a torch.optim.Optimizer class")
    if issubclass(base, DecayOptimizer):
        raise UserError(f"with_decay: {base.__name__} already has a named decay convention")
    return _wrap(base, _how(base, base_decay), name or base.__name__)


@functools.cache
def _wrap(base: type[torch.optim.Optimizer], how: BaseDecay, name: str) -> type[torch.optim.Optimizer]:
    namespace = {"__module__": __name__, "__qualname__": name, "_base": base, "_how": how,
                 "_adam": how.second_moment, "__doc__": _docstring(base, how)}
    return type(name, (_Decayed, base), namespace)


def _docstring(base: type, how: BaseDecay) -> str:
    if how.shrinks_by_lr:
        sentence = (f"{base.__name__} with a named decay convention, reached through its own kernels "
                    "(weight_decay = c_t with s_t = lr_t·c_t); decay='torch' is torch.optim's class bit for bit.")
    else:
        sentence = (f"{base.__name__} with a named decay convention: its weight_decay is coupled L2, so a decoupled "
                    "mode steps it with no decay after one foreach pass p ← p·(1 - s_t); decay='l2' is torch.optim's "
                    "class.")
    return f"{sentence}\n\nSee :func:`weightdecay.with_decay`; the base's own arguments follow.\n"


class _Decayed(DecayOptimizer):
    """The machinery of :func:`with_decay`; the generated class puts the base after it in the MRO."""

    _base: type[torch.optim.Optimizer]
    _how: BaseDecay
    _group_defaults = {"cautious": False, "rounding": _precision.DEFAULT_ROUNDING}

    def __init__(self, params: Any, *args: Any, decay: str = "torch", peak_lr: float | None = None,
                 cautious: bool = False, rounding: str = _precision.DEFAULT_ROUNDING, **kwargs: Any) -> None:
        # Read by add_param_group, which the base's __init__ calls before it returns.
        self._decay_defaults = {"decay": decay, "peak_lr": peak_lr, "cautious": cautious, "rounding": rounding}
        switch = self._how.switch
        if switch is not None and switch in kwargs and isinstance(decay, str) and decay in DECAY_MODES \
                and bool(kwargs[switch]) != DECAY_MODES[decay].decoupled:
            raise UserError(f"Invalid {switch}={kwargs[switch]} with decay={decay!r}: decay names the convention "
                            f"(decay='l2' is {self._base.__name__}'s coupled weight_decay, every other mode is "
                            f"decoupled); drop {switch}")
        for name in ("lr", "weight_decay"):
            if name in kwargs:
                check_nonnegative(name, kwargs[name], "learning rate" if name == "lr" else "weight_decay value")
        try:
            self._base.__init__(self, params, *args, **kwargs)
        except UserError:
            raise
        except ValueError as exc:  # torch.optim's own argument checks, in its words, as a UserError
            hint = "; weightdecay.muon_with_adamw splits a model into matrices and the rest" \
                if "2D parameters" in str(exc) else ""
            raise UserError(f"{self._base.__name__}: {exc}{hint}") from None
        self.defaults.update(self._decay_defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        for key, value in self._decay_defaults.items():
            self.defaults.setdefault(key, value)
        super().add_param_group(param_group)

    # --- the step ----------------------------------------------------------------------------------------

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimization step of the base with the group's convention (``closure`` re-evaluates the loss)."""
        loss = evaluate_closure(closure)
        with torch.no_grad():
            statistic = self._mean_v_hat() if reads_statistic(self.param_groups) else None
            plans = plan_step(self, statistic)  # refuses s_t >= 1 before any tensor moves
            saved = [self._prepare(group, plan) for group, plan in zip(self.param_groups, plans)]
        try:
            # The base's step itself, not its hooked copy: this class's step already ran the step hooks.
            base_step = self._base.step
            if getattr(base_step, "hooked", False):
                base_step = base_step.__wrapped__
            base_step(self)
        finally:
            with torch.no_grad():
                for group, plan, keys in zip(self.param_groups, plans, saved):
                    self._finish(group, plan, keys)
        return loss

    def _prepare(self, group: dict[str, Any], plan: GroupPlan) -> dict[str, Any]:
        """Set the group's keys for the base's step and apply what its plan needs before it; return what to restore."""
        how = self._how
        saved: dict[str, Any] = {"weight_decay": group["weight_decay"]}
        if how.switch is not None:
            saved[how.switch] = group.get(how.switch)
        params = [p for p in group["params"] if p.grad is not None]
        saved["params"] = params
        if not plan.mode.decoupled:  # l2: the base's coupled decay, or λ·p added to the gradient it sees
            if how.coupled:
                if how.switch is not None:
                    group[how.switch] = False
            else:
                group["weight_decay"] = 0.0
                sign = -1.0 if group.get("maximize") else 1.0  # the base negates the whole gradient
                saved["grads"] = [(p, p.grad) for p in params]
                for p in params:
                    p.grad = p.grad.add(p, alpha=sign * plan.coupled)
            return saved
        if how.switch is not None:
            group[how.switch] = True
        rounding = _precision.kept_by(group)
        if rounding is not None and plan.shrink != 0 and any(_precision.is_low_precision(p) for p in params):
            # Low precision: the base steps with no decay of its own; the bfloat16/float16 tensors' change and the
            # plan's s_t are written back together, compensated, after it; the rest takes the plan's own pass.
            saved["kept"] = _precision.ChangeKeeper([p for p in params if _precision.is_low_precision(p)],
                                                    plan.shrink, rounding, cautious=plan.masked)
            params = saved["params"] = [p for p in params if not _precision.is_low_precision(p)]
            group["weight_decay"] = plan.start(self, params, plan.route(kernel_shrinks=False, one_pass=False))
            return saved
        # A base that shrinks by lr·wd takes c_t in its own kernels; a coupled-only one steps with no decay.
        route = plan.route(kernel_shrinks=how.shrinks_by_lr, one_pass=False)
        group["weight_decay"] = plan.start(self, params, route)
        return saved

    def _finish(self, group: dict[str, Any], plan: GroupPlan, saved: dict[str, Any]) -> None:
        for p, grad in saved.pop("grads", ()):
            p.grad = grad
        keeper = saved.pop("kept", None)
        params = saved.pop("params")
        group.update(saved)
        if keeper is not None:
            keeper.finish(_precision.compensation_buffers(self.state, keeper.params, keeper.rounding),
                          skipped=skipped_by_scaler(self))
        plan.finish(self, params)

    def _mean_v_hat(self) -> Tensor | float:
        """mean(v̂_t) over every element updated this step, all groups, after this step's moment update, predicted
        before the base's step from its state (:func:`~weightdecay.optim.statistics.predicted_mean_v_hat`)."""
        groups = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [self.state.get(p, {}) for p in params]
            groups.append((group, {"params": params, "grads": [p.grad for p in params],
                                   "exp_avg_sqs": [s.get("exp_avg_sq") for s in states],
                                   "steps": [s.get("step") for s in states]}))
        return predicted_mean_v_hat(groups, grad_scale=getattr(self, "grad_scale", None))


def _named(base: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    return with_decay(base)


Adam = _named(torch.optim.Adam)
NAdam = _named(torch.optim.NAdam)
RAdam = _named(torch.optim.RAdam)
Muon = _named(torch.optim.Muon)
Adafactor = _named(torch.optim.Adafactor)
Adamax = _named(torch.optim.Adamax)
RMSprop = _named(torch.optim.RMSprop)
Adagrad = _named(torch.optim.Adagrad)
SGD = _named(torch.optim.SGD)
