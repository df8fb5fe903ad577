"""Argument checks shared by the schedules and the rules: a bad number raises :class:`UserError` naming the
argument and the fix."""

from __future__ import annotations

import math
from typing import Any

from weightdecay.errors import UserError


def positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else a :class:`UserError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"Invalid {name}: {value!r}; give a finite number > 0")
    return float(value)


def nonnegative(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0, else a :class:`UserError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserError(f"Invalid {name}: {value!r}; give a finite number >= 0")
    return float(value)


def fraction(name: str, value: Any, *, include_one: bool = False) -> float:
    """``value`` as a float if it is in [0, 1) (or [0, 1] with ``include_one``), else a :class:`UserError`."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not (0 <= value <= 1 if include_one else 0 <= value < 1)):
        raise UserError(f"Invalid {name}: {value!r}; give a number in [0, 1{']' if include_one else ')'}")
    return float(value)


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is a whole number > 0, else a :class:`UserError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"Invalid {name}: {value!r}; give a positive whole number")
    return value
