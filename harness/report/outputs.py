"""All report files of a run in one directory (what ``--report-dir`` writes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.report.html import write_html
from harness.report.jsonio import write_json
from harness.report.junit import write_junit

# File names inside the report directory; stable, CI jobs pick them up by name.
REPORT_FILES: dict[str, str] = {
    "html": "report.html",
    "json": "results.json",
    "junit": "junit.xml",
}


def write_report_dir(
    results: Mapping[str, Any], directory: Path, *, baseline: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write report.html, results.json and junit.xml into ``directory``; return their paths."""
    directory = Path(directory)
    return {
        "json": write_json(results, directory / REPORT_FILES["json"]),
        "junit": write_junit(results, directory / REPORT_FILES["junit"]),
        "html": write_html(results, directory / REPORT_FILES["html"], baseline=baseline),
    }
