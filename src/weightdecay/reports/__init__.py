"""Sweep reports: one self-contained HTML page with the heatmaps, slopes, basins and best configurations."""

from weightdecay.reports.html import render_html, write_report

__all__ = ["render_html", "write_report"]
