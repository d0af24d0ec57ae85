"""Tests for harness.pytest_plugin: collection, selection, verdicts, reports, fixtures.

Each test runs pytest in a scratch directory (the ``pytester`` fixture) with the plugin
loaded explicitly; runs that execute scenarios select a handful of association scenarios
so they take about a second against the embedded reference SCP.
"""

from __future__ import annotations

import functools
import importlib.util
import socket
import xml.etree.ElementTree as ET

import pytest
from _plugin_support import plugin_args
from hypothesis import given
from hypothesis import strategies as st

from harness.engine import loader
from harness.engine.model import Scenario
from harness.pytest_plugin import (
    SLOW_TAG,
    describe_result,
    group_marker,
    marker_name,
    parse_address,
)

pytest_plugins = ["pytester"]



@functools.cache
def _suite() -> tuple[Scenario, ...]:
    return tuple(loader.load_suite())


def load_suite() -> list[Scenario]:
    """The default suite, loaded once for the module."""
    return list(_suite())


ASSOC = "assoc.baseline or unknown-application-context or protocol-version-other-bits"


# Plugins of this environment the scratch runs do not need: left out, runs start quicker.
UNUSED = ("cacheprovider", "benchmark", "html", "metadata", "hypothesispytest", "faker")


def without(*names: str) -> list[str]:
    return [arg for name in names for arg in ("-p", f"no:{name}")]


UNUSED_PLUGINS = without(*UNUSED)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # In-process runs: this module already imported the plugin, so pytest cannot rewrite
    # its asserts (it has none) and would say so in a warning.
    return pytester.runpytest(*plugin_args(), *UNUSED_PLUGINS, "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", *args)


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line.split("::", 1)[1] for line in result.outlines if line.startswith("dicom::")]


def default_ids() -> list[str]:
    return [sc.id for sc in load_suite() if SLOW_TAG not in sc.tags]


@pytest.fixture
def faulty_profile(pytester: pytest.Pytester) -> str:
    """An embedded SCP that accepts unknown application contexts (a SHOULD) and rejects
    protocol versions with extra bits (a MUST)."""
    path = pytester.path / "faulty.yaml"
    path.write_text("faults: [accept_bad_app_context, reject_version_bits]\n")
    return str(path)


# --- collection ----------------------------------------------------------------------------


def test_without_options_nothing_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = run(pytester, "--co", "-q")
    assert collected_ids(result) == []
    assert any("test_mine.py::test_mine" in line for line in result.outlines)
    result = run(pytester, "-q")
    result.assert_outcomes(passed=1)


def test_dicom_collects_every_scenario_by_id(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--dicom", "--co", "-q")
    assert collected_ids(result) == default_ids()
    assert result.ret == pytest.ExitCode.OK


def test_slow_scenarios_need_dicom_slow(pytester: pytest.Pytester) -> None:
    slow = [sc.id for sc in load_suite() if SLOW_TAG in sc.tags]
    if not slow:
        pytest.skip("the suite has no slow scenario")
    ids = collected_ids(run(pytester, "--dicom", "--dicom-slow", "--co", "-q", "-m", "slow"))
    assert ids == slow


def test_k_selects_scenarios(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--dicom", "--co", "-q", "-k", "assoc.baseline or echo")
    ids = collected_ids(result)
    titles = {sc.id: sc.title.lower() for sc in load_suite()}
    assert "assoc.baseline" in ids
    assert all(i == "assoc.baseline" or "echo" in i or "echo" in titles[i] for i in ids)
    assert [i for i in default_ids() if "echo" in i] == [i for i in ids if "echo" in i]
    assert len(ids) < len(default_ids())


def test_m_selects_by_group_and_severity(pytester: pytest.Pytester) -> None:
    want = [sc.id for sc in load_suite() if sc.group == "A" and sc.severity == "should"
            and SLOW_TAG not in sc.tags]
    ids = collected_ids(run(pytester, "--dicom", "--co", "-q", "-m", "group_a and should"))
    assert ids == want and want
    musts = collected_ids(run(pytester, "--dicom", "--co", "-q", "-m", "must and not group_a"))
    assert musts and all(sc.severity == "must" and sc.group != "A"
                         for sc in load_suite() if sc.id in musts)


def test_bad_suite_is_a_collection_error_without_traceback(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--dicom", "--dicom-suite", "no-such-suite", "--co", "-q")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*dicom-harness: suite 'no-such-suite'*"])
    assert "Traceback" not in result.stdout.str()


# --- verdicts ------------------------------------------------------------------------------


def test_strict_turns_should_failure_into_failure(pytester: pytest.Pytester,
                                                  faulty_profile: str) -> None:
    result = run(pytester, "--dicom", "--dicom-scp-profile", faulty_profile, "--dicom-strict",
                 "-k", "assoc.baseline or unknown-application-context")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assoc.unknown-application-context (should, warn)*",
                                 "*expected:*rejected*", "*observed:*accepted*",
                                 "*because of --dicom-strict*"])


