"""The reports' figures, one module each, read through one table: :data:`FIGURES`.

Each row (:class:`~weightdecay.reports.figures.base.FigureRow`) says which page shows it (the view it reads: a
sweep's :class:`SweepView`, a monitor log's :class:`MonitorView`), when it applies, how its data is computed, how
that data is drawn, and its caption. :func:`draw_figures` is what both pages call.
"""

from __future__ import annotations

from typing import Any

from weightdecay.reports.figures import curves, heatmaps, layers, shrink, slopes
from weightdecay.reports.figures.base import FigureRow, MonitorView, SweepView, View
from weightdecay.reports.style import render

__all__ = ["FIGURES", "FigureRow", "SweepView", "MonitorView", "figure_rows", "draw_figures", "caption"]

# In page order.
FIGURES: dict[str, FigureRow] = {r.name: r for r in (heatmaps.ROW, slopes.ROW, curves.ROW, layers.ROW, shrink.ROW)}


def figure_rows(view: View) -> list[FigureRow]:
    """The rows a view's page shows, in order."""
    return [r for r in FIGURES.values() if isinstance(view, r.view) and r.applies(view)]


def caption(row: FigureRow, view: View) -> str:
    if not isinstance(view, SweepView):
        return row.caption
    return row.caption.format(metric=view.analysis.metric, tolerance=view.results.config.basin_tolerance)


def draw_figures(view: View, only: tuple[str, ...] | None = None) -> dict[str, tuple[bytes, bytes]]:
    """PNG and SVG bytes of each figure the view's page shows (that has data), by name."""
    drawn: dict[str, tuple[bytes, bytes]] = {}
    for row in figure_rows(view):
        if only is not None and row.name not in only:
            continue
        data: Any = row.data(view)
        if data is not None:
            drawn[row.name] = render(lambda: row.draw(data))
    return drawn
