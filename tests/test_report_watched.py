"""A sweep with ``monitor_every``: each trial's monitor log beside it, a small summary in the storage, and the
report drawing each arm's best run from that log (the monitor page's figure). Without ``monitor_every`` the report
has none of this (tests/test_report.py's ridge sweep: three figures, no section)."""

from __future__ import annotations

import base64
import json

import optuna
import pytest
import torch

import test_monitor_report
from conftest import RIDGE_SWEEP, write_config
from weightdecay import Monitor
from weightdecay.reports.analysis import analyze
from weightdecay.monitors import read_records, summarize
from weightdecay.reports import write_report
from weightdecay.reports.figures.layers import draw_layers
from weightdecay.reports.style import render
from weightdecay.reports.watched_runs import LAYERS_PER_RUN, watched_best_runs, watched_figures, watched_section
from weightdecay.sweeps import load_config, load_results, open_storage, run_sweep
from weightdecay.sweeps.study import study_name
from weightdecay.sweeps.workloads.task import STORED_LAYERS
from weightdecay.tasks import get_task

EVERY = 2
WATCHED = (RIDGE_SWEEP.format(name="ridge-watched", epochs=2).replace("seeds = [0, 1]", "seeds = [0]")
           .replace('schedule = "constant"', f'schedule = "cosine"\n    batch_size = 20\n    monitor_every = {EVERY}')
           .replace("num = 3", "num = 2"))


class _Page(test_monitor_report._Page):
    """The monitor page's parser (images, references, scripts, flags), also naming each image's figure."""

    def __init__(self):
        super().__init__()
        self.figures = []

    def handle_starttag(self, tag, attrs):
        if tag == "figure":
            self.figures.append(dict(attrs)["id"])
        super().handle_starttag(tag, attrs)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """A finished 2-arm × 2 lr × 2 λ ridge sweep, every trial watched by Monitor(every=2), and its report."""
    base = tmp_path_factory.mktemp("watched")
    config = load_config(write_config(base / "sweep.toml", WATCHED))
    summary = run_sweep(config, out_dir=base / "run", jobs=1, quiet=True)
    assert summary.complete, summary.line()
    results = load_results(base / "run")
    analysis = analyze(results, n_boot=20)
    return config, results, analysis, write_report(results, analysis, base / "run" / "report.html")


def test_each_trial_keeps_its_log_beside_it_and_a_small_summary_in_the_storage(watched):
    config, results, analysis, _ = watched
    assert len(results.records) == 8
    for r in results.records:
        # the log is the monitor's records of that very run: the same run trained again here, watched by hand
        by_hand = Monitor(every=EVERY)
        get_task("ridge").run(config.train_config(config.arm(r.arm), lr=r.lr, weight_decay=r.weight_decay,
                                                  seed=r.seed), monitors=[by_hand])
        logged = read_records(results.run_dir / r.monitor_log)
        assert r.monitor_log.startswith(f"trials/{r.arm}/") and r.monitor_log.endswith("/monitor.jsonl.gz")
        assert [(x["step"], x["name"]) for x in logged] == [(x["step"], x["name"]) for x in by_hand.records]
        for got, want in zip(logged, by_hand.records):
            assert got == {k: pytest.approx(v, rel=1e-6) if isinstance(v, float) else v for k, v in want.items()}
        assert r.monitor == json.loads(json.dumps(
            summarize(logged, total_steps=by_hand.total_steps).to_dict(max_layers=STORED_LAYERS)))
    # What the storage holds per trial: the summary and the log's path, not the records.
    storage = open_storage(results.storage)
    for arm in config.arms:
        for t in optuna.load_study(study_name=study_name(config, arm), storage=storage).get_trials():
            assert set(t.user_attrs) >= {"monitor", "monitor_log"}
            assert len(json.dumps(t.user_attrs["monitor"])) < 2000  # the flags and one tensor's final figures


def test_stored_summary_keeps_a_bounded_number_of_tensors():
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[m for _ in range(12) for m in (torch.nn.Linear(4, 4, bias=False),
                                                                  torch.nn.LayerNorm(4))])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    monitor = Monitor(opt, model, every=1)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        opt.step()
    summary = monitor.summary()
    full, kept = summary.to_dict(), summary.to_dict(max_layers=STORED_LAYERS)
    assert len(full["layers"]) == full["tensors"] == kept["tensors"] == 36
    # scale-invariant weights first (the 12 Linear weights before their LayerNorm), largest ‖p‖ first
    invariant = sorted((n for n, d in full["layers"].items() if d["scale_invariant"]),
                       key=lambda n: -full["layers"][n]["weight_norm"])
    assert len(invariant) == 12 and list(kept["layers"]) == invariant[:STORED_LAYERS]
    assert kept["layers"] == {n: full["layers"][n] for n in invariant[:STORED_LAYERS]}
    assert kept["flags"] == full["flags"]


