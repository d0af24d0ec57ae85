"""The load generator's memory is flat in the number of instances it sends.

Peak traced allocations (tracemalloc) of the generator for 1,000 and for 20,000 tiny stores
against the fast DICOM sink (a separate process: its memory is not counted). Per-store
bookkeeping that grew with the count (a list of latencies, a record per store) would add
at least 20,000 x 32 bytes = 640 KB; the margin allows a quarter of that.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest

from harness.bench.process import run_process
from harness.bench.sender import SenderConfig
from harness.bench.sink import SinkProcess
from harness.bench.workload import build_workload, new_nonce

MARGIN = 160 * 1024


@pytest.fixture(scope="module")
def sink() -> Any:
    with SinkProcess("dicom") as server:
        yield server


def _peak(port: int, instances: int) -> tuple[int, int]:
    workload = build_workload("tiny")
    cfg = SenderConfig("127.0.0.1", port, window=16)
    tracemalloc.start()
    try:
        result = asyncio.run(run_process(cfg, workload, associations=1, instances=instances,
                                         duration=None, warmup=0, nonce=new_nonce()))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result.measure.instances


def test_memory_is_flat_in_the_number_of_instances(sink: SinkProcess) -> None:
    _peak(sink.port, 200)  # imports and first-use caches out of the way
    small, n_small = _peak(sink.port, 1_000)
    large, n_large = _peak(sink.port, 20_000)
    assert (n_small, n_large) == (1_000, 20_000)
    assert large <= small + MARGIN, f"peak {small} B for 1,000 stores, {large} B for 20,000"
