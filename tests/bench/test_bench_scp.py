"""Receiving throughput of the reference SCP against DCMTK storescp and pynetdicom's storescp.

Run with (``-k paired`` for the interleaved ratios only, ``-k steady`` for the long 512 KB
runs over 4 associations; add ``or report`` to write the JSON):
    python -m pytest tests/bench/test_bench_scp.py -m bench --benchmark-enable -s -q \
        -p no:cacheprovider

All three receivers are fed by the same DCMTK storescu (1 association, or 4 storescu processes
in parallel; for 4, DCMTK's storescp runs with ``--fork`` and ours with ``--workers``, a
process per association: see ``reference_workers``), write every instance to disk, advertise the
same maximum PDU length and run with TCP_NODELAY on both ends (DCMTK honours the
``TCP_NODELAY=1`` environment variable; pynetdicom has no such switch, so its storescp runs
through a wrapper that sets the option on accepted sockets). Each receiver is a separate
process; each case is sent ``ROUNDS`` times into an empty directory and the best round
counts. Only ratios measured in one run mean anything (the machine is shared): nothing here
asserts a speed. The results table is printed and written to ``reports/bench-scp.json``. A
last benchmark streams one 1 GiB instance into the reference SCP with our requestor and
reports the SCP's peak resident memory (VmHWM).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID

import harness
from harness.net.requestor import DimseMessage, Requestor
from harness.wire.constants import EXPLICIT_VR_LE
from harness.wire.dimse import CStoreRQ, encode_command
from harness.wire.fragment import max_fragment
from harness.wire.items import PresentationContextRQ
from harness.wire.pdu import PDV, AssociateAC, PDataTF, associate_rq

pytestmark = pytest.mark.bench

STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
CT = "1.2.840.10008.5.1.4.1.1.2"
MF_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC: one 1 GiB instance
MAX_PDU = 16384  # what every receiver advertises (DCMTK's default)
REPORT = Path(__file__).resolve().parents[2] / "reports" / "bench-scp.json"
CASE_TIMEOUT = 240.0
ROUNDS = 3  # each case is sent this many times; the best round counts (shared machine)
PAIRED_ROUNDS = 5  # interleaved rounds for the paired ratios (median of per-round ratios)

# name -> (instances, rows, columns): ~2 KB and 512 KB instances
WORKLOADS = {"small": (1500, 32, 24), "512k": (300, 512, 512)}
ASSOCIATIONS = (1, 4)
TARGETS = ("reference", "dcmtk", "pynetdicom")
# The steady-state case: 512 KB over 4 associations, four times the instances, so that every
# run lasts about a second and start-up (four storescu processes, four associations) weighs
# less; pynetdicom is left out (it would take minutes per round).
STEADY_WORKLOAD = (1200, 512, 512)
STEADY_ASSOCIATIONS = 4
STEADY_TARGETS = ("reference", "dcmtk")

RESULTS: list[dict[str, Any]] = []
PAIRED: list[dict[str, Any]] = []
STEADY: list[dict[str, Any]] = []
STREAM: dict[str, Any] = {}

# Our SCP as a process: prints its port, serves until stdin closes. With a worker count
# above 1 it pre-forks that many SCP processes on one socket (``serve --workers N``). No PDU
# trace, as ``dicom-harness serve`` runs it (the trace is for the embedded scenario target).
REFERENCE_RUNNER = r"""
import asyncio, sys
from harness.scp import Profile, StorageSCP
from harness.scp.workers import WorkerPool

profile = Profile(max_pdu=int(sys.argv[2]), max_associations=64, idle_timeout=None)
workers = int(sys.argv[3])

async def main() -> None:
    scp = StorageSCP(profile, sys.argv[1], trace=False)
    port = await scp.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await scp.stop()

if workers > 1:
    with WorkerPool(profile, sys.argv[1], workers=workers, trace=False) as pool:
        print(pool.port, flush=True)
        sys.stdin.read()
