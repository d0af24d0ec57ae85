"""The whole suite against real SCPs on 127.0.0.1, started by the tests themselves: DCMTK's
storescp in its default configuration (one association at a time, no +xa) and with --fork,
pynetdicom's storescp, and Orthanc (a JSON configuration with its own ports and folders).

What they do wrong is their business (README lists it); what these tests assert is that the
harness copes with real peers: every scenario completes within its time budget with a
verdict, no `error` outcome (the scenarios after a target crash are reported as not run),
and every known finding of README's tables is still found (a false FAIL, or a defect the
suite stops seeing, changes an outcome listed in KNOWN).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _peers import free_port, stop_group, wait_listening

from harness.engine.context import Target
from harness.engine.loader import load_suite
from harness.engine.runner import TARGET_DOWN, Runner

pytestmark = pytest.mark.interop

ARTIM = 3  # seconds; given to the SCPs on their command lines and declared to the harness




ORTHANC = "/usr/sbin/Orthanc"
STORESCP = "/usr/bin/storescp"


def _start(kind: str, port: int, store: Path) -> subprocess.Popen[bytes]:
    if kind.startswith("dcmtk"):
        # Default configuration: no +xa (Deflated and the other syntaxes are refused).
        cmd = [STORESCP, "-ta", str(ARTIM), "-od", str(store)] + (
            ["--fork"] if kind == "dcmtk-fork" else []) + [str(port)]
    elif kind == "orthanc":
        cmd = [ORTHANC, str(_orthanc_config(port, store))]
    else:
        cmd = [sys.executable, "-m", "pynetdicom", "storescp", str(port), "-ta", str(ARTIM),
               "-od", str(store)]
    # DCMTK leaves Nagle's algorithm on unless told: every small store would stall ~40 ms.
    env = {**os.environ, "TCP_NODELAY": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)


def _orthanc_config(port: int, store: Path) -> Path:
    """Orthanc on its own ports and folders: storage (what the harness inspects) and index
    (its SQLite database) in the test's temporary directory, no plugins, HTTP off."""
    base = store.parent
    config = {
        "Name": "harness-interop", "DicomAet": "ANY-SCP", "DicomPort": port,
        "HttpPort": free_port(), "HttpServerEnabled": False, "RemoteAccessAllowed": False,
        "StorageDirectory": str(store), "IndexDirectory": str(base / "orthanc-index"),
        "DicomCheckCalledAet": False, "UnknownSopClassAccepted": False,
        "DicomAlwaysAllowStore": True, "StorageCompression": False, "Plugins": [],
    }
    path = base / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


PEERS = ["dcmtk", "dcmtk-fork", "pynetdicom", "orthanc"]


@pytest.fixture(params=PEERS)
def real_scp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    kind = request.param
    if kind.startswith("dcmtk") and not Path(STORESCP).exists():
        pytest.skip("DCMTK storescp is not installed (apt-get install dcmtk)")
    if kind == "orthanc" and not Path(ORTHANC).exists():
        pytest.skip("Orthanc is not installed (apt-get install orthanc)")
    if kind == "pynetdicom":
        pytest.importorskip("pynetdicom")
    store = tmp_path / "received"
    store.mkdir()
    port = free_port()
    proc = _start(kind, port, store)
    try:
        wait_listening(port, proc, 30.0 if kind == "orthanc" else 15.0)
        yield kind, port, store
    finally:
        # The SCP and its forked children share a process group: end them all.
        stop_group(proc, timeout=15)
        shutil.rmtree(store, ignore_errors=True)


