"""A missing optional dependency (the PostgreSQL driver, optuna-dashboard, tensorboard) is one line naming the
install, right for a clone (its own folder, editable) and for an installed package (the extra on PyPI)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, cli_env, write_config
from weightdecay import _extras
from weightdecay.errors import UserError

# What each extra of pyproject.toml must install for the feature that asks for it.
NEEDED = {"postgres": "psycopg", "dashboard": "optuna-dashboard", "monitor": "tensorboard"}


def test_each_extra_named_by_an_install_line_installs_the_package_it_names():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, package in NEEDED.items():
        assert any(dep.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip() == package
                   for dep in extras[extra]), (extra, extras[extra])


def test_the_install_line_names_the_clone_or_the_package_on_pypi(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _extras.install_line("postgres") == f"pip install -e '{ROOT}[postgres]'"  # this checkout is a clone
    monkeypatch.chdir(ROOT)
    assert _extras.install_line("postgres") == "pip install -e '.[postgres]'"  # inside it
    monkeypatch.setattr(_extras, "_PACKAGE", tmp_path / "weightdecay")  # a site-packages folder: no pyproject above
    assert _extras.install_line("postgres") == "pip install 'weightdecay[postgres]'"
    with pytest.raises(UserError, match=r"^X needs the no_such_module_xyz package, which is not installed: pip "
                                        r"install 'weightdecay\[monitor\]'$"):
        _extras.require("no_such_module_xyz.sub", extra="monitor", needed_for="X")


def _without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    # The command as a machine without MODULE runs it: importing it fails as a missing package does. It runs
    # outside the clone, so the install line names the clone's folder (inside it, '.[extra]').
    code = (f"import sys; sys.modules[{module!r}] = None\nfrom weightdecay.cli import main\n"
            f"sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=240,
                          cwd=cwd)


@pytest.mark.parametrize("module, argv, line", [
    ("psycopg", ["sweep", "{cfg}", "--out", "{out}", "--storage", "postgresql://u@127.0.0.1:9/db"],
     "--storage postgresql+psycopg://… (PostgreSQL) needs the psycopg package, which is not installed: "
     f"pip install -e '{ROOT}[postgres]'"),
    ("psycopg", ["report", "postgresql://u@127.0.0.1:9/db"],
     "--storage postgresql+psycopg://… (PostgreSQL) needs the psycopg package"),
    ("optuna_dashboard", ["dashboard", "{out}"],
     f"weightdecay dashboard needs the optuna_dashboard package, which is not installed: "
     f"pip install -e '{ROOT}[dashboard]'"),
])
def test_a_missing_optional_dependency_is_one_line_naming_the_install(tmp_path, module, argv, line):
    cfg = write_config(tmp_path / "s.toml", 'task = "ridge"\n[grid]\nlr = [0.1]\nweight_decay = [0.1]\n'
                                            '[[arms]]\nname = "a"\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.json").write_text('{"name": "s", "storage": "journal:%s"}' % (tmp_path / "j.journal"))
    done = _without(module, *[a.format(cfg=cfg, out=tmp_path / "out") for a in argv], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and line in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_tensorboard_export_without_tensorboard_is_one_line(tmp_path):
    code = ("import sys; sys.modules['tensorboard'] = None\nfrom weightdecay.monitors import write_tensorboard\n"
            "from weightdecay.errors import UserError\ntry:\n    write_tensorboard([], sys.argv[1])\n"
            "except UserError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "tb")], env=cli_env(), capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert done.stdout == (f"TensorBoard export needs the tensorboard package, which is not installed: "
                           f"pip install -e '{ROOT}[monitor]'\n"), done.stdout + done.stderr
