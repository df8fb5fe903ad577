"""A live view of a sweep: `weightdecay dashboard` serves optuna-dashboard on the sweep's own storage (journal,
SQLite, PostgreSQL), and a real headless Chromium sees the study and its trials."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from conftest import free_port, start_cli, wait_for, write_instant_sweep
from devtools import DevTools

pytest.importorskip("optuna_dashboard")  # the test extra installs it

def _get(url: str) -> dict | None:
    try:
        return json.load(urllib.request.urlopen(url, timeout=5))
    except (OSError, ValueError):
        return None


def _text_of(cdp: DevTools, url: str, wanted: list[str], timeout: float = 60) -> str:
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

    monkeypatch.syspath_prepend(str(tmp_path))
    storage = {"journal": None, "sqlite": f"sqlite:///{tmp_path / 'sweeps.db'}"}.get(request.param)
    if request.param == "postgresql":
        storage = request.getfixturevalue("postgres_url")
    config = load_config(write_instant_sweep(tmp_path, "dash"))
    summary = run_sweep(config, out_dir=tmp_path / "run", storage=storage, jobs=1, quiet=True)
    assert summary.complete, summary.line()
    return str(tmp_path / "run") if storage is None else storage


@pytest.mark.needs("chromium")
def test_dashboard_serves_the_study_and_its_trials_in_chromium(sweep_source, chromium_page):
    port = free_port()
    server = start_cli("dashboard", sweep_source, "--port", str(port))
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

        cdp = chromium_page("Page", "Runtime")
        listing = _text_of(cdp, f"{base}/dashboard/", ["dash/a"])
        assert "dash/a" in listing, listing[:2000]
        table = _text_of(cdp, f"{base}/dashboard/studies/{study_id}/trials", ["weight_decay", "lr", "seed"])
        assert all(w in table for w in ("weight_decay", "lr", "seed")), table[:2000]
        assert "Complete" in table or "COMPLETE" in table, table[:2000]
    finally:
        server.kill()
        server.wait(timeout=30)


def test_dashboard_refuses_a_missing_source(tmp_path):
    from conftest import run_cli

    missing = run_cli("dashboard", str(tmp_path / "nothing.journal"))
    assert missing.returncode == 2 and "no such folder or journal file" in missing.stderr, missing.stderr
