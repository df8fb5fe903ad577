"""Several optimizers stepped as one, so one scheduler, one ``step()`` and one state dict drive them all.

The usual Muon split (Muon for the matrices, AdamW for the rest) is two optimizers; training loops, schedulers and
sweeps expect one. :class:`CombinedOptimizer` lists their groups as its own (the same dicts, so a scheduler's
``group["lr"]`` reaches them) and steps each in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator, Sequence

import torch

from weightdecay.errors import UserError
from weightdecay.optim._base import evaluate_closure

__all__ = ["CombinedOptimizer"]


class _States(Mapping):
    """The optimizers' ``state`` read as one mapping (read-only: each optimizer owns its own)."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self._optimizers = optimizers

    def __getitem__(self, key: Any) -> Any:
        for opt in self._optimizers:
            if key in opt.state:
                return opt.state[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        for opt in self._optimizers:
            yield from opt.state

    def __len__(self) -> int:
        return sum(len(opt.state) for opt in self._optimizers)


class CombinedOptimizer(torch.optim.Optimizer):
    """Optimizers over disjoint parameters, stepped in order as one optimizer.

    ``param_groups`` is the concatenation of theirs (the same dicts); the state dict holds each one's.

    Args:
        optimizers: the optimizers, over disjoint parameters.

    Example:
        >>> import torch, weightdecay
        >>> a, b = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(2))
        >>> opt = CombinedOptimizer([weightdecay.Muon([a], lr=0.02), weightdecay.AdamW([b], lr=1e-3)])
        >>> len(opt.param_groups)
        2
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        optimizers = [o for o in optimizers if o is not None]
        if not optimizers:
            raise UserError("CombinedOptimizer needs at least one optimizer")
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        super().__init__(params, {})  # checks that no parameter appears twice
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.state = _States(optimizers)  # type: ignore[assignment]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if hasattr(self, "optimizers"):
            raise UserError("CombinedOptimizer.add_param_group: add the group to one of its optimizers instead")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Step every optimizer once (``closure`` is evaluated once, before the first)."""
        loss = evaluate_closure(closure)
        for opt in self.optimizers:
            opt.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("optimizers")
        if not isinstance(saved, list) or len(saved) != len(self.optimizers):
            raise UserError(f"CombinedOptimizer.load_state_dict: expected the state of {len(self.optimizers)} "
                            "optimizers, as state_dict() saves it")
        for opt, sd in zip(self.optimizers, saved):
            opt.load_state_dict(sd)
        self.param_groups[:] = [g for o in self.optimizers for g in o.param_groups]
