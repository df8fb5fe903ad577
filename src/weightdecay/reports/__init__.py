"""What a sweep or a monitor log says, and the pages that show it.

The modules, lowest first: ``analysis`` (heatmaps, λ*(lr) and its slope, the basin, the recommendation),
``style`` (the pages' CSS and the figures' style), ``figures/`` (one module per figure, read through the table
``FIGURES``: its data, its drawing, its caption, when it applies), ``monitor_page`` (``weightdecay
monitor-report``), ``watched_runs`` (a watched sweep's best runs), ``html`` (the sweep report).
"""

from weightdecay.reports.html import render_combined_html, render_html, write_combined_report, write_report

__all__ = ["render_html", "write_report", "render_combined_html", "write_combined_report"]