else:
    asyncio.run(main())
"""

# pynetdicom's own storescp, with TCP_NODELAY set on every accepted socket.
PYNETDICOM_RUNNER = r"""
import runpy, socket, sys
_accept = socket.socket.accept

def accept(self):
    conn, addr = _accept(self)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn, addr

socket.socket.accept = accept
sys.argv = ["pynetdicom", "storescp", *sys.argv[1:]]
runpy.run_module("pynetdicom", run_name="__main__")
"""


def _skip_unless_enabled(config: pytest.Config) -> None:
    enabled = config.getoption("benchmark_enable", default=False) or not config.getoption(
        "benchmark_disable", default=True)
    if not enabled:
        pytest.skip("SCP throughput benchmark: run with -m bench --benchmark-enable")
    if not (os.access(STORESCU, os.X_OK) and os.access(STORESCP, os.X_OK)):
        pytest.skip("DCMTK storescu/storescp not installed in /usr/bin")


# --- workload -------------------------------------------------------------------------------

def _instance(uid: str, rows: int, columns: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.500"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.501"
    ds.PatientName = "Bench^Mark"
    ds.PatientID = "BENCH"
    ds.Modality = "CT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(rows * columns, dtype=np.uint32) % 4096).astype("<u2").tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT)
    meta.MediaStorageSOPInstanceUID = UID(uid)
    meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.file_meta = meta
    return ds


@dataclass
class Workload:
    name: str
    root: Path
    instances: int
    instance_bytes: int  # average Part 10 file size
    total_bytes: int
    split: dict[int, list[Path]] = field(default_factory=dict)  # associations -> directories


def _make_workload(root: Path, name: str, count: int, rows: int, columns: int,
                   associations: tuple[int, ...] = ASSOCIATIONS) -> Workload:
    """``count`` instances written once, hard-linked into one directory per association."""
    total = 0
    wl = Workload(name, root, count, 0, 0)
    for assoc in associations:
        dirs = [root / f"a{assoc}" / f"part{i}" for i in range(assoc)]
        for d in dirs:
            d.mkdir(parents=True)
        wl.split[assoc] = dirs
    for i in range(count):
        ds = _instance(f"1.2.826.0.1.3680043.8.498.{500 + len(name)}.{i + 1}", rows, columns)
        first = wl.split[associations[0]][i % associations[0]] / f"i{i:05d}.dcm"
        ds.save_as(first, enforce_file_format=True)
        total += first.stat().st_size
        for assoc in associations[1:]:
            os.link(first, wl.split[assoc][i % assoc] / first.name)
    wl.total_bytes = total
    wl.instance_bytes = total // count
    return wl


@pytest.fixture(scope="module")
def workloads(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> dict[str, Workload]:
    _skip_unless_enabled(request.config)
    return {name: _make_workload(tmp_path_factory.mktemp(f"workload-{name}"), name, *spec)
            for name, spec in WORKLOADS.items()}


@pytest.fixture(scope="module")
def steady_workload(tmp_path_factory: pytest.TempPathFactory,
                    request: pytest.FixtureRequest) -> Workload:
    _skip_unless_enabled(request.config)
    count, rows, columns = STEADY_WORKLOAD
    return _make_workload(tmp_path_factory.mktemp("workload-steady"), "512k-steady", count,
                          rows, columns, (STEADY_ASSOCIATIONS,))


# --- receivers --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"receiver not listening on {port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(Exception):
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(3)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def reference_workers(associations: int) -> int:
    """Our SCP runs one process for one association and, like DCMTK's ``--fork`` (a process
    per association) for several, ``--workers``: one per association, at most two per core
    (a worker waiting for its peer leaves its core to another)."""
    return max(1, min(associations, 2 * (os.cpu_count() or 1)))


@contextlib.contextmanager
def receiver(target: str, out_dir: Path, associations: int) -> Iterator[tuple[int, int]]:
    """Start a receiver process writing into ``out_dir``; yields (port, pid)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if target == "reference":
        proc = subprocess.Popen([sys.executable, "-c", REFERENCE_RUNNER, str(out_dir),
                                 str(MAX_PDU), str(reference_workers(associations))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=_env())
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the runner prints its port once listening
            if not line:
                raise RuntimeError("reference SCP did not start")
            port = int(line)
            yield port, proc.pid
        finally:
            _stop(proc)
        return
    port = _free_port()
    if target == "dcmtk":
        # without --fork storescp serves one association at a time
        args = [STORESCP, "-od", str(out_dir), "-pdu", str(MAX_PDU),
                *(["--fork"] if associations > 1 else []), str(port)]
    else:
        args = [sys.executable, "-c", PYNETDICOM_RUNNER, "-od", str(out_dir), "-pdu",
                str(MAX_PDU), "-q", str(port)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    try:
        _wait_listening(port, proc)
        yield port, proc.pid
    finally:
        if target == "dcmtk" and associations > 1:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)  # forked children too
        _stop(proc)


def _send(port: int, dirs: list[Path], timeout: float) -> float:
    """All storescu processes at once; wall time until the last one is done."""
    procs: list[subprocess.Popen[bytes]] = []
    start = time.perf_counter()
    try:
        for d in dirs:
            procs.append(subprocess.Popen(
                [STORESCU, "-aec", "ANY-SCP", "--max-send-pdu", str(MAX_PDU), "+sd",
                 "127.0.0.1", str(port), str(d)], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=_env()))
        errors = []
        for p in procs:
            _, err = p.communicate(timeout=max(1.0, timeout - (time.perf_counter() - start)))
            if p.returncode != 0:
                errors.append(err.decode(errors="replace")[-500:])
        elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
    assert not errors, errors
    return elapsed


def _receiver_mode(target: str, associations: int) -> str:
    if target == "dcmtk" and associations > 1:
        return "--fork"
    if target == "reference" and reference_workers(associations) > 1:
        return f"--workers {reference_workers(associations)}"
    return "single process"


def _count_files(directory: Path) -> int:
    return sum(1 for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))


