"""Whole bench runs against the reference SCP (a subprocess) and the fast sink, kept tiny."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.bench.html import render
from harness.bench.result import STABLE_CONDITIONS, STABLE_KEYS, STABLE_LATENCY
from harness.bench.runner import BenchOptions, run
from harness.bench.sink import SinkProcess
from harness.bench.target import ReferenceSCP
from tests._bench_support import silent_server, stored_uids


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ReferenceSCP(tmp_path_factory.mktemp("scp-store")) as server:
        yield server


@pytest.fixture(scope="module")
def sink() -> Any:
    with SinkProcess("dicom") as server:
        yield server


def _clear(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()


def test_every_store_is_a_distinct_instance_on_disk(scp: ReferenceSCP) -> None:
    _clear(scp.storage_dir)
    doc = run(BenchOptions(target=("127.0.0.1", scp.port), workload="tiny", instances=15,
                           warmup=3, associations=[1, 2]))
    uids = stored_uids(scp.storage_dir)
    assert len(uids) == (15 + 3) * (1 + 2)
    assert len(set(uids)) == len(uids), "two stores carried the same SOP Instance UID"
    assert [p["instances"] for p in doc["sweep"]] == [15, 30]
    assert doc["statuses"] == {"0x0000": 30}
    assert doc["errors"] == 0


def test_bench_json_has_the_stable_shape(scp: ReferenceSCP) -> None:
    doc = run(BenchOptions(target=("127.0.0.1", scp.port), workload="tiny", instances=10,
                           warmup=0, associations=[2], target_pid=scp.pid))
    doc = json.loads(json.dumps(doc))  # plain JSON all the way down
    for key in STABLE_KEYS:
        assert key in doc, key
    for key in STABLE_CONDITIONS:
        assert key in doc["conditions"], key
    for key in STABLE_LATENCY:
        assert isinstance(doc["latency_ms"][key], float), key
    assert doc["workload"]["name"] == "tiny"
    assert 1500 < doc["workload"]["instance_bytes"] < 3000
    c = doc["conditions"]
    assert (c["associations"], c["workers"], c["tcp_nodelay"], c["async_window"]) == (2, 1,
                                                                                       True, 1)
    assert c["max_pdu"] == c["peer_max_pdu"] > 0
    assert c["cores"] >= 1 and c["cpu"]
    assert doc["instances"] == 20
    assert doc["instances_per_s"] == pytest.approx(20 / doc["duration_s"], rel=0.01)
    assert doc["mb_per_s"] == pytest.approx(
        20 * doc["workload"]["instance_bytes"] / doc["duration_s"] / 1e6, rel=0.02)
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert doc["target"]["implementation_version_name"] == "DICOMHARNESS01"
    assert doc["target_process"]["available"] and doc["target_process"]["cpu_s"] >= 0
    assert doc["sweep"][0]["instances"] == doc["instances"]
    assert doc["series"] and doc["latency_cdf"][-1][1] == 1.0


def test_duration_mode(sink: SinkProcess) -> None:
    started = time.monotonic()
    doc = run(BenchOptions(target=("127.0.0.1", sink.port), workload="tiny", duration=0.3,
                           warmup=2))
    assert time.monotonic() - started < 10
    assert doc["instances"] > 10
    assert 0.25 < doc["duration_s"] < 2.0
    assert doc["conditions"]["duration_limit_s"] == 0.3


def test_async_window_follows_the_peer(sink: SinkProcess, scp: ReferenceSCP) -> None:
    granted = run(BenchOptions(target=("127.0.0.1", sink.port), instances=200, window=8,
                               warmup=0))
    assert granted["conditions"]["async_window"] == 8
    assert granted["instances"] == 200 and granted["errors"] == 0
    # the reference SCP answers (1, 1) by default: the bench must not exceed it
    kept = run(BenchOptions(target=("127.0.0.1", scp.port), instances=10, window=8, warmup=0))
    assert kept["conditions"]["async_window"] == 1
    assert kept["conditions"]["requested_window"] == 8
    assert kept["errors"] == 0


def test_workers_share_the_associations(sink: SinkProcess) -> None:
    doc = run(BenchOptions(target=("127.0.0.1", sink.port), instances=40, warmup=1,
                           associations=[3], workers=2))
    assert doc["conditions"]["workers"] == 2
    assert doc["instances"] == 120
    assert doc["statuses"] == {"0x0000": 120}
    assert doc["associations_established"] == 3


def test_non_success_statuses_are_counted(tmp_path: Path) -> None:
    profile = tmp_path / "every-third.yaml"
    profile.write_text("status_rules:\n  - {status: 0xA700, every: 3}\n")
    doc = run(BenchOptions(workload="tiny", instances=12, warmup=0, scp_profile=profile))
    assert doc["statuses"] == {"0x0000": 8, "0xA700": 4}
    assert doc["non_success"] == 4
    assert doc["status_categories"] == {"Success": 8, "Failure": 4}
    assert doc["errors"] == 0


def test_rejected_association_is_an_error(tmp_path: Path) -> None:
    profile = tmp_path / "reject.yaml"
    profile.write_text("faults: [reject_all]\n")
    doc = run(BenchOptions(workload="tiny", instances=5, scp_profile=profile))
    assert doc["errors"] == 1
    assert "rejected" in doc["error_messages"][0]
    assert doc["instances"] == 0
    page = render(doc)  # a run that measured nothing still makes a page that says why
    assert "rejected" in page and "no data" in page


def test_silent_peer_times_out() -> None:
    with silent_server() as port:
        started = time.monotonic()
        doc = run(BenchOptions(target=("127.0.0.1", port), instances=5, timeout=1.0))
        assert time.monotonic() - started < 8
    assert doc["errors"] == 1
    assert "no answer" in doc["error_messages"][0]


def test_folder_workload_sent_with_sendfile_arrives_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large file, a peer without a PDU limit: the data set leaves by os.sendfile."""
    import os

    from pydicom import dcmread

    from harness.datasets import encode_file, make_instance
    from harness.wire.constants import EXPLICIT_VR_LE

    source = tmp_path / "files"
    source.mkdir()
    original = make_instance("ct", rows=700, columns=800)  # 1.1 MB: memory-mapped
    (source / "big.dcm").write_bytes(encode_file(original, EXPLICIT_VR_LE))
    profile = tmp_path / "unlimited.yaml"
    profile.write_text("max_pdu: 0\n")
    calls: list[int] = []
    real_sendfile = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr("harness.bench.sender.os.sendfile", counting)
    with ReferenceSCP(tmp_path / "store", profile=profile) as scp:
        doc = run(BenchOptions(target=("127.0.0.1", scp.port), workload=str(source),
                               instances=3, warmup=1))
        files = sorted((tmp_path / "store").iterdir())
    assert doc["errors"] == 0 and doc["statuses"] == {"0x0000": 3}
    assert doc["conditions"]["max_pdu"] == 0  # one PDV per data set: the sendfile path
    assert len(files) == 4
    assert len(calls) >= 4  # every store sent its pixels straight from the file
    uids = set()
    for path in files:
        got = dcmread(path)
        assert got.PixelData == original.PixelData
        assert got.PatientName == original.PatientName
        uids.add(got.SOPInstanceUID)
    assert len(uids) == 4


