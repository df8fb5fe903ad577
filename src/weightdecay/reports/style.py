"""How every page and figure of the reports looks: the pages' CSS, the figures' matplotlib style, and drawing
a figure to PNG/SVG bytes.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot and saved under
:data:`FIGURE_STYLE` in a ``rc_context``: nothing here selects a backend or changes matplotlib's global
settings, so drawing a report inside a notebook leaves the notebook's backend and style as they were.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Callable

import matplotlib
from matplotlib.figure import Figure

__all__ = ["CSS", "FIGURE_STYLE", "new_figure", "render", "figure_html"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
.meta { color: #666; font-size: 0.9em; }
.rec { background: #f3f7ff; border-left: 4px solid #3b6fd8; padding: 0.8em 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.88em; }
img { max-width: 100%; height: auto; }
"""

# Text stays text in the SVGs (searchable, selectable); small type, the figures hold many panels.
FIGURE_STYLE: dict[str, Any] = {"svg.fonttype": "none", "font.size": 9}


def new_figure(**kwargs: Any) -> Figure:
    """A figure of its own (no pyplot state, no backend), constrained layout unless told otherwise."""
    kwargs.setdefault("layout", "constrained")
    with matplotlib.rc_context(FIGURE_STYLE):
        return Figure(**kwargs)


def render(draw: Callable[[], Figure] | Figure) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of a figure, or of what ``draw()`` returns, drawn and saved in the report's style."""
    with matplotlib.rc_context(FIGURE_STYLE):
        fig = draw() if callable(draw) and not isinstance(draw, Figure) else draw
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        fig.savefig(svg, format="svg", bbox_inches="tight")
    return png.getvalue(), svg.getvalue()


def figure_html(name: str, png: bytes, caption: str, links: str = "") -> str:
    """A ``<figure>`` with the PNG inlined as base64 (the page needs no other file), and its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{name}"><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(caption)}{links}</figcaption></figure>')
