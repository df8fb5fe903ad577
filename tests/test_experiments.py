"""The experiment scripts behind docs/results.md, each in its --quick mode: a smoke test of the pipeline (sweeps,
analysis, CSV and figure), not of the claim. Each check recomputes a printed number from the CSV it wrote."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    if str(ROOT / "experiments") not in sys.path:  # their shared experiments/_publish.py, found as a script finds it
        sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so its functions pickle by name into the scripts' worker processes
    spec.loader.exec_module(module)
    return module


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", data[16:24])) > 100


def test_claim7_quick_arrival_is_the_first_trial_within_one_percent(tmp_path):
    claim7 = _script("claim7_tpe")
    assert claim7.main(["--quick", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    trials = _rows(tmp_path / "docs" / "data" / "claim7-tpe-trials.csv")
    grid = _rows(tmp_path / "docs" / "data" / "claim7-grid.csv")
    for coords in claim7.COORDINATES:
        rows = [r for r in trials if r["coordinates"] == coords and r["search"] == "0"]
        assert [int(r["trial"]) for r in rows] == list(range(1, summary["trials"] + 1))
        best = min(float(g["val_loss"]) for g in grid if g["seed"] == "0" and g["diverged"] == "0")
        hits = [int(r["trial"]) for r in rows if float(r["val_loss"]) <= 1.01 * best]
        assert summary[coords]["arrivals"] == [hits[0] if hits else None]
        for r in rows:  # the search coordinates map back to the λ the run used: s = lr·λ under torch
            assert math.isclose(float(r["shrink"]), float(r["lr"]) * float(r["weight_decay"]), rel_tol=1e-4)
    assert _is_png(tmp_path / "docs" / "figures" / "claim7-tpe.png")


def test_claim5_quick_exponent_is_the_fit_of_its_csv(tmp_path):
    claim5 = _script("claim5_transfer")
    assert claim5.main(["--quick", "--jobs", "1", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    rows = _rows(tmp_path / "docs" / "data" / "claim5-exponents.csv")
    assert {r["experiment"] for r in rows} == set(claim5.EXPERIMENTS)
    for experiment in claim5.EXPERIMENTS:
        for lr in {r["lr"] for r in rows if r["experiment"] == experiment}:
            sel = [r for r in rows if r["experiment"] == experiment and r["lr"] == lr]
            x = np.log([float(r["x"]) for r in sel])
            y = np.log([float(r["wd_star"]) for r in sel])
            assert math.isclose(np.polyfit(x, y, 1)[0], float(sel[0]["exponent"]), abs_tol=2e-3)
    # τ_epoch = b/(lr·λ·B), with ridge's B = 200 and batch 20 in the epochs experiment
    r = next(r for r in rows if r["experiment"] == "epochs")
    assert math.isclose(float(r["tau_epoch"]), 20 / (float(r["lr"]) * float(r["wd_star"]) * 200), rel_tol=2e-3)
    assert _is_png(tmp_path / "docs" / "figures" / "claim5-transfer.png")


def test_claim6_quick_prediction_is_kossons_formula(tmp_path):
    claim6 = _script("claim6_rotation")
    assert claim6.main(["--quick", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    rows = _rows(tmp_path / "docs" / "data" / "claim6-rotation.csv")
    assert {r["optimizer"] for r in rows} == {"adamw", "sgdw"} and len({r["layer"] for r in rows}) >= 2
    for r in rows:
        lr, wd = float(r["lr"]), float(r["weight_decay"])
        expected = math.sqrt(2 * lr * wd * 0.1 / 1.9) if r["optimizer"] == "adamw" else math.sqrt(2 * lr * wd / 1.9)
        assert math.isclose(float(r["predicted"]), expected, rel_tol=1e-5)
        assert float(r["measured"]) > 0 and math.isclose(float(r["ratio"]), float(r["measured"]) / expected,
                                                         rel_tol=1e-4)
    assert _is_png(tmp_path / "docs" / "figures" / "claim6-rotation.png")


def test_claim3_quick_picks_each_schedules_best_final_val_loss(tmp_path):
    claim3 = _script("claim3_schedules")
    from weightdecay.sweeps import load_results

    assert claim3.main(["--quick", "--jobs", "1", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    curves = _rows(tmp_path / "docs" / "data" / "claim3-best-curves.csv")
    assert list(summary) == list(claim3.SCHEDULES)
    for schedule, best in summary.items():
        records = load_results(tmp_path / "run" / f"claim3-{schedule}-quick").records
        winner = min(records, key=lambda r: r.value)  # one seed: the best cell is the best run
        assert (winner.lr, winner.weight_decay) == (best["lr"], best["weight_decay"])
        assert math.isclose(best["final_test_error"], winner.history[-1]["test_error"], rel_tol=1e-9)
        rows = [r for r in curves if r["schedule"] == schedule]
        assert [int(r["epoch"]) for r in rows] == [h["epoch"] for h in winner.history]
    assert _is_png(tmp_path / "docs" / "figures" / "claim3-schedules.png")


def test_claim4_quick_prediction_is_the_sgd_steady_state_at_the_epochs_mean_lr(tmp_path):
    claim4 = _script("claim4_adamc")
    assert claim4.main(["--quick", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    rows = _rows(tmp_path / "docs" / "data" / "claim4-adamc.csv")
    assert {r["decay"] for r in rows} == {"torch", "corrected"}
    steps = 7  # 200 images, batch 32
    k = np.arange(2 * steps)
    eta = 0.5 * (1 + np.cos(np.pi * k / (2 * steps)))  # cosine to 0 over the 2 epochs
    for r in rows:
        e, wd = int(r["epoch"]), float(r["weight_decay"])
        lr_mean = claim4.LR * eta[(e - 1) * steps: e * steps].mean()
        assert math.isclose(float(r["lr_mean"]), lr_mean, rel_tol=1e-5)
        lr = lr_mean if r["decay"] == "torch" else claim4.LR
        assert math.isclose(float(r["sgd_prediction"]), math.sqrt(2 * wd / lr), rel_tol=1e-5)
        assert float(r["grad_to_weight"]) > 0
    assert _is_png(tmp_path / "docs" / "figures" / "claim4-adamc.png")

    lm = _rows(tmp_path / "docs" / "data" / "claim4-lm.csv")
    assert {r["decay"] for r in lm} == {"torch", "corrected"} and {r["group"] for r in lm} == set(claim4.GROUPS)
    total = 40  # 2 "epochs" of 20 batches
    for r in lm:
        step, wd = int(r["step"]), float(r["weight_decay"])
        # the lr this step used: the cosine multiplier after step - 1 steps
        assert math.isclose(float(r["lr"]), claim4.LR * 0.5 * (1 + math.cos(math.pi * (step - 1) / total)),
                            rel_tol=1e-5)
        lr = float(r["lr"]) if r["decay"] == "torch" else claim4.LR
        assert math.isclose(float(r["sgd_prediction"]), math.sqrt(2 * wd / lr), rel_tol=1e-5)
        assert math.isclose(float(r["grad_to_weight"]), float(r["grad_norm"]) / float(r["weight_norm"]), rel_tol=1e-4)
    # the residual writers are some of the decayed weights, so their joint norms are smaller
    whole = {(r["decay"], r["step"]): r for r in lm if r["group"] == "decayed"}
    for r in (r for r in lm if r["group"] == "residual"):
        for norm in ("grad_norm", "weight_norm"):
            assert float(r[norm]) < float(whole[r["decay"], r["step"]][norm])
    assert _is_png(tmp_path / "docs" / "figures" / "claim4-lm.png")


def test_claim4_group_norms_are_the_norms_of_the_concatenated_tensors():
    claim4 = _script("claim4_adamc")
    records = [{"step": 10, "group": 0, "lr": 1e-3, "name": name, "grad_norm": g, "weight_norm": w}
               for name, g, w in (("blocks.0.proj.weight", 3.0, 1.0), ("blocks.1.mlp.2.weight", 4.0, 2.0),
                                  ("blocks.0.qkv.weight", 12.0, 2.0))]
    records.append({"step": 10, "group": 1, "lr": 1e-3, "name": "ln.weight", "grad_norm": 100.0, "weight_norm": 1.0})
    (row,) = claim4.group_norms(records, decayed={0})
    assert (row["residual_grad_norm"], row["residual_weight_norm"]) == (5.0, math.sqrt(5))
    assert (row["decayed_grad_norm"], row["decayed_weight_norm"]) == (13.0, 3.0)


def test_claim2_quick_reports_the_test_error_of_each_arms_best_val_loss_cell(tmp_path):
    claim2 = _script("claim2_deep")
    assert claim2.main(["--quick", "--jobs", "1", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    trials = _rows(tmp_path / "docs" / "data" / "claim2-trials.csv")
    assert set(summary["arms"]) == {r["arm"] for r in trials}
    for arm, s in summary["arms"].items():
        cells: dict[tuple[float, float], list[dict[str, str]]] = {}
        for r in trials:
            if r["arm"] == arm:
                cells.setdefault((float(r["lr"]), float(r["weight_decay"])), []).append(r)

        def best(keys):
            return min(keys, key=lambda k: np.mean([float(r["val_loss"]) for r in cells[k]]))

        def mean_test_error(key):
            return np.mean([float(r["test_error"]) for r in cells[key]])

        chosen = best(cells)
        assert np.allclose(chosen, (s["lr"], s["weight_decay"]), rtol=1e-5, atol=0)
        assert math.isclose(mean_test_error(chosen), s["test_error"], rel_tol=1e-4)
        lowest = min(wd for _, wd in cells)
        assert math.isclose(mean_test_error(best([k for k in cells if k[1] == lowest])), s["zero_wd_test_error"],
                            rel_tol=1e-4)
    assert {(c["arm"], c["reference"]) for c in summary["comparisons"]} == set(claim2.COMPARISONS)
    for c in summary["comparisons"]:  # 1 − err/err_reference at the two selected cells
        a, b = summary["arms"][c["arm"]], summary["arms"][c["reference"]]
        assert math.isclose(c["relative_improvement"], 1 - a["test_error"] / b["test_error"], rel_tol=1e-9)
    assert _is_png(tmp_path / "docs" / "figures" / "claim2-test-error.png")


def _history(val: list[float], train: list[float]) -> list[dict[str, float]]:
    return [{"epoch": e, "val_loss": v, "train_loss": t} for e, (v, t) in enumerate(zip(val, train), start=1)]


def test_claim2_overfit_criterion_needs_each_of_its_clauses():
    check = _script("claim2_overfit").overfit_check
    train = [2.0, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1]
    val = [2.0, 1.2, 1.0, 1.05, 1.1, 1.12, 1.15, 1.2, 1.2, 1.2]  # minimum at epoch 3, then +20%
    passing = check(_history(val, train), 10)
    assert passing["overfits"] and passing["e_min"] == 3 and math.isclose(passing["rise"], 0.2)
    assert math.isclose(passing["train_ratio"], 0.1 / 0.8)
    assert not check(_history(val[:7] + [1.09] * 3, train), 10)["overfits"]  # a rise of 9%, under 10%
    late = [2.0, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0, 1.2, 1.2]  # minimum at epoch 8 > 0.7 · 10
    assert not check(_history(late, train), 10)["overfits"]
    assert not check(_history(val, [2.0, 1.0, 0.8] + [0.6] * 7), 10)["overfits"]  # train ×0.75, not ≤ 0.5
    assert not check(_history(val, train), 12)["overfits"]  # a run that stopped early (diverged) is no evidence


def test_claim2_overfit_quick_recomputes_from_its_csvs(tmp_path):
    claim2 = _script("claim2_overfit")
    assert claim2.main(["--quick", "--jobs", "1", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    regime = _rows(tmp_path / "docs" / "data" / "claim2-overfit-regime.csv")
    assert {r["candidate"] for r in regime} == {f"{c}-quick" for c in claim2.CANDIDATES}
    for r in regime:  # each run's verdict is the criterion applied to the measures beside it
        epochs = 2
        expected = (float(r["rise"]) >= claim2.RISE and int(r["e_min"]) <= claim2.LATE * epochs
                    and float(r["train_ratio"]) <= claim2.TRAIN_FALL)
        assert (r["overfits"] == "True") == expected
        assert math.isclose(float(r["rise"]), float(r["v_end"]) / float(r["v_min"]) - 1, rel_tol=1e-3, abs_tol=1e-6)
    trials = _rows(tmp_path / "docs" / "data" / "claim2-overfit-trials.csv")
    for arm, s in summary["arms"].items():
        cell = [r for r in trials if r["arm"] == arm and np.isclose(float(r["lr"]), s["lr"], rtol=1e-5)
                and np.isclose(float(r["weight_decay"]), s["weight_decay"], rtol=1e-5)]
        assert len(cell) == 2
        assert math.isclose(np.mean([float(r["test_loss"]) for r in cell]), s["test_loss"], rel_tol=1e-4)
        assert math.isclose(np.mean([float(r["test_error"]) for r in cell]), s["test_error"], rel_tol=1e-4)
    assert {(c["arm"], c["reference"]) for c in summary["comparisons"]} == set(claim2.COMPARISONS)
    for c in summary["comparisons"]:
        a, b = summary["arms"][c["arm"]], summary["arms"][c["reference"]]
        assert math.isclose(c["relative_improvement"], 1 - a["test_error"] / b["test_error"], rel_tol=1e-9)
        assert math.isclose(c["relative_improvement_test_loss"], 1 - a["test_loss"] / b["test_loss"], rel_tol=1e-9)
    curves = _rows(tmp_path / "docs" / "data" / "claim2-overfit-schedules.csv")
    assert [s for s in dict.fromkeys(r["schedule"] for r in curves)] == list(claim2.SCHEDULES)
    assert claim2.restart_epochs(4) == [1, 4] and claim2.restart_epochs(20) == [5, 20]
    for name in ("regime", "test-error", "schedules"):
        assert _is_png(tmp_path / "docs" / "figures" / f"claim2-overfit-{name}.png")


def test_bf16_decay_quick_compares_each_arm_with_its_seeds_master_run(tmp_path):
    bf16 = _script("bf16_decay")
    assert bf16.main(["--quick", "--jobs", "1", "--out", str(tmp_path / "run"), "--publish", str(tmp_path / "docs")]) == 0
    rows = _rows(tmp_path / "docs" / "data" / "bf16-decay.csv")
    final = {r["arm"]: float(r["weight_norm"]) for r in rows if r["step"] == "60"}
    assert set(final) == set(bf16.ARMS)
    for s in _rows(tmp_path / "docs" / "data" / "bf16-decay-summary.csv"):
        assert math.isclose(float(s["norm_vs_master"]), final[s["arm"]] / final["float32-master"], rel_tol=1e-5)
    assert _is_png(tmp_path / "docs" / "figures" / "bf16-decay.png")


@pytest.mark.parametrize("name", ["claim2_deep", "claim2_overfit", "claim3_schedules", "claim4_adamc", "claim5_transfer",
                                  "claim6_rotation", "claim7_tpe", "claim9_suggest", "claim9_probe", "bf16_decay"])
def test_every_experiment_script_says_how_to_rerun_it(name):
    doc = _script(name).__doc__
    assert f"python experiments/{name}.py" in doc and "--quick" in doc


def test_claim9_summary_is_the_median_of_its_scores(tmp_path):
    claim9 = _script("claim9_suggest")
    assert claim9.main(["--out", str(tmp_path / "runs"), "--publish", str(tmp_path)]) == 0
    scores = _rows(tmp_path / "data" / "claim9-scores.csv")
    summary = _rows(tmp_path / "data" / "claim9-summary.csv")
    assert {s["task"] for s in summary} >= {"digits", "fashion-cnn", "ridge (in-sample)"}
    for s in summary:
        mine = [float(r["log_error"]) for r in scores if (r["split"], r["rule"], r["task"]) ==
                (s["split"], s["rule"], s["task"])]
        assert len(mine) == int(s["n"])
        assert math.isclose(float(s["median_log_error"]), float(np.median(mine)), rel_tol=1e-5)
    # A rule fitted on ridge is never scored on ridge.
    assert not [r for r in scores if r["split"] == "fit ridge" and r["task"].startswith("ridge")]
