"""Errors that mean "the input is wrong, here is how to fix it".

The command line catches :class:`UserError` and prints its message on one line with exit status 2; anything
else is a bug and keeps its traceback. Subclassing ``ValueError`` keeps library callers' ``except ValueError``
working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from a user: the message names the problem and the fix."""


class ConfigError(UserError):
    """A sweep or experiment configuration that cannot run (raised before any trial starts)."""


class DataNotFoundError(UserError):
    """A dataset is not on this machine; the message says how to install it or point to it."""


class UserTypeError(UserError, TypeError):
    """An argument of the wrong type (a string where a number belongs): caught as TypeError or as ValueError."""


class ShrinkTooLargeError(UserError):
    """A step whose decoupled shrink ``s_t >= 1`` would zero or flip the weights; refused before it is taken.

    Training loops that sweep settings (the built-in tasks) record such a run as diverged: the setting cannot train.
    """
