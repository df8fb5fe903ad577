"""Errors that mean "the input is wrong, here is how to fix it".

The command line catches :class:`UserError` and prints its message on one line with exit status 2; anything
else is a bug and keeps its traceback. Subclassing ``ValueError`` keeps library callers' ``except ValueError``
working.
"""

from __future__ import annotations

from pathlib import Path


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


def install_extra(extra: str, package_dir: str | Path | None = None) -> str:
    """The pip command that adds the optional dependencies ``extra`` to the package as it is installed here.

    From a clone (the package imported from its ``src/`` folder, as ``make install`` sets it up),
    ``pip install -e 'CLONE[extra]'`` (``'.[extra]'`` inside it): ``pip install 'weightdecay[extra]'`` there would
    fetch the released package from the registry over the clone's. Otherwise (an installed package) the latter.

    Args:
        extra: the name in pyproject.toml's ``[project.optional-dependencies]`` (``dashboard``, ``monitor``, ...).
        package_dir: the ``weightdecay`` package's folder; default the one this module was imported from.

    >>> install_extra("dashboard", "/usr/lib/python3/site-packages/weightdecay")
    "pip install 'weightdecay[dashboard]'"
    """
    package = Path(package_dir if package_dir is not None else Path(__file__).parent).resolve()
    clone = package.parent.parent
    if package.parent.name != "src" or not (clone / "pyproject.toml").is_file():
        return f"pip install 'weightdecay[{extra}]'"
    if clone == Path.cwd().resolve():
        return f"pip install -e '.[{extra}]'"
    return f"pip install -e '{clone}[{extra}]'"
