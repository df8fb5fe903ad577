"""weightdecay.reports.analysis against synthetic heatmaps whose best λ follows a known power of lr."""

import math

import numpy as np
import pytest

from weightdecay.reports.analysis import (analyze_arm, basin, best_point, diverged_inside, fit_slope, format_slope,
                                          heatmap, ranked_points, refine_best_wd, recommend)

LRS = np.logspace(-4, -2, 5)
WDS = np.logspace(-4, 1, 11)  # half-decade steps


def valley(lr, wd, slope, center=-1.0, curvature=1.0, lr_weight=0.05):
    """A score whose minimum over log10 λ is at center + slope·(log10 lr + 3), quadratic in log λ."""
    x, y = np.log10(lr), np.log10(wd)
    return 1.0 + curvature * (y - center - slope * (x + 3)) ** 2 + lr_weight * (x + 3) ** 2


def records(slope, seeds=(0, 1, 2, 3), noise=0.0, rng_seed=0, **kw):
    rng = np.random.default_rng(rng_seed)
    out = []
    for s in seeds:
        # Each seed's own valley centre: the bootstrap over seeds sees this spread.
        shift = rng.normal(0, noise)
        for lr in LRS:
            for wd in WDS:
                out.append(dict(arm="a", lr=float(lr), weight_decay=float(wd), seed=s, diverged=False,
                                value=float(valley(lr, wd, slope, center=-1.0 + shift, **kw))))
    return out


@pytest.mark.parametrize("slope", [-1.0, 0.0])
def test_exact_quadratic_valley_gives_the_exact_slope(slope):
    a = analyze_arm(records(slope), "a", n_boot=50)
    # The score is quadratic in log λ, so the three-point parabola recovers λ* exactly.
    expected = 10 ** (-1.0 + slope * (np.log10(LRS) + 3))
    assert np.allclose(a.slope.wd_star, expected, rtol=1e-9)
    assert a.slope.interior.all() and not a.slope.censored
    assert a.slope.slope == pytest.approx(slope, abs=1e-9)
    assert a.slope.err == pytest.approx(0.0, abs=1e-9)  # identical seeds: no spread
    assert a.best.lr == pytest.approx(1e-3) and a.best.std == pytest.approx(0.0)


@pytest.mark.parametrize("slope", [-1.0, 0.0])
def test_bootstrap_uncertainty_reflects_seed_noise(slope):
    # Seeds shift the whole valley by N(0, 0.2) decades: λ*(lr) moves in parallel, so the slope stays exact
    # while a per-seed tilt would not; add tilt noise through different slopes per seed instead.
    rng = np.random.default_rng(1)
    recs = []
    for s in range(6):
        k = slope + rng.normal(0, 0.1)
        for r in records(k, seeds=(s,)):
            recs.append(r)
    a = analyze_arm(recs, "a", n_boot=200)
    assert a.slope.method == "bootstrap"
    # The bootstrap sd of the mean slope of 6 seeds with sd 0.1 is about 0.1/sqrt(6) ≈ 0.04.
    assert 0.01 < a.slope.err < 0.1
    assert abs(a.slope.slope - slope) < 4 * a.slope.err + 1e-6


def test_parabola_refines_between_grid_points():
    wds = [1e-3, 1e-2, 1e-1, 1.0]
    true = -1.37  # log10 λ*
    score = np.array([[(math.log10(w) - true) ** 2 + 2.0] for w in wds])
    best, interior = refine_best_wd(score, wds)
    assert math.log10(best[0]) == pytest.approx(true)
    assert interior[0]
    # On the edge, the grid value and no "interior" flag.
    edge = np.array([[(math.log10(w) + 5) ** 2] for w in wds])
    best, interior = refine_best_wd(edge, wds)
    assert best[0] == pytest.approx(1e-3) and not interior[0]


def test_fit_slope_matches_numpy_polyfit_and_standard_error():
    rng = np.random.default_rng(3)
    lrs = np.logspace(-4, -1, 7)
    wd = 10 ** (0.5 - 0.8 * np.log10(lrs) + rng.normal(0, 0.05, size=7))
    k, a, se = fit_slope(lrs, wd, np.ones(7, bool))
    k_ref, a_ref = np.polyfit(np.log10(lrs), np.log10(wd), 1)
    assert (k, a) == pytest.approx((k_ref, a_ref))
    x = np.log10(lrs)
    resid = np.log10(wd) - (a_ref + k_ref * x)
    assert se == pytest.approx(np.sqrt(resid @ resid / 5 / ((x - x.mean()) ** 2).sum()))


