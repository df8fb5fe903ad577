"""The training loop every built-in task shares, and the pieces a user's own task can reuse.

One run reads top to bottom in :func:`fit`:

1. seed torch's generator (inside ``fork_rng``, so the caller's random state is left alone) and build the model;
2. split its parameters with :func:`weightdecay.param_groups` (biases, norm and embedding parameters exempt) and
   build the run's optimizer from :mod:`weightdecay.optim.registry` with the run's decay convention;
3. build the learning-rate schedule by name, stepped once per batch;
4. per epoch: the batches (tensors in memory, indexed by a seeded permutation), one optimizer step each; a loss
   that turns NaN/inf stops the run at once and marks it diverged (never raised);
5. per epoch: evaluate (``model.eval()``, no grad), record the history; the monitors given (any
   :class:`weightdecay.Monitor`, or the per-epoch :class:`weightdecay.monitors.LayerDiagnostics`) watch the
   optimizer's steps through its hooks and never change them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from weightdecay.checks import is_number, is_whole
from weightdecay.errors import ShrinkTooLargeError, UserError
from weightdecay.monitors import LayerDiagnostics
from weightdecay.optim.registry import OPTIMIZERS, betas, fraction, get_optimizer  # OPTIMIZERS: name → row
from weightdecay.tasks.base import ProgressFn, Task, TrainConfig, TrainResult

__all__ = ["OPTIMIZERS", "Option", "BuiltinTask", "int_option", "float_option", "validate_config",
           "optimizer_hyperparameters", "resolved_hyperparameters", "check_weight_decay_schedule", "build_optimizer",
           "build_schedule", "build_wd_schedule", "fit", "shuffled_batches", "batches_per_epoch", "evaluate_in_chunks"]


log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Option:
    """A task-specific option (a key of ``TrainConfig.extra``): its default and one line of documentation."""

    default: Any
    doc: str


# Steps of the schedule built once in BuiltinTask.resolve to check its options (any real run is shorter).
_CHECK_HORIZON = 10 ** 12

# Options every built-in task accepts, passed on to the learning-rate schedule.
SCHEDULE_OPTIONS: dict[str, Option] = {
    "warmup_steps": Option(None, "linear warm-up steps of the schedule (default: its own)"),
    "schedule_options": Option({}, "extra keyword options of the schedule (floor, milestones, gamma, T_0, ...)"),
}


class BuiltinTask(Task):
    """A task with documented options (``config.extra`` keys), resolved and checked before a run.

    Subclasses set ``options`` and implement :meth:`run`; :meth:`resolve` merges ``config.extra`` over the
    defaults and refuses unknown keys (a silently dropped option would make a sweep lie).
    """

    options: dict[str, Option] = {}
    suggested_lr: float = 1e-3
    suggested_weight_decay: float = 1e-2

    def all_options(self) -> dict[str, Option]:
        return {**self.options, **SCHEDULE_OPTIONS}

    def check_options(self, options: dict[str, Any]) -> None:
        """Refuse an option of the wrong type or range (a UserError naming it); subclasses check their own."""

    def resolve(self, config: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
        """The config with the task's default epochs and batch size filled in, and the merged options.

        Everything that can be checked without the data is checked here, so a sweep refuses a bad config
        before any trial runs: unknown options, the options' types (:meth:`check_options`) and the schedule
        with its options (built once over a horizon long enough for any warm-up; the run rebuilds it with its
        real step count).
        """
        known = self.all_options()
        unknown = sorted(set(config.extra) - set(known))
        if unknown:
            raise UserError(f"Unknown option(s) {', '.join(map(repr, unknown))} for task {self.name!r}; "
                            f"valid options: {', '.join(sorted(known))}")
        config = config.with_(epochs=config.epochs if config.epochs is not None else self.default_epochs,
                              batch_size=config.batch_size if config.batch_size is not None
                              else self.default_batch_size)
        validate_config(config)
        config = resolved_hyperparameters(config)
        options = {key: config.extra.get(key, option.default) for key, option in known.items()}
        if not isinstance(options["schedule_options"], dict):
            raise UserError(f"Option schedule_options must be a mapping (e.g. {{\"floor\": 0.1}}), got "
                            f"{options['schedule_options']!r}")
        from weightdecay.schedules import make_multiplier

        make_multiplier(config.schedule, total_steps=_CHECK_HORIZON, steps_per_epoch=1,
                        warmup_steps=options["warmup_steps"], **options["schedule_options"])
        self.check_options(options)
        return config, options


def int_option(opts: dict[str, Any], key: str, minimum: int = 1, *, allow_none: bool = False) -> int | None:
    """The integer option ``key`` (``None`` only if allowed), or a UserError that names it and its bounds."""
    value = opts[key]
    if value is None and allow_none:
        return None
    if not is_whole(value, minimum):
        raise UserError(f"Option {key} must be an integer >= {minimum}{' or null' if allow_none else ''}, "
                        f"got {value!r}")
    return value


def float_option(opts: dict[str, Any], key: str, minimum: float = 0.0) -> float:
    """The finite number option ``key`` (>= ``minimum``), or a UserError that names it."""
    value = opts[key]
    if not is_number(value) or value < minimum:
        raise UserError(f"Option {key} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def validate_config(config: TrainConfig) -> None:
    """Refuse a configuration that cannot run, naming the bad field and the fix (epochs/batch size resolved)."""
    optimizer_hyperparameters(config)
    get_optimizer(config.optimizer).check_decay(config.decay)
    from weightdecay.schedules import SCHEDULE_NAMES

    if config.schedule not in SCHEDULE_NAMES:
        raise UserError(f"Unknown schedule: {config.schedule!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    if not (is_number(config.lr) and config.lr > 0):
        raise UserError(f"Invalid learning rate {config.lr!r}: must be a finite number > 0")
    if not (is_number(config.weight_decay) and config.weight_decay >= 0):
        raise UserError(f"Invalid weight decay {config.weight_decay!r}: must be a finite number >= 0")
    for field in ("epochs", "batch_size"):
        value = getattr(config, field)
        if not is_whole(value, minimum=1):
            raise UserError(f"Invalid {field} {value!r}: must be an integer >= 1")
    check_weight_decay_schedule(config.decay, config.wd_schedule, config.normalized_wd)


def optimizer_hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """The hyperparameters ``config`` gives its optimizer, checked by the registry.

    ``momentum`` and ``betas`` reach the optimizers that take them (None: the registry's default); every other
    hyperparameter comes from ``config.optimizer_options``, where a key the optimizer does not take is refused.
    """
    info = get_optimizer(config.optimizer)
    shared = {k: getattr(config, k) for k in ("momentum", "betas") if getattr(config, k) is not None}
    if "momentum" in shared:  # checked even where unused: a bad value is a bad config
        fraction("momentum", shared["momentum"])
    if "betas" in shared:
        betas("betas", shared["betas"])
    given = {k: v for k, v in shared.items() if info.takes(k)}
    for key in config.optimizer_options:
        if key in ("momentum", "betas"):
            raise UserError(f"optimizer_options: {key!r} is a TrainConfig field; set config.{key} instead")
    return info.check_hyperparameters({**given, **config.optimizer_options})


def resolved_hyperparameters(config: TrainConfig) -> TrainConfig:
    """``config`` with ``momentum`` and ``betas`` set to the registry's defaults where its optimizer takes them."""
    info = get_optimizer(config.optimizer)
    return config.with_(**{k: info.defaults[k] for k in ("momentum", "betas")
                           if getattr(config, k) is None and info.takes(k)})


def check_weight_decay_schedule(decay: str, wd_schedule: str | None, normalized_wd: bool) -> None:
    """Refuse a weight-decay schedule that cannot run: an unknown name, two schedules at once, or normalized
    weight decay in a convention where a ``paper``-units λ has no fixed equivalent (only ``paper`` and ``torch``)."""
    from weightdecay.schedules import SCHEDULE_NAMES, fixed_shrink_ratio

    if wd_schedule is not None and wd_schedule not in SCHEDULE_NAMES:
        raise UserError(f"Unknown weight-decay schedule: {wd_schedule!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    if wd_schedule is not None and normalized_wd:
        raise UserError("normalized weight decay sets λ every step itself; drop the weight-decay schedule or "
                        "normalized_wd")
    if normalized_wd and fixed_shrink_ratio("paper", decay, 1.0) is None:
        raise UserError(f"normalized weight decay is a paper-units λ per step, which only the 'paper' and 'torch' "
                        f"conventions can follow through a schedule; got decay {decay!r}")


def build_optimizer(model: nn.Module, config: TrainConfig, **param_group_options: Any) -> torch.optim.Optimizer:
    """The registry's ``config.optimizer`` over ``param_groups(model, λ)``, decay mode ``config.decay``; biases,
    norm and embedding parameters are exempt from decay (Muon takes the 2-D weights, AdamW the rest).

    Args:
        model: the module to train.
        config: the run's configuration (``optimizer``, ``lr``, ``weight_decay``, ``decay``, ``betas``,
            ``momentum``, ``optimizer_options``).
        param_group_options: passed to :func:`weightdecay.param_groups` (``no_decay_names=…``).

    >>> import torch, weightdecay
    >>> opt = build_optimizer(torch.nn.Linear(3, 2), TrainConfig(lr=1e-3, weight_decay=0.1, decay="paper"))
    >>> type(opt).__name__, opt.param_groups[0]["decay"], opt.param_groups[1]["weight_decay"]
    ('AdamW', 'paper', 0.0)
    """
    from weightdecay import param_groups

    groups = [g for g in param_groups(model, config.weight_decay, decay=config.decay, **param_group_options)
              if g["params"]]
    return get_optimizer(config.optimizer).build(groups, lr=config.lr, weight_decay=config.weight_decay,
                                                 decay=config.decay, **optimizer_hyperparameters(config))


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, *, total_steps: int,
                   steps_per_epoch: int, options: dict[str, Any] | None = None):
    """The learning-rate scheduler ``config.schedule`` (stepped once per batch), with the task's schedule options."""
    from weightdecay.schedules import make_lr_schedule

    options = options or {}
    extra = dict(options.get("schedule_options") or {})
    return make_lr_schedule(config.schedule, optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                            warmup_steps=options.get("warmup_steps"), **extra)


def build_wd_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, lr_schedule: Any, *, total_steps: int,
                      steps_per_epoch: int, train_size: int | None,
                      options: dict[str, Any] | None = None) -> Any:
    """The run's weight-decay scheduler (stepped once per batch), or ``None`` when λ stays fixed.

    ``config.wd_schedule`` makes λ follow that schedule, ``λ_k = λ·η(k)``, with the options of the lr's
    ``schedule_options`` that the schedule takes. ``config.normalized_wd`` reads ``config.weight_decay`` as
    ``λ_norm`` and writes ``λ = λ_norm·sqrt(b/(B·T_i))`` (docs/math.md, "Normalized weight decay"), ``T_i`` the
    current period of an ``sgdr`` lr schedule (AdamWR) or else the run's epochs.

    Args:
        optimizer: the run's optimizer.
        config: the run's configuration (epochs and batch size resolved).
        lr_schedule: the lr scheduler of :func:`build_schedule` (its warm-restart periods, if any).
        total_steps, steps_per_epoch: the run's horizon.
        train_size: ``B``, the number of training examples (normalized weight decay only).
        options: the task's resolved options.
    """
    from weightdecay.schedules import NormalizedWeightDecay, make_wd_schedule
    from weightdecay.schedules.lr import schedule_options_of
    from weightdecay.schedules.multipliers import WarmRestarts

    if config.normalized_wd:
        if not train_size:
            raise UserError("Normalized weight decay needs the training-set size; this task does not give it")
        restarts = getattr(lr_schedule, "multiplier", None)
        periods = ({"T_0": restarts.T_0, "T_mult": restarts.T_mult} if isinstance(restarts, WarmRestarts)
                   else {"epochs": config.epochs})
        return NormalizedWeightDecay(optimizer, batch_size=config.batch_size, dataset_size=train_size,
                                     steps_per_epoch=steps_per_epoch, **periods)
    if config.wd_schedule is None:
        return None
    extra = dict((options or {}).get("schedule_options") or {})
    accepted = schedule_options_of(config.wd_schedule)
    return make_wd_schedule(config.wd_schedule, optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                            **{k: v for k, v in extra.items() if k in accepted})


