"""weightdecay's optimizer for Hugging Face's ``Trainer``, in one line, with the decay groups Trainer chooses.

    from transformers import Trainer
    from weightdecay.optim.huggingface import trainer_optimizer

    trainer = Trainer(model=model, args=args, train_dataset=data,
                      optimizer_cls_and_kwargs=trainer_optimizer(args, decay="paper"))

Trainer builds the optimizer itself from ``optimizer_cls_and_kwargs``: its two groups (the names of
``get_decay_parameter_names`` with ``args.weight_decay``, the rest with 0) and these keyword arguments, and then its
own lr scheduler over them. ``args.weight_decay`` is then λ in the units of ``decay``. Needs no import of
transformers: it reads ``args``' attributes.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from weightdecay.errors import UserError
from weightdecay.optim.adamw import AdamW
from weightdecay.optim.param_groups import param_groups

__all__ = ["trainer_optimizer"]


def trainer_optimizer(args: Any, *, decay: str = "torch", optimizer_cls: type = AdamW, model: nn.Module | None = None,
                      **options: Any) -> tuple[type, dict[str, Any]]:
    """``(optimizer_cls, kwargs)`` for ``Trainer(optimizer_cls_and_kwargs=...)``.

    The kwargs carry what Trainer's own AdamW takes from ``args`` (``learning_rate``, ``adam_beta1``/``adam_beta2``,
    ``adam_epsilon``, where the class takes ``betas``/``eps``), plus ``decay`` and ``options`` (``peak_lr=``,
    ``cautious=``, ``fused=``…). Trainer's decay groups are kept, unless ``model`` is given: then the groups are
    :func:`weightdecay.param_groups`' (by structure: custom norm classes and embeddings exempt, which Trainer's
    name rule misses), passed as ``params``, which Trainer uses in place of its own.

    Args:
        args: the ``TrainingArguments``; ``args.weight_decay`` is λ in the units of ``decay``.
        decay: the convention (``torch`` is Trainer's ``adamw_torch`` with the same λ).
        optimizer_cls: :class:`weightdecay.AdamW` (default) or another of weightdecay's optimizers
            (``weightdecay.optim.ScheduleFreeAdamW``: Trainer calls its ``train()``/``eval()``).
        model: the model, for structural decay groups instead of Trainer's.

    >>> from types import SimpleNamespace
    >>> args = SimpleNamespace(learning_rate=5e-5, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
    ...                        weight_decay=0.01)
    >>> cls, kwargs = trainer_optimizer(args, decay="paper")
    >>> cls.__name__, kwargs
    ('AdamW', {'lr': 5e-05, 'betas': (0.9, 0.999), 'eps': 1e-08, 'decay': 'paper'})
    """
    for name in ("learning_rate", "weight_decay"):
        if not hasattr(args, name):
            raise UserError(f"trainer_optimizer needs the TrainingArguments (args.{name} is missing): pass the "
                            "args you give Trainer")
    takes = inspect.signature(optimizer_cls).parameters
    kwargs: dict[str, Any] = {"lr": args.learning_rate}
    if "betas" in takes and hasattr(args, "adam_beta1"):
        kwargs["betas"] = (args.adam_beta1, args.adam_beta2)
    if "eps" in takes and hasattr(args, "adam_epsilon"):
        kwargs["eps"] = args.adam_epsilon
    kwargs["decay"] = decay
    kwargs.update(options)
    if model is not None:
        kwargs["params"] = param_groups(model, args.weight_decay)
    return optimizer_cls, kwargs
