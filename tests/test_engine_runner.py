"""The scenario runner (harness/engine/runner.py, context.py, universal checks) against the
embedded reference SCP, conformant and with faults switched on."""

from __future__ import annotations

import asyncio
import datetime as dt
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import __version__
from harness.engine import runner as runner_module
from harness.engine.context import (
    DECLARATION_KEYS,
    ScenarioRun,
    Target,
    TargetProfileError,
    load_target_profile,
)
from harness.engine.embedded import EmbeddedSCP, embedded_profile
from harness.engine.loader import load_file, load_suite, select
from harness.engine.model import OUTCOMES, Scenario
from harness.engine.runner import TARGET_DOWN, Runner, _budget, conformance_statement
from harness.scp.profile import Profile
from harness.wire.uid import uid_name

TOP_KEYS = {"harness_version", "started_at", "duration_s", "target", "summary", "scenarios"}
TARGET_KEYS = {"host", "port", "called_aet", "implementation_class_uid",
               "implementation_version_name"}
SUMMARY_KEYS = {"total", "passed", "failed", "warned", "skipped", "errored"}
SCENARIO_KEYS = {"id", "title", "group", "severity", "outcome", "references", "expected",
                 "observed", "duration_s", "trace"}
TRACE_KEYS = {"t", "assoc", "dir", "type", "length", "summary", "findings"}
COUNTER = {"pass": "passed", "fail": "failed", "warn": "warned", "skip": "skipped",
           "error": "errored", "info": "info"}


@pytest.fixture(scope="module")
def suite() -> list[Scenario]:
    return load_suite()


def pick(suite: list[Scenario], expr: str) -> list[Scenario]:
    chosen = select(suite, expr)
    assert chosen, expr
    return chosen


def target_of(scp: EmbeddedSCP, *, timeout: float = 2.0, storage: bool = True,
              declared: dict[str, Any] | None = None) -> Target:
    return Target("127.0.0.1", scp.port, scp.profile.ae_title, "HARNESS", timeout,
                  scp.storage_dir if storage else None, declared or {}, True)


def run(scenarios: list[Scenario], profile: Profile | None = None, *, timeout: float = 2.0,
        storage: bool = True, declared: dict[str, Any] | None = None,
        recovery: float = 2.0) -> dict[str, Any]:
    with EmbeddedSCP(profile or embedded_profile()) as scp:
        target = target_of(scp, timeout=timeout, storage=storage, declared=declared)
        return asyncio.run(Runner(target, recovery_timeout=recovery).run(scenarios))


def by_id(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results["scenarios"]}


