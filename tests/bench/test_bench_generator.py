"""The load generator of ``dicom-harness bench``: raw speed, against DCMTK, against loopback.

Run with:
    python -m pytest tests/bench/test_bench_generator.py -m bench --benchmark-enable -s -q \
        -p no:cacheprovider

- generator -> fast DICOM sink (stores nothing): the generator's own ceiling, tracked over
  time so a regression shows in CI history (these also run, tiny, in the normal test run);
- generator vs DCMTK storescu (TCP_NODELAY=1) -> the same DCMTK storescp (``+B``: writes
  what it receives bit for bit, ``--fork`` for 4 associations), 2 KB and 512 KB instances,
  1 and 4 associations, 5 interleaved repetitions: at least 1.0x, or parity within noise
  (>= 0.9x) while using at most half of storescu's CPU per store (then the receiver, not
  the generator, is the bottleneck);
- generator -> reference SCP, 512 KB, 4 associations, against a plain loopback copy of the
  same bytes measured in the same run (reported, not asserted: the SCP is not ours to tune).

Only ratios from one run mean anything on a shared machine; results are printed and written
to ``reports/bench-generator.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.bench.process import run_process
from harness.bench.runner import BenchOptions, run
from harness.bench.sender import SenderConfig
from harness.bench.sink import SinkProcess
from harness.bench.target import ReferenceSCP
from harness.bench.workload import build_workload, new_nonce
from tests._peers import free_port, wait_listening

pytestmark = pytest.mark.bench

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
REPORT = Path(__file__).resolve().parents[2] / "reports" / "bench-generator.json"
RESULTS: dict[str, Any] = {}

# name -> (workload, associations, window, instances per association)
SINK_CASES = {"tiny-1assoc": ("tiny", 1, 1, 3000), "tiny-4assoc": ("tiny", 4, 1, 1500),
              "tiny-window16": ("tiny", 1, 16, 10000), "ct-4assoc": ("ct", 4, 1, 150)}
DCMTK_CASES = {"2KB": ("tiny", 2000), "512KB": ("ct", 100)}


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable", default=False)) or not config.getoption(
        "benchmark_disable", default=True)


def _need_enabled(config: pytest.Config) -> None:
    if not _enabled(config):
        pytest.skip("generator benchmark: run with -m bench --benchmark-enable")


@pytest.fixture(scope="module")
def sink() -> Iterator[SinkProcess]:
    with SinkProcess("dicom") as server:
        yield server


@pytest.mark.parametrize("case", list(SINK_CASES))
def test_bench_generator_against_sink(benchmark: Any, sink: SinkProcess, case: str,
                                      request: pytest.FixtureRequest) -> None:
    kind, associations, window, instances = SINK_CASES[case]
    enabled = _enabled(request.config)
    if not enabled:
        instances = max(5, instances // 100)  # a smoke run in the normal test suite
    workload = build_workload(kind)
    cfg = SenderConfig("127.0.0.1", sink.port, window=window)

    def once() -> Any:
        return asyncio.run(run_process(cfg, workload, associations=associations,
                                       instances=instances, duration=None, warmup=0,
                                       nonce=new_nonce()))

    result = benchmark.pedantic(once, rounds=3 if enabled else 1, iterations=1)
    m = result.measure
    assert m.errors == 0, m.error_messages
    assert m.instances == instances * associations
    elapsed = result.end - result.start
    benchmark.extra_info.update(instances_per_s=round(m.instances / elapsed, 1),
                                mb_per_s=round(m.nbytes / elapsed / 1e6, 2))
    RESULTS.setdefault("sink", {})[case] = dict(benchmark.extra_info)


# --- against DCMTK storescu, on DCMTK storescp --------------------------------------------


@contextlib.contextmanager
def storescp(associations: int) -> Iterator[int]:
    # A disk folder: on this kind of VM a tmpfs folder was slower and less steady (fresh
    # guest memory per file), and the volumes here stay far below write-back throttling.
    out = Path(tempfile.mkdtemp(prefix="bench-storescp-"))
    port = free_port()
    proc = subprocess.Popen([STORESCP, "-od", str(out), "+B",
                             *(["--fork"] if associations > 1 else []), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TCP_NODELAY": "1"}, start_new_session=True)
    try:
        wait_listening(port, proc, 20.0)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # forked children too
        proc.wait(10)
        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("associations", [1, 4])
@pytest.mark.parametrize("size", list(DCMTK_CASES))
def test_bench_generator_vs_dcmtk(benchmark: Any, size: str, associations: int,
                                  request: pytest.FixtureRequest) -> None:
    _need_enabled(request.config)
    if not (os.access(STORESCP, os.X_OK) and os.access(STORESCU, os.X_OK)):
        pytest.skip("DCMTK storescp/storescu not installed in /usr/bin")
    kind, instances = DCMTK_CASES[size]
    with storescp(associations) as port:
        doc = benchmark.pedantic(lambda: run(BenchOptions(
            target=("127.0.0.1", port), workload=kind, instances=instances,
            associations=[associations], compare=["dcmtk"], repeat=5)), rounds=1, iterations=1)
    c = doc["compare"]
    assert c["dcmtk_errors"] == [] and doc["errors"] == 0
    benchmark.extra_info.update(ratio=c["ratio"], cpu_ratio=c["cpu_ratio"],
                                ours=c["ours_session_instances_per_s"],
                                dcmtk=c["dcmtk_net_instances_per_s"])
    RESULTS.setdefault("dcmtk", {})[f"{size}-{associations}assoc"] = {
        "ratio": c["ratio"], "ours_instances_per_s": c["ours_session_instances_per_s"],
        "dcmtk_net_instances_per_s": c["dcmtk_net_instances_per_s"],
        "cpu_ratio": c["cpu_ratio"], "ours_cpu_us": c["ours_cpu_us_per_instance"],
        "dcmtk_cpu_us": c["dcmtk_cpu_us_per_instance"],
        "conditions": doc["conditions"], "storescu": c["version"], "env": c["env"]}
    # Sender CPU per store is the noise-proof figure; throughput swings on a shared host and
    # two senders feeding a saturated receiver end up at parity whatever their speed.
    assert c["cpu_ratio"] >= 1.0, f"generator uses more CPU per store than storescu: {c}"
    receiver_bound = c["ratio"] >= 0.9 and c["cpu_ratio"] >= 2.0
    assert c["ratio"] >= 1.0 or receiver_bound, f"generator slower than storescu: {c}"


def test_bench_reference_scp_vs_loopback(benchmark: Any,
                                         request: pytest.FixtureRequest) -> None:
    _need_enabled(request.config)
    with ReferenceSCP() as scp:
        doc = benchmark.pedantic(lambda: run(BenchOptions(
            target=("127.0.0.1", scp.port), workload="ct", instances=200, associations=[4],
            compare=["loopback"], target_pid=scp.pid)), rounds=1, iterations=1)
    assert doc["errors"] == 0
    lb = doc["loopback"]
    files = lb["files"]
    assert files.get("skipped") or files["errors"] == []
    benchmark.extra_info.update(mb_per_s=doc["mb_per_s"], loopback_mb_per_s=lb["mb_per_s"],
                                ratio=lb["ratio"], files_mb_per_s=files["mb_per_s"],
                                files_ratio=files["ratio"])
    RESULTS["reference_vs_loopback"] = {"mb_per_s": doc["mb_per_s"],
                                        "loopback_mb_per_s": lb["mb_per_s"],
                                        "ratio": lb["ratio"], "target_ratio": 0.8,
                                        "files_mb_per_s": files["mb_per_s"],
                                        "files_ratio": files["ratio"],
                                        "target_process": doc.get("target_process")}


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not RESULTS or not _enabled(request.config):
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(RESULTS, indent=2) + "\n")
    print("\n" + json.dumps(RESULTS, indent=1))
