"""``weightdecay monitor-report``: a self-contained page whose flags are the summary's, its figures drawn from
the log, loaded by a real headless Chromium without a network request or an error."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest

import weightdecay
from conftest import run_cli
from test_monitor import _layernorm_run
from test_report import _png_size
from weightdecay.cli import main
from weightdecay.monitors import read_records, summarize


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.refs, self.scripts, self.flags, self._in_flag = [], [], 0, [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        if tag == "script":
            self.scripts += 1
        for key in ("href", "src"):
            if key in a and not a[key].startswith("data:"):
                self.refs.append(a[key])
        if tag == "li" and a.get("class") == "flag":
            self._in_flag = True
            self.flags.append("")

    def handle_endtag(self, tag):
        if tag == "li":
            self._in_flag = False

    def handle_data(self, data):
        if self._in_flag:
            self.flags[-1] += data


@pytest.fixture(scope="module")
def monitor_log(tmp_path_factory):
    # The end-of-schedule rise under torch decay: one flag the page must put on top.
    monitor = _layernorm_run(lambda ps: weightdecay.SGDW(ps, lr=0.4, weight_decay=0.2), steps=2000,
                             schedule=lambda k: max(0.05, 1 - k / 2000), every=10)
    path = tmp_path_factory.mktemp("monitor") / "run.jsonl"
    monitor.to_jsonl(path)
    return path


@pytest.fixture(scope="module")
def page(monitor_log):
    out = monitor_log.parent / "page.html"
    done = run_cli("monitor-report", str(monitor_log), "-o", str(out), "--figures", str(monitor_log.parent / "figs"))
    assert done.returncode == 0, done.stderr
    return out, done


def test_monitor_report_command_writes_a_self_contained_page_with_the_flags(monitor_log, page):
    out, done = page
    summary = summarize(read_records(monitor_log))
    assert [f.kind for f in summary.flags] == ["gradient-norm-rise"]
    figures = [monitor_log.parent / "figs" / f"run-{name}.png" for name in ("layers", "shrink")]
    assert done.stdout.splitlines()[:4] == [str(out), *map(str, figures), "1 flag over 2000 steps"]
    page = _Page()
    page.feed(out.read_text())
    assert page.scripts == 0 and page.refs == []  # nothing to fetch
    assert page.flags == summary.sentences
    assert len(page.imgs) == 2
    for src, figure in zip(page.imgs, figures):
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        width, height = _png_size(png)
        assert width > 300 and height > 150
        assert figure.read_bytes() == png


def test_monitor_report_of_a_missing_or_wrong_log_is_one_line(tmp_path, capsys):
    assert main(["monitor-report", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No monitor log" in err
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["monitor-report", str(tmp_path / "bad.jsonl")]) == 2
    assert "is not JSON" in capsys.readouterr().err


@pytest.mark.needs("chromium")
def test_monitor_page_renders_in_headless_chromium_without_requests(page, tmp_path, chromium_page):
    out = page[0]
    cdp = chromium_page("Page", "Runtime", "Log", "Network")
    cdp.call("Page.navigate", url=out.resolve().as_uri())
    cdp.wait_event("Page.loadEventFired")
    check = cdp.call("Runtime.evaluate", returnByValue=True, expression="""(() => {
        const imgs = [...document.querySelectorAll('img')].map(e => {
            const r = e.getBoundingClientRect();
            return {complete: e.complete, natural: e.naturalWidth * e.naturalHeight, width: r.width};
        });
        const flags = document.getElementById('flags').getBoundingClientRect().top;
        const firstFigure = document.querySelector('figure').getBoundingClientRect().top;
        return {title: document.title, imgs, flagsFirst: flags < firstFigure,
                flagKinds: [...document.querySelectorAll('li.flag')].map(e => e.dataset.kind)};
    })()""")["result"]["value"]
    shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    (tmp_path / "page.png").write_bytes(base64.b64decode(shot["data"]))
    requests = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"]
    errors = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    # The page itself, and its inline data: images; nothing from a network
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    assert check["title"] == "weightdecay monitor run" and check["flagsFirst"]
    assert check["flagKinds"] == ["gradient-norm-rise"]
    assert len(check["imgs"]) == 2 and all(i["complete"] and i["natural"] > 0 and i["width"] > 300
                                           for i in check["imgs"])
    assert _png_size((tmp_path / "page.png").read_bytes())[1] > 800
