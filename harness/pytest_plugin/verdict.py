"""Verdict mapping: a scenario result (the results JSON's dict) becomes a pytest outcome.

fail -> FAILED, warn (a SHOULD that does not hold) -> passed with a
:class:`DicomConformanceWarning` (FAILED with ``--dicom-strict``), skip -> SKIPPED, error ->
FAILED reported as ERROR (see the ``pytest_report_teststatus`` hook), pass and info ->
passed; every result also lands in ``user_properties`` (JUnit XML, pytest-html, xdist).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

TRACE_LINES = 12  # trace events shown under a failure (all of them with -vv)
# user_properties keys, written for every scenario (JUnit <property>, pytest-html, xdist)
PROPERTY_PREFIX = "dicom_"


class DicomConformanceWarning(UserWarning):
    """A SHOULD-level scenario did not hold (a failure with ``--dicom-strict``)."""


def result_properties(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What JUnit XML / pytest-html / xdist carry for a scenario (strings only)."""
    return [(PROPERTY_PREFIX + "outcome", str(result["outcome"])),
            (PROPERTY_PREFIX + "severity", str(result["severity"])),
            (PROPERTY_PREFIX + "group", str(result["group"])),
            (PROPERTY_PREFIX + "references", ", ".join(result.get("references", []))),
            (PROPERTY_PREFIX + "expected", str(result.get("expected", ""))),
            (PROPERTY_PREFIX + "observed", str(result.get("observed", "")))]


def describe_result(result: dict[str, Any], *, trace_lines: int = TRACE_LINES) -> str:
    """A failure message: expected vs observed, the checks that did not hold, the trace."""
    lines = [f"{result['id']} ({result['severity']}, {result['outcome']}): {result['title']}",
             f"  group:      {result['group']} {result.get('group_title', '')}".rstrip(),
             f"  references: {', '.join(result.get('references', []))}"]
    if result.get("source"):
        lines.append(f"  scenario:   {result['source']}")
    lines += [f"  expected:   {result.get('expected', '')}",
              f"  observed:   {result.get('observed', '')}"]
    bad = [c for c in result.get("checks", []) if c.get("outcome") in ("fail", "warn")]
    if bad:
        lines.append("  checks that did not hold:")
        for c in bad:
            ref = f"  [{c['reference']}]" if c.get("reference") else ""
            lines.append(f"    {c['outcome'].upper():4} {c['severity']:6} {c['name']}: expected "
                         f"{c['expected']}; observed {c['observed']}{ref}")
    trace = result.get("trace") or []
    if trace and trace_lines > 0:
        shown = trace[-trace_lines:]
        lines.append(f"  trace (last {len(shown)} of {len(trace)} events):")
        for e in shown:
            lines.append(f"    {e['t']:9.4f}s #{e['assoc']} {e['dir']:5} {e['type']} "
                         f"({e['length']} B) {e.get('summary', '')}".rstrip())
    return "\n".join(lines)


def apply_verdict(node: pytest.Item, result: dict[str, Any], *, strict: bool) -> None:
    """Turn a scenario result into the pytest outcome of ``node`` (any test item)."""
    node.user_properties.extend(result_properties(result))
    outcome = result["outcome"]
    if outcome in ("pass", "info"):
        return
    if outcome == "skip":
        raise pytest.skip.Exception(f"{result['id']}: {result['observed']}",
                                    _use_item_location=True)
    verbose = int(node.config.getoption("verbose") or 0)
    text = describe_result(result, trace_lines=200 if verbose >= 2 else TRACE_LINES)
    if outcome == "warn" and not strict:
        warnings.warn_explicit(DicomConformanceWarning(
            f"{result['id']}: SHOULD not met: expected {result['expected']}; observed "
            f"{result['observed']}"), DicomConformanceWarning,
            filename=str(result.get("source", "")).rpartition(":")[0] or node.name,
            lineno=_line_of(result))
        return
    if outcome == "warn":
        text += "\n  (a SHOULD that does not hold fails because of --dicom-strict)"
    pytest.fail(text, pytrace=False)


def _line_of(result: dict[str, Any]) -> int:
    tail = str(result.get("source", "")).rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


# Several run_scenario calls in one test: the report shows the worst verdict.
_RANK = {"pass": 0, "info": 1, "skip": 2, "warn": 3, "fail": 4, "error": 5}


def dicom_outcome(report: pytest.TestReport) -> str | None:
    found = [str(value) for key, value in report.user_properties
             if key == PROPERTY_PREFIX + "outcome"]
    return max(found, key=lambda o: _RANK.get(o, 0)) if found else None
