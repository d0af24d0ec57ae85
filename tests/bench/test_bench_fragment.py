"""Benchmark: fragmenting and reassembling a 100 MB data set (PS3.8 Annex E).

Three contenders do the same job, sender to receiver, without sockets:
- ours: ``fragment()`` into P-DATA-TF objects, each PDV fed to ``MessageAssembler``, data
  fragments gathered into one buffer;
- pynetdicom 3.0.4: ``C_STORE_RQ.encode_msg()`` yields P-DATA primitives, each handed to
  ``DIMSEMessage.decode_msg()`` which gathers the data set in a ``BytesIO``;
- memcpy: one plain copy of the 100 MB, the floor any reassembling receiver pays.
A second level, "wire", also turns each PDU into bytes and decodes it back.

Run: python -m pytest tests/bench/test_bench_fragment.py -m bench --benchmark-enable -q -s
Only ratios measured in one run mean anything; no test asserts an absolute time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest

from harness.wire.decode import decode_pdu
from harness.wire.fragment import CommandComplete, DataFragment, MessageAssembler, fragment
from harness.wire.pdu import PDataTF

pynetdicom = pytest.importorskip("pynetdicom")
from pynetdicom import pdu as pn_pdu  # noqa: E402
from pynetdicom.dimse_messages import C_STORE_RQ, DIMSEMessage  # noqa: E402
from pynetdicom.dimse_primitives import C_STORE  # noqa: E402
from pynetdicom.dsutils import encode  # noqa: E402

pytestmark = pytest.mark.bench

SIZE = 100 * 1000 * 1000
MAX_PDUS = {"16384": 16384, "1MiB": 1 << 20}
CONTEXT_ID = 1
CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    # 100 MB runs do not belong in the default test run: only with ``-m bench``.
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmark: run with -m bench --benchmark-enable")


@pytest.fixture(scope="module")
def data_set() -> bytes:
    return bytes(range(256)) * (SIZE // 256) + bytes(SIZE % 256)


def pn_message(data: bytes) -> Any:
    prim = C_STORE()
    prim.MessageID = 1
    prim.AffectedSOPClassUID = CT
    prim.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.10.1450.99.1"
    prim.Priority = 0
    prim.DataSet = BytesIO(data)
    msg = C_STORE_RQ()
    msg.primitive_to_message(prim)
    return msg


def command_bytes(data: bytes) -> bytes:
    """The same C-STORE-RQ command set pynetdicom sends, so both carry equal payloads."""
    command = encode(pn_message(data).command_set, True, True)  # Implicit VR Little Endian
    assert isinstance(command, bytes)
    return command


# --- the three jobs ----------------------------------------------------------------------------


def ours(command: bytes, data: bytes, max_pdu: int) -> bytes | bytearray:
    assembler = MessageAssembler()
    out = bytearray()
    for pdu in fragment(CONTEXT_ID, command, data, max_pdu):
        for pdv in pdu.pdvs:
            event = assembler.feed(pdv)
            if isinstance(event, DataFragment):
                out += event.data
            elif isinstance(event, CommandComplete):
                assembler.expect_data(True)
            elif event is not None:
                raise AssertionError(event)
    return out


def ours_wire(command: bytes, data: bytes, max_pdu: int) -> bytes | bytearray:
    assembler = MessageAssembler()
    out = bytearray()
    for pdu in fragment(CONTEXT_ID, command, data, max_pdu):
        decoded, _ = decode_pdu(b"".join(pdu.encode_parts()))  # the bytes a socket would carry
        assert isinstance(decoded, PDataTF)
        for pdv in decoded.pdvs:
            event = assembler.feed(pdv)
            if isinstance(event, DataFragment):
                out += event.data
            elif isinstance(event, CommandComplete):
                assembler.expect_data(True)
    return out


def pynetdicom_job(data: bytes, max_pdu: int) -> bytes | bytearray:
    received: Any = DIMSEMessage()
    done = False
    for primitive in pn_message(data).encode_msg(CONTEXT_ID, max_pdu):
        done = received.decode_msg(primitive)
    assert done
    return received.data_set.getvalue()  # type: ignore[no-any-return]


def pynetdicom_wire(data: bytes, max_pdu: int) -> bytes | bytearray:
    received: Any = DIMSEMessage()
    for primitive in pn_message(data).encode_msg(CONTEXT_ID, max_pdu):
        wire = pn_pdu.P_DATA_TF(primitive).encode()
        pdu: Any = pn_pdu.P_DATA_TF()
        pdu.decode(wire)
        received.decode_msg(pdu.to_primitive())
    return received.data_set.getvalue()  # type: ignore[no-any-return]


def memcpy(data: bytes) -> bytes | bytearray:
    return bytes(memoryview(data))  # bytes(data) would hand back the same object


def jobs(command: bytes, data: bytes, max_pdu: int) -> dict[str, Callable[[], bytes | bytearray]]:
    return {
        "ours": lambda: ours(command, data, max_pdu),
        "pynetdicom": lambda: pynetdicom_job(data, max_pdu),
        "memcpy": lambda: memcpy(data),
        "ours-wire": lambda: ours_wire(command, data, max_pdu),
        "pynetdicom-wire": lambda: pynetdicom_wire(data, max_pdu),
    }


# --- pytest-benchmark ------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["ours", "pynetdicom", "memcpy", "ours-wire", "pynetdicom-wire"])
@pytest.mark.parametrize("max_pdu_name", list(MAX_PDUS))
def test_bench_fragment_reassemble(benchmark: Any, data_set: bytes, impl: str,
                                   max_pdu_name: str) -> None:
    level = "wire" if impl.endswith("-wire") else "objects"
    benchmark.group = f"fragment+reassemble 100 MB, max PDU {max_pdu_name}, {level}"
    benchmark.extra_info["bytes"] = SIZE
    job = jobs(command_bytes(data_set), data_set, MAX_PDUS[max_pdu_name])[impl]
    result = benchmark.pedantic(job, rounds=3, iterations=1, warmup_rounds=0)
    assert len(result) == SIZE
    assert result == data_set


# --- ratios with perf_counter ---------------------------------------------------------------


def best_of(job: Callable[[], bytes | bytearray], rounds: int = 3) -> tuple[float, int]:
    best = float("inf")
    size = 0
    for _ in range(rounds):
        start = time.perf_counter()
        result = job()
        best = min(best, time.perf_counter() - start)
        size = len(result)
        del result
    return best, size


def test_print_ratios(data_set: bytes) -> None:
    command = command_bytes(data_set)
    lines = [f"fragment + reassemble {SIZE / 1e6:.0f} MB (best of 3, perf_counter)"]
    for name, max_pdu in MAX_PDUS.items():
        times: dict[str, float] = {}
        for impl, job in jobs(command, data_set, max_pdu).items():
            times[impl], size = best_of(job)
            assert size == SIZE
            lines.append(f"  max PDU {name:>5} {impl:<16} {times[impl] * 1e3:8.1f} ms "
                         f"{SIZE / times[impl] / 1e6:8.0f} MB/s")
        lines.append(
            f"  max PDU {name:>5} ratios: ours/pynetdicom = "
            f"{times['ours'] / times['pynetdicom']:.3f}, ours/memcpy = "
            f"{times['ours'] / times['memcpy']:.2f}, wire ours/pynetdicom = "
            f"{times['ours-wire'] / times['pynetdicom-wire']:.3f}, wire ours/memcpy = "
            f"{times['ours-wire'] / times['memcpy']:.2f}")
        assert all(t > 0 for t in times.values())
    print("\n" + "\n".join(lines))