def test_undeclared_requirement_is_skipped(pytester: pytest.Pytester) -> None:
    needs = [sc for sc in load_suite() if sc.requires and sc.group == "A"]
    if not needs:
        pytest.skip("no scenario of group A needs a declaration")
    sc = needs[0]
    missing = [r for r in sc.requires if r != "calling_aet_allow"]
    if missing:
        pytest.skip(f"{sc.id} needs {missing}, which the embedded SCP declares")
    result = run(pytester, "--dicom", "-rs", "-k", sc.id)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED*{sc.id}: needs the target profile to declare*"])


def test_harness_error_is_reported_as_error(pytester: pytest.Pytester) -> None:
    suite = pytester.path / "mine.yaml"
    suite.write_text(
        "group: Z\n"
        "scenarios:\n"
        "  - id: mine.store-without-association\n"
        "    title: A store on an association the scenario never opened\n"
        "    references: [PS3.4 B.2]\n"
        "    steps:\n"
        "      - store: {}\n")
    result = run(pytester, "--dicom", "--dicom-suite", str(suite), "-m", "group_z")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at call of mine.store-without-association*",
                                 "*harness error*never opened*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# --- one run, its terminal output and JUnit XML ------------------------------------------


def test_verdicts_in_terminal_and_junit(pytester: pytest.Pytester, faulty_profile: str) -> None:
    """pass, warn (a SHOULD), fail (a MUST) and info against an SCP with two faults."""
    info = next(sc.id for sc in load_suite() if sc.severity == "info" and sc.group == "A")
    ids = [sc.id for sc in load_suite() if sc.id in ("assoc.baseline", info) or
           "unknown-application-context" in sc.id or "protocol-version-other-bits" in sc.id]
    junit = pytester.path / "junit.xml"
    result = run(pytester, "--dicom", "--dicom-scp-profile", faulty_profile, "-v", "-k",
                 f"{ASSOC} or {info}", f"--junitxml={junit}")
    failing = [i for i in ids if "protocol-version-other-bits" in i]
    assert failing
    result.assert_outcomes(passed=2, failed=len(failing), warnings=1)
    assert result.parseoutcomes()["warned"] == 1
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # a SHOULD that does not hold: WARN, and a DicomConformanceWarning at the scenario's line
    result.stdout.fnmatch_lines(["*dicom::assoc.unknown-application-context WARN*",
                                 "*a-association.yaml:*: DicomConformanceWarning: "
                                 "assoc.unknown-application-context: SHOULD not met*"])
    # a MUST that does not hold: expected, observed, the checks and the trace; no traceback
    out = result.stdout.str()
    assert "expected:   step 1: associate: accepted" in out
    assert "checks that did not hold:" in out and "A-ASSOCIATE-RJ" in out
    assert "trace (last" in out
    assert "Traceback" not in out and "pytest_plugin.py" not in out
    # JUnit: one testcase per scenario, the verdict's fields as properties
    by_name = {str(c.get("name")): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(by_name) == sorted(ids)
    assert all(c.get("classname") == "dicom" for c in by_name.values())

    def props(name: str) -> dict[str | None, str]:
        return {p.get("name"): str(p.get("value")) for p in by_name[name].iter("property")}

    base = props("assoc.baseline")
    assert base["dicom_outcome"] == "pass" and base["dicom_severity"] == "must"
    assert base["dicom_group"] == "A" and "PS3.8" in base["dicom_references"]
    assert props(info)["dicom_outcome"] == "info" and props(info)["dicom_observed"]
    assert props("assoc.unknown-application-context")["dicom_outcome"] == "warn"
    assert all(by_name[i].find("failure") is not None for i in failing)


def test_xdist_workers_and_pytest_html(pytester: pytest.Pytester,
                                       faulty_profile: str) -> None:
    """Items run in any xdist worker (each starts its own embedded SCP); the verdicts reach
    the controller's summary and pytest-html's report."""
    pytest.importorskip("xdist")
    has_html = importlib.util.find_spec("pytest_html") is not None
    html = pytester.path / "report.html"
    keep = ("html", "metadata") if has_html else ()
    plugins = without(*(name for name in UNUSED if name not in keep))
    # A real subprocess: the workers are processes anyway.
    result = pytester.runpytest_subprocess(
        *plugin_args(), *plugins, "--dicom", "--dicom-scp-profile", faulty_profile,
        "-n", "2", "-k", "assoc.baseline or async-window-offered or unknown-application",
        *([f"--html={html}", "--self-contained-html"] if has_html else []))
    parsed = result.parseoutcomes()
    windows = [sc.id for sc in load_suite() if "async-window-offered" in sc.id]
    assert parsed.get("passed") == 1 + len(windows)
    assert parsed.get("warned") == 1 and parsed.get("warnings") == 1
    result.stdout.fnmatch_lines(["*2 workers*"])
    if has_html:
        page = html.read_text(encoding="utf-8")
        assert all(sid in page for sid in ["assoc.baseline", "assoc.unknown-application-context",
                                           *windows])


# --- usage errors --------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    port = _closed_port()
    result = run(pytester, "--dicom-target", f"127.0.0.1:{port}", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: dicom-harness: --dicom-target 127.0.0.1:{port} "
                                 "unreachable*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize("args", [["--dicom-target", "no-port"],
                                  ["--dicom", "--dicom-scp-profile", "missing.yaml"],
                                  ["--dicom", "--dicom-profile", "missing.yaml"],
                                  ["--dicom", "--dicom-storage-dir", "missing-dir"],
                                  ["--dicom", "--dicom-timeout", "0"]])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str]) -> None:
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: dicom-harness: *"])
    assert "Traceback" not in result.stderr.str()


