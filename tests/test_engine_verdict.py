"""Verdicts on SCPs the suite was not tuned to (issue 13), against the embedded reference SCP:

- a scenario whose needs were not negotiated is skipped (never a failure), nothing is sent on
  a rejected context, and the observed conformance statement records it;
- S01 (nothing kept after a failure) does not mistake an earlier, successful copy of the same
  SOP Instance for one kept after the failure;
- the status-semantics table is the one README documents;
- ``--max-duration`` bounds a run against a target that never answers, with every report
  written and the unfinished scenarios as errors;
- a target that stops accepting connections is a finding of the scenario after which it
  stopped, and the rest are reported once as not run.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

from harness.cli import main
from harness.engine.context import Target
from harness.engine.embedded import EmbeddedSCP, declared_from_profile, embedded_profile
from harness.engine.loader import load_file, load_suite, select
from harness.engine.model import Scenario
from harness.engine.runner import TARGET_DOWN, Runner
from harness.engine.semantics import (
    STATUS_SEMANTICS,
    StoreSituation,
    judge_status,
    markdown_table,
)
from harness.report.console import print_summary
from harness.report.html import render_html
from harness.scp.profile import StatusRule
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE

README = Path(__file__).resolve().parent.parent / "README.md"


def _target(scp: EmbeddedSCP, storage: bool = True) -> Target:
    return Target("127.0.0.1", scp.port, scp.profile.ae_title, "HARNESS", 2.0,
                  scp.storage_dir if storage else None, declared_from_profile(scp.profile), True)


def _scenarios(tmp_path: Path, body: str, group: str = "B") -> list[Scenario]:
    path = tmp_path / "extra.yaml"
    path.write_text(f"group: {group}\nscenarios:\n" + textwrap.indent(
        textwrap.dedent(body).strip(), "  ") + "\n")
    return load_file(path)


def test_rejected_transfer_syntax_skips_the_store_and_is_recorded() -> None:
    """The DCMTK default storescp case: Deflated refused (result 4), the fallback context
    accepted; the store must not go out on the rejected context (that earned a false FAIL)."""
    scenarios = select(load_suite(), "store.transfer-syntax")
    profile = embedded_profile(transfer_syntaxes=[EXPLICIT_VR_LE, IMPLICIT_VR_LE])
    with EmbeddedSCP(profile) as scp:
        results = asyncio.run(Runner(_target(scp), recovery_timeout=2).run(scenarios))
    got = {r["id"]: r for r in results["scenarios"]}
    deflated = got["store.transfer-syntax[deflated]"]
    assert deflated["outcome"] == "skip", deflated["observed"]
    assert "presentation context 1 was not accepted" in deflated["observed"]
    assert "result 4" in deflated["observed"]
    # Nothing was sent after the association was set up: no P-DATA-TF at all.
    assert not [e for e in deflated["trace"] if e["type"] == "P-DATA-TF"]
    assert got["store.transfer-syntax[ivrle]"]["outcome"] == "pass"
    conformance = results["conformance"]
    refused = {(r["sop_class"], r["transfer_syntax"]) for r in
               conformance["rejected_transfer_syntaxes"]}
    assert ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1.99") in refused
    assert {"scenario": "store.transfer-syntax[deflated]",
            "reason": deflated["observed"].split(": ", 1)[1]} in conformance["not_tested"]
    html = render_html(results)
    assert "CT Image Storage in Deflated Explicit VR Little Endian" in html
    assert "Not tested: store.transfer-syntax[deflated]" in html


def test_store_on_unaccepted_context_is_sent_only_when_the_scenario_says_so() -> None:
    scenarios = select(load_suite(), "command.unaccepted-context")
    with EmbeddedSCP(embedded_profile()) as scp:
        results = asyncio.run(Runner(_target(scp), recovery_timeout=2).run(scenarios))
    for r in results["scenarios"]:
        assert r["outcome"] == "pass", (r["id"], r["observed"])
        assert [e for e in r["trace"] if e["type"] == "P-DATA-TF" and e["dir"] == "sent"]


def test_nothing_kept_check_ignores_an_earlier_successful_copy(tmp_path: Path) -> None:
    """S01 looks only at files new or rewritten since the failed store began: the first,
    successful copy of the same SOP Instance is not evidence against the second store."""
    scenarios = _scenarios(tmp_path, """
        - id: extra.dup-rejected
          title: a duplicate SOP instance refused after a first success
          severity: info
          references: [PS3.4 B.2.3]
          steps:
            - associate: {}
            - store: {sop_instance: "unique:A"}
              expect: {outcome: success}
            - store: {sop_instance: "unique:A"}
              expect: {outcome: failure}
            - release: {}
        """)
    # The second store on the server is refused (Out of Resources), its UID stored before.
    profile = embedded_profile(status_rules=[StatusRule(status=0xA700, nth=2)])
    with EmbeddedSCP(profile) as scp:
        results = asyncio.run(Runner(_target(scp), recovery_timeout=2).run(scenarios))
    result = results["scenarios"][0]
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["step 3: store"]["outcome"] == "pass", checks["step 3: store"]["observed"]
    assert checks["S01 nothing kept after a failure"]["outcome"] == "pass", result["observed"]
    assert result["outcome"] == "info"


def test_kept_after_failure_is_found_by_the_data_set_uid() -> None:
    scenarios = select(load_suite(), "dataset.sop-instance-mismatch")
    with EmbeddedSCP(embedded_profile(faults={"keep_after_failure"})) as scp:
        results = asyncio.run(Runner(_target(scp), recovery_timeout=2).run(scenarios))
    result = results["scenarios"][0]
    s01 = next(c for c in result["checks"] if c["name"].startswith("S01"))
    assert result["outcome"] == "fail" and s01["outcome"] == "fail"
    assert "0xA900" in s01["observed"] and "kept-" in s01["observed"]


def test_status_semantics_table_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    assert markdown_table() in text, "README's status-semantics table differs from the engine's"
    assert {r.severity for r in STATUS_SEMANTICS} <= {"must", "should"}


def test_max_duration_bounds_the_run_and_reports_the_rest(tmp_path: Path) -> None:
    """Against an SCP that never answers a store, a 3 s bound stops the run; every scenario
    is reported (unfinished ones as errors saying why) and all report files are written."""
    profile = embedded_profile(faults={"no_response"})
    with EmbeddedSCP(profile) as scp:
        code = main(["run", "--target", f"127.0.0.1:{scp.port}", "--called-aet",
                     profile.ae_title, "-k", "store.transfer-syntax or store.sop-class",
                     "--timeout", "2", "--max-duration", "3", "--report-dir",
                     str(tmp_path / "r"), "--json", str(tmp_path / "r.json"), "--junit",
                     str(tmp_path / "r.xml"), "-q"])
    assert code == 1
    data = json.loads((tmp_path / "r.json").read_text())
    outcomes = [s["outcome"] for s in data["scenarios"]]
    assert len(outcomes) == 11
    assert data["stopped"]["reason"] == "max-duration"
    errors = [s for s in data["scenarios"] if s["outcome"] == "error"]
    assert errors and all("max-duration 3 s" in s["observed"] for s in errors)
    assert (tmp_path / "r.xml").is_file() and any((tmp_path / "r").iterdir())


def test_a_target_that_stops_accepting_connections_is_a_finding(capsys: Any) -> None:
    scenarios = select(load_suite(), "store.transfer-syntax or store.sop-class")
    scp = EmbeddedSCP(embedded_profile()).start()
    try:
        runner = Runner(_target(scp), recovery_timeout=1.0)
        results = asyncio.run(_run_and_stop_after_first(runner, scenarios, scp))
    finally:
        scp.stop()
    first, rest = results["scenarios"][0], results["scenarios"][1:]
    assert first["outcome"] == "fail"
    assert first["observed"].startswith(TARGET_DOWN)
    assert first["checks"][0]["name"] == "SCP still accepts connections"
    assert rest and all(r["outcome"] == "skip" and r["observed"].startswith(
        "not run: the target is down") for r in rest)
    assert results["target_down"]["after"] == first["id"]
    print_summary(results)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"stopped accepting connections after scenario {first['id']}" in out
    assert out.index("stopped accepting") < out.index("Scenarios by group")
    html = render_html(results)
    note = html.index(f"stopped accepting connections after scenario {first['id']}")
    assert 'class="run-note"' in html and note < html.index("</header>")


async def _run_and_stop_after_first(runner: Runner, scenarios: list[Scenario],
                                    scp: EmbeddedSCP) -> dict[str, Any]:
    original = runner.run_one

    async def run_one(sc: Scenario, index: int = 0) -> dict[str, Any]:
        result = await original(sc, index)
        if index == 0:
            await asyncio.to_thread(scp.stop)
        return result

    runner.run_one = run_one  # type: ignore[method-assign]
    return await runner.run(scenarios)


class _DripSCP:
    """A scripted target that never finishes anything: it accepts TCP, then sends the first
    bytes of an A-ASSOCIATE-AC one every 0.2 s, forever (a slow drip on a connection it
    never closes)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: Any) -> None:
        with conn:
            header = b"\x02\x00\x00\x00\x10\x00" + b"\x00" * 0x1000
            for byte in header:
                if self.stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