def test_loopback_copy_into_files_writes_every_record_then_cleans_up(tmp_path: Path) -> None:
    from harness.bench.loopback import measure_loopback

    record = 70_001  # odd on purpose: records never line up with the sender's chunks
    payload = bytes(range(256)) * 1024
    got = measure_loopback(5 * record, 1, payload, record=record, directory=str(tmp_path))
    assert got["errors"] == [] and got["mb_per_s"] > 0
    assert got["bytes"] == 5 * record and got["record_bytes"] == record
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone


def test_files_sink_stores_one_file_per_record(tmp_path: Path) -> None:
    import socket
    import struct

    record, count = 1000, 3
    data = bytes(i % 251 for i in range(record * count))
    with SinkProcess("files", directory=str(tmp_path)) as sink, \
            socket.create_connection(("127.0.0.1", sink.port), timeout=10) as sock:
        sock.sendall(struct.pack(">QQ", len(data), record) + data)
        assert sock.recv(1) == b"\x01"
    files = sorted(tmp_path.iterdir(), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert [p.suffix for p in files] == [".dcm"] * count
    assert b"".join(p.read_bytes() for p in files) == data


def test_files_sink_needs_a_folder() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness.bench.sink", "--mode", "files"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "--mode files needs --dir" in done.stderr
