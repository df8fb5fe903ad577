"""The one delivery plan: how each group's weight decay reaches its weights this step, for every optimizer.

optax makes the convention one named step of every chain (``add_decayed_weights``); here every optimizer of the
package (AdamW, SGDW, the classes :func:`weightdecay.with_decay` builds, Amos, and a new one) asks this module,
per group and step (docs/math.md, "Decay conventions", "Any base optimizer"):

1. **The shrink.** ``s_t`` from the decay table (:func:`weightdecay.decay.shrink`), refused at ``s_t ≥ 1`` for
   every group before any tensor or state is touched (:func:`plan_step`).
2. **The route** by which it reaches the weights (:meth:`GroupPlan.route`):

   - ``ONE_PASS``: the optimizer's own one-pass C++ kernel takes ``s_t`` inside the step (:mod:`._kernels`: the
     cautious mask, a statistic-reading mode, SGDW with momentum); it may decline, and the route is asked again;
   - ``KERNEL``: the base's kernel, which shrinks by ``lr_t·wd``, is handed ``wd = c_t`` with ``s_t = lr_t·c_t``
     (:func:`weightdecay.decay.lr_coefficient`), so ``decay="torch"`` runs torch's arithmetic bit for bit;
   - ``SHRINK_PASS``: a pass of its own before the step, ``p ← p·(1 - s_t)`` (:func:`shrink_`), where the base
     knows only coupled L2 or no ``c_t`` exists (``lr_t = 0``);
   - ``CAUTIOUS``: the base steps with no decay, then the masked shrink at the weights it started from;
   - ``NONE``: nothing to shrink (λ = 0, or coupled ``l2``, whose λ the kernel adds to the gradient).
3. **The AMP skipped step.** When a GradScaler found inf/NaN gradients (``found_inf = 1``) the shrink pass
   multiplies by exactly 1 and the cautious pass is skipped, as the kernels leave everything unchanged.
4. **The traced path.** Under torch.compile, :func:`plan_step` runs outside the graph (one graph break, since it
   reads ``lr_t`` on the host to refuse ``s_t ≥ 1``) and :func:`traced_shrink_` keeps ``s_t`` a tensor.
5. **Low precision.** Weights in bfloat16/float16 round a small ``p·(1 - s_t)`` back to ``p`` (docs/math.md,
   "Low precision"), so a pass of its own cannot deliver ``s_t`` to them. Where a group keeps their change (its
   ``rounding``, :mod:`._precision`), those tensors are split off before the route is asked
   (:func:`._precision.split_kept`), and the plan's ``s_t`` goes into the float32 change they write back,
   compensated or stochastically rounded: AdamW's and SGDW's kept steps (their one-pass bf16/fp16 kernels on the
   CPU, torch's ops elsewhere; under torch.compile :func:`traced_shrink`), and :class:`._precision.ChangeKeeper`
   around a base that writes its own update (the wrapped classes, Lion among them; Amos). The group's other
   tensors take the route. So every unmasked shrink applied as its own pass (``SHRINK_PASS``, the traced path,
   the readable single-tensor loops of AdamW and SGDW) goes through :func:`shrink_` on weights whose format holds
   it, or that round to nearest by request (``rounding="nearest"``: torch.optim's arithmetic, bit for bit). The
   masked shrink is :func:`weightdecay.optim.cautious.cautious_decay_`; the ``KERNEL`` and ``ONE_PASS`` routes
   shrink inside the update, in the kernels' own arithmetic.

Example:
    >>> import torch, weightdecay
    >>> opt = weightdecay.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.1, weight_decay=0.5, decay="paper")
    >>> [plan] = plan_step(opt)
    >>> plan.shrink, plan.route(kernel_shrinks=True, one_pass=False).name
    (0.5, 'KERNEL')
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from weightdecay.decay import DecayMode, check_shrink, coupled_weight_decay, get_mode, lr_coefficient, shrink
from weightdecay.errors import ShrinkTooLargeError
from weightdecay.optim._base import _number, _user_stacklevel, resolve_peak_lr
from weightdecay.optim.cautious import cautious_decay_after_step_

__all__ = ["Route", "GroupPlan", "plan_step", "reads_statistic", "shrink_", "traced_shrink", "traced_shrink_", "refuse_shrink",
           "skipped_by_scaler"]


class Route(enum.Enum):
    """How a group's shrink reaches its weights this step (see the module's docstring)."""

    ONE_PASS = "one-pass kernel"
    KERNEL = "base kernel, wd = c_t"
    SHRINK_PASS = "own pass before the step"
    CAUTIOUS = "masked pass after the step"
    NONE = "nothing to shrink"


def reads_statistic(groups: Sequence[dict[str, Any]]) -> bool:
    """Whether any group's mode reads a training statistic (``stable``'s mean v̂), which the step computes first."""
    return any(get_mode(g["decay"]).statistic is not None for g in groups)


def skipped_by_scaler(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a GradScaler found inf/NaN gradients this step (the kernels then leave everything unchanged)."""
    found_inf = getattr(optimizer, "found_inf", None)
    return found_inf is not None and bool(found_inf.item())


