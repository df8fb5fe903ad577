"""`pip install -e .` from a clone: the package metadata builds without setuptools' deprecation warnings."""

from __future__ import annotations

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
