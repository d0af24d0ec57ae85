"""C-STORE-RQ command encode+decode: harness.wire.dimse against pynetdicom, in the same run.

Run with:
    python -m pytest tests/bench/test_bench_dimse.py -m bench --benchmark-enable -q \
        -p no:cacheprovider
Only ratios measured in one run mean anything (the machine is shared); nothing here asserts
an absolute time. The target (README, Benchmarks) is a ratio: at least ``TARGET_RATIO`` times
pynetdicom's speed for the same job, asserted by ``test_ratio_perf_counter``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest

from harness.wire.dimse import CStoreRQ, decode_command, encode_command

TARGET_RATIO = 10.0  # README: C-STORE-RQ encode + decode >= 10x pynetdicom

pytestmark = pytest.mark.bench

CT = "1.2.840.10008.5.1.4.1.1.2"
INST = "1.2.826.0.1.3680043.8.498.10931028471923847102938471029384"
REQUEST = CStoreRQ(7, CT, INST, 0, 0x0001)


def ours() -> object:
    decoded = decode_command(encode_command(REQUEST))
    assert decoded.message is not None
    return decoded.message


def pynetdicom_same_job() -> object:
    """Primitive -> message -> P-DATA (encode), then P-DATA -> message (decode)."""
    from pynetdicom.dimse_messages import C_STORE_RQ, DIMSEMessage
    from pynetdicom.dimse_primitives import C_STORE

    prim = C_STORE()
    prim.MessageID = REQUEST.message_id
    prim.AffectedSOPClassUID = REQUEST.affected_sop_class_uid
    prim.AffectedSOPInstanceUID = REQUEST.affected_sop_instance_uid
    prim.Priority = REQUEST.priority
    prim.DataSet = BytesIO(b"\x00\x00")  # a data set makes Command Data Set Type 0001H
    message = C_STORE_RQ()
    message.primitive_to_message(prim)
    pdata = next(message.encode_msg(1, 16384))  # the command P-DATA only
    received: Any = DIMSEMessage()
    received.decode_msg(pdata)  # False: the data set would follow; the command is decoded
    assert received.command_set.MessageID == REQUEST.message_id
    return received.command_set


def test_same_work_is_done() -> None:
    theirs: Any = pynetdicom_same_job()
    mine = ours()
    assert isinstance(mine, CStoreRQ)
    assert theirs.AffectedSOPInstanceUID == mine.affected_sop_instance_uid
    assert theirs.CommandDataSetType == mine.command_data_set_type


@pytest.mark.benchmark(group="c-store-rq-encode-decode")
def test_bench_ours(benchmark: Any) -> None:
    benchmark(ours)


@pytest.mark.benchmark(group="c-store-rq-encode-decode")
def test_bench_pynetdicom(benchmark: Any) -> None:
    benchmark(pynetdicom_same_job)


def _per_call(fn: Callable[[], object], budget_s: float) -> float:
    """Seconds per call, best of 3 rounds, each round about budget_s / 3."""
    fn()  # warm up (imports, caches)
    t0 = time.perf_counter()
    fn()
    single = max(time.perf_counter() - t0, 1e-7)
    loops = max(10, int(budget_s / 3 / single))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def test_ratio_perf_counter(capsys: pytest.CaptureFixture[str]) -> None:
    mine = _per_call(ours, 0.6)
    theirs = _per_call(pynetdicom_same_job, 0.6)
    with capsys.disabled():
        print(f"\nC-STORE-RQ encode+decode: harness {mine * 1e6:.1f} us, "
              f"pynetdicom {theirs * 1e6:.1f} us, ratio {theirs / mine:.1f}x")
    assert mine > 0 and theirs > 0
    assert theirs / mine >= TARGET_RATIO, f"only {theirs / mine:.1f}x pynetdicom"
