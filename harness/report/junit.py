"""JUnit XML for CI servers: one testcase per scenario, valid against Jenkins' junit schema.

Mapping (the schema Jenkins reads, "jenkins-junit.xsd", allows in a testcase only, in this
order, skipped?, error*, failure*, system-out*, system-err*, and no properties):

- fail  -> <failure message="expected ...; observed ..." type="<severity>"> with the details;
- error -> <error> (the harness could not run the scenario);
- skip  -> <skipped>reason</skipped> (text only: the schema gives <skipped> no attributes);
- warn  -> NOT a failure, so the job stays green: <system-out> starting "WARNING: ", the
  testcase attribute status="warn", and a suite property "warning:<id>";
- info  -> <system-out> starting "INFO: ";
- pass  -> an empty testcase.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.report.files import atomic_write_text
from harness.report.model import (
    as_float,
    as_list,
    as_mapping,
    as_text,
    check_outcome,
    group_of,
    outcome_of,
    scenario_id,
    scenarios,
    severity_of,
    summary,
)

SUITE_NAME = "dicom-harness"
# Keep the one-line failure message readable in CI dashboards; the element text has it all.
MESSAGE_LIMIT = 500


def _seconds(value: Any) -> str:
    number = as_float(value)
    return f"{max(number, 0.0):.3f}" if number is not None else "0.000"


def _clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _details(scenario: Mapping[str, Any]) -> str:
    """Multi-line plain-text account of a scenario: what was expected, seen, and each check."""
    lines = [
        f"{scenario_id(scenario)}: {as_text(scenario.get('title'))}",
        f"Severity: {severity_of(scenario).upper()}",
        f"Expected: {as_text(scenario.get('expected'))}",
        f"Observed: {as_text(scenario.get('observed'))}",
    ]
    refs = [as_text(r) for r in as_list(scenario.get("references"))]
    if refs:
        lines.append("References: " + "; ".join(refs))
    checks = [as_mapping(c) for c in as_list(scenario.get("checks"))]
    if checks:
        lines.append("Checks:")
        for check in checks:
            ref = as_text(check.get("reference"))
            lines.append(
                f"  [{check_outcome(check).upper()}] ({severity_of(check).upper()}) "
                f"{as_text(check.get('name'))}: expected {as_text(check.get('expected'))}; "
                f"observed {as_text(check.get('observed'))}" + (f" ({ref})" if ref else "")
            )
    return "\n".join(lines)


def _one_line(scenario: Mapping[str, Any]) -> str:
    return _clip(
        f"expected {as_text(scenario.get('expected')) or '(not stated)'}; "
        f"observed {as_text(scenario.get('observed')) or '(nothing recorded)'}"
    ).replace("\n", " ")


def _testcase(scenario: Mapping[str, Any]) -> ET.Element:
    outcome = outcome_of(scenario)
    case = ET.Element(
        "testcase",
        {
            "classname": f"{SUITE_NAME}.{group_of(scenario)}",
            "name": scenario_id(scenario),
            "time": _seconds(scenario.get("duration_s")),
            "status": outcome,
        },
    )
    if outcome == "skip":
        ET.SubElement(case, "skipped").text = (
            as_text(scenario.get("observed")) or "skipped by the harness"
        )
    elif outcome == "error":
        error = ET.SubElement(
            case, "error", {"message": _one_line(scenario), "type": "harness-error"}
        )
        error.text = _details(scenario)
    elif outcome == "fail":
        failure = ET.SubElement(
            case, "failure", {"message": _one_line(scenario), "type": severity_of(scenario)}
        )
        failure.text = _details(scenario)
    elif outcome == "warn":
        ET.SubElement(case, "system-out").text = "WARNING: " + _details(scenario)
    elif outcome == "info":
        ET.SubElement(case, "system-out").text = "INFO: " + _details(scenario)
    return case


def _properties(results: Mapping[str, Any]) -> ET.Element:
    target = as_mapping(results.get("target"))
    props: list[tuple[str, str]] = [
        ("harness_version", as_text(results.get("harness_version")) or "unknown"),
    ]
    host, port = as_text(target.get("host")), as_text(target.get("port"))
    if host or port:
        props.append(("target", f"{host}:{port}"))
    for key in ("called_aet", "calling_aet", "implementation_class_uid",
                "implementation_version_name"):
        if key in target:
            props.append((key, as_text(target.get(key))))
    warned = [s for s in scenarios(results) if outcome_of(s) == "warn"]
    props.append(("warnings", str(len(warned))))
    props.extend((f"warning:{scenario_id(s)}", _one_line(s)) for s in warned)
    element = ET.Element("properties")
    for name, value in props:
        ET.SubElement(element, "property", {"name": name, "value": value})
    return element


def render_junit(results: Mapping[str, Any]) -> str:
    """The JUnit XML document for ``results`` as text (with XML declaration)."""
    counts = summary(results)
    items = scenarios(results)
    total_time = as_float(results.get("duration_s"))
    if total_time is None:
        total_time = sum(as_float(s.get("duration_s")) or 0.0 for s in items)
    common = {
        "tests": str(counts["total"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["errored"]),
        "time": _seconds(total_time),
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **common})
    suite_attrs = {"name": SUITE_NAME, **common, "skipped": str(counts["skipped"])}
    started = as_text(results.get("started_at"))
    if started:
        suite_attrs["timestamp"] = started
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    suite.append(_properties(results))
    for scenario in items:
        suite.append(_testcase(scenario))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: Mapping[str, Any], path: Path) -> Path:
    """Write the JUnit XML for ``results`` to ``path`` (atomically) and return the path."""
    return atomic_write_text(Path(path), render_junit(results))