def shrink_(params: Sequence[Tensor], shrink_t: float | Tensor, found_inf: Tensor | None = None) -> None:
    """``p ← p·(1 - s_t)`` as a pass of its own, exactly 1 on a step a GradScaler skips (``found_inf = 1``).

    Every unmasked shrink that is not inside a kernel's own step comes here. Low-precision weights whose group
    keeps their change never do: their ``s_t`` joins the float32 change they write back (the module's point 5).
    """
    if not params:
        return
    if found_inf is not None:  # no host sync: the factor is exactly 1 on a skipped step
        shrink_t = shrink_t * (1 - found_inf)
    torch._foreach_mul_(list(params), 1 - shrink_t)


def traced_shrink_(optimizer: torch.optim.Optimizer, group: dict[str, Any], params: Sequence[Tensor],
                   statistic: Any = None) -> None:
    """The decoupled shrink of a traced (torch.compile) step: ``s_t`` stays a tensor where ``lr`` is one.

    A host read (``lr.item()``) would break the graph, and a float ``lr_t`` would be baked into the graph and
    recompile it at every change; so the shrink is one more in-place multiply, which inductor fuses with the
    update. :func:`plan_step` has already refused ``s_t ≥ 1``, outside the graph.
    """
    s = traced_shrink(group, statistic)
    if isinstance(s, float) and s == 0.0:
        return
    shrink_(params, s, getattr(optimizer, "found_inf", None))


def traced_shrink(group: dict[str, Any], statistic: Any = None) -> float | Tensor:
    """``s_t`` of a decoupled mode as a tensor expression of ``lr_t`` (no host read); 0.0 where nothing shrinks.

    What a traced step multiplies: :func:`traced_shrink_`, and the low-precision write-back, which folds ``s_t``
    into the float32 change it keeps (:mod:`weightdecay.optim._precision`).
    """
    mode = get_mode(group["decay"])
    if not mode.decoupled or group["weight_decay"] == 0:
        return 0.0
    if statistic is not None:
        statistic = torch.as_tensor(statistic, dtype=torch.float64)
    return shrink(mode, group["weight_decay"], group["lr"], group["peak_lr"], statistic, group)


@dataclass
class GroupPlan:
    """One group's decay on one step: what :func:`plan_step` decided, and the passes that deliver it.

    Attributes:
        index: the group's index in ``param_groups``.
        mode: its row of the decay table.
        lr: ``lr_t`` on the host.
        shrink: ``s_t`` (0 for coupled ``l2``).
        coupled: the λ that joins the gradient (``l2``), else 0.
        coefficient: ``c_t`` with ``s_t = lr_t·c_t``; None where none exists (``lr_t = 0`` with a shrink).
        masked: cautious weight decay is on (a decoupled mode with ``cautious=True``).
        step_reads_statistic: some group of this step reads a statistic (every group then takes the one-pass
            kernel where there is one: it leaves each tensor's Σv for the next step's mean).
    """

    index: int
    mode: DecayMode
    lr: float
    shrink: float
    coupled: float
    coefficient: float | None
    masked: bool
    step_reads_statistic: bool = False
    _before: list[Tensor] | None = field(default=None, repr=False)

    def route(self, *, kernel_shrinks: bool, one_pass: bool) -> Route:
        """How the shrink reaches the weights.

        Args:
            kernel_shrinks: the base kernel applies ``p·(1 - lr_t·wd)`` for this group (torch's Adam kernels; SGD's
                coupled kernel without momentum, where ``p - lr·(g + c·p) = p·(1 - lr·c) - lr·g``).
            one_pass: the optimizer has a one-pass kernel that can take this group's step (fused, on the CPU).
        """
        if one_pass and (self.step_reads_statistic or (self.shrink != 0 and (self.masked or not kernel_shrinks))):
            return Route.ONE_PASS
        if self.shrink == 0:
            return Route.NONE
        if self.masked:
            return Route.CAUTIOUS
        if kernel_shrinks and self.coefficient is not None:
            return Route.KERNEL
        return Route.SHRINK_PASS

    def start(self, optimizer: torch.optim.Optimizer, params: Sequence[Tensor], route: Route) -> float:
        """Apply what must come before the base's step; return the ``weight_decay`` its kernel must take.

        ``KERNEL``: ``c_t``; a coupled mode: its λ (for a kernel with coupled L2); otherwise 0. The step then
        never reads the decay of ``p``, so the order of a shrink pass and the step is immaterial.
        """
        if route is Route.SHRINK_PASS:
            shrink_(params, self.shrink, getattr(optimizer, "found_inf", None))
        elif route is Route.CAUTIOUS:
            self._before = [p.clone() for p in params]
        if route is Route.KERNEL:
            return self.coefficient
        return self.coupled

    def finish(self, optimizer: torch.optim.Optimizer, params: Sequence[Tensor]) -> None:
        """After the base's step: the cautious mask's shrink, at the weights the step started from."""
        before, self._before = self._before, None
        if before is not None and not skipped_by_scaler(optimizer):
            cautious_decay_after_step_(params, before, self.shrink)


