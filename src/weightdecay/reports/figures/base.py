"""A figure of the reports is a row: what it needs (a view of a sweep or of a monitor log), when it applies, the
function that computes its data, the function that draws that data, and its caption.

The data is plain (numbers and NumPy arrays, no matplotlib), computed apart from the drawing as Optuna's
``visualization/_contour.py`` does, so it is tested against the records it comes from and another backend could
draw the same thing. Both pages (``weightdecay report``, ``weightdecay monitor-report``) read one table,
:data:`weightdecay.reports.figures.FIGURES`; adding a figure is a module and a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from matplotlib.figure import Figure

from weightdecay.reports.analysis import SweepAnalysis
from weightdecay.sweeps import SweepResults

__all__ = ["SweepView", "MonitorView", "FigureRow", "View"]


@dataclass
class SweepView:
    """What a sweep report's figures read: the records and their analysis."""

    results: SweepResults
    analysis: SweepAnalysis


@dataclass
class MonitorView:
    """What a monitor page's figures read: a monitor's records and the tensors chosen for a row each."""

    records: list[dict[str, Any]]
    names: list[str] = field(default_factory=list)


View = Union[SweepView, MonitorView]


@dataclass(frozen=True)
class FigureRow:
    """One figure: ``data(view)`` (None when there is nothing to draw), ``draw(data)``, its caption."""

    name: str
    view: type  # SweepView or MonitorView: the page that shows it
    caption: str
    data: Callable[[Any], Any]  # view → data, or None: nothing to draw
    draw: Callable[[Any], Figure]  # data → figure
    applies: Callable[[Any], bool] = lambda view: True  # whether the page shows it at all