def test_basin_orientation_diagonal_vs_axis_aligned():
    diag = basin(heatmap(records(-1.0, seeds=(0,), lr_weight=0.01), "a"), tolerance=0.5)
    flat = basin(heatmap(records(0.0, seeds=(0,), lr_weight=0.01), "a"), tolerance=0.5)
    assert diag.orientation == "diagonal" and diag.angle == pytest.approx(-45, abs=10)
    assert flat.orientation == "axis-aligned (along lr)" and abs(flat.angle) < 10
    # Area: cells × (0.5 decades of lr) × (0.5 decades of λ).
    assert flat.area == pytest.approx(flat.cells.sum() * 0.5 * 0.5)
    assert flat.cells.sum() == (np.vectorize(lambda lr, wd: valley(lr, wd, 0.0, lr_weight=0.01))(
        LRS[None, :], WDS[:, None]) <= 1.5).sum()


def test_diverged_cells_are_worst_and_edges_censor_the_slope():
    recs = records(-1.0, seeds=(0,))
    for r in recs:
        if r["lr"] == LRS[-1] and r["weight_decay"] <= 1e-3:
            r["value"], r["diverged"] = math.inf, True
    a = analyze_arm(recs, "a", n_boot=10)
    assert a.heatmap.diverged_any.sum() == 3  # λ = 1e-4, 3e-4, 1e-3 at the largest lr
    assert np.isinf(a.heatmap.mean[a.heatmap.diverged_any]).all()
    assert a.slope.slope == pytest.approx(-1.0, abs=1e-9)  # diverged cells are far from λ*
    # A valley whose minimum lies below the λ grid: every column's best is the edge.
    low = [dict(r, value=(math.log10(r["weight_decay"]) + 9) ** 2) for r in records(0.0, seeds=(0,))]
    assert analyze_arm(low, "a", n_boot=10).slope.censored


def test_recommendation_follows_the_numbers():
    recs = records(-1.0) + [dict(r, arm="b", value=r["value"] * 0.9) for r in records(0.0)]
    arms = {name: analyze_arm(recs, name, n_boot=20) for name in ("a", "b")}
    best, text = recommend(arms, "val_loss", "minimize")
    assert best == "b"
    assert "a: slope -1.00" in text and "halve wd" in text
    assert "b: slope +0.00" in text and "keep wd" in text
    assert "11.1% worse" in text  # 1/0.9 - 1


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_ranked_points_follow_the_seed_mean_and_start_at_the_best_point(direction):
    rng = np.random.default_rng(1)
    recs = [dict(r, value=r["value"] + rng.normal(0, 0.01)) for r in records(-1.0, seeds=(0, 1, 2))]  # no ties
    recs[0]["value"], recs[0]["diverged"] = math.inf if direction == "minimize" else -math.inf, True
    cells = {}
    for r in recs:
        cells.setdefault((r["lr"], r["weight_decay"]), []).append(r["value"])
    sign = 1 if direction == "minimize" else -1
    finite = [k for k, v in cells.items() if np.isfinite(np.mean(v))]
    expected = sorted(finite, key=lambda k: sign * np.mean(cells[k]))[:4]  # a plain sort as the oracle
    hm = heatmap(recs, "a", direction)
    ranked = ranked_points(hm, 4)
    assert [(p.lr, p.weight_decay) for p in ranked] == expected
    assert ranked[0] == best_point(hm)
    for p in ranked:
        v = cells[(p.lr, p.weight_decay)]
        assert (p.mean, p.low, p.high, p.n_seeds) == (pytest.approx(np.mean(v)), min(v), max(v), 3)
        assert p.std == pytest.approx(np.std(v, ddof=1))
    assert len(ranked_points(hm, 10 ** 6)) == len(finite)  # the diverged cell is never ranked


def test_format_slope_never_prints_minus_zero():
    assert [format_slope(k) for k in (-0.004, 0.004, -0.006, -1.0)] == ["+0.00", "+0.00", "-0.01", "-1.00"]
    assert format_slope(-0.001, 0.123) == "+0.00 ± 0.12" and format_slope(0.5, math.nan) == "+0.50"


def _diverged_grid(cells: set[tuple[int, int]]) -> list[dict]:
    """Records of a 3 λ × 4 lr grid, two seeds; ``cells`` (λ index, lr index) diverged with seed 1 only."""
    return [dict(arm="a", lr=10.0 ** j, weight_decay=10.0 ** i, seed=s, diverged=(i, j) in cells and s == 1,
                 value=math.inf if (i, j) in cells and s == 1 else 1.0)
            for i in range(3) for j in range(4) for s in (0, 1)]


@pytest.mark.parametrize("cells, inside", [
    (set(), 0),
    ({(2, 3)}, 0),                                   # the corner cell itself
    ({(2, 1), (2, 2), (2, 3), (1, 3), (1, 2)}, 0),   # a staircase up to the edges
    ({(0, 0)}, 1),                                   # a small-lr, small-λ cell whose neighbours trained
    ({(1, 3)}, 1),                                   # the largest lr, but a larger λ trained
    ({(1, 1), (2, 1), (2, 2), (2, 3)}, 1),           # (1, 1): the next larger lr (1, 2) trained
])
def test_diverged_inside_counts_cells_outside_the_large_lr_large_wd_corner(cells, inside):
    hm = heatmap(_diverged_grid(cells), "a")
    assert hm.diverged_any.sum() == len(cells)
    assert diverged_inside(hm) == inside


