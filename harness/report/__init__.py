"""Conformance reports from the results JSON: HTML, JUnit XML, JSON, baseline comparison.

The engine hands over a plain dict in the results-JSON format (DESIGN.md); nothing here
imports the engine. Every key beyond DESIGN.md's stable ones may be absent.
"""

from harness.report.compare import Change, Comparison, compare, has_regression
from harness.report.console import print_summary
from harness.report.errors import ReportError
from harness.report.html import render_html, write_html
from harness.report.jsonio import load_results, write_json
from harness.report.junit import render_junit, write_junit
from harness.report.model import summary, verdict
from harness.report.outputs import REPORT_FILES, write_report_dir
from harness.report.refs import reference_links, reference_url

__all__ = [
    "REPORT_FILES",
    "Change",
    "Comparison",
    "ReportError",
    "compare",
    "has_regression",
    "load_results",
    "print_summary",
    "reference_links",
    "reference_url",
    "render_html",
    "render_junit",
    "summary",
    "verdict",
    "write_html",
    "write_json",
    "write_junit",
    "write_report_dir",
]
