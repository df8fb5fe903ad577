"""A monitor that watches weight decay act in any training loop, through the optimizer's own step hooks.

Every ``every``-th ``optimizer.step()`` it measures, per parameter tensor, the weight, its gradient, the update
the step made and the angle it turned, reads the shrink ``s_t`` the step applied from the decay table
(:func:`weightdecay.decay.shrink`) and writes the rules' predictions beside the measurements
(:func:`weightdecay.rules.equilibrium_rotation`, :func:`weightdecay.rules.adamc_target_ratio`) for the
scale-invariant weights. It never changes the step: training with and without it is bit-identical.

Beside the intended shrink it records the realized one, ``1 - <p_t, p_{t+1}>/‖p_t‖²`` (what the step removed along
``p_t``, the update's radial part included), and for bfloat16 and float16 weights whose optimizer does not keep
the change (torch.optim's, or ``rounding="nearest"``) the fraction of ``s_t`` that the weights' format keeps when
``p·(1 - s_t)`` is rounded: the flag ``decay-lost-to-rounding`` names a tensor that keeps less than half
(docs/math.md, "Low precision").

Under FSDP2 a parameter is a DTensor holding one shard per rank; every norm, angle and mean is reduced over the
shards (:mod:`weightdecay.optim._distributed`), so each rank records what one process would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from weightdecay.decay import get_mode, shrink
from weightdecay.errors import UserError
from weightdecay.monitors.fields import FIELDS, GROUP_FACTORS
from weightdecay.monitors.structure import ScaleInvarianceProbe
from weightdecay.optim._distributed import global_sums, local_shard
from weightdecay.optim._precision import is_low_precision
from weightdecay.optim.registry import OPTIMIZERS, OptimizerInfo, row_of
from weightdecay.optim.statistics import mean_v_hat_of_state
from weightdecay.optim.wrap import KNOWN_BASES
from weightdecay.rules.equilibrium import adamc_target_ratio, equilibrium_rotation

__all__ = ["Monitor", "FIELDS", "optimizer_family", "decay_mode_of"]


def _row_of_group(optimizer: torch.optim.Optimizer, index: int) -> OptimizerInfo | None:
    """The registry row of the optimizer that steps group ``index`` (each part's own in a CombinedOptimizer)."""
    for part in getattr(optimizer, "optimizers", None) or [optimizer]:
        if index < len(part.param_groups):
            return row_of(part)
        index -= len(part.param_groups)
    return None


def optimizer_family(optimizer: torch.optim.Optimizer) -> str | None:
    """``"adam"`` or ``"sgd"``: the equilibrium family its registry row names (``rotation``); None where the rules
    derive none (no predictions)."""
    row = _row_of_group(optimizer, 0)
    rotation = row.rotation if row is not None else None
    return None if rotation is None else ("adam" if rotation == "adam" else "sgd")


def _rule_row(rotation: str) -> str:
    """A registered optimizer whose equilibrium rule is ``rotation`` (the rules take a registry name)."""
    return next(name for name, info in OPTIMIZERS.items() if info.rotation == rotation)


def decay_mode_of(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> str | None:
    """The group's decay convention: its ``decay`` key where the optimizer keeps one (every weightdecay
    optimizer does); for a torch.optim class, what its own ``weight_decay`` is (:data:`weightdecay.optim.wrap.
    KNOWN_BASES`): ``torch`` where it shrinks by ``lr·wd`` (``torch.optim.AdamW``, Adam with
    ``decoupled_weight_decay=True``, Muon), ``l2`` where it is coupled (Adam, SGD, RMSprop…); None when unknown."""
    if isinstance(group.get("decay"), str):
        return group["decay"]
    how = next((KNOWN_BASES[c] for c in type(optimizer).__mro__ if c in KNOWN_BASES), None)
    if how is None:
        return None
    if how.shrinks_by_lr and (how.switch is None or group.get(how.switch)):
        return "torch"
    return "l2" if how.coupled else None


def _number(value: Any) -> float:
    return float(value.item()) if torch.is_tensor(value) else float(value)


class Monitor:
    """Records what weight decay does to each parameter tensor, every ``every`` optimizer steps.

    Per record (a dict, one per tensor and recorded step; :data:`FIELDS`): ``step`` (optimizer steps taken,
    counted from 1), ``group`` (the param group's index), ``name`` (from ``model``, else ``group{g}.{i}``),
    ``lr`` and ``decay`` (the group's ``lr_t`` and convention), ``weight_norm`` ``‖p‖`` and ``grad_norm``
    ``‖g‖`` when the step starts (``g`` the loss gradient, before any coupled ``λ·p``), ``update_norm``
    ``‖p_{t+1} − p_t‖``, ``grad_to_weight`` ``‖g‖/‖p‖``, ``rotation`` the angle (radians) between ``p_t`` and
    ``p_{t+1}``, ``shrink`` the ``s_t`` the step applied (``p ← p·(1 − s_t) − …``; for coupled ``l2`` under SGD
    its direct pull ``lr_t·λ``, under Adam None), ``tau_iter = 1/s_t`` steps and ``tau_epoch = τ_iter /
    steps_per_epoch`` (docs/math.md, 'EMA timescale'), and for the scale-invariant weights the predictions
    ``predicted_rotation`` (Kosson et al.'s equilibrium ``sqrt(2·s_t·(1−β1)/(1+β1))`` under AdamW,
    ``sqrt(2·lr·λ/(1+μ))`` under SGD with L2 and momentum μ, ``sqrt(2·s_t·(1−μ)/(1+μ))`` under SGDW;
    docs/math.md, 'Rotational equilibrium') and ``predicted_grad_to_weight`` (AdamC's ``sqrt(2·s_t)/lr_t``,
    SGD-type steps only; docs/math.md, 'AdamC's target'); ``realized_shrink`` ``1 − <p_t, p_{t+1}>/‖p_t‖²``, the
    shrink the step realized along ``p_t`` (with zero gradients exactly the decay; otherwise plus the update's
    radial part), from the sums of squares above; ``shrink_kept``, for bfloat16/float16 weights whose optimizer
    rounds ``p·(1 − s_t)`` to nearest (torch.optim's, ``rounding="nearest"``), the fraction of ``s_t`` that rounding
    keeps, ``<p_t, p_t − round(p_t·(1 − s_t))>/(s_t·‖p_t‖²)`` (0: the decay is lost; None for float32 and for weights
    whose optimizer keeps the change); ``dtype`` the weight's format; and the group's ``weight_decay`` λ with the
    factors :func:`weightdecay.param_groups` left in it, ``wd_mult`` and ``lr_scale`` (None where the group has
    none). A value that does not apply is None. Which rule applies comes from the optimizer's registry row (its
    ``rotation``), so every
    registered optimizer, a user's own included, gets the predictions its row names; :attr:`no_predictions` maps
    each param group that gets none to the reason (an optimizer the registry does not know, or one whose row
    names no rule, as NAdam, Lion or Muon).

    Scale-invariant weights are found from the forward passes of ``model`` before the first step
    (:mod:`weightdecay.monitors.structure` says which cases), plus the model's own ``scale_invariant``
    attribute, plus ``scale_invariant`` given here.

    Args:
        optimizer: any ``torch.optim.Optimizer``; None to attach later with :meth:`attach` (as ``fit`` does).
        model: names the parameters and shows which weights are followed by a normalization.
        every: record every ``every``-th step (the others cost two hook calls and nothing else).
        steps_per_epoch: for ``tau_epoch`` and the flags in epochs.
        total_steps: the run's planned length, for the flags (default: the last recorded step).
        log_dir: write each record to TensorBoard as it is taken (``torch.utils.tensorboard``).
        scale_invariant: names of further scale-invariant weights (``model`` needed).
        detect: look for scale-invariant weights in the forward graph.

    >>> import torch, weightdecay
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))
    >>> opt = weightdecay.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    >>> monitor = weightdecay.Monitor(opt, model, every=5)
    >>> for _ in range(10):
    ...     opt.zero_grad(); model(torch.randn(16, 4)).square().mean().backward(); opt.step()
    >>> r = monitor.records[0]
    >>> r["step"], r["name"], r["shrink"], round(r["predicted_rotation"], 6)
    (5, '0.weight', 0.001, 0.01026)
    >>> monitor.remove()

    References:
        Kosson, Messmer & Jaggi 2024, "Rotational equilibrium: how weight decay balances learning across
        neural networks"; Defazio 2025, "Why gradients rapidly increase near the end of training" (AdamC).
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, model: nn.Module | None = None,
                 every: int = 10, steps_per_epoch: int | None = None, *, total_steps: int | None = None,
                 log_dir: str | Path | None = None, scale_invariant: Iterable[str] = (),
                 detect: bool = True) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UserError(f"Invalid every={every!r}: record every N-th step, an integer >= 1")
        for label, value in (("steps_per_epoch", steps_per_epoch), ("total_steps", total_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"Invalid {label}={value!r}: an integer >= 1, or None")
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.detect = detect
        self._declared = list(scale_invariant)
        self.records: list[dict[str, Any]] = []
        self.scale_invariant: list[str] = []
        self.steps = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self._handles: list[Any] = []
        self._probe: ScaleInvarianceProbe | None = None
        self._writer: Any = None
        self._pending: list[tuple[int, int, str, torch.Tensor, torch.Tensor]] = []
        self.no_predictions: dict[int, str] = {}  # param group → why it gets no predictions
        if optimizer is not None:
            self.attach(optimizer, model)
        elif model is not None:
            raise UserError("Monitor(model=...) without an optimizer: pass the optimizer too, or call "
                            "monitor.attach(optimizer, model) later")

    # --- attaching -----------------------------------------------------------------------------------------

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module | None = None, *,
               steps_per_epoch: int | None = None, total_steps: int | None = None) -> "Monitor":
        """Start watching ``optimizer`` (``steps_per_epoch``/``total_steps`` fill those not given before)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise UserError(f"Monitor needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if self.optimizer is not None:
            raise UserError("This monitor is already attached; call monitor.remove() first, or make a new Monitor")
        self.optimizer = optimizer
        self.steps_per_epoch = self.steps_per_epoch or steps_per_epoch
        self.total_steps = self.total_steps or total_steps
        self._names: dict[int, str] = {}
        if model is not None:
            named = dict(model.named_parameters())
            self._names = {id(p): n for n, p in named.items()}
            declared = [*getattr(model, "scale_invariant", ()), *self._declared]
            unknown = sorted(set(declared) - set(named))
            if unknown:
                raise UserError(f"scale_invariant names not in the model: {unknown}; "
                                f"its parameters are {', '.join(list(named)[:8])}{', ...' if len(named) > 8 else ''}")
            self._add_scale_invariant(declared)
            if self.detect:
                self._probe = ScaleInvarianceProbe(model, self._add_scale_invariant)
        elif self._declared:
            raise UserError("scale_invariant names need the model: Monitor(optimizer, model, scale_invariant=...)")
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]
        return self

    def _add_scale_invariant(self, names: Iterable[str]) -> None:
        self.scale_invariant += [n for n in names if n not in self.scale_invariant]

    def remove(self) -> None:
        """Detach from the optimizer (and the model); flush the live TensorBoard file. Records stay."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._probe is not None:
            self._probe.remove()
            self._probe = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.optimizer = None

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.remove()

    # --- the hooks -----------------------------------------------------------------------------------------

    def _name(self, group: int, index: int, p: torch.Tensor) -> str:
        return self._names.get(id(p), f"group{group}.{index}")

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, *_args: Any) -> None:
        if (self.steps + 1) % self.every:
            return
        # Only the weights are taken here: a step given a closure (Lightning's) computes the gradient inside
        # step(), so the gradient is read after it, where it is this step's whichever way the loop runs.
        self._pending = [(g, i, self._name(g, i, p), p, p.detach().clone())
                         for g, group in enumerate(optimizer.param_groups)
                         for i, p in enumerate(group["params"]) if p.requires_grad]

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, *_args: Any) -> None:
        self.steps += 1
        if self._probe is not None:  # the first step's forward passes (before it, or inside its closure) are done
            self._probe.finish()
            self._probe = None
        if self.steps % self.every or not self._pending:
            return
        pending = [t for t in self._pending if t[3].grad is not None and not t[3].grad.is_sparse]
        self._pending = []
        if not pending:
            return
        groups = {g: self._group_facts(optimizer, g) for g in {g for g, *_ in pending}}
        # Where the weights' format may round the shrink away: low precision, an optimizer that does not keep it.
        # (torch.optim's groups have no "rounding": they round to nearest.)
        probes = [groups[g]["shrink"] if is_low_precision(p) and groups[g]["shrink"]
                  and optimizer.param_groups[g].get("rounding", "nearest") == "nearest" else None
                  for g, _, _, p, _ in pending]
        measured = _measure([t[3] for t in pending], [t[4] for t in pending], probes)
        new = []
        for (g, _, name, p, _), (grad_norm, weight_norm, update_norm, rotation, realized, kept) in zip(pending,
                                                                                                       measured):
            facts = groups[g]
            invariant = name in self.scale_invariant
            new.append({
                "step": self.steps, "group": g, "name": name, "lr": facts["lr"], "decay": facts["decay"],
                "weight_norm": weight_norm, "grad_norm": grad_norm, "update_norm": update_norm,
                "grad_to_weight": grad_norm / weight_norm if weight_norm > 0 else None,
                "rotation": rotation if weight_norm > 0 else None, "shrink": facts["shrink"],
                "tau_iter": facts["tau_iter"], "tau_epoch": facts["tau_epoch"],
                "predicted_rotation": facts["predicted_rotation"] if invariant else None,
                "predicted_grad_to_weight": facts["predicted_grad_to_weight"] if invariant else None,
                **facts["factors"],
                "realized_shrink": realized if weight_norm > 0 else None,
                "shrink_kept": kept, "dtype": str(p.dtype).removeprefix("torch."),
            })
        self.records += new
        if self.log_dir is not None:
            self._write_live(new)

    def _group_facts(self, optimizer: torch.optim.Optimizer, g: int) -> dict[str, Any]:
        """The shrink this step applied to group ``g``, its timescales and the rules' predictions.

        What the optimizer is comes from its registry row (:func:`weightdecay.optim.registry.row_of`): its
        ``rotation`` names the equilibrium rule (``adam``; ``sgd``/``sgdw``, SGD with momentum, where a coupled
        λ runs through the momentum and a decoupled shrink does not). A group whose row names none gets no
        predictions, and :attr:`no_predictions` says why.
        """
        group = optimizer.param_groups[g]
        lr, wd = _number(group["lr"]), _number(group.get("weight_decay", 0.0))
        mode = decay_mode_of(optimizer, group)
        facts: dict[str, Any] = {"lr": lr, "decay": mode, "shrink": None, "tau_iter": None, "tau_epoch": None,
                                 "predicted_rotation": None, "predicted_grad_to_weight": None,
                                 "factors": {k: (_number(group[k]) if group.get(k) is not None else None)
                                             for k in GROUP_FACTORS}}
        info = _row_of_group(optimizer, g)
        rule = info.rotation if info is not None else None
        if rule is None:
            self.no_predictions[g] = (
                f"{type(optimizer).__name__} is not in the optimizer registry" if info is None else
                f"the rules derive no equilibrium for {info.name!r} (its registry row has rotation=None)")
        if mode is None:
            return facts
        row = get_mode(mode)
        if not row.decoupled:
            # Coupled λ·p joins the gradient: under SGD it pulls the weight by lr·λ per step (rules/equilibrium's
            # "sgd" setting); under Adam the denominator rescales it per element, so no single s_t exists.
            s = lr * wd if rule in ("sgd", "sgdw") else None
        else:
            peak = _number(group.get("peak_lr", group.get("initial_lr", group["lr"])))
            statistic = mean_v_hat_of_state(optimizer) if row.statistic is not None else None
            s = shrink(row, wd, lr, peak, statistic, group)
        facts["shrink"] = s
        if s is None or s <= 0:
            return facts
        facts["tau_iter"] = 1.0 / s  # the EMA timescale (rules.ema_timescale), from the s_t actually applied
        if self.steps_per_epoch:
            facts["tau_epoch"] = facts["tau_iter"] / self.steps_per_epoch
        if lr <= 0 or rule is None or (not row.decoupled and rule == "adam"):
            return facts
        # The rules take λ in torch units (s = lr·λ); s/lr is that λ whatever the group's convention.
        torch_wd = s / lr
        if rule == "adam":
            facts["predicted_rotation"] = equilibrium_rotation(lr, torch_wd, optimizer=info.name,
                                                               beta1=_number(group["betas"][0]))
        else:
            momentum = _number(group.get("momentum", 0.0))
            facts["predicted_rotation"] = equilibrium_rotation(lr, torch_wd, momentum=momentum,
                                                               optimizer=_rule_row("sgdw" if row.decoupled else "sgd"))
            facts["predicted_grad_to_weight"] = adamc_target_ratio(lr, torch_wd)
        return facts

    def _write_live(self, new: list[dict[str, Any]]) -> None:
        from weightdecay.monitors.export import add_records, summary_writer

        if self._writer is None:
            self._writer = summary_writer(self.log_dir)
        add_records(self._writer, new)

    # --- results -------------------------------------------------------------------------------------------

    def summary(self) -> Any:
        """The flags raised by the records so far (:func:`weightdecay.monitors.flags.summarize`)."""
        from weightdecay.monitors.flags import summarize

        return summarize(self.records, steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)

    def to_csv(self, path: str | Path) -> Path:
        """Write the records as CSV (one row per record, the columns of :data:`FIELDS`)."""
        from weightdecay.monitors.export import write_csv

        return write_csv(self.records, path)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the records as JSON lines, the format ``weightdecay monitor-report`` reads."""
        from weightdecay.monitors.export import write_jsonl

        return write_jsonl(self.records, path)

    def to_tensorboard(self, log_dir: str | Path) -> Path:
        """Write the records as TensorBoard scalars, one tag per quantity and tensor (``rotation/0.weight``)."""
        from weightdecay.monitors.export import write_tensorboard

        return write_tensorboard(self.records, log_dir)


def _square_sum(t: torch.Tensor) -> torch.Tensor:
    """Σx² over this rank's part of ``t`` (all of it outside FSDP2), in float64."""
    return torch.linalg.vector_norm(local_shard(t), dtype=torch.float64).square()


def _measure(params: list[torch.Tensor], befores: list[torch.Tensor], probes: list[float | None] | None = None
             ) -> list[list[float | None]]:
    """Per tensor ``[‖g‖, ‖p_t‖, ‖p_{t+1} − p_t‖, angle between p_t and p_{t+1}, realized shrink, kept fraction]``,
    each over the whole tensor.

    The angle is :func:`~weightdecay.monitors.diagnostics.rotation_angle`'s ``2·atan2(‖â − b̂‖, ‖â + b̂‖)``, with
    ``‖â − b̂‖² = (‖p_{t+1} − p_t‖² − (‖p_{t+1}‖ − ‖p_t‖)²) / (‖p_{t+1}‖·‖p_t‖)`` and ``‖â + b̂‖² = 4 − ‖â − b̂‖²``,
    so it needs only the four sums of squares above: one pass over each tensor, one round of
    :func:`~weightdecay.optim._distributed.global_sums` (one round of collectives under FSDP2). The sums are float64 and
    ``p_{t+1} − p_t`` is exact in float32 for a step that moves a weight by less than half of it, so the
    subtraction loses nothing that matters at the rotations a step makes.

    The realized shrink is ``1 − <p_t, p_{t+1}>/‖p_t‖²`` from the same sums (``2<a, b> = ‖a‖² + ‖b‖² − ‖a − b‖²``).
    ``probes[i]``, an ``s_t`` or None, asks for the fraction of it that rounding keeps in tensor i's format,
    ``<p_t, p_t − round(p_t·(1 − s_t))>/(s_t·‖p_t‖²)``: one more pass over that tensor, its sum in the same round.
    """
    n = len(params)
    probes = probes or [None] * n
    zero = torch.zeros((), dtype=torch.float64)
    # Σ p·(p − round(p·(1 − s_t))): exactly 0 where every product rounds back to p.
    kept_sums = [zero if s is None else (local_shard(b).double() * (local_shard(b).double()
                                                                    - local_shard(b).mul(1 - s).double())).sum()
                 for b, s in zip(befores, probes)]
    squares = torch.stack([*(_square_sum(p.grad) for p in params), *(_square_sum(b) for b in befores),
                           *(_square_sum(p) for p in params),
                           *(_square_sum(p - b) for p, b in zip(params, befores)), *kept_sums])
    sums = global_sums(params * 5, squares).view(5, n)
    grad, weight, after, update = sums[:4].sqrt()
    radial = after - weight
    product = (after * weight).clamp_min(1e-60)
    minus = ((update.square() - radial.square()) / product).clamp(0.0, 4.0)
    rotation = 2 * torch.atan2(minus.sqrt(), (4.0 - minus).sqrt())
    weight_sq = sums[1].clamp_min(1e-300)
    realized = 1 - (sums[1] + sums[2] - sums[3]) / (2 * weight_sq)
    rows = torch.stack([grad, weight, update, rotation, realized, sums[4] / weight_sq], dim=1).tolist()
    for row, s in zip(rows, probes):
        row[5] = None if s is None else row[5] / s
    return rows

