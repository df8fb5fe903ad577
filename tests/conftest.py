"""Shared fixtures: a throwaway PostgreSQL server, the sweep command as a subprocess, small sweep configs."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def system_missing(reason: str) -> None:
    """A system piece the test needs is not installed: skip with the reason, or, under CI (``CI=true``), fail with
    it, so that a green CI run can never hide a missing browser, database or data set."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} [CI=true: a missing system piece fails instead of skipping]", pytrace=False)
    pytest.skip(reason)


def _fashion_mnist_present() -> bool:
    from weightdecay.data.fashion_mnist import fashion_mnist_dir

    return (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").is_file()


# `@pytest.mark.needs("PIECE")`: what is checked, and the reason given when it is missing.
SYSTEM_PIECES = {
    "chromium": (lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
                 "chromium not installed (`make test` installs it: scripts/setup_system.sh test)"),
    "fashion-mnist": (_fashion_mnist_present,
                      "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; `make test` does)"),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(piece): the test needs a system piece (%s); missing, it skips, "
                            "or fails under CI=true" % ", ".join(SYSTEM_PIECES))


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        present, reason = SYSTEM_PIECES[mark.args[0]]
        if not present():
            system_missing(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server on 127.0.0.1 and a free port, in a temp folder, stopped and deleted afterwards.

    Debian's server binaries (``make system`` installs them) refuse to run as root, so as root the cluster
    belongs to the ``postgres`` system user and every server command runs through ``runuser``.
    """
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        system_missing("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
                       "install them with `make system` (apt-get install postgresql)")
    bindir = Path(initdb[-1]).parent
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            system_missing("running as root without runuser: cannot start PostgreSQL as a non-root user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            system_missing("running as root and no 'postgres' user to own the test cluster")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="wd-pg-"))
    if as_user:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", "start")
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr.decode()}\n{log}") from None
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def cli_env(extra_path: str | Path | None = None) -> dict[str, str]:
    """The environment for running ``python -m weightdecay.cli`` from a checkout (``src`` on the path)."""
    env = dict(os.environ)
    paths = [str(ROOT / "src")] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def start_cli(*args: str, extra_path: str | Path | None = None, **kw) -> subprocess.Popen:
    """Start ``weightdecay ARGS`` as a subprocess in its own session (so a test can kill its whole group)."""
    return subprocess.Popen([sys.executable, "-m", "weightdecay.cli", *args], env=cli_env(extra_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kw)


def run_cli(*args: str, timeout: float = 240, extra_path: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``weightdecay ARGS`` to completion and return its exit status and output."""
    return subprocess.run([sys.executable, "-m", "weightdecay.cli", *args], env=cli_env(extra_path),
                          capture_output=True, text=True, timeout=timeout)


def run_cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """``weightdecay ARGS`` through ``weightdecay.cli.main`` in this process, returned as :func:`run_cli` returns
    it (argparse's own exit included), without the seconds a fresh interpreter spends importing torch. Output
    of the command itself only: a sweep's worker processes write to this process's file descriptors."""
    from weightdecay.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # as the interpreter exits on it: a number, None for 0, else printed and 1
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if code == 1 and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
    return subprocess.CompletedProcess(["weightdecay", *args], code, out.getvalue(), err.getvalue())


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


RIDGE_SWEEP = """
    name = "{name}"
    task = "ridge"
    epochs = {epochs}
    schedule = "constant"
    seeds = [0, 1]

    [extra]
    n = 100
    d = 200

    [grid]
    lr = {{ min = 1e-3, max = 1e-1, num = 3 }}
    weight_decay = {{ min = 1e-2, max = 1.0, num = 3 }}

    [[arms]]
    name = "torch"
    decay = "torch"

    [[arms]]
    name = "paper"
    decay = "paper"
    weight_decay = {{ min = 1e-4, max = 1e-2, num = 3 }}
"""


@pytest.fixture
def ridge_config(tmp_path):
    """A small real ridge sweep: 2 arms × 3 lr × 3 λ × 2 seeds = 36 trials (a few seconds)."""

    def make(name: str = "ridge-small", epochs: int = 3) -> Path:
        return write_config(tmp_path / f"{name}.toml", RIDGE_SWEEP.format(name=name, epochs=epochs))

    return make


@pytest.fixture(scope="session")
def ridge_sweep_dir(tmp_path_factory):
    """A finished small ridge sweep (run once per session, shared by the report tests)."""
    from weightdecay.sweeps import load_config, run_sweep

    base = tmp_path_factory.mktemp("ridge-sweep")
    config = write_config(base / "sweep.toml", RIDGE_SWEEP.format(name="ridge-report", epochs=4))
    summary = run_sweep(load_config(config), out_dir=base / "run", jobs=2, quiet=True)
    assert summary.complete, summary.line()
    return base / "run"


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def chromium_page(tmp_path):
    """``cdp = chromium_page("Page", "Runtime")``: a headless Chromium's blank page over the DevTools protocol
    (tests/devtools.py), those domains enabled; every browser it started is killed when the test ends. Mark the test
    ``@pytest.mark.needs("chromium")``."""
    import json
    import urllib.request

    from devtools import CHROMIUM, CHROMIUM_FLAGS, DevTools

    browsers: list[subprocess.Popen] = []

    def open_page(*domains: str) -> DevTools:
        profile = tmp_path / f"chromium-profile-{len(browsers)}"
        browsers.append(subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                          "--remote-debugging-port=0", "about:blank"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        port_file = profile / "DevToolsActivePort"
        assert wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=60)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        cdp = DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        for domain in domains:
            cdp.call(f"{domain}.enable")
        return cdp

    yield open_page
    for browser in browsers:
        browser.kill()
        browser.wait(timeout=30)


INSTANT_TASK = '''
from weightdecay.tasks import Task, TrainResult, register_task

class Instant(Task):
    name = "instant"
    metric = "loss"

    def run(self, config, progress=None):
        loss = config.lr * config.weight_decay
        return TrainResult(metrics={"loss": loss}, history=[{"epoch": 1, "loss": loss}])

register_task(Instant(), replace_existing=True)
'''


def write_instant_sweep(folder: Path, name: str) -> Path:
    """A 2×2 grid sweep, one arm "a", of the ``instant`` task (its loss is lr·λ, no training), for the tests of the
    sweep machinery; its plugin module ``instant_plugin`` is written beside the config, to import from ``folder``."""
    (folder / "instant_plugin.py").write_text(INSTANT_TASK)
    return write_config(folder / f"{name}.toml", f"""
        name = "{name}"
        task = "instant"
        imports = ["instant_plugin"]
        [grid]
        lr = [0.1, 1.0]
        weight_decay = [0.1, 1.0]
        [[arms]]
        name = "a"
    """)


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, restored after: small models on a shared 2-core machine run faster on one
    thread than on two fighting for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