def _wait_stored(directory: Path, instances: int) -> int:
    """storescu has all its responses: every instance must be on disk now (a receiver that
    answers before its file is in place gets 10 s); the number of files found."""
    deadline = time.monotonic() + 10
    while _count_files(directory) < instances and time.monotonic() < deadline:
        time.sleep(0.02)
    return _count_files(directory)


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.mark.parametrize("associations", ASSOCIATIONS)
@pytest.mark.parametrize("size", list(WORKLOADS))
@pytest.mark.parametrize("target", TARGETS)
def test_bench_receive(benchmark: Any, workloads: dict[str, Workload], target: str, size: str,
                       associations: int) -> None:
    wl = workloads[size]
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench-{target}-"))
    times: list[float] = []
    counts: list[int] = []

    def fresh_directory() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # untimed: every round starts from an empty directory (no overwrites)
        _empty(out_dir)
        return (port, wl.split[associations], CASE_TIMEOUT), {}

    def one_round(port: int, dirs: list[Path], timeout: float) -> None:
        times.append(_send(port, dirs, timeout))
        counts.append(_wait_stored(out_dir, wl.instances))

    try:
        with receiver(target, out_dir, associations) as (port, _pid):
            benchmark.pedantic(one_round, setup=fresh_directory, rounds=ROUNDS, iterations=1)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    assert counts == [wl.instances] * ROUNDS, f"{target}: stored {counts} of {wl.instances}"
    best = min(times)
    RESULTS.append({
        "target": target,
        "workload": {"name": size, "instance_bytes": wl.instance_bytes},
        "conditions": {"associations": associations, "tcp_nodelay": True, "max_pdu": MAX_PDU,
                       "sender": "DCMTK storescu", "writes_to_disk": True,
                       "transfer_syntax": EXPLICIT_VR_LE, "cores": os.cpu_count(),
                       "receiver_mode": _receiver_mode(target, associations)},
        "instances": wl.instances,
        "rounds": ROUNDS,
        "duration_s": round(best, 4),
        "durations_s": [round(t, 4) for t in times],
        "instances_per_s": round(wl.instances / best, 1),
        "mb_per_s": round(wl.total_bytes / best / 1e6, 2),
        "errors": 0,
    })