# --- fixtures ------------------------------------------------------------------------------


def test_fixtures_without_options(pytester: pytest.Pytester, faulty_profile: str) -> None:
    pytester.makepyfile(test_fixtures=f"""
        import pytest

        def test_store_to_default_target(scu, dataset_factory):
            ds = dataset_factory("tiny")
            assert ds.file_meta.TransferSyntaxUID
            out = scu.store(ds)
            assert out.status == 0x0000, out.describe()
            assert scu.echo().status == 0x0000

        def test_new_instances_each_call(dataset_factory):
            a, b = dataset_factory(), dataset_factory()
            assert a.SOPInstanceUID != b.SOPInstanceUID
            assert dataset_factory.encode(a)[:2] == b"\\x08\\x00"

        def test_reference_scp_records(reference_scp, scu_factory, dataset_factory):
            ds = dataset_factory("mr")
            assert scu_factory(reference_scp).store(ds).status == 0x0000
            [record] = reference_scp.wait_for(1)
            assert record.sop_instance == ds.SOPInstanceUID and record.path.is_file()
            assert record.path.parent == reference_scp.storage_dir

        @pytest.mark.parametrize("reference_scp", [{{"status_rules": [{{"status": 0xA700}}]}}],
                                 indirect=True)
        def test_reference_scp_profile(reference_scp, scu_factory, dataset_factory):
            assert scu_factory(reference_scp.address).store(dataset_factory()).status == 0xA700

        def test_run_scenario_passes(run_scenario):
            assert run_scenario("assoc.baseline")["outcome"] == "pass"

        def test_run_scenario_warns(run_scenario, reference_scp_factory):
            scp = reference_scp_factory({faulty_profile!r})
            run_scenario("assoc.unknown-application-context", scp)

        def test_run_scenario_fails(run_scenario, reference_scp_factory):
            scp = reference_scp_factory({faulty_profile!r})
            run_scenario("assoc.protocol-version-other-bits[3]", scp)
        """)
    result = run(pytester, "-q", "-rf")
    result.assert_outcomes(passed=5, failed=1, warnings=1)
    assert result.parseoutcomes()["warned"] == 1
    result.stdout.fnmatch_lines(["FAILED test_fixtures.py::test_run_scenario_fails*"])
    assert collected_ids(run(pytester, "--co", "-q")) == []


# --- helpers -------------------------------------------------------------------------------


@given(st.integers(1, 65535), st.sampled_from(["127.0.0.1", "scp.example", "[::1]"]))
def test_parse_address_round_trip(port: int, host: str) -> None:
    assert parse_address(f"{host}:{port}") == (host.strip("[]"), port)


@pytest.mark.parametrize("text", ["", "host", "host:", ":104", "host:0", "host:65536",
                                  "host:x"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)


def test_marker_names_are_selectable() -> None:
    assert group_marker("A") == "group_a"
    assert marker_name("big-objects") == "big_objects"
    assert marker_name("slow") == "slow"


def test_describe_result_lists_only_checks_that_did_not_hold() -> None:
    result = {"id": "x.y", "title": "T", "severity": "must", "outcome": "fail", "group": "B",
              "references": ["PS3.7 9.1.1"], "expected": "E", "observed": "O",
              "source": "s.yaml:3",
              "checks": [{"name": "ok", "outcome": "pass", "severity": "must",
                          "expected": "a", "observed": "a"},
                         {"name": "bad", "outcome": "fail", "severity": "must",
                          "expected": "b", "observed": "c", "reference": "PS3.8 9"}],
              "trace": [{"t": 0.1 * i, "assoc": 1, "dir": "sent", "type": f"P{i}",
                         "length": 6} for i in range(20)]}
    text = describe_result(result, trace_lines=3)
    assert "bad: expected b; observed c  [PS3.8 9]" in text
    assert "ok:" not in text
    assert "trace (last 3 of 20 events)" in text and "P19" in text and "P16" not in text