def plan_step(optimizer: torch.optim.Optimizer, statistic: Any = None) -> list[GroupPlan]:
    """Every group's plan for this step; raises :class:`ShrinkTooLargeError` before anything is touched.

    For each group: resolve ``peak_lr`` (:func:`~weightdecay.optim._base.resolve_peak_lr`); warn, once per group,
    when ``lr_t > peak_lr`` in a mode that divides by ``peak_lr``; compute ``s_t`` and ``c_t``; refuse
    ``s_t ≥ 1`` (:func:`weightdecay.decay.check_shrink`), which would zero or flip the weights. All groups are
    checked before any plan is returned, so a refused step changes no group.

    Args:
        optimizer: any optimizer whose groups carry ``lr``, ``weight_decay``, ``decay`` and ``peak_lr``.
        statistic: the value a statistic-reading mode divides by (``stable``: mean v̂_t after this step's moment
            update, over every element updated), where some group reads one.

    Under torch.compile it runs outside the graph (one graph break), since it reads ``lr_t`` and ``s_t`` on the host.
    """
    if torch.compiler.is_compiling():
        # Wrapped here, not at import: torch.compiler.disable imports torch._dynamo (over a second), which every
        # process that imports weightdecay would pay for without ever compiling.
        return torch.compiler.disable(plan_step)(optimizer, statistic)
    if torch.is_tensor(statistic):
        statistic = _number(statistic)
    warned = optimizer.__dict__.setdefault("_weightdecay_peak_warned", set())
    step_reads = reads_statistic(optimizer.param_groups)
    plans = []
    for index, group in enumerate(optimizer.param_groups):
        mode = get_mode(group["decay"])
        peak, lr = resolve_peak_lr(group), _number(group["lr"])
        if mode.uses_peak_lr and lr > peak and index not in warned:
            warned.add(index)
            warnings.warn(
                f"param_groups[{index}]: lr_t = {lr:g} is above peak_lr = {peak:g}, and decay={mode.name!r} divides "
                f"by peak_lr, so this group decays {lr / peak:.3g}x harder than its λ means at the peak. Pass the "
                "schedule's real peak as peak_lr= (or set param_groups[i]['peak_lr']).",
                UserWarning, stacklevel=_user_stacklevel(),
            )
        wd = _number(group["weight_decay"])
        if mode.decoupled and mode.statistic is not None and statistic is None:
            raise ValueError(f"param_groups[{index}]: decay={mode.name!r} needs {mode.statistic.name}")
        s = shrink(mode, wd, lr, peak, statistic, group)
        check_shrink(mode, s, wd, lr, peak, where=f"param_groups[{index}]: ", options=group)
        plans.append(GroupPlan(
            index=index, mode=mode, lr=lr, shrink=s, coupled=coupled_weight_decay(mode, wd),
            coefficient=lr_coefficient(mode, wd, lr, peak, statistic, group) if mode.decoupled else 0.0,
            masked=bool(group.get("cautious")) and mode.decoupled, step_reads_statistic=step_reads))
    return plans


def refuse_shrink(shrink_t: float, where: str, formula: str, fix: str) -> None:
    """Refuse a step of an optimizer with a decay of its own (not a row of the table) whose shrink is ``s_t ≥ 1``.

    Call it before the step touches any tensor, with the largest ``s_t`` of the step, its formula and the fix.
    """
    if shrink_t >= 1.0:
        raise ShrinkTooLargeError(
            f"{where}the step would shrink the weights by s_t = {shrink_t:.4g} (s_t = {formula}), which zeroes them "
            f"(s_t = 1) or flips their sign (s_t > 1); {fix}")