# --- the same cases, rounds interleaved across the receivers ------------------------------------

def _paired_times(wl: Workload, associations: int,
                  targets: tuple[str, ...]) -> dict[str, list[float]]:
    """Send ``wl`` ``PAIRED_ROUNDS`` times to each target, rounds interleaved (the order
    rotating); every stored instance is counted. Returns the wall times per target."""
    dirs = {t: Path(tempfile.mkdtemp(prefix=f"bench-paired-{t}-")) for t in targets}
    times: dict[str, list[float]] = {t: [] for t in targets}
    try:
        with contextlib.ExitStack() as stack:
            ports = {t: stack.enter_context(receiver(t, dirs[t], associations))[0]
                     for t in targets}
            for rnd in range(PAIRED_ROUNDS):
                shift = rnd % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    _empty(dirs[target])
                    times[target].append(_send(ports[target], wl.split[associations],
                                               CASE_TIMEOUT))
                    stored = _wait_stored(dirs[target], wl.instances)
                    assert stored == wl.instances, f"{target}: stored {stored} of {wl.instances}"
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    return times


def _paired_ratio(times: dict[str, list[float]], theirs: str, ours: str = "reference") -> float:
    """Our rate over theirs: the inverse time ratio, taken round by round, median."""
    return round(_median([t / o for t, o in zip(times[theirs], times[ours], strict=True)]), 2)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@pytest.mark.parametrize("associations", ASSOCIATIONS)
@pytest.mark.parametrize("size", list(WORKLOADS))
def test_bench_receive_paired(workloads: dict[str, Workload], size: str, associations: int,
                              request: pytest.FixtureRequest) -> None:
    """The ratios README reports: every round sends the workload to the three receivers one
    after the other (the order rotating), so a slow moment of the shared machine hits all
    three alike; each ratio is the median over rounds of the per-round ratio."""
    _skip_unless_enabled(request.config)
    wl = workloads[size]
    times = _paired_times(wl, associations, TARGETS)

    def paired(theirs: str, ours: str = "reference") -> float:
        return _paired_ratio(times, theirs, ours)

    PAIRED.append({
        "workload": {"name": size, "instance_bytes": wl.instance_bytes},
        "associations": associations, "instances": wl.instances, "rounds": PAIRED_ROUNDS,
        "durations_s": {t: [round(x, 4) for x in v] for t, v in times.items()},
        "instances_per_s": {t: round(wl.instances / _median(v), 1) for t, v in times.items()},
        "ours_over_dcmtk": paired("dcmtk"),
        "ours_over_pynetdicom": paired("pynetdicom"),
        "dcmtk_over_pynetdicom": paired("pynetdicom", "dcmtk"),
        "receiver_modes": {t: _receiver_mode(t, associations) for t in TARGETS},
    })


def test_bench_receive_steady(steady_workload: Workload, request: pytest.FixtureRequest) -> None:
    """512 KB over 4 associations in runs long enough for the steady state: reference SCP
    against DCMTK's storescp, paired as above."""
    _skip_unless_enabled(request.config)
    wl = steady_workload
    times = _paired_times(wl, STEADY_ASSOCIATIONS, STEADY_TARGETS)
    STEADY.append({
        "workload": {"name": wl.name, "instance_bytes": wl.instance_bytes},
        "associations": STEADY_ASSOCIATIONS, "instances": wl.instances, "rounds": PAIRED_ROUNDS,
        "durations_s": {t: [round(x, 4) for x in v] for t, v in times.items()},
        "instances_per_s": {t: round(wl.instances / _median(v), 1) for t, v in times.items()},
        "ours_over_dcmtk": _paired_ratio(times, "dcmtk"),
        "receiver_modes": {t: _receiver_mode(t, STEADY_ASSOCIATIONS) for t in STEADY_TARGETS},
    })
    assert all(len(v) == PAIRED_ROUNDS for v in times.values())