def test_a_slow_drip_target_cannot_stretch_a_scenario() -> None:
    """Each read gets a byte in time, so only the scenario's own budget can end it: the
    scenario fails (a hang is a failed check), and the run goes on to the next one."""
    scenarios = select(load_suite(), "store.echo or assoc.baseline")
    drip = _DripSCP()
    try:
        target = Target("127.0.0.1", drip.port, "ANY-SCP", "HARNESS", 1.0, None, {}, False)

        async def bounded() -> dict[str, Any]:
            # A safety net for this test only: the runner must end long before it.
            return await asyncio.wait_for(Runner(target, recovery_timeout=1.0).run(scenarios),
                                          120)

        results = asyncio.run(bounded())
    finally:
        drip.close()
    assert [r["outcome"] for r in results["scenarios"]] == ["fail", "fail"]
    for r in results["scenarios"]:
        failed = [c for c in r["checks"] if c["outcome"] == "fail"]
        assert any("no answer" in c["observed"] or "hang" in c["observed"] for c in failed), r


CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def _situation(**changes: Any) -> StoreSituation:
    base = StoreSituation(context_abstract=CT_CLASS, command_sop_class=CT_CLASS,
                          command_sop_instance="1.2.3.4", dataset_sop_instance="1.2.3.4")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


