"""Efficiency of the Locust load generator against the single-machine bench, side by side.

Run with (opt-in, about two minutes; writes ``reports/bench-locust.json``):
    python -m pytest tests/bench/test_bench_locust_efficiency.py -m bench --benchmark-enable -s -q \
        -p no:cacheprovider

Target: DCMTK ``storescp --ignore`` (receives, stores nothing) with ``TCP_NODELAY=1`` in its
environment, 2 KB instances (workload ``tiny``).

1. One core: ``dicom-harness bench`` (one process, asyncio) and ``bench --locust`` in local
   mode (one Locust process, gevent) are each pinned to CPU 1 with ``taskset``, storescp to
   CPU 0; same number of associations (= Locust users), same duration; the order alternates
   over ``ROUNDS`` rounds and the ratio is the median of the per-round ratios Locust / bench
   (``instances_per_s`` of both Bench JSONs: first measured store to last answer).
2. Scale-out: a Locust master with one worker, then with two (unpinned, storescp --fork),
   same users; ratio two / one.

Only ratios measured in one run mean anything on a shared machine: nothing here asserts an
absolute speed. The targets (README, Locust) are ratios: one Locust process at least
``MIN_ONE_CORE_RATIO`` of the bench on the same core, and two workers more than one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from tests._peers import free_port, wait_listening

pytestmark = [pytest.mark.bench, pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="needs the [locust] extra")]

STORESCP = "/usr/bin/storescp"
DURATION_S = 5
ROUNDS = 3
ONE_CORE_ASSOCIATIONS = (1, 4)
SCALE_USERS = 8
REPORT = Path(__file__).resolve().parents[2] / "reports" / "bench-locust.json"
TIMEOUT = 120
MIN_ONE_CORE_RATIO = 0.5  # README: one Locust process >= 0.5x the single-machine bench



@contextlib.contextmanager
def storescp(fork: bool, cpu: str | None) -> Iterator[int]:
    port = free_port()
    cmd = [STORESCP, "--ignore", "-aet", "ANY-SCP", *(["--fork"] if fork else []), str(port)]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    proc = subprocess.Popen(cmd, env={**os.environ, "TCP_NODELAY": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc, 10.0)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _bench(*args: str, cpu: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "harness.cli", "bench", *args]
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


def _run(cmd: list[str], report_dir: Path) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "NO_COLOR": "1"})
    path = report_dir / "bench.json"
    assert path.exists(), proc.stdout[-1500:] + proc.stderr[-1500:]
    doc: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    assert doc["errors"] == 0, doc["error_messages"]
    return doc


def single_bench(port: int, associations: int, out: Path) -> float:
    doc = _run(_bench("--target", f"127.0.0.1:{port}", "--associations", str(associations),
                      "--duration", str(DURATION_S), "--report-dir", str(out), "--no-html",
                      "-q", cpu="1"), out)
    return float(doc["instances_per_s"])


def locust_local(port: int, users: int, out: Path) -> float:
    doc = _run(_bench("--target", f"127.0.0.1:{port}", "--report-dir", str(out), "--no-html",
                      "--locust", "--headless", "-u", str(users), "-r", str(users),
                      "-t", f"{DURATION_S}s", "--only-summary", cpu="1"), out)
    return float(doc["instances_per_s"])


def locust_distributed(port: int, workers: int, users: int, out: Path) -> float:
    mport = free_port()
    master = subprocess.Popen(_bench(
        "--target", f"127.0.0.1:{port}", "--report-dir", str(out), "--no-html", "--locust",
        "--master", "--headless", "-u", str(users), "-r", str(users), "-t", f"{DURATION_S}s",
        "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(mport), "--only-summary"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [master] + [subprocess.Popen(_bench(
        "--locust", "--worker", "--master-host", "127.0.0.1", "--master-port", str(mport)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        master.wait(TIMEOUT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
    doc = json.loads((out / "bench.json").read_text())
    (out / "bench.json").unlink()
    assert len(doc["locust"]["workers"]) == workers
    return float(doc["instances_per_s"])


@pytest.mark.skipif(not Path(STORESCP).exists(), reason="needs DCMTK storescp")
def test_locust_worker_against_single_machine_bench() -> None:
    results: dict[str, Any] = {"conditions": {
        "target": "DCMTK storescp --ignore, TCP_NODELAY=1", "workload": "tiny (2 KB)",
        "duration_s": DURATION_S, "rounds": ROUNDS, "cores": os.cpu_count(),
        "python": platform.python_version(), "platform": platform.platform(),
        "pinning": "generator on CPU 1, storescp on CPU 0 (taskset)"}, "one_core": [],
        "scale_out": {}}
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
        out = Path(tmp)
        for n in ONE_CORE_ASSOCIATIONS:
            ours, theirs = [], []
            # storescp without --fork serves one association at a time: fork for N > 1.
            with storescp(fork=n > 1, cpu="0") as port:
                for r in range(ROUNDS):
                    order = ("bench", "locust") if r % 2 == 0 else ("locust", "bench")
                    for who in order:
                        if who == "bench":
                            theirs.append(single_bench(port, n, out))
                        else:
                            ours.append(locust_local(port, n, out))
            ratios = [a / b for a, b in zip(ours, theirs, strict=True) if b]
            row = {"associations": n, "bench_instances_per_s": [round(v) for v in theirs],
                   "locust_instances_per_s": [round(v) for v in ours],
                   "ratio": round(median(ratios), 3)}
            results["one_core"].append(row)
            print(f"\none core, {n} association(s): bench {median(theirs):.0f}/s, "
                  f"locust {median(ours):.0f}/s, ratio {row['ratio']}")
        one, two = [], []
        with storescp(fork=True, cpu=None) as port:
            for r in range(ROUNDS):
                order = (1, 2) if r % 2 == 0 else (2, 1)
                for k in order:
                    (one if k == 1 else two).append(
                        locust_distributed(port, k, SCALE_USERS, out))
        ratio = round(median([b / a for a, b in zip(one, two, strict=True) if a]), 3)
        results["scale_out"] = {"users": SCALE_USERS,
                                "one_worker_instances_per_s": [round(v) for v in one],
                                "two_workers_instances_per_s": [round(v) for v in two],
                                "ratio": ratio}
        print(f"master + 1 worker {median(one):.0f}/s, master + 2 workers {median(two):.0f}/s, "
              f"ratio {ratio}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    for row in results["one_core"]:
        assert row["ratio"] >= MIN_ONE_CORE_RATIO, f"Locust below target: {row}"
    assert results["scale_out"]["ratio"] > 1.0, f"two workers no faster: {results['scale_out']}"