def batches_per_epoch(n: int, batch_size: int) -> int:
    """How many batches :func:`shuffled_batches` yields: ``ceil(n / batch_size)``, less one when the remainder
    is a single example (it joins the previous batch)."""
    steps = -(-n // batch_size)
    return steps - 1 if steps > 1 and n % batch_size == 1 else steps


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """The index tensors of one epoch: a seeded permutation of ``range(n)`` cut into batches.

    The last batch may be smaller; a lone leftover example joins the previous batch instead, because batch norm
    cannot train on a batch of one. :func:`batches_per_epoch` gives the count.

    >>> [len(b) for b in shuffled_batches(9, 4, torch.Generator().manual_seed(0))]
    [4, 5]
    """
    order = torch.randperm(n, generator=generator)
    if batches_per_epoch(n, batch_size) < -(-n // batch_size):
        cut = n - batch_size - 1
        return iter([*(order[:cut].split(batch_size) if cut else ()), order[cut:]])
    return iter(order.split(batch_size))


@torch.no_grad()
def evaluate_in_chunks(fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                       x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> tuple[float, float]:
    """Mean loss and error rate over ``(x, y)``; ``fn(xb, yb)`` returns per-example losses and a bool "wrong"."""
    total_loss, total_wrong = 0.0, 0.0
    for xb, yb in zip(x.split(chunk), y.split(chunk)):
        losses, wrong = fn(xb, yb)
        total_loss += float(losses.sum())
        total_wrong += float(wrong.sum())
    return total_loss / len(y), total_wrong / len(y)


def _all_finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


def _train_epochs(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any, generator: torch.Generator,
                  batches: Callable[[torch.Generator], Iterable[Batch]], loss_fn: LossFn,
                  evaluate: Callable[[nn.Module], dict[str, float]], epochs: int, watching: list[Any],
                  progress: ProgressFn | None, wd_schedule: Any = None) -> tuple[list[dict[str, float]], str]:
    """The epochs of :func:`fit`: the history, and why the run diverged ("" when it did not): a non-finite loss or
    metric, or a step the optimizer refused because its shrink ``s_t >= 1`` would zero or flip the weights."""
    history: list[dict[str, float]] = []
    diverged = ""
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, examples = torch.zeros((), dtype=torch.float64), 0
        for xb, yb in batches(generator):
            loss = loss_fn(model, xb, yb)
            if not math.isfinite(float(loss.detach())):
                diverged = f"the training loss became {float(loss.detach())} in epoch {epoch}"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            try:
                optimizer.step()
            except ShrinkTooLargeError as exc:  # s_t >= 1 would zero or flip the weights: this setting cannot train
                # Expected at a sweep grid's large-lr·λ corner: kept in the result, not shouted once per run.
                diverged = f"epoch {epoch}: {exc}"
                log.info("run stopped as diverged at %s", diverged)
                break
            schedule.step()
            if wd_schedule is not None:
                wd_schedule.step()
            loss_sum += loss.detach().double() * len(yb)
            examples += len(yb)
        if diverged:
            break
        model.eval()
        with torch.no_grad():
            row = {"epoch": epoch, "train_loss": float(loss_sum) / max(examples, 1), **evaluate(model)}
        if not _all_finite(row):
            bad = ", ".join(f"{k} = {v}" for k, v in row.items() if not math.isfinite(v))
            diverged = f"{bad} after epoch {epoch}"
            break
        history.append(row)
        for monitor in watching:
            if hasattr(monitor, "end_epoch"):
                monitor.end_epoch(epoch)
        if progress is not None:
            progress(epoch, epochs)
    return history, diverged


def fit(
    build_model: Callable[[], nn.Module],
    config: TrainConfig,
    *,
    batches: Callable[[torch.Generator], Iterable[Batch]],
    steps_per_epoch: int,
    loss_fn: LossFn,
    evaluate: Callable[[nn.Module], dict[str, float]],
    options: dict[str, Any] | None = None,
    metric_names: Iterable[str] = (),
    scale_invariant: Iterable[str] | None = None,
    progress: ProgressFn | None = None,
    monitors: Sequence[Any] = (),
    train_size: int | None = None,
) -> TrainResult:
    """Train ``build_model()`` with the run's optimizer and schedule; return metrics, history and diagnostics.

    ``train_loss`` of an epoch is the mean of its minibatch losses; ``evaluate(model)`` adds the rest (called
    in eval mode without gradients after every epoch). The final metrics are those of the last epoch. A
    NaN/inf loss stops the run: ``diverged=True``, every final metric ``+inf`` (the worst value under
    minimization), the history keeping the epochs that finished.

    Args:
        build_model: makes the model; called after seeding, so the initialization follows ``config.seed``.
        config: the run's configuration with epochs and batch size resolved.
        batches: ``batches(generator)`` yields one epoch's ``(x, y)`` batches, drawing randomness only from
            ``generator`` (seeded from ``config.seed``).
        steps_per_epoch: how many batches ``batches`` yields (the schedule needs the horizon up front).
        loss_fn: ``loss_fn(model, x, y)``, the mean loss of a batch.
        evaluate: the epoch's evaluation metrics (``val_loss``, ``test_error``, ...).
        options: the task's resolved options (``warmup_steps``, ``schedule_options`` are used here).
        metric_names: the keys ``evaluate`` returns, so that a run diverging in its first epoch still reports
            every metric (as ``+inf``).
        scale_invariant: parameter names followed by a normalization, for the rotation diagnostics; default
            the model's own ``scale_invariant`` attribute, if any.
        progress: called with ``(epoch done, epochs total)`` after every epoch.
        monitors: unattached :class:`weightdecay.Monitor` objects (``Monitor(every=10)``) or anything with
            ``attach(optimizer, model, steps_per_epoch=, total_steps=)`` and ``remove()`` (and optionally
            ``end_epoch(epoch)``); attached to the run's optimizer and model, removed when it ends.
            ``config.diagnostics`` adds a :class:`~weightdecay.monitors.LayerDiagnostics`, whose summary is
            ``TrainResult.diagnostics``.
        train_size: the number of training examples ``B`` (for normalized weight decay).

    >>> import torch
    >>> x, y = torch.randn(64, 3), torch.randn(64)
    >>> result = fit(lambda: torch.nn.Linear(3, 1), TrainConfig(lr=0.01, weight_decay=0.0, epochs=2,
    ...              batch_size=16, schedule="constant"),
    ...              batches=lambda g: ((x[i], y[i]) for i in shuffled_batches(64, 16, g)), steps_per_epoch=4,
    ...              loss_fn=lambda m, xb, yb: ((m(xb).squeeze(-1) - yb) ** 2).mean(), evaluate=lambda m: {})
    >>> [h["epoch"] for h in result.history], result.diverged
    ([1, 2], False)
    """
    started = time.perf_counter()
    epochs = int(config.epochs or 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model()
        # A task may decay every parameter, as torch.optim.AdamW(model.parameters()) does (cifar10-tutorial).
        optimizer = build_optimizer(model, config,
                                    exempt_biases_and_norms=not (options or {}).get("decay_every_parameter", False))
        schedule = build_schedule(optimizer, config, total_steps=epochs * steps_per_epoch,
                                  steps_per_epoch=steps_per_epoch, options=options)
        wd_schedule = build_wd_schedule(optimizer, config, schedule, total_steps=epochs * steps_per_epoch,
                                        steps_per_epoch=steps_per_epoch, train_size=train_size, options=options)
        generator = torch.Generator().manual_seed(config.seed)
        if scale_invariant is None:
            scale_invariant = getattr(model, "scale_invariant", ())
        diagnostics = LayerDiagnostics(scale_invariant) if config.diagnostics else None
        watching = [*monitors, *([diagnostics] if diagnostics is not None else [])]
        for monitor in watching:
            monitor.attach(optimizer, model, steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch)
        try:
            history, diverged = _train_epochs(model, optimizer, schedule, generator, batches, loss_fn, evaluate,
                                              epochs, watching, progress, wd_schedule)
        finally:
            for monitor in watching:
                monitor.remove()
    if diverged:
        keys = history[-1].keys() if history else ["train_loss", *metric_names]
        metrics = {k: math.inf for k in keys if k != "epoch"}
    else:
        metrics = {k: v for k, v in history[-1].items() if k != "epoch"}
    return TrainResult(metrics=metrics, history=history, diverged=bool(diverged), diverged_reason=diverged,
                       diagnostics=diagnostics.summary if diagnostics is not None else None,
                       seconds=time.perf_counter() - started)

