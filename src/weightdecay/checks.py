"""Argument checks used by every layer: a bad number raises :class:`UserError` naming the argument and the fix.

The predicates :func:`is_number` and :func:`is_whole` are the one place that says what counts as a number: a
``bool`` never does (``True`` is an ``int`` in Python, but ``lr=True`` is a mistake, not ``lr=1``).
"""

from __future__ import annotations

import math
from typing import Any

from weightdecay.errors import UserError

__all__ = ["is_number", "is_whole", "positive", "nonnegative", "fraction", "positive_int"]


def is_number(value: Any, *, finite: bool = True) -> bool:
    """Whether ``value`` is a real number (an ``int`` or ``float``, not a ``bool``), finite unless ``finite=False``.

    >>> is_number(0.5), is_number(True), is_number(float("inf")), is_number(float("inf"), finite=False)
    (True, False, False, True)
    """
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (not finite or math.isfinite(value)))


def is_whole(value: Any, minimum: int | None = None) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``), at least ``minimum`` when given.

    >>> is_whole(3, minimum=1), is_whole(0, minimum=1), is_whole(True), is_whole(2.0)
    (True, False, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)


def positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else a :class:`UserError`."""
    if not is_number(value) or value <= 0:
        raise UserError(f"Invalid {name}: {value!r}; give a finite number > 0")
    return float(value)


def nonnegative(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0, else a :class:`UserError`."""
    if not is_number(value) or value < 0:
        raise UserError(f"Invalid {name}: {value!r}; give a finite number >= 0")
    return float(value)


def fraction(name: str, value: Any, *, include_one: bool = False) -> float:
    """``value`` as a float if it is in [0, 1) (or [0, 1] with ``include_one``), else a :class:`UserError`."""
    if not is_number(value, finite=False) or not (0 <= value <= 1 if include_one else 0 <= value < 1):
        raise UserError(f"Invalid {name}: {value!r}; give a number in [0, 1{']' if include_one else ')'}")
    return float(value)


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is a whole number > 0, else a :class:`UserError`."""
    if not is_whole(value, minimum=1):
        raise UserError(f"Invalid {name}: {value!r}; give a positive whole number")
    return value
