"""``dicom-harness bench --locust``: Locust master and workers against the reference SCP.

Every Locust process is a real subprocess (Locust monkey-patches the standard library at
import, so never inside pytest's process), on 127.0.0.1, with a short ``-t`` and a hard
timeout; the reference SCP is ``dicom-harness serve`` (:class:`ReferenceSCP`). Counts are
checked against what the SCP stored: every stored instance is counted once by Locust.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.bench.locust_feed import RunInfo, Tally, bench_doc
from harness.bench.locust_run import LOCUSTFILE
from harness.bench.result import STABLE_CONDITIONS, STABLE_KEYS, STABLE_LATENCY
from harness.bench.target import ReferenceSCP
from tests._bench_support import free_port, stored_uids

# Never import Locust here: it would monkey-patch pytest's own process for gevent. Without
# the extra these tests skip, except in CI (CI=true), where the [test] extra must bring it.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("locust") is None and not os.environ.get("CI"),
    reason="needs the [locust] extra")]
RUN_TIMEOUT = 45  # seconds any Locust process may take in these tests
STORE_ROW = "C-STORE"


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "bench", *args]


def _env() -> dict[str, str]:
    # Locust's own update check and colour codes have no place in a test log.
    return dict(os.environ, LOCUST_SKIP_MONKEY_PATCH_CHECK="1", NO_COLOR="1")


class Procs:
    """Subprocesses started by one test, all killed at the end whatever happened."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self, cmd: list[str], cwd: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, env=_env())
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                proc.communicate(timeout=10)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.kill_all()


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    return proc.returncode, out


def _store_counts(doc: dict[str, Any]) -> tuple[int, int]:
    """Locust's own request and failure counts of the C-STORE entries (its runner's
    statistics at quit, copied into bench.json; the --csv files can lag behind)."""
    rows = [v for k, v in doc["locust"]["stats"].items() if k.startswith(STORE_ROW)]
    return sum(r["requests"] for r in rows), sum(r["failures"] for r in rows)


def test_master_and_two_workers_count_every_stored_instance_once(
        tmp_path: Path, procs: Procs) -> None:
    store = tmp_path / "store"
    reports = tmp_path / "reports"
    port = free_port()
    with ReferenceSCP(store) as scp:
        master = procs.start(_cmd(
            "--target", f"127.0.0.1:{scp.port}", "--report-dir", str(reports), "-q",
            "--locust", "--master", "--headless", "-u", "4", "-r", "4", "-t", "3s",
            "--expect-workers", "2", "--expect-workers-max-wait", "30",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)), tmp_path)
        workers = [procs.start(_cmd("--locust", "--worker", "--master-host", "127.0.0.1",
                                    "--master-port", str(port)), tmp_path) for _ in range(2)]
        code, out = _finish(master)
        for worker in workers:
            assert _finish(worker)[0] == 0
    assert code == 0, out[-2000:]
    uids = stored_uids(store)
    doc = json.loads((reports / "bench.json").read_text())
    requests, failures = _store_counts(doc)
    assert uids, "nothing stored"
    assert len(set(uids)) == len(uids), "a SOP Instance UID was sent twice"
    assert requests == len(uids) == doc["instances"]
    assert failures == 0 and doc["errors"] == 0
    assert doc["statuses"] == {"0x0000": len(uids)}
    # Both workers took part and their shares add up.
    rows = doc["locust"]["workers"]
    assert doc["locust"]["mode"] == "master" and len(rows) == 2
    assert all(r["instances"] > 0 for r in rows)
    assert sum(r["instances"] for r in rows) == len(uids)
    assert doc["conditions"]["workers"] == 2 and doc["conditions"]["associations"] == 4
    assert doc["instances_per_s"] > 0 and doc["latency_ms"]["p50"] > 0
    page = (reports / "bench.html").read_text()
    assert page.count("<svg") >= 2 and "Locust master: 4 users on 2 worker(s)" in page


def test_non_success_statuses_are_failures_with_the_code(tmp_path: Path,
                                                          procs: Procs) -> None:
    store = tmp_path / "store"
    profile = tmp_path / "every-third.yaml"
    profile.write_text("status_rules:\n  - {status: 0xA700, every: 3}\n")
    with ReferenceSCP(store, profile=profile) as scp:
        code, out = _finish(procs.start(_cmd(
            "--target", f"127.0.0.1:{scp.port}", "--report-dir", str(tmp_path), "--no-html",
            "--stores-per-association", "5", "--locust", "--headless", "-u", "2", "-r", "2",
            "-t", "2s"), tmp_path))
    assert code == 1, out[-2000:]  # Locust's exit status when any request failed
    doc = json.loads((tmp_path / "bench.json").read_text())
    stored = len(stored_uids(store))
    requests, failures = _store_counts(doc)
    refused = doc["statuses"]["0xA700"]
    assert doc["statuses"]["0x0000"] == stored
    assert requests == stored + refused and failures == refused
    assert stored >= 2 * refused - 2  # every third store refused, per SCP process count
    errors = doc["locust"]["stats"]["errors"]
    assert any("status 0xA700 Failure" in e for e in errors), errors
    assert doc["errors"] == 0  # refused stores are results, not association errors
    # One association per five stores per user.
    assert doc["associations_established"] >= requests // 5