# Findings each real SCP is known to have (README "What it finds in real SCPs" explains each
# with its rule and evidence). If one disappears, the README table needs updating; if the
# harness stops finding them, it has lost its teeth; a "skip" is a scenario that does not
# apply to the peer's negotiated configuration (never a failure).
KNOWN: dict[str, dict[str, str]] = {
    "dcmtk": {
        "store.transfer-syntax[ivrle]": "pass",
        "store.transfer-syntax[evrbe]": "pass",
        # Deflated refused at negotiation (result 4): the store is not sent, never a FAIL.
        "store.transfer-syntax[deflated]": "skip",
        "store.pdv-packing[d-2-command-pdvs]": "fail",  # several PDVs in one PDU refused
        "store.pdv-packing[e-3-data-pdvs]": "fail",  # ... and storescp dies on this one
        "dataset.sop-instance-mismatch": "fail",  # 0xA900 answered, the file kept (S01)
        "pdu.unrecognized-type": "fail",  # A-ABORT source 0 instead of 2 (AA-8)
    },
    "dcmtk-fork": {
        "store.transfer-syntax[deflated]": "skip",
        "store.echo": "pass",
        "store.pdv-packing[e-3-data-pdvs]": "fail",
        "dataset.sop-instance-mismatch": "fail",
        "dataset.sop-class-mismatch": "fail",
        "pdu.unrecognized-type": "fail",
    },
    "pynetdicom": {
        "store.transfer-syntax[evrle]": "pass",
        "assoc.protocol-version-other-bits[3]": "fail",  # tests more than bit 0
        "command.missing-element[1000]": "fail",  # no answer to an invalid request
        "dataset.truncated[truncate-inside-value]": "fail",  # Success for a truncated set
        # 0x0210 Duplicate invocation for a data set it cannot decode (C03).
        "dataset.pathological[unterminated-sequence]": "fail",
        "dataset.pathological[deep-nesting]": "fail",
    },
    "orthanc": {
        "store.transfer-syntax[ivrle]": "pass",
        "assoc.unsupported-transfer-syntax": "fail",  # result 3 instead of 4
        "store.pdv-packing[e-3-data-pdvs]": "fail",  # Orthanc 1.10 dies on it
    },
}
# Where a peer stops accepting connections (a finding of that scenario; the rest not run).
# DCMTK's storescp without --fork always exits there; Orthanc 1.10 does in most runs.
CRASHES = {"dcmtk": "store.pdv-packing[e-3-data-pdvs]",
           "orthanc": "store.pdv-packing[e-3-data-pdvs]"}
# ARTIM as each peer has it: DCMTK and pynetdicom are given -ta 3; Orthanc 1.10 has no
# setting for it and closes an idle connection after 30 s (measured; DicomScpTimeout is the
# association idle timeout, not ARTIM). Declaring 3 s for Orthanc would be a false FAIL.
DECLARED_ARTIM = {"orthanc": 30.0}
# A bound per part (seconds): a run against a real peer must end, whatever it does.
MAX_DURATION = 420.0


# The suite in five parts, each against its own SCP process, so pytest-xdist can spread them.
# I (timers: ARTIM waits) and J-K (floods) apart: each is the longest part of some peer.
PARTS = {"A-C": "ABC", "D-F": "DEF", "G-H": "GH", "I": "I", "J-K": "JK"}


@pytest.mark.parametrize("part", list(PARTS))
def test_suite_completes_against_real_scp(real_scp: tuple[str, int, Path], part: str) -> None:
    kind, port, store = real_scp
    scenarios = [s for s in load_suite() if "slow" not in s.tags and s.group in PARTS[part]]
    target = Target("127.0.0.1", port, "ANY-SCP", "HARNESS", 2.0, store,
                    {"artim_timeout": DECLARED_ARTIM.get(kind, ARTIM)}, False)
    runner = Runner(target, recovery_timeout=10.0, max_duration=MAX_DURATION)
    results = asyncio.run(runner.run(scenarios))
    keep = os.environ.get("INTEROP_RESULTS_DIR")
    if keep:  # for refreshing README's findings tables (examples/interop/findings_table.py)
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{kind}-{part}.json").write_text(json.dumps(results, default=str))
    outcomes = {r["id"]: r for r in results["scenarios"]}
    assert len(outcomes) == len(scenarios)
    assert results["stopped"] is None, f"{kind}: the run hit its bound: {results['stopped']}"
    errors = {i: r["observed"][:300] for i, r in outcomes.items() if r["outcome"] == "error"}
    assert not errors, f"{kind}: scenarios the harness could not run: {errors}"
    down = results["target_down"]
    crash = CRASHES.get(kind)
    if down is not None:
        # Only where the peer is known to die, and reported on the scenario that killed it.
        assert down["after"] == crash, f"{kind}: the target went down: {down}"
        assert outcomes[crash]["observed"].startswith(TARGET_DOWN)
        assert outcomes[crash]["outcome"] == "fail"
    if kind == "dcmtk" and crash in outcomes:
        assert down is not None, "DCMTK storescp without --fork always exits there"
    for sid, outcome in KNOWN[kind].items():
        if sid not in outcomes:
            continue  # in another part
        assert outcomes[sid]["outcome"] == outcome, (
            f"{kind}: {sid} expected {outcome}, got {outcomes[sid]['outcome']}: "
            f"{outcomes[sid]['observed'][:300]}")
    # Every scenario produced a verdict with evidence.
    for r in outcomes.values():
        assert r["checks"] or r["outcome"] == "skip", r["id"]
