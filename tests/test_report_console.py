"""Console summary (harness/report/console.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.report import print_summary

SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "sample-results.json").read_text(encoding="utf-8")
)


def render(results: dict[str, Any], width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    print_summary(results, console)
    return console.export_text()


def test_counts_failures_and_verdict() -> None:
    text = render(SAMPLE)
    lines = text.splitlines()
    row = next(line for line in lines if line.lstrip().startswith("G  Malformed commands"))
    assert row.split()[-3:] == ["1", "1", "2"]  # 1 fail, 1 error, 2 in all
    total = next(line for line in lines if line.lstrip().startswith("All "))
    outcomes = [s["outcome"] for s in SAMPLE["scenarios"]]
    expected = [outcomes.count(o) for o in ("fail", "error", "warn", "pass", "info", "skip")]
    assert total.split()[1:] == [str(n) for n in expected] + [str(len(outcomes))]
    failing = [s["id"] for s in SAMPLE["scenarios"] if s["outcome"] in ("fail", "error")]
    for sid in failing:
        assert sid in text
    passing = [s["id"] for s in SAMPLE["scenarios"] if s["outcome"] == "pass"]
    assert not any(sid in text for sid in passing)
    assert "Verdict: FAIL (4 scenarios failed)" in text


def test_markup_in_results_is_printed_literally() -> None:
    results = {"scenarios": [{"id": "x[/]", "outcome": "fail", "title": "[bold red]boom[/]",
                              "observed": "status [0xC000] [link=http://x]y[/link]"}]}
    text = render(results)
    assert "[bold red]boom[/]" in text
    assert "status [0xC000] [link=http://x]y[/link]" in text
    assert "x[/]" in text


def test_clean_run() -> None:
    text = render({"scenarios": [{"id": "a", "group": "A", "outcome": "pass"},
                                 {"id": "b", "group": "B", "outcome": "warn"}]})
    assert "Failures" not in text
    assert "PASS WITH WARNINGS" in text


def test_fits_80_columns() -> None:
    assert max(len(line) for line in render(SAMPLE, width=80).splitlines()) <= 80