def test_report_draws_each_arms_best_run_from_its_log(watched):
    config, results, analysis, path = watched
    page = _parse(path)
    text = path.read_text()
    # Nothing to fetch: no script, no stylesheet or image from elsewhere (the images are inline, the links are
    # the figure files and logs beside the page).
    assert page.scripts == 0 and "url(" not in text and "<link" not in text
    assert page.imgs and all(src.startswith("data:image/png;base64,") for src in page.imgs)
    assert all(not u.startswith(("/", "..")) and "://" not in u for u in page.refs), page.refs
    runs = watched_best_runs(results, analysis)
    assert [w.arm for w in runs] == ["torch", "paper"]
    figures = watched_figures(runs)
    assert list(figures) == ["monitor-torch", "monitor-paper"]
    for w in runs:
        best = analysis.arms[w.arm].best
        assert (w.run.lr, w.run.weight_decay) == (best.lr, best.weight_decay)
        assert w.records == read_records(results.run_dir / w.run.monitor_log) and not w.missing
        assert w.names == summarize(w.records).worth_showing(LAYERS_PER_RUN) == ["weight"]
        # The curves drawn are the log's values: rotation, ‖g‖/‖p‖ and ‖p‖ against the step
        fig = draw_layers(figures[w.figure_name])
        steps = [r["step"] for r in w.records]
        for ax, key in zip(fig.axes, ("rotation", "grad_to_weight", "weight_norm")):
            (line,) = ax.lines  # no prediction: ridge's weight is not followed by a normalization
            assert list(line.get_xdata()) == steps and list(line.get_ydata()) == [r[key] for r in w.records]
        # ... and that figure, as rendered, is the one in the page and in figures/
        png = render(lambda: draw_layers(figures[w.figure_name]))[0]
        img = page.imgs[page.figures.index(f"fig-{w.figure_name}")]
        assert base64.b64decode(img.split(",", 1)[1]) == png
        assert (path.parent / "figures" / f"{w.figure_name}.png").read_bytes() == png
        assert (path.parent / "figures" / f"{w.figure_name}.svg").is_file()
        assert w.run.monitor_log in page.refs
    # The flags shown are the ones each best run's trial stored.
    assert page.flags == [f["sentence"] for w in runs for f in w.run.monitor["flags"]] and page.flags
    # Loaded from the storage alone, there is no folder to find the logs in: the section says where they are.
    from_storage = watched_best_runs(load_results(results.storage), analysis)
    assert [w.arm for w in from_storage] == ["torch", "paper"] and not watched_figures(from_storage)
    assert all("make the report from that folder" in w.missing for w in from_storage)
    assert "make the report from that folder" in watched_section(from_storage, EVERY, lambda *_: "")


TPE = f"""
    name = "ridge-watched-tpe"
    task = "ridge"
    epochs = 2
    batch_size = 20
    seeds = [0, 1]
    monitor_every = {EVERY}

    [extra]
    n = 100
    d = 200

    [search]
    sampler = "tpe"
    trials = 2
    lr = {{ min = 1e-3, max = 1e-1 }}
    weight_decay = {{ min = 1e-2, max = 1.0 }}

    [[arms]]
    name = "torch"
    decay = "torch"
"""


def test_tpe_sweep_keeps_a_log_per_seed(tmp_path):
    """A TPE trial trains every seed at its point: each seed's log in a folder of its own."""
    config = load_config(write_config(tmp_path / "tpe.toml", TPE))
    assert run_sweep(config, out_dir=tmp_path / "run", jobs=1, quiet=True).complete
    results = load_results(tmp_path / "run")
    assert len(results.records) == 4 and len({r.monitor_log for r in results.records}) == 4
    assert all(r.monitor_log.endswith(f"/seed{r.seed}/monitor.jsonl.gz") for r in results.records)
    analysis = analyze(results, n_boot=5)
    runs = watched_best_runs(results, analysis)
    assert len(runs) == 1 and runs[0].run.seed == 0 and runs[0].records == read_records(
        results.run_dir / runs[0].run.monitor_log)
    assert list(watched_figures(runs)) == ["monitor-torch"]