def test_rejected_associations_are_failures_with_the_reason(tmp_path: Path,
                                                            procs: Procs) -> None:
    profile = tmp_path / "reject.yaml"
    profile.write_text("faults: [reject_all]\n")
    with ReferenceSCP(tmp_path / "store", profile=profile) as scp:
        code, out = _finish(procs.start(_cmd(
            "--target", f"127.0.0.1:{scp.port}", "--report-dir", str(tmp_path), "--no-html",
            "--locust", "--headless", "-u", "1", "-r", "1", "-t", "2s"), tmp_path))
    assert code == 1, out[-2000:]
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["instances"] == 0
    assert set(doc["failures_by_kind"]) == {"rejected"} and doc["errors"] >= 1
    assert "association rejected: rejected-permanent" in doc["error_messages"][0]
    assert doc["locust"]["stats"]["A-ASSOCIATE association"]["failures"] == doc["errors"]


def test_unreachable_target_under_locust_gives_connect_failures(tmp_path: Path,
                                                                procs: Procs) -> None:
    """``locust -f`` with the shipped locustfile, a port nobody listens on."""
    code, out = _finish(procs.start([
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "1",
        "-r", "1", "-t", "2s", "--dicom-target", f"127.0.0.1:{free_port()}",
        "--dicom-report-dir", str(tmp_path), "--dicom-no-html"], tmp_path))
    assert code == 1, out[-2000:]
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert set(doc["failures_by_kind"]) == {"connect"}
    assert "cannot connect to 127.0.0.1" in doc["error_messages"][0]
    assert doc["instances"] == 0


def test_locustfile_without_a_target_says_so_in_one_line_and_exits_2(
        tmp_path: Path, procs: Procs) -> None:
    code, out = _finish(procs.start([
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2",
        "-r", "2", "-t", "20s"], tmp_path))
    assert code == 2, out[-2000:]
    ours = [line for line in out.splitlines() if "ERROR" in line]
    assert len(ours) == 1 and "--dicom-target ''" in ours[0], out[-2000:]
    assert "Traceback" not in out


def test_large_files_leave_by_sendfile_under_gevent_intact(tmp_path: Path,
                                                           procs: Procs) -> None:
    from pydicom import dcmread

    from harness.datasets import encode_file, make_instance
    from harness.wire.constants import EXPLICIT_VR_LE

    source = tmp_path / "files"
    source.mkdir()
    original = make_instance("ct", rows=700, columns=800)  # 1.1 MB: memory-mapped
    (source / "big.dcm").write_bytes(encode_file(original, EXPLICIT_VR_LE))
    profile = tmp_path / "unlimited.yaml"
    profile.write_text("max_pdu: 0\n")  # one PDV per data set: the os.sendfile path
    with ReferenceSCP(tmp_path / "store", profile=profile) as scp:
        code, out = _finish(procs.start(_cmd(
            "--target", f"127.0.0.1:{scp.port}", "--report-dir", str(tmp_path), "--no-html",
            "--workload", str(source), "--locust", "--headless", "-u", "2", "-r", "2",
            "-t", "2s"), tmp_path))
        files = sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert code == 0, out[-2000:]
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["conditions"]["max_pdu"] == 0
    assert doc["instances"] == len(files) > 0
    for path in files[:3]:
        got = dcmread(path)
        assert got.PixelData == original.PixelData
        assert got.SOPInstanceUID != original.SOPInstanceUID