# status -> (a situation it fits, one it does not fit); one row per rule of the table.
SEMANTIC_CASES: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {
    0x0210: ({"duplicate_id": True}, {}),
    0x0211: ({"storage_context": False}, {}),
    0x0122: ({"context_abstract": "1.2.840.10008.5.1.4.1.1.4"}, {}),
    0x0117: ({"command_sop_instance": "1.02.3"}, {"command_sop_instance": "1.2.3"}),
    0xB000: ({"stored_differs": True}, {"stored_differs": False}),
    0xB006: ({"stored_differs": True}, {"stored_differs": False}),
    0xB007: ({"dataset_altered": True}, {"stored_differs": False}),
}


def test_every_semantic_rule_tells_fitting_from_misleading() -> None:
    assert set(SEMANTIC_CASES) == {rule.status for rule in STATUS_SEMANTICS}
    for status, (fits, misfits) in SEMANTIC_CASES.items():
        judged = judge_status(status, _situation(**fits))
        assert judged is not None and judged[1] is True, hex(status)
        judged = judge_status(status, _situation(**misfits))
        assert judged is not None and judged[1] is False, hex(status)
    # Warnings cannot be judged without a stored copy; other statuses have no rule.
    assert judge_status(0xB000, _situation())[1] is None  # type: ignore[index]
    assert judge_status(0xA900, _situation()) is None


def test_pipelined_stores_within_a_negotiated_window_are_matched_to_their_requests() -> None:
    """A conformant SCP with an asynchronous window: every response answers an outstanding
    request (C01 passes), no false 'answers no outstanding request'."""
    scenarios = select(load_suite(), "dup.negotiated-window")
    with EmbeddedSCP(embedded_profile(async_window=(5, 5))) as scp:
        results = asyncio.run(Runner(_target(scp), recovery_timeout=2).run(scenarios))
    [result] = results["scenarios"]
    assert result["outcome"] == "pass", result["observed"]
    c01 = next(c for c in result["checks"] if c["name"] == "C01 response fields")
    assert c01["outcome"] == "pass"