# --- one 1 GiB instance, streamed ----------------------------------------------------------------

GIB = 1 << 30


def _vm(pid: int, key: str) -> int:
    """A /proc/<pid>/status memory figure in bytes (e.g. VmHWM, VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _header(uid: str, pixel_bytes: int) -> bytes:
    """Everything of the data set before the pixel values, Explicit VR LE."""
    ds = Dataset()
    ds.SOPClassUID = MF_SC
    ds.SOPInstanceUID = uid
    ds.PatientName = "Stream^Gib"
    ds.PatientID = "STREAM"
    ds.Modality = "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = pixel_bytes // (1024 * 1024 * 2)
    ds.Rows, ds.Columns = 1024, 1024
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)


async def _stream_one(port: int, pid: int, size: int) -> dict[str, Any]:
    uid = "1.2.826.0.1.3680043.8.498.600.1"
    req = await Requestor.connect("127.0.0.1", port, timeout=30)
    try:
        answer = await req.associate(associate_rq(
            "ANY-SCP", "STREAMER", [PresentationContextRQ(1, MF_SC, [EXPLICIT_VR_LE])],
            max_pdu=MAX_PDU))
        assert isinstance(answer, AssociateAC)
        limit = max_fragment(req.peer_max_pdu)
        rss_before = _vm(pid, "VmRSS")
        started = time.perf_counter()
        req.conn.send_pdu(PDataTF([PDV(1, 0x03, encode_command(CStoreRQ(1, MF_SC, uid)))]))
        req.conn.send_pdu(PDataTF([PDV(1, 0x00, _header(uid, size))]))
        # One reusable chunk: the generator never holds more than one fragment's worth.
        chunk = memoryview((np.arange(limit // 2, dtype=np.uint32) % 65536)
                           .astype("<u2").tobytes())

        def fragments() -> Iterator[tuple[memoryview, bool]]:
            left = size
            while left > 0:
                n = min(limit, left)
                left -= n
                yield chunk[:n], left == 0

        sent = 0
        for piece, last in fragments():
            req.conn.send_pdu(PDataTF([PDV(1, 0x02 if last else 0x00, piece)]))
            sent += len(piece)
            await req.conn.drain(60)
        got = await req.recv_message(120)
        elapsed = time.perf_counter() - started
        assert isinstance(got, DimseMessage), got
        status = got.command.elements.get(0x0900)
        await req.release(10)
    finally:
        req.close()
    return {"status": status, "bytes": sent, "duration_s": round(elapsed, 3),
            "mb_per_s": round(sent / elapsed / 1e6, 1), "rss_before": rss_before}


def test_bench_stream_one_gib(benchmark: Any, request: pytest.FixtureRequest) -> None:
    _skip_unless_enabled(request.config)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-gib-"))
    try:
        with receiver("reference", out_dir, 1) as (port, pid):
            result = benchmark.pedantic(lambda: asyncio.run(_stream_one(port, pid, GIB)),
                                        rounds=1, iterations=1)
            peak = _vm(pid, "VmHWM")
            files = [p for p in out_dir.iterdir() if p.is_file()]
            sizes = [p.stat().st_size for p in files]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    assert result["status"] == 0, result
    assert len(sizes) == 1 and sizes[0] > GIB, sizes
    STREAM.update({"instance_bytes": GIB, **result, "peak_rss_bytes": peak,
                   "peak_rss_mib": round(peak / (1 << 20), 1), "target_peak_rss_mib": 150})


# --- the table -----------------------------------------------------------------------------------

def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def test_bench_report(request: pytest.FixtureRequest) -> None:
    _skip_unless_enabled(request.config)
    if not RESULTS and not STREAM and not PAIRED and not STEADY:
        pytest.skip("no benchmark ran")
    index = {(r["target"], r["workload"]["name"], r["conditions"]["associations"]): r
             for r in RESULTS}
    targets = {"vs_pynetdicom": 10.0, "vs_dcmtk": {"small": 0.5, "512k": 0.9}}
    ratios = []
    lines = ["", f"{'workload':<8} {'assoc':>5} {'target':<11} {'inst/s':>9} {'MB/s':>8}"
                 f" {'ours/pynetdicom':>16} {'ours/DCMTK':>11}"]
    for size in WORKLOADS:
        for assoc in ASSOCIATIONS:
            ours = index.get(("reference", size, assoc))
            row: dict[str, Any] = {"workload": size, "associations": assoc}
            for target in TARGETS:
                r = index.get((target, size, assoc))
                if r is None:
                    continue
                row[target] = r["instances_per_s"]
                lines.append(f"{size:<8} {assoc:>5} {target:<11} {r['instances_per_s']:>9.1f} "
                             f"{r['mb_per_s']:>8.1f}")
            if ours is not None:
                vs_py = _ratio(ours["instances_per_s"], row.get("pynetdicom"))
                vs_dcmtk = _ratio(ours["instances_per_s"], row.get("dcmtk"))
                row |= {"ours_over_pynetdicom": vs_py, "ours_over_dcmtk": vs_dcmtk,
                        "target_ours_over_pynetdicom": targets["vs_pynetdicom"],
                        "target_ours_over_dcmtk": targets["vs_dcmtk"][size]}  # type: ignore[index]
                lines.append(f"{'':<8} {'':>5} {'ratio':<11} {'':>9} {'':>8} "
                             f"{vs_py if vs_py is not None else '-':>16} "
                             f"{vs_dcmtk if vs_dcmtk is not None else '-':>11}")
            ratios.append(row)
    if PAIRED:
        lines += ["", "paired (rounds interleaved; median of per-round ratios):",
                  f"{'workload':<8} {'assoc':>5} {'ours/pynetdicom':>16} {'ours/DCMTK':>11}"
                  f" {'DCMTK/pynetdicom':>17}"]
        for r in PAIRED:
            lines.append(f"{r['workload']['name']:<8} {r['associations']:>5} "
                         f"{r['ours_over_pynetdicom']:>16} {r['ours_over_dcmtk']:>11} "
                         f"{r['dcmtk_over_pynetdicom']:>17}")
    for r in STEADY:
        lines.append(f"steady state ({r['instances']} x {r['workload']['name']}, "
                     f"{r['associations']} associations): ours/DCMTK {r['ours_over_dcmtk']}")
    if STREAM:
        lines.append(f"1 GiB streamed into the reference SCP: {STREAM['mb_per_s']} MB/s, "
                     f"peak RSS {STREAM['peak_rss_mib']} MiB (target < 150 MiB)")
    print("\n".join(lines))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "harness_version": harness.__version__,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "cases": RESULTS,
        "ratios": ratios,
        "paired": PAIRED,
        "steady": STEADY,
        "stream_1gib": STREAM,
    }, indent=2) + "\n", encoding="utf-8")
    assert all(r["instances"] > 0 for r in RESULTS)


def test_runner_scripts_compile() -> None:
    """The embedded runner programs are valid Python (checked without running anything)."""
    compile(REFERENCE_RUNNER, "<reference-runner>", "exec")
    compile(PYNETDICOM_RUNNER, "<pynetdicom-runner>", "exec")
    assert {asdict(Workload("x", Path(), 1, 1, 1))["name"]} == {"x"}