def test_wrong_target_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(_cmd("--target", f"127.0.0.1:{free_port()}", "--locust",
                               "--headless", "-t", "1s"), cwd=tmp_path, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=_env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0], proc.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--associations", "4"], "--associations does not apply with --locust"),
    (["--duration", "5"], "--duration does not apply with --locust"),
    (["--workload", "no-such-kind"], "workload 'no-such-kind'"),
    (["--calling-aet", "A" * 17], "--calling-aet"),
    (["--stores-per-association", "x"], "--stores-per-association 'x'"),
    (["--target", "nohost"], "--target"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    proc = subprocess.run(_cmd(*args, "--locust", "--headless"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, env=_env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_missing_extra_is_one_line_exit_2(tmp_path: Path) -> None:
    # sys.modules[name] = None is how Python itself marks a module as not importable.
    code = ("import sys; sys.modules['locust'] = None; from harness.cli import main; "
            "sys.exit(main(['bench', '--locust', '--headless']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("dicom-harness bench: --locust needs Locust, which is not "
                                   "installed: pip install 'dicom-harness[locust]'")


def test_the_harness_does_not_import_locust_unless_asked() -> None:
    """Locust monkey-patches ssl, socket, threading...: only --locust may import it."""
    code = ("import sys, harness.cli, harness.bench.cli, harness.bench.locust_run; "
            "harness.cli.build_parser(); "
            "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=RUN_TIMEOUT, check=True).stdout
    assert out.strip() == "[]"


# --- the feed, without Locust ----------------------------------------------------------------

def _info() -> RunInfo:
    return RunInfo(host="127.0.0.1", port=104, called_aet="ANY-SCP", calling_aet="ME",
                   workload={"name": "tiny", "instance_bytes": 2048},
                   transfer_syntax="1.2.840.10008.1.2.1", nodelay=True, max_pdu=0,
                   stores_per_association=0, mode="master", users=3)


def test_worker_tallies_merge_into_the_stable_bench_json() -> None:
    a, b = Tally(), Tally()
    for i in range(10):
        a.store(1000.0 + i * 0.01, 0.001, 0x0000, 2048)
    for i in range(5):
        b.store(1000.05 + i * 0.01, 0.003, 0xA700 if i == 0 else 0x0000, 2048)
    b.failure("aborted", "association aborted by the peer: x")
    # A worker ships what it gathered in parts; the master adds the parts up.
    first_part, second_part = b.take(), None
    b.store(1000.2, 0.002, 0x0000, 2048)
    second_part = b.take()
    workers: dict[str, Tally] = {"w1": Tally(), "w2": Tally()}
    workers["w1"].add(a.to_dict())
    workers["w2"].add(first_part)
    workers["w2"].add(second_part)
    total = Tally()
    for t in workers.values():
        total.add(t.to_dict())
    doc: dict[str, Any] = bench_doc(total, workers, _info())
    assert all(k in doc for k in STABLE_KEYS)
    assert all(k in doc["conditions"] for k in STABLE_CONDITIONS)
    assert all(k in doc["latency_ms"] for k in STABLE_LATENCY)
    assert doc["instances"] == 16
    assert doc["statuses"] == {"0x0000": 15, "0xA700": 1}
    assert doc["errors"] == 1 and doc["failures_by_kind"] == {"aborted": 1}
    assert doc["duration_s"] == pytest.approx(0.202, abs=1e-6)
    assert doc["instances_per_s"] == pytest.approx(16 / 0.202, rel=1e-3)
    assert [w["instances"] for w in doc["locust"]["workers"]] == [10, 6]
    assert doc["latency_ms"]["max"] == pytest.approx(3.0, rel=0.01)
    assert sum(p["instances_per_s"] * 0.05 for p in doc["series"]) == pytest.approx(16)


# --- the client's response path, over a real socket pair ---------------------------------------

def _rsp_pdus(msg_id: int, status: int, split: bool) -> bytes:
    from harness.wire.dimse import CStoreRSP, encode_command
    from harness.wire.pdu import PDV, PDataTF

    command = encode_command(CStoreRSP(msg_id, status, "1.2.840.10008.5.1.4.1.1.2",
                                       "2.25.1"))
    if not split:
        return PDataTF([PDV(1, 0x03, command)]).encode()
    # The same command in two PDVs of two PDUs (PS3.8 9.3.5.1 allows any fragmentation).
    return PDataTF([PDV(1, 0x01, command[:20])]).encode() + \
        PDataTF([PDV(1, 0x03, command[20:])]).encode()


@pytest.mark.parametrize("split", [False, True])
def test_client_reads_whole_and_fragmented_responses(split: bool) -> None:
    import socket

    from harness.bench.locust_client import BlockingAssociation, StoreFailure
    from harness.bench.sender import SenderConfig
    from harness.bench.workload import UidSource, build_workload, new_nonce
    from harness.wire.dimse import read_store_rsp_pdu as _fast_response

    assert (_fast_response(_rsp_pdus(7, 0xA700, False)) == (7, 0xA700))
    assert _fast_response(_rsp_pdus(7, 0xA700, True)) is None
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.settimeout(5)
        peer.settimeout(5)
        assoc = BlockingAssociation(SenderConfig("127.0.0.1", 0, timeout=5),
                                    build_workload("tiny"), UidSource(new_nonce(), 1))
        assoc.sock = ours
        peer.sendall(_rsp_pdus(7, 0xB000, split))
        assert assoc._read_response() == (7, 0xB000)
        peer.sendall(b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x02")  # A-ABORT, provider
        with pytest.raises(StoreFailure) as raised:
            assoc._read_response()
        assert raised.value.kind == "aborted"
        assert "aborted by the peer" in str(raised.value)
