"""Optional dependencies: import one, or say in one line what to install, for a clone and an installed package.

The package's extras (pyproject.toml) are ``postgres`` (the PostgreSQL driver), ``dashboard`` (optuna-dashboard)
and ``monitor`` (tensorboard). From a clone the install line names the clone's own folder in editable mode
(``pip install -e '/path/to/clone[postgres]'``), so it installs what that checkout declares; from an installed
package it names the package on PyPI (``pip install 'weightdecay[postgres]'``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from weightdecay.errors import UserError

__all__ = ["require", "install_line"]

# The project folder when the package runs from a clone (src/weightdecay/ under a pyproject.toml that names it).
_CLONE = Path(__file__).resolve().parents[2]


def install_line(extra: str) -> str:
    """The pip command that installs an extra of this package, from a clone or from PyPI.

    >>> install_line("postgres").startswith("pip install")
    True
    """
    pyproject = _CLONE / "pyproject.toml"
    try:
        from_clone = 'name = "weightdecay"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        from_clone = False
    if from_clone:
        return f"pip install -e '{_CLONE}[{extra}]'"
    return f"pip install 'weightdecay[{extra}]'"


def require(module: str, *, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, or raise a :class:`UserError` naming what needs it and the line that installs it.

    >>> require("json", extra="none", needed_for="reading JSON").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UserError(f"{needed_for} needs the {top} package, which is not installed: {install_line(extra)}") \
            from None
