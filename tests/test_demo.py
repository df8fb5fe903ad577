"""`make demo`: the configs it runs, and `weightdecay sweep A.toml B.toml` writing one page for both sweeps."""

from __future__ import annotations

import math
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

from conftest import run_cli, write_config
from conftest import run_cli_in_process as run_here
from weightdecay.decay import shrink
from weightdecay.reports.html import OWN_MODEL
from weightdecay.sweeps import load_config

ROOT = Path(__file__).resolve().parents[1]


def _demo_configs() -> list[Path]:
    """The config files the Makefile's `demo` recipe passes to `weightdecay sweep`."""
    # The recipe's sweep line (the line before it only checks the system: scripts/setup_system.sh demo).
    recipe = re.search(r"^demo:.*\n(?:\t.*\n)*?\t(\S*weightdecay sweep .+)$", (ROOT / "Makefile").read_text(),
                       re.MULTILINE).group(1)
    words = shlex.split(recipe)
    assert words[0].endswith("weightdecay") and words[1] == "sweep", recipe  # one command, no shell chain
    return [ROOT / w for w in words[2:] if w.endswith(".toml")]


def test_demo_runs_ridge_and_a_real_network_each_with_torch_and_paper():
    configs = [load_config(p) for p in _demo_configs()]
    assert [c.task for c in configs] == ["ridge", "digits-mlp"]
    assert len({c.name for c in configs}) == 2  # each goes into its own OUT/NAME folder
    for config in configs:
        assert {a.decay for a in config.arms} == {"torch", "paper"} and config.metric == "val_loss"


def test_demo_grids_pair_every_paper_cell_with_its_torch_twin():
    # paper(λ) ≡ torch(λ/lr) under a constant schedule: the twin of a paper cell must be a torch grid point, so
    # the two arms' λ* columns differ by exactly lr and their slopes by exactly 1.
    ridge = load_config(_demo_configs()[0])
    assert ridge.schedule == "constant"
    torch_arm, paper_arm = sorted(ridge.arms, key=lambda a: a.decay != "torch")
    low, high = min(torch_arm.weight_decay), max(torch_arm.weight_decay)
    paired = 0
    for lr in ridge.lr:
        for wd in paper_arm.weight_decay:
            twin = shrink("paper", wd, lr=lr, peak_lr=lr) / lr  # the torch λ with the same per-step shrink
            if low * (1 - 1e-4) <= twin <= high * (1 + 1e-4):  # where the two grids overlap
                assert any(math.isclose(twin, t, rel_tol=1e-4) for t in torch_arm.weight_decay), (lr, wd, twin)
                paired += 1
    assert paired >= len(ridge.lr) * len(paper_arm.weight_decay) // 2


TINY = """
    name = "{name}"
    task = "ridge"
    epochs = 2
    schedule = "constant"
    seeds = [0]

    [extra]
    n = 40
    d = 50

    [grid]
    lr = [0.001, 0.01]
    weight_decay = [0.1, 1.0]

    [[arms]]
    name = "torch"
    decay = "torch"
"""


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.links, self.imgs, self._in_h2 = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        self._in_h2 = tag == "h2"
        if tag == "a":
            self.links.append(dict(attrs)["href"])
        self.imgs += tag == "img"

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def test_sweep_of_two_configs_writes_one_page_with_both(tmp_path):
    first = write_config(tmp_path / "a.toml", TINY.format(name="first"))
    second = write_config(tmp_path / "b.toml", TINY.format(name="second"))
    out = tmp_path / "out"
    result = run_cli("sweep", str(first), str(second), "--out", str(out), "--jobs", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"report (all 2 sweeps): {out / 'report.html'}" in result.stdout
    text = (out / "report.html").read_text()
    page = _Page()
    page.feed(text)
    assert [h.split(":")[0] for h in page.h2] == ["first", "second"] and page.imgs == 4  # heatmaps + λ* each
    assert text.index(OWN_MODEL) < text.index("<h2")  # the sentence on top, before any sweep
    for link in page.links:  # each sweep's own page and figures, beside the summary
        assert (out / link).is_file(), link
    assert {"first/report.html", "second/report.html"} <= set(page.links)
    own = (out / "first" / "report.html").read_text()  # a built-in task's own page says it too, under its title
    assert own.index("</h1>") < own.index(OWN_MODEL) < own.index("<h2")

    # The same page from the finished folders; two configs with one name are refused before any trial.
    again = run_here("report", str(out / "first"), str(out / "second"), "-o", str(tmp_path / "again.html"))
    assert again.returncode == 0, again.stderr and (tmp_path / "again.html").is_file()
    same = run_cli("sweep", str(first), str(first), "--out", str(tmp_path / "dup"))
    assert same.returncode == 2 and "each sweep needs its own name" in same.stderr
    assert not (tmp_path / "dup").exists()


CORNER = """
    name = "corner"
    task = "ridge"
    epochs = 2
    schedule = "constant"
    seeds = [0, 1]

    [extra]
    n = 40
    d = 50

    [grid]
    lr = [0.01, 0.1]
    weight_decay = [1.0, 10.0, 100.0]

    [[arms]]
    name = "torch"
    decay = "torch"
"""


def test_a_grid_whose_corner_diverges_says_so_in_one_line(tmp_path):
    # s_t = lr·λ reaches 1 at (0.01, 100), (0.1, 10), (0.1, 100): the optimizer refuses those steps and the runs
    # count as diverged, as the demo's corners do. That is expected of a grid: one line, not one warning per run.
    config = write_config(tmp_path / "corner.toml", CORNER)
    result = run_cli("sweep", str(config), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "run stopped as diverged" not in result.stderr
    counted = [line for line in result.stdout.splitlines() if "diverged:" in line]
    assert counted == ["  diverged: 6 of 12 runs (× on the heatmaps), all in the grid's large-lr, large-λ corner, as "
                       "expected: the step or the shrink is too large"]
    assert len((result.stdout + result.stderr).splitlines()) <= 24  # the sweep's whole output fits on a screen
