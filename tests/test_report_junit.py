"""JUnit XML (harness/report/junit.py): Jenkins schema, mapping of outcomes, hostile text."""

from __future__ import annotations

import copy
import functools
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.report import render_junit, write_junit

DATA = Path(__file__).parent / "data"
SAMPLE: dict[str, Any] = json.loads((DATA / "sample-results.json").read_text(encoding="utf-8"))
XSD = DATA / "jenkins-junit.xsd"

xmlschema: Any
try:
    import xmlschema
except ImportError:  # the structural check below still runs
    xmlschema = None

# Child order and cardinality of a testcase in the Jenkins schema (used when xmlschema is
# not installed, and as a second, independent check when it is).
CASE_ORDER = ("skipped", "error", "failure", "system-out", "system-err")


def structural_check(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    assert "skipped" not in root.attrib
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests"} <= set(suite.attrib)
        tags = [child.tag for child in suite]
        assert tags.count("properties") <= 1 and (not tags or tags[0] in ("properties", "testcase"))
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        for case in suite.iter("testcase"):
            assert "name" in case.attrib
            order = [CASE_ORDER.index(child.tag) for child in case]
            assert order == sorted(order)
            assert [c.tag for c in case].count("skipped") <= 1
            for skipped in case.iter("skipped"):
                assert not skipped.attrib and not list(skipped)


@functools.cache
def schema() -> Any:
    return xmlschema.XMLSchema(str(XSD))


def validate(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))
    structural_check(root)
    if xmlschema is not None:
        schema().validate(text)
    return root


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def test_xsd_rejects_what_jenkins_rejects() -> None:
    # The schema is only a useful oracle if it can fail.
    if xmlschema is None:
        pytest.skip("xmlschema is not installed (pip install xmlschema)")
    assert schema().is_valid('<testsuites><testsuite name="s" tests="0"/></testsuites>')
    assert not schema().is_valid('<testsuites><testsuite name="s"/></testsuites>')
    assert not schema().is_valid(
        '<testsuite name="s" tests="1"><testcase name="c"><skipped message="m"/></testcase>'
        "</testsuite>"
    )
    assert not schema().is_valid(
        '<testsuite name="s" tests="1"><testcase name="c"><properties>'
        '<property name="a" value="b"/></properties></testcase></testsuite>'
    )


def test_sample_validates_and_counts_match() -> None:
    root = validate(render_junit(SAMPLE))
    suite = root.find("testsuite")
    assert suite is not None
    outcomes = [s["outcome"] for s in SAMPLE["scenarios"]]
    assert suite.attrib["tests"] == str(len(outcomes)) == root.attrib["tests"]
    assert suite.attrib["failures"] == str(outcomes.count("fail"))
    assert suite.attrib["errors"] == str(outcomes.count("error"))
    assert suite.attrib["skipped"] == str(outcomes.count("skip"))
    assert suite.attrib["timestamp"] == SAMPLE["started_at"]
    assert float(suite.attrib["time"]) == pytest.approx(SAMPLE["duration_s"], abs=0.001)
    assert len(list(root.iter("testcase"))) == len(outcomes)


def test_each_outcome_maps_to_its_element() -> None:
    root = validate(render_junit(SAMPLE))
    by_name = cases(root)
    for scenario in SAMPLE["scenarios"]:
        case = by_name[scenario["id"]]
        assert case.attrib["classname"] == f"dicom-harness.{scenario['group']}"
        assert case.attrib["status"] == scenario["outcome"]
        tags = [child.tag for child in case]
        expected_tags = {
            "pass": [], "fail": ["failure"], "error": ["error"], "skip": ["skipped"],
            "warn": ["system-out"], "info": ["system-out"],
        }[scenario["outcome"]]
        assert tags == expected_tags, scenario["id"]


def test_failure_carries_expected_and_observed() -> None:
    case = cases(validate(render_junit(SAMPLE)))["assoc.protocol-version.bit0-clear"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "must"
    assert "A-ASSOCIATE-RJ (1, 2, 2)" in failure.attrib["message"]
    assert "accepted protocol version 0002H" in failure.attrib["message"]
    text = failure.text or ""
    assert "Expected: A-ASSOCIATE-RJ (1, 2, 2)" in text
    assert "Observed: A-ASSOCIATE-AC" in text
    assert "[FAIL] (MUST) Rejected" in text


def test_warnings_are_visible_but_not_failures() -> None:
    root = validate(render_junit(SAMPLE))
    warned = [s["id"] for s in SAMPLE["scenarios"] if s["outcome"] == "warn"]
    assert warned
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert props["warnings"] == str(len(warned))
    for sid in warned:
        case = cases(root)[sid]
        assert case.find("failure") is None and case.find("error") is None
        out = case.find("system-out")
        assert out is not None and (out.text or "").startswith("WARNING: ")
        assert f"warning:{sid}" in props


def test_hostile_strings_stay_text() -> None:
    text = render_junit(SAMPLE)
    root = validate(text)
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert props["called_aet"] == "<script>alert(1)</script>"
    assert "<script>" not in text  # escaped on the wire
    # The BEL in an observed AE title is shown, not written raw (XML 1.0 forbids it).
    warning = props["warning:security.ae-title-syntax.control-char"]
    assert "\x07" not in text and "BAD\\x07AE" in warning


def test_missing_optional_keys() -> None:
    results = {"harness_version": "0.1.0", "target": {}, "scenarios": [
        {"id": "x", "outcome": "fail"}, {"id": "y", "outcome": "skip"}, {"outcome": "error"},
    ]}
    root = validate(render_junit(results))
    suite = root.find("testsuite")
    assert suite is not None and "timestamp" not in suite.attrib
    assert suite.attrib["time"] == "0.000"
    assert [c.attrib["classname"] for c in root.iter("testcase")] == ["dicom-harness.other"] * 3
    skipped = root.find(".//testcase[@name='y']/skipped")
    assert skipped is not None and skipped.text


def test_write_junit(tmp_path: Path) -> None:
    path = write_junit(SAMPLE, tmp_path / "out" / "junit.xml")
    assert path.read_text(encoding="utf-8") == render_junit(SAMPLE)


printable = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": printable,
                "outcome": st.sampled_from(["pass", "fail", "warn", "skip", "error", "info"]),
            },
            optional={
                "group": printable, "title": printable, "expected": printable,
                "observed": printable, "severity": printable,
                "duration_s": st.one_of(st.floats(), st.integers(), st.none()),
                "checks": st.lists(st.dictionaries(printable, printable, max_size=3), max_size=2),
            },
        ),
        max_size=6,
    ),
    printable,
)
def test_arbitrary_text_always_gives_valid_junit(scenarios: list[dict[str, Any]], aet: str) -> None:
    results = copy.deepcopy({"harness_version": "0.1.0", "target": {"called_aet": aet},
                             "scenarios": scenarios})
    root = validate(render_junit(results))
    assert len(list(root.iter("testcase"))) == len(scenarios)
