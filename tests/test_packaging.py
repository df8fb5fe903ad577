"""`make install` and `pip install -e .` from a clone: no deprecation warnings from the build, only pip's errors."""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import setuptools
from packaging.requirements import Requirement
from packaging.version import Version
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[1]
SPDX_SINCE = Version("77.0.0")  # the first setuptools that reads `license = "MIT"` (an SPDX expression)


def test_pyproject_builds_without_deprecation_warnings():
    # The step that printed "`project.license` as a TOML table is deprecated" three times per install.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"


def test_build_isolation_never_picks_a_setuptools_that_rejects_the_license_string():
    # pip builds in an isolated environment with a setuptools from the registry, within build-system.requires.
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    spec = next(Requirement(r).specifier for r in requires if Requirement(r).name == "setuptools")
    assert not spec.contains("76.1.0") and spec.contains(str(SPDX_SINCE))
    assert Version(setuptools.__version__) >= SPDX_SINCE  # the test above ran on a setuptools the floor admits


def test_every_make_install_step_prints_only_pip_errors():
    # At -q pip still prints a WARNING per configured index that lacks a package: on a machine whose pip.conf
    # lists extra file:// indexes, `make demo` printed 29 of them before the sweep's first line.
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PIP_INSTALL\s*:=\s*\$\(PIP\) install -qq$", makefile, re.MULTILINE)
    recipes = [line.strip() for line in makefile.splitlines() if line.startswith("\t")]
    installs = [line for line in recipes if "pip install" in line or "$(PIP) install" in line]
    assert not installs, installs  # each goes through $(PIP_INSTALL)
    assert sum("$(PIP_INSTALL)" in line for line in recipes) >= 3  # pip, torch, the package
