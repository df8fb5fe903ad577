"""The report's figures (matplotlib, headless): side-by-side heatmaps, λ*(lr) with its fit, learning curves."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from matplotlib.figure import Figure  # noqa: E402

from weightdecay.analysis import SweepAnalysis, format_slope  # noqa: E402

if TYPE_CHECKING:
    from weightdecay.sweeps import SweepResults

__all__ = ["heatmaps_figure", "slopes_figure", "curves_figure", "render"]

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})


def render(fig: Figure) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of a figure (then closed)."""
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()


def _edges(values: np.ndarray) -> np.ndarray:
    x = np.log10(values)
    if len(x) == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def _shared_norm(analysis: SweepAnalysis) -> tuple[Normalize, bool]:
    """One colour scale for every panel: log-spaced for a positive metric spanning > 20×, clipped at the 95th
    (5th when maximizing) percentile so that a few blown-up cells do not wash out the near-optimal region."""
    means = [a.heatmap.mean[np.isfinite(a.heatmap.mean)] for a in analysis.arms.values()]
    finite = np.concatenate(means) if means else np.array([0.0, 1.0])
    if finite.size == 0:
        finite = np.array([0.0, 1.0])
    if analysis.direction == "minimize":
        low, high = float(finite.min()), float(np.quantile(finite, 0.95))
    else:
        low, high = float(np.quantile(finite, 0.05)), float(finite.max())
    if high <= low:
        high = low + 1e-12
    clipped = bool((finite > high).any() or (finite < low).any())
    if low > 0 and high / low > 20:
        return LogNorm(vmin=low, vmax=high), clipped
    return Normalize(vmin=low, vmax=high), clipped


def heatmaps_figure(analysis: SweepAnalysis, tpe: bool = False) -> Figure:
    """One panel per arm, one colour scale: metric over (lr, λ), best point ★, λ*(lr) points and fitted line."""
    arms = list(analysis.arms.values())
    fig, axes = plt.subplots(1, len(arms), figsize=(3.6 * len(arms) + 1.2, 4.2), squeeze=False,
                             constrained_layout=True)
    norm, clipped = _shared_norm(analysis)
    cmap = plt.get_cmap("viridis_r" if analysis.direction == "minimize" else "viridis").with_extremes(bad="#dddddd")
    mesh = None
    for ax, a in zip(axes[0], arms):
        hm = a.heatmap
        if tpe:
            finite = np.isfinite(hm.values)
            s, i, j = np.nonzero(finite)
            mesh = ax.scatter(np.log10(hm.lrs[j]), np.log10(hm.wds[i]), c=hm.values[finite], cmap=cmap, norm=norm,
                              s=28, edgecolors="none")
        else:
            mean = np.ma.masked_invalid(hm.mean)
            mesh = ax.pcolormesh(_edges(hm.lrs), _edges(hm.wds), mean, cmap=cmap, norm=norm, shading="flat")
            ii, jj = np.nonzero(hm.diverged_any)
            if len(ii):
                ax.scatter(np.log10(hm.lrs[jj]), np.log10(hm.wds[ii]), marker="x", c="#aa0000", s=22, lw=1.2,
                           label="diverged")
            sl = a.slope
            ok = np.isfinite(sl.wd_star)
            ax.plot(np.log10(sl.lrs[ok & sl.interior]), np.log10(sl.wd_star[ok & sl.interior]), "o", mfc="white",
                    mec="black", ms=4.5, label="λ*(lr)")
            if (ok & ~sl.interior).any():
                ax.plot(np.log10(sl.lrs[ok & ~sl.interior]), np.log10(sl.wd_star[ok & ~sl.interior]), "v",
                        mfc="white", mec="black", ms=4.5, label="λ* at grid edge")
            if math.isfinite(sl.slope):
                xs = np.linspace(np.log10(hm.lrs[0]), np.log10(hm.lrs[-1]), 20)
                label = f"fit: slope {format_slope(sl.slope, sl.err, sl.censored)}"
                ax.plot(xs, sl.intercept + sl.slope * xs, "--", color="white", lw=1.6)
                ax.plot(xs, sl.intercept + sl.slope * xs, "--", color="black", lw=0.9, label=label)
            ax.set_ylim(*_edges(hm.wds)[[0, -1]])
            ax.set_xlim(*_edges(hm.lrs)[[0, -1]])
        b = a.best
        ax.plot(math.log10(b.lr), math.log10(b.weight_decay), "*", ms=15, mfc="white", mec="crimson", mew=1.5,
                label=f"best {b.mean:.3g}")
        ax.set_title(a.arm)
        ax.set_xlabel("log10 lr")
        ax.set_ylabel("log10 weight decay")
        # Below the panel: inside, it would hide cells.
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    extend = ("max" if analysis.direction == "minimize" else "min") if clipped else "neither"
    cbar = fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.9, extend=extend)
    cbar.set_label(f"{analysis.metric} (mean over seeds)")
    return fig


def slopes_figure(analysis: SweepAnalysis) -> Figure:
    """λ*(lr) of every arm on log-log axes with its fitted line: the transfer rule at a glance."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4), constrained_layout=True)
    for k, a in enumerate(analysis.arms.values()):
        sl = a.slope
        ok = np.isfinite(sl.wd_star)
        color = f"C{k}"
        ax.plot(sl.lrs[ok & sl.interior], sl.wd_star[ok & sl.interior], "o", color=color)
        ax.plot(sl.lrs[ok & ~sl.interior], sl.wd_star[ok & ~sl.interior], "v", color=color, mfc="none")
        if math.isfinite(sl.slope):
            ax.plot(sl.lrs, sl.predict(sl.lrs), "-", color=color,
                    label=f"{a.arm}: {format_slope(sl.slope, sl.err, sl.censored)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lr")
    ax.set_ylabel("best weight decay λ*")
    ax.set_title("λ*(lr); ▽ = at the grid's edge")
    if ax.get_legend_handles_labels()[0]:  # no fitted line (no slope measurable): no legend, no warning
        ax.legend(fontsize=7)
    return fig


def curves_figure(analysis: SweepAnalysis, results: "SweepResults") -> Figure:
    """Per-epoch metric (and training loss) of each arm's best configuration: mean over seeds, min–max band."""
    keys = [analysis.metric] + (["train_loss"] if analysis.metric != "train_loss" else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.2), squeeze=False, constrained_layout=True)
    for k, a in enumerate(analysis.arms.values()):
        runs = [r for r in results.for_arm(a.arm) if r.lr == a.best.lr and r.weight_decay == a.best.weight_decay]
        for ax, key in zip(axes[0], keys):
            with_key = [r for r in runs if any(h.get(key) is not None for h in r.history)]
            if not with_key:
                continue
            n = min(len(r.history) for r in with_key)
            y = np.array([[np.nan if h.get(key) is None else h[key] for h in r.history[:n]] for r in with_key])
            epochs = np.array([h.get("epoch", i + 1) for i, h in enumerate(with_key[0].history[:n])], dtype=float)
            label = f"{a.arm} (lr={a.best.lr:.2g}, wd={a.best.weight_decay:.2g})"
            ax.plot(epochs, np.nanmean(y, axis=0), color=f"C{k}", label=label)
            if len(y) > 1:
                ax.fill_between(epochs, np.nanmin(y, axis=0), np.nanmax(y, axis=0), color=f"C{k}", alpha=0.2)
    for ax, key in zip(axes[0], keys):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} of the best runs")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig
