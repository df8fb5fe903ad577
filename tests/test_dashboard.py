"""A live view of a sweep: `weightdecay dashboard` serves optuna-dashboard on the sweep's own storage (journal,
SQLite, PostgreSQL), and a real headless Chromium sees the study and its trials."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import start_cli, wait_for, write_config
from test_report import CHROMIUM, CHROMIUM_FLAGS, _DevTools

pytest.importorskip("optuna_dashboard")  # the test extra installs it

INSTANT = '''
from weightdecay.tasks import Task, TrainResult, register_task

class Instant(Task):
    name = "instant"
    metric = "loss"

    def run(self, config, progress=None):
        loss = config.lr * config.weight_decay
        return TrainResult(metrics={"loss": loss}, history=[{"epoch": 1, "loss": loss}])

register_task(Instant(), replace_existing=True)
'''

SWEEP = """
    name = "dash"
    task = "instant"
    imports = ["instant_dash_plugin"]
    [grid]
    lr = [0.1, 1.0]
    weight_decay = [0.1, 1.0]
    [[arms]]
    name = "a"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict | None:
    try:
        return json.load(urllib.request.urlopen(url, timeout=5))
    except (OSError, ValueError):
        return None


def _text_of(cdp: _DevTools, url: str, wanted: list[str], timeout: float = 60) -> str:
    """Navigate, then poll the rendered page's text (the dashboard is a script-built page) until it has ``wanted``."""
    cdp.call("Page.navigate", url=url)
    text = ""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = cdp.call("Runtime.evaluate", returnByValue=True,
                        expression="document.body ? document.body.innerText : ''")["result"]["value"]
        if all(w in text for w in wanted):
            return text
        time.sleep(0.5)
    return text


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def sweep_source(request, tmp_path, monkeypatch):
    """A finished 4-trial sweep on each kind of storage; the dashboard's SOURCE argument for it."""
    from weightdecay.sweeps import load_config, run_sweep

    (tmp_path / "instant_dash_plugin.py").write_text(INSTANT)
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = {"journal": None, "sqlite": f"sqlite:///{tmp_path / 'sweeps.db'}"}.get(request.param)
    if request.param == "postgresql":
        storage = request.getfixturevalue("postgres_url")
    config = load_config(write_config(tmp_path / "dash.toml", SWEEP))
    summary = run_sweep(config, out_dir=tmp_path / "run", storage=storage, jobs=1, quiet=True)
    assert summary.complete, summary.line()
    return str(tmp_path / "run") if storage is None else storage


@pytest.mark.needs("chromium")
def test_dashboard_serves_the_study_and_its_trials_in_chromium(sweep_source, tmp_path):
    port = _free_port()
    server = start_cli("dashboard", sweep_source, "--port", str(port))
    browser = None
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _get(f"{base}/api/studies") is not None, timeout=90), server.stderr.read() if \
            server.poll() is not None else "dashboard did not answer"
        studies = _get(f"{base}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["dash/a"]
        study_id = studies[0]["study_id"]
        detail = _get(f"{base}/api/studies/{study_id}?after=0")
        trials = detail["trials"]
        # The trials are the grid's, with readable params and the metrics as user attributes.
        assert len(trials) == 4, trials
        params = [{p["name"]: float(p["param_external_value"]) for p in t["params"]} for t in trials]
        assert sorted((p["lr"], p["weight_decay"], p["seed"]) for p in params) == [
            (lr, wd, 0.0) for lr in (0.1, 1.0) for wd in (0.1, 1.0)]
        attrs = {a["key"]: a["value"] for a in trials[0]["user_attrs"]}
        assert {"metrics", "history", "diverged", "seconds"} <= set(attrs)
        values = sorted(t["values"][0] for t in trials)
        assert values == pytest.approx(sorted(lr * wd for lr in (0.1, 1.0) for wd in (0.1, 1.0)))

        profile = tmp_path / "profile"
        browser = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=0", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        assert wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=60)
        devtools = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json/list", timeout=10))
        cdp = _DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime"):
            cdp.call(f"{domain}.enable")
        listing = _text_of(cdp, f"{base}/dashboard/", ["dash/a"])
        assert "dash/a" in listing, listing[:2000]
        table = _text_of(cdp, f"{base}/dashboard/studies/{study_id}/trials", ["weight_decay", "lr", "seed"])
        assert all(w in table for w in ("weight_decay", "lr", "seed")), table[:2000]
        assert "Complete" in table or "COMPLETE" in table, table[:2000]
    finally:
        if browser is not None:
            browser.kill()
            browser.wait(timeout=30)
        server.kill()
        server.wait(timeout=30)


def test_dashboard_refuses_a_missing_source(tmp_path):
    from conftest import run_cli

    missing = run_cli("dashboard", str(tmp_path / "nothing.journal"))
    assert missing.returncode == 2 and "no such folder or journal file" in missing.stderr, missing.stderr