def _three_lr_rule_records():
    """The own-script example's shape: three learning rates, λ* inside the grid at two of them (the smallest lr's
    best λ is below the grid), λ* rising about as lr²."""
    centres = {3e-3: -5.0, 1e-2: -1.0, 3e-2: -0.05}
    return [dict(arm="a", lr=lr, weight_decay=float(wd), seed=s, diverged=False,
                 value=1.0 + (np.log10(wd) - c) ** 2 + 0.01 * s)
            for s in (0, 1) for lr, c in centres.items() for wd in np.logspace(-3, 1, 9)]


def test_a_rule_needs_three_interior_learning_rates_and_shows_its_uncertainty():
    few = analyze_arm(_three_lr_rule_records(), "a", n_boot=20)
    assert few.slope.interior.sum() == 2 and few.slope.slope == pytest.approx(2.0, abs=0.1)
    assert "no rule stated" in few.sentence and "multiply wd" not in few.sentence and "halve" not in few.sentence
    assert "add learning rates" in few.sentence
    # Five interior columns carry a rule, stated with its one-σ range.
    rng = np.random.default_rng(3)
    tilted = []
    for s in range(4):
        k = 0.5 + rng.normal(0, 0.05)
        tilted += [dict(r, seed=s, value=float(valley(r["lr"], r["weight_decay"], k))) for r in records(0.0, seeds=(s,))]
    many = analyze_arm(tilted, "a", n_boot=50)
    assert many.slope.interior.sum() == 5 and math.isfinite(many.slope.err)
    k, e = many.slope.slope, many.slope.err
    assert f"multiply wd by {2 ** k:.2f} ({2 ** (k - e):.2f}–{2 ** (k + e):.2f} within one σ)" in many.sentence


def _arm_records(name, wds, value):
    return [dict(arm=name, lr=float(lr), weight_decay=float(wd), seed=0, diverged=False, value=value(lr, wd))
            for lr in LRS for wd in wds]


def test_cross_arm_comparison_only_between_twin_cells_and_twins_named():
    from weightdecay.sweeps import Arm

    def loss(lr, shrink):  # the same training when the shrink per step is the same: a function of (lr, lr·λ_torch)
        return 1.0 + (np.log10(shrink) + 4.5) ** 2 + 0.05 * (np.log10(lr) + 3) ** 2

    torch_wds, configs = np.logspace(-4, 1, 11), {"t": Arm("t", "adamw", "torch", ()), "p": Arm("p", "adamw", "paper", ())}
    t = analyze_arm(_arm_records("t", torch_wds, lambda lr, wd: loss(lr, lr * wd)), "t", n_boot=5)
    # A paper grid off the twins (λ_paper = lr·λ_torch lies between its points): no percentage, the reason said.
    off = np.logspace(-7.25, -1.25, 7)
    p_off = analyze_arm(_arm_records("p", off, lambda lr, wd: loss(lr, wd) + 0.01), "p", n_boot=5)
    _, text = recommend({"t": t, "p": p_off}, "loss", "minimize", configs)
    assert "% worse" not in text and "p is not compared: its grid lacks the twin of t's best cell" in text
    assert "same runs" not in text
    # A paper grid holding every twin: compared, and its cells named as the same runs (equal metrics there).
    on = np.logspace(-9, -1, 17)
    p_on = analyze_arm(_arm_records("p", on, lambda lr, wd: loss(lr, wd)), "p", n_boot=5)
    _, text = recommend({"t": t, "p": p_on}, "loss", "minimize", configs)
    assert "p ties it." in text and "not compared" not in text
    n_twins = sum(1 for lr in LRS for wd in torch_wds if np.isclose(on, lr * wd, rtol=1e-6).any())
    assert f"t and p share {n_twins} cells that are the same runs in two parametrisations" in text
    assert "differ by at most 0" in text
    # Other optimizers have no twins: compared best against best, as before.
    _, text = recommend({"t": t, "p": p_off}, "loss", "minimize", {"t": configs["t"], "p": Arm("p", "adam", "l2", ())})
    assert "% worse" in text


def test_a_best_cell_on_the_lr_edge_is_said_as_plainly_as_on_the_lambda_edge():
    edge_lr = analyze_arm(records(-1.0, seeds=(0,), lr_weight=-0.2), "a", n_boot=5)  # the larger lr, the better
    assert edge_lr.best.lr == LRS[-1]
    _, text = recommend({"a": edge_lr}, "loss", "minimize")
    assert f"its best lr {LRS[-1]:.3g} is the lr grid's largest: the optimum may lie beyond it; widen the lr grid" in text
    inside = analyze_arm(records(-1.0, seeds=(0,)), "a", n_boot=5)
    assert "widen the lr grid" not in recommend({"a": inside}, "loss", "minimize")[1]
