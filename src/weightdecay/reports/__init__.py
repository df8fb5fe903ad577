"""Sweep reports: one self-contained HTML page with the heatmaps, slopes, basins and best configurations."""

from weightdecay.reports.html import render_combined_html, render_html, write_combined_report, write_report

__all__ = ["render_html", "write_report", "render_combined_html", "write_combined_report"]
