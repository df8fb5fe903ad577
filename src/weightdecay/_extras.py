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

# This package's folder: under a clone's src/ (as ``make install`` sets it up) or in a site-packages folder.
_PACKAGE = Path(__file__).resolve().parent


def install_line(extra: str, package_dir: str | Path | None = None) -> str:
    """The pip command that adds the optional dependencies ``extra`` to the package as it is installed here.

    From a clone (the package imported from its ``src/`` folder under a pyproject.toml that names it),
    ``pip install -e 'CLONE[extra]'`` (``'.[extra]'`` inside it): ``pip install 'weightdecay[extra]'`` there would
    fetch the released package from the registry over the clone's. Otherwise (an installed package) the latter.

    Args:
        extra: the name in pyproject.toml's ``[project.optional-dependencies]`` (``postgres``, ``dashboard``, ...).
        package_dir: the ``weightdecay`` package's folder; default the one this module was imported from.

    >>> install_line("dashboard", "/usr/lib/python3/site-packages/weightdecay")
    "pip install 'weightdecay[dashboard]'"
    """
    package = Path(package_dir).resolve() if package_dir is not None else _PACKAGE
    clone = package.parent.parent
    try:
        from_clone = package.parent.name == "src" and 'name = "weightdecay"' in (
            clone / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        from_clone = False
    if not from_clone:
        return f"pip install 'weightdecay[{extra}]'"
    if clone == Path.cwd().resolve():
        return f"pip install -e '.[{extra}]'"
    return f"pip install -e '{clone}[{extra}]'"


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
