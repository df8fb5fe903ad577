"""``weightdecay suggest`` (API and command) against its formula, ``advise`` pointing to it, and the scoring of
predictions against a synthetic grid whose optimum is known."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from weightdecay.cli import main
from weightdecay.errors import UserError
from weightdecay.rules import advise, convert, suggest_weight_decay
from weightdecay.rules.suggestion import FINE_TUNING_NORM, SUGGEST_NORM, SUGGEST_NORM_INTERVAL
from weightdecay.suggest import Column, score, summarize

ROOT = Path(__file__).resolve().parents[1]
RUN = {"batch_size": 128, "dataset_size": 50_000, "epochs": 100}


def normalized_torch(lam_norm: float, lr: float, b: int, n: int, epochs: float) -> float:
    return lam_norm * math.sqrt(b / (n * epochs)) / lr  # λ_paper = λ_norm·sqrt(b/(B·T)); torch = paper/lr


@pytest.mark.parametrize("lr", [1e-4, 3e-3, 0.1])
def test_suggestion_is_normalized_decay_at_0_05_with_its_interval(lr):
    s = suggest_weight_decay(lr=lr, **RUN)
    assert math.isclose(s.weight_decay, normalized_torch(SUGGEST_NORM, lr, 128, 50_000, 100), rel_tol=1e-12)
    lo, hi = (normalized_torch(n, lr, 128, 50_000, 100) for n in SUGGEST_NORM_INTERVAL)
    assert math.isclose(s.low, lo, rel_tol=1e-12) and math.isclose(s.high, hi, rel_tol=1e-12)
    assert s.low < s.weight_decay < s.high
    assert math.isclose(s.tau_iter, 1 / (lr * s.weight_decay), rel_tol=1e-12)
    assert math.isclose(s.tau_epoch, s.tau_iter * 128 / 50_000, rel_tol=1e-12)
    assert math.isclose(s.run_shrink, math.exp(-s.total_steps * lr * s.weight_decay),
                        rel_tol=1e-12)
    assert s.measured == {} and "0.05" in s.rule and s.confidence.startswith("low")


def test_suggestion_in_another_convention_is_the_same_decay():
    torch = suggest_weight_decay(lr=3e-4, **RUN)
    paper = suggest_weight_decay(lr=3e-4, convention="paper", **RUN)
    assert math.isclose(paper.weight_decay, convert(torch.weight_decay, "torch", "paper", lr=3e-4).weight_decay,
                        rel_tol=1e-12)
    assert math.isclose(paper.tau_iter, torch.tau_iter, rel_tol=1e-12)


def test_fine_tuning_halves_the_normalized_value_and_says_it_is_unmeasured():
    s = suggest_weight_decay(lr=2e-5, fine_tuning=True, batch_size=32, dataset_size=10_000, epochs=3)
    assert math.isclose(s.weight_decay, normalized_torch(FINE_TUNING_NORM, 2e-5, 32, 10_000, 3), rel_tol=1e-12)
    assert s.low < s.weight_decay < s.high and s.confidence.startswith("unmeasured")
    # 938 steps at τ_iter ≈ 1,225: the decay alone would leave under half of each pretrained weight.
    assert math.isclose(s.run_shrink, math.exp(-10_000 * 3 / 32 * 2e-5 * s.weight_decay), rel_tol=1e-12)
    assert s.run_shrink < 0.5


def test_suggestion_refuses_bad_settings():
    with pytest.raises(UserError, match="batch_size"):
        suggest_weight_decay(lr=1e-3, batch_size=0, dataset_size=10, epochs=1)


def test_suggest_command_prints_value_interval_rule_and_confidence(capsys):
    assert main(["suggest", "--lr", "1e-3", "--batch-size", "128", "--dataset-size", "50000", "--epochs",
                 "100"]) == 0
    out = capsys.readouterr().out
    s = suggest_weight_decay(lr=1e-3, **RUN)
    assert f"weight_decay = {s.weight_decay:g}" in out and f"{s.low:g} … {s.high:g}" in out
    assert f"{s.run_shrink:.2g} of a weight" in out and "measured: nothing" in out and "rule: normalized weight decay" in out and "how sure: low" in out
    assert main(["suggest", "--lr", "1e-3", "--batch-size", "128", "--dataset-size", "50000", "--epochs", "100",
                 "--convention", "paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == suggest_weight_decay(lr=1e-3, convention="paper", **RUN).to_dict()
    assert main(["suggest", "--lr", "1e-3", "--batch-size", "128", "--dataset-size", "50000", "--epochs", "100",
                 "--convention", "nope"]) == 2
    assert "Unknown convention" in capsys.readouterr().err


def test_advise_points_to_suggest_when_it_warns_or_for_fine_tuning():
    warned = advise(lr=2e-5, weight_decay=0.01, batch_size=32, dataset_size=10_000, epochs=3)
    assert warned.warnings and "weightdecay suggest" in warned.see_also
    fine = advise(lr=2e-5, weight_decay=0.01, batch_size=32, dataset_size=10_000, epochs=3, fine_tuning=True)
    assert "weightdecay suggest --fine-tuning" in fine.suggestion and fine.see_also
    calm = advise(lr=1e-3, weight_decay=0.1, batch_size=128, dataset_size=50_000, epochs=100, convention="torch")
    assert calm.warnings == [] and calm.see_also == ""


# Scoring. A synthetic column whose metric is 1 + (log10 λ − c)²: λ* = 10^c exactly (the parabola refinement
# is exact for a quadratic), and the regret at a grid point is (log10 λ − c)².
LAMS = tuple(10.0 ** k for k in np.arange(-3, 2.01, 0.5))
CENTRE = -0.8


def column(centre: float = CENTRE) -> Column:
    return Column("toy", 1e-3, 10, 100, 5, LAMS, tuple(1 + (math.log10(l) - centre) ** 2 for l in LAMS))


def test_score_recovers_the_known_optimum_and_the_regret_at_a_grid_point():
    s = score(column(), 1e-2)
    assert math.isclose(s.best, 10 ** CENTRE, rel_tol=1e-9) and s.interior
    assert math.isclose(s.log_error, abs(-2 - CENTRE), rel_tol=1e-9)
    best_grid = min(1 + (math.log10(l) - CENTRE) ** 2 for l in LAMS)  # the grid's best cell, not the vertex
    assert math.isclose(s.regret, (1 + (-2 - CENTRE) ** 2) / best_grid - 1, rel_tol=1e-12) and not s.outside


def test_regret_between_grid_points_is_linear_in_log_lambda():
    col = column()
    a, b = 10 ** -2.0, 10 ** -1.5
    ma, mb = (1 + (math.log10(x) - CENTRE) ** 2 for x in (a, b))
    lam = 10 ** (-2.0 + 0.25 * 0.5)  # a quarter of the way from a to b in log λ
    assert math.isclose(col.metric_at(lam)[0], 0.75 * ma + 0.25 * mb, rel_tol=1e-12)


def test_outside_the_grid_the_edge_value_is_used_and_flagged():
    col = column()
    value, outside = col.metric_at(1e4)
    assert outside and value == col.metric[-1]
    assert score(col, 1e-6).outside


def test_an_optimum_beyond_the_grid_is_not_interior():
    s = score(column(centre=-5.0), 1e-3)
    assert not s.interior and math.isclose(s.best, LAMS[0], rel_tol=1e-12) and s.log_error < 1e-12


def test_summary_counts_the_shares_within_2x_and_1_percent():
    col = column()
    scores = [score(col, 10 ** CENTRE), score(col, 10 ** (CENTRE + 0.2)), score(col, 10 ** (CENTRE + 1))]
    out = summarize(scores)
    assert out["n"] == 3 and math.isclose(out["within_2x"], 2 / 3)
    assert math.isclose(out["median_log_error"], 0.2, rel_tol=1e-9)


def test_column_refuses_mismatched_or_unsorted_grids():
    with pytest.raises(UserError, match="same number"):
        Column("bad", 1e-3, 10, 100, 5, (1.0, 2.0, 3.0), (1.0, 2.0))
    with pytest.raises(UserError, match="increasing"):
        Column("bad", 1e-3, 10, 100, 5, (3.0, 2.0, 1.0), (1.0, 2.0, 3.0))


def _claim9():
    if str(ROOT / "experiments") not in sys.path:
        sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location("experiment_claim9_suggest", ROOT / "experiments" / "claim9_suggest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_interval_is_the_spread_of_the_committed_grids_lambda_norm():
    claim9 = _claim9()
    truth = claim9.ground_truth()
    found = [claim9.lambda_norm(c) for task in ("ridge", "digits") for c in truth[task] if c.best()[1]]
    assert len(found) == 24
    lo, hi = np.quantile(found, [0.1, 0.9])
    assert (round(lo, 3), round(hi, 2)) == SUGGEST_NORM_INTERVAL


def test_suggest_missing_option_is_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["suggest", "--lr", "1e-3"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--batch-size" in err and "--help" in err


def test_the_confidence_sentence_quotes_the_published_scores():
    from weightdecay.rules.suggestion import CONFIDENCE

    with open(ROOT / "docs" / "data" / "claim9-summary.csv", newline="") as fh:
        rows = {r["task"]: r for r in csv.DictReader(fh)
                if r["split"] == "fit ridge+digits" and r["rule"] == "λ_norm = 0.05"}
    ridge, digits, fashion = rows["ridge (in-sample)"], rows["digits (in-sample)"], rows["fashion-cnn"]
    assert f"{float(ridge['within_2x']):.0%} of ridge's {ridge['n']} columns" in CONFIDENCE
    assert f"{float(digits['within_2x']):.0%} of digits' {digits['n']}" in CONFIDENCE
    assert f"(median regret {float(ridge['median_regret']):.1%} and {float(digits['median_regret']):.0%})" in CONFIDENCE
    assert f"(regret {float(fashion['median_regret']):.0%})" in CONFIDENCE
