"""The task interface: a model + real data + a training loop, driven by an optimizer configuration.

Sweeps and experiments only ever talk to this interface. A user plugs in a task of their own by subclassing
:class:`Task` (or any object with the same attributes and ``run``) and calling :func:`register_task`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

from weightdecay.errors import UserError

__all__ = ["TrainConfig", "TrainResult", "Task", "register_task", "get_task", "list_tasks"]


@dataclass(frozen=True)
class TrainConfig:
    """One training run's optimizer configuration. ``None`` means "the task's default"."""

    lr: float
    weight_decay: float
    optimizer: str = "adamw"  # a name from weightdecay.optim.registry.OPTIMIZERS
    decay: str = "torch"  # a name from weightdecay.decay.DECAY_MODES
    schedule: str = "cosine"  # "constant" | "cosine" | "warmup-cosine" | "step" | ... (see the task's docs)
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    momentum: float | None = None  # for optimizers that take one; None: the registry's default (sgdw 0.9)
    betas: tuple[float, float] | None = None  # likewise (adamw (0.9, 0.999))
    diagnostics: bool = False  # add a monitors.LayerDiagnostics: per-epoch layer norms, rotations, gradient norms
    wd_schedule: str | None = None  # λ follows this schedule's multiplier, λ_k = λ·η(k) (weightdecay.schedules)
    normalized_wd: bool = False  # weight_decay is λ_norm: λ = λ_norm·sqrt(b/(B·T_i)) in paper units per period
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific options
    optimizer_options: dict[str, Any] = field(default_factory=dict)  # the optimizer's other hyperparameters

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)


@dataclass
class TrainResult:
    """What a run returns. ``metrics`` holds final values (``train_loss``, ``val_loss``, ``test_error`` or
    ``perplexity``, ...); ``history`` one dict per epoch with the same keys plus ``epoch``; ``diverged_reason``
    says what stopped a diverged run (a non-finite loss, a refused shrink ``s_t >= 1``)."""

    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False
    diagnostics: dict[str, Any] | None = None
    seconds: float = 0.0
    diverged_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[int, int], None]  # (epoch done, epochs total)


class Task:
    """Base class for tasks. Subclasses set the class attributes and implement :meth:`run`."""

    name: str = ""
    description: str = ""
    metric: str = "val_loss"  # the metric sweeps minimize by default
    metrics: tuple[str, ...] = ()  # every key run() reports in TrainResult.metrics; () = not declared
    default_epochs: int = 1
    default_batch_size: int = 32

    def available(self) -> tuple[bool, str]:
        """Whether the task's data is on this machine, and how to get it if not."""
        return True, ""

    def run(self, config: TrainConfig, progress: ProgressFn | None = None, monitors: Sequence[Any] = ()) -> TrainResult:
        """Train once; ``monitors`` (unattached :class:`weightdecay.Monitor` objects) watch the run's optimizer."""
        raise NotImplementedError


_REGISTRY: dict[str, Task] = {}


def register_task(task: Task, *, replace_existing: bool = False) -> Task:
    """Make a task available by name to ``weightdecay train``, sweeps and experiments."""
    if not getattr(task, "name", ""):
        raise UserError("A task needs a non-empty `name` attribute")
    if task.name in _REGISTRY and not replace_existing:
        raise UserError(f"A task named {task.name!r} is already registered; pass replace_existing=True")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"Unknown task {name!r}; choose one of {', '.join(sorted(_REGISTRY))}") from None


def list_tasks() -> list[Task]:
    _load_builtin_tasks()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _load_builtin_tasks() -> None:
    # Importing the package registers the built-in tasks; done lazily so `import weightdecay` stays light.
    import weightdecay.tasks  # noqa: F401