def checks(result: dict[str, Any], outcome: str | None = None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"] if outcome is None or c["outcome"] == outcome}


def scenario_file(tmp_path: Path, body: str, group: str = "B") -> list[Scenario]:
    path = tmp_path / "extra.yaml"
    path.write_text(f"group: {group}\nscenarios:\n" + textwrap.indent(
        textwrap.dedent(body).strip(), "  ") + "\n")
    return load_file(path)


# --- verdicts ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(suite: list[Scenario]) -> dict[str, Any]:
    """One run over a pass, an info, a skip and a negative scenario, with a storage dir."""
    chosen = pick(suite, "assoc.baseline or assoc.called-ae-not-ours or "
                         "assoc.calling-ae-not-authorised or dataset.garbage or "
                         "store.transfer-syntax and ivrle")
    return run(chosen)


def test_results_follow_the_design(mixed: dict[str, Any]) -> None:
    assert set(mixed) >= TOP_KEYS
    assert mixed["harness_version"] == __version__
    started = dt.datetime.fromisoformat(mixed["started_at"])
    assert started.tzinfo is not None and abs(
        (dt.datetime.now(dt.UTC) - started).total_seconds()) < 300
    assert isinstance(mixed["duration_s"], float) and mixed["duration_s"] >= 0
    target = mixed["target"]
    assert set(target) >= TARGET_KEYS
    assert target["host"] == "127.0.0.1" and isinstance(target["port"], int)
    assert target["called_aet"] == "ANY-SCP"
    # learnt from the AC: the reference SCP's own identity
    assert str(target["implementation_class_uid"]).startswith("2.25.")
    assert target["implementation_version_name"]
    summary = mixed["summary"]
    assert set(summary) >= SUMMARY_KEYS
    assert summary["total"] == len(mixed["scenarios"]) == 5
    assert sum(summary[COUNTER[o]] for o in OUTCOMES) == summary["total"]
    for result in mixed["scenarios"]:
        assert set(result) >= SCENARIO_KEYS, result["id"]
        assert result["outcome"] in OUTCOMES and result["severity"] in ("must", "should", "info")
        assert result["references"] and all(isinstance(r, str) for r in result["references"])
        assert isinstance(result["expected"], str) and isinstance(result["observed"], str)
        assert result["duration_s"] >= 0 and isinstance(result["trace"], list)
    counted = {COUNTER[o]: 0 for o in OUTCOMES}
    for result in mixed["scenarios"]:
        counted[COUNTER[result["outcome"]]] += 1
    assert all(summary[k] == v for k, v in counted.items())


def test_passing_and_info_and_skip(mixed: dict[str, Any]) -> None:
    results = by_id(mixed)
    baseline = results["assoc.baseline"]
    assert baseline["outcome"] == "pass"
    passed = checks(baseline, "pass")
    assert {"step 1: associate", "step 2: release", "AC fields"} <= set(passed)
    assert results["store.transfer-syntax[ivrle]"]["outcome"] == "pass"
    assert checks(results["store.transfer-syntax[ivrle]"])["step 2: store: stored data"][
        "observed"] == "equal"
    assert results["assoc.called-ae-not-ours"]["outcome"] == "info"
    skipped = results["assoc.calling-ae-not-authorised"]
    assert skipped["outcome"] == "skip" and "calling_aet_allow" in skipped["observed"]
    assert skipped["trace"] == [] and skipped["checks"] == []  # not even connected


def test_trace_entries(mixed: dict[str, Any]) -> None:
    trace = by_id(mixed)["assoc.baseline"]["trace"]
    assert trace
    for entry in trace:
        assert set(entry) >= TRACE_KEYS, entry
        assert entry["dir"] in ("sent", "recv", "event")
        assert isinstance(entry["findings"], list) and entry["t"] >= 0
    types = [(e["dir"], e["type"]) for e in trace]
    for wanted in (("sent", "A-ASSOCIATE-RQ"), ("recv", "A-ASSOCIATE-AC"),
                   ("sent", "A-RELEASE-RQ"), ("recv", "A-RELEASE-RP")):
        assert wanted in types
    assert [e["t"] for e in trace] == sorted(e["t"] for e in trace)


def test_liveness_probe_only_after_negative_scenarios(mixed: dict[str, Any]) -> None:
    results = by_id(mixed)
    garbage = results["dataset.garbage"]
    assert garbage["outcome"] == "pass"
    probe = checks(garbage)["SCP alive after the scenario"]
    assert probe["outcome"] == "pass" and probe["severity"] == "must"
    for positive in ("assoc.baseline", "store.transfer-syntax[ivrle]"):
        assert "SCP alive after the scenario" not in checks(results[positive])


def test_conformance_statement_is_observed(mixed: dict[str, Any]) -> None:
    statement = mixed["conformance"]
    classes = {c["sop_class"]: c for c in statement["accepted"]}
    ct = "1.2.840.10008.5.1.4.1.1.2"
    assert ct in classes and classes[ct]["name"] == "CT Image Storage"
    assert "1.2.840.10008.1.2" in classes[ct]["transfer_syntaxes"]
    assert statement["ae_title_policy"]  # recorded by assoc.called-ae-not-ours


def test_must_scenario_fails_under_a_fault(suite: list[Scenario]) -> None:
    results = run(pick(suite, "assoc.baseline"), embedded_profile(faults={"wrong_ae_echo"}))
    [result] = results["scenarios"]
    assert result["outcome"] == "fail"
    failed = checks(result, "fail")
    assert list(failed) == ["AC fields"]
    assert "AE title" in failed["AC fields"]["observed"]
    assert result["observed"].startswith("AC fields: ")  # the failing check is named
    assert results["summary"]["failed"] == 1 and results["summary"]["passed"] == 0


def test_should_scenario_warns_under_a_fault(suite: list[Scenario]) -> None:
    results = run(pick(suite, "assoc.unknown-application-context"),
                  embedded_profile(faults={"accept_bad_app_context"}))
    [result] = results["scenarios"]
    assert result["severity"] == "should" and result["outcome"] == "warn"
    warned = checks(result, "warn")
    assert warned and all(c["severity"] == "should" for c in warned.values())
    assert not checks(result, "fail")
    assert results["summary"]["warned"] == 1


def test_stored_data_checked_against_what_was_sent(suite: list[Scenario]) -> None:
    chosen = pick(suite, "store.transfer-syntax and ivrle")
    altered = by_id(run(chosen, embedded_profile(faults={"alter_stored"})))
    failed = checks(altered["store.transfer-syntax[ivrle]"], "fail")
    assert "(0010,0010)" in failed["step 2: store: stored data"]["observed"]
    # without a storage directory the same fault goes unseen: the check is only recorded
    blind = by_id(run(chosen, embedded_profile(faults={"alter_stored"}), storage=False))
    result = blind["store.transfer-syntax[ivrle]"]
    assert result["outcome"] == "pass"
    assert checks(result)["step 2: store: stored data"]["outcome"] == "info"


def test_declared_requirements_are_checked(suite: list[Scenario]) -> None:
    chosen = pick(suite, "assoc.calling-ae-not-authorised")
    profile = embedded_profile(calling_aet_allow=["HARNESS"])
    results = by_id(run(chosen, profile, declared={"calling_aet_allow": ["HARNESS"]}))
    assert results["assoc.calling-ae-not-authorised"]["outcome"] == "pass"
    # declared but not enforced: the declaration is held against the target
    lying = by_id(run(chosen, declared={"calling_aet_allow": ["HARNESS"]}))
    assert lying["assoc.calling-ae-not-authorised"]["outcome"] == "fail"


# --- time budgets and hangs --------------------------------------------------------------------


def test_a_hang_is_a_failed_check_not_a_hung_harness(suite: list[Scenario]) -> None:
    chosen = pick(suite, "store.release")
    start = time.monotonic()
    results = run(chosen, embedded_profile(faults={"no_response"}), timeout=0.5)
    wall = time.monotonic() - start
    [result] = results["scenarios"]
    assert result["outcome"] == "fail"
    failed = checks(result, "fail")
    assert "step 2: store: answer in time" in failed
    assert "no answer" in failed["step 2: store: answer in time"]["observed"]
    budget = _budget(ScenarioRun(chosen[0], Target("h", 1, timeout=0.5), {}))
    assert 0.5 <= result["duration_s"] < budget
    assert wall < 5.0
    # the release after the hang is not attempted on a dead association, only noted
    assert checks(result)["step 3: release"]["outcome"] == "info"


def test_scenario_time_budget_is_enforced(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = scenario_file(tmp_path, """
        - id: extra.slow
          title: A step that takes longer than the budget
          references: [PS3.8 9.1.4]
          steps:
            - associate: {}
            - sleep: {seconds: 30}
            - release: {}
        """)
    monkeypatch.setattr(runner_module, "_budget", lambda run: 0.4)
    start = time.monotonic()
    [result] = run(chosen)["scenarios"]
    assert time.monotonic() - start < 5.0
    assert result["outcome"] == "fail"
    budget = checks(result)["scenario time budget"]
    assert budget["outcome"] == "fail" and "hang" in budget["observed"]


def test_budget_is_bounded_and_grows_with_steps(suite: list[Scenario]) -> None:
    target = Target("h", 1, timeout=2.0)
    small = pick(suite, "assoc.baseline")[0]
    large = pick(suite, "store.large-object")[0]
    b_small = _budget(ScenarioRun(small, target, {}))
    assert 2.0 * len(small.steps) < b_small <= 900.0
    assert _budget(ScenarioRun(large, target, {})) > b_small
    for sc in suite:
        assert 0 < _budget(ScenarioRun(sc, target, {})) <= 900.0


def test_failed_liveness_probe_is_a_must_failure(tmp_path: Path) -> None:
    chosen = scenario_file(tmp_path, """
        - id: extra.negative
          title: A negative scenario that itself only associates
          references: [PS3.8 9.1.4]
          negative: true
          steps:
            - associate: {}
            - release: {}
        """, group="H")
    [result] = run(chosen, embedded_profile(faults={"no_response"}), timeout=0.5,
                   recovery=1.5)["scenarios"]
    probe = checks(result)["SCP alive after the scenario"]
    assert probe["outcome"] == "fail" and result["outcome"] == "fail"
    assert "no answer" in probe["observed"] and "recovered" in probe["observed"]


# --- a target that goes away -------------------------------------------------------------------


def test_target_stopping_mid_run(suite: list[Scenario]) -> None:
    chosen = pick(suite, "assoc.baseline or store.echo or store.release")
    assert chosen[0].id == "assoc.baseline" and len(chosen) == 3
    scp = EmbeddedSCP(embedded_profile()).start()
    seen: list[str] = []

    def progress(sc: Scenario, result: dict[str, Any]) -> None:
        seen.append(result["outcome"])
        if sc.id == "assoc.baseline":
            scp.stop()

    try:
        target = target_of(scp, timeout=1.0, storage=False)
        results = asyncio.run(Runner(target, progress=progress, recovery_timeout=1.0)
                              .run(chosen))
    finally:
        scp.stop()
    first, *rest = results["scenarios"]
    # It passed its own checks, but the next scenario could not connect: the target went
    # down after it, which is its finding; the rest are not run (issue 13).
    assert seen[0] == "pass" and first["outcome"] == "fail"
    assert first["observed"].startswith(TARGET_DOWN)
    for result in rest:
        assert result["outcome"] == "skip", result
        assert result["observed"] == ("not run: the target is down (it stopped accepting "
                                      "connections after assoc.baseline)")
    assert results["summary"]["failed"] == 1 and results["summary"]["skipped"] == 2
    assert results["summary"]["errored"] == 0
    assert results["target_down"]["after"] == "assoc.baseline"


def test_unreachable_from_the_start_names_no_scenario(suite: list[Scenario]) -> None:
    with EmbeddedSCP(embedded_profile()) as scp:
        target = target_of(scp, timeout=1.0, storage=False)
    # stopped before the run: every scenario is an error, none is blamed
    results = asyncio.run(Runner(target).run(pick(suite, "assoc.baseline")))
    [result] = results["scenarios"]
    assert result["outcome"] == "error" and "does not accept connections" in result["observed"]
    assert "after scenario" not in result["observed"]
    assert results["target_down"] == {"after": None, "detail": result["observed"]}


# --- context: the declared profile and checks -------------------------------------------------


def test_check_outcomes_by_severity(suite: list[Scenario]) -> None:
    sc_run = ScenarioRun(suite[0], Target("h", 1), {})
    assert sc_run.check("a", "must", True, "e", "o").outcome == "pass"
    assert sc_run.check("b", "must", False, "e", "o").outcome == "fail"
    assert sc_run.check("c", "should", False, "e", "o").outcome == "warn"
    assert sc_run.check("d", "info", False, "e", "o").outcome == "info"
    assert sc_run.check("e", "must", None, "e", "o").outcome == "info"
    assert [c.name for c in sc_run.checks] == list("abcde")
    assert sc_run.timeout == 10.0  # the target's, the scenario sets none


def test_load_target_profile(tmp_path: Path) -> None:
    assert load_target_profile(None) == {}
    good = tmp_path / "good.yaml"
    good.write_text("duplicate_sop_instance: reject\nartim_timeout: 5\n")
    assert load_target_profile(good) == {"duplicate_sop_instance": "reject", "artim_timeout": 5}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_target_profile(empty) == {}
    cases = {"bad.yaml": ("a: [1\n", "invalid YAML"), "list.yaml": ("- 1\n", "mapping"),
             "unknown.yaml": ("artim: 5\n", "unknown declaration(s) artim")}
    for name, (text, wanted) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(TargetProfileError) as info:
            load_target_profile(path)
        assert str(path) in str(info.value) and wanted in str(info.value)
    with pytest.raises(TargetProfileError, match="cannot read"):
        load_target_profile(tmp_path / "missing.yaml")
    assert {"artim_timeout", "calling_aet_allow", "duplicate_sop_instance"} <= set(
        DECLARATION_KEYS)


def test_names_and_conformance_statement() -> None:
    assert uid_name("1.2.840.10008.1.2") == "Implicit VR Little Endian"
    assert uid_name("1.2.3.4") == "1.2.3.4"
    statement = conformance_statement({"accepted": {"1.2.840.10008.1.1": {"1.2.840.10008.1.2"}},
                                       "rejected": {"1.2.3.999": 3}})
    assert statement["accepted"] == [{"sop_class": "1.2.840.10008.1.1",
                                      "name": "Verification SOP Class",
                                      "transfer_syntaxes": ["1.2.840.10008.1.2"]}]
    assert statement["rejected"][0]["result"] == 3
    assert statement["async_window"] == [1, 1]  # nothing negotiated: the default


@pytest.fixture()
def _no_leftover_tasks() -> Iterator[None]:
    yield
    # every run uses its own loop through asyncio.run: nothing is left on a shared one
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


@pytest.mark.usefixtures("_no_leftover_tasks")
def test_runner_run_one_directly(suite: list[Scenario]) -> None:
    with EmbeddedSCP(embedded_profile()) as scp:
        runner = Runner(target_of(scp))
        result = asyncio.run(runner.run_one(pick(suite, "store.echo")[0]))
    assert result["outcome"] == "pass" and result["id"] == "store.echo"
    assert checks(result)["step 2: echo"]["observed"].startswith("C-ECHO-RSP status 0x0000")
