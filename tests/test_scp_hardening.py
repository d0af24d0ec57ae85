"""Defects found by the network fuzzing campaign against the reference SCP (issue 14).

Each test reproduces one finding on loopback with our requestor (or raw PDUs) and checks the
answer the standard asks for: a failure status or an A-ABORT, never a silent drop, never a
file kept without a Success response.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from harness.net.requestor import PeerEnded
from harness.scp import Profile
from harness.scp.server import SCPAssociation
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE
from harness.wire.dimse import CStoreRQ, encode_command, encode_elements, value_ui, value_us
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, ReleaseRQ
from harness.wire.states import State, abort_advice
from tests._scp_support import (
    CT,
    associate,
    association,
    contexts,
    encode_dataset,
    make_ct,
    run,
    running_scp,
    status_of,
    store,
    stored_files,
)


def _visible(directory: Path) -> list[Path]:
    return [p for p in stored_files(directory) if not p.name.startswith(".")]


# --- 1. malformed command elements and tiny Maximum Lengths ----------------------------------

def _store_command_with_priority(priority: bytes, sop_instance: str) -> bytes:
    return encode_elements([
        (0x0002, value_ui(CT)),
        (0x0100, value_us(0x0001)),
        (0x0110, value_us(1)),
        (0x0700, priority),
        (0x0800, value_us(0x0000)),
        (0x1000, value_ui(sop_instance)),
    ])


@pytest.mark.parametrize("priority", [b"", b"\x00", b"\x00\x00\x00\x00", b"\x01\x02\x03"])
def test_priority_of_wrong_length_is_answered_with_a_failure(tmp_path: Path,
                                                             priority: bytes) -> None:
    """Priority (0000,0700) is US: a value that is not 2 bytes long is an invalid command
    (PS3.7 9.3.1.1): the SCP answers a failure status, never drops the connection."""
    ds = make_ct()

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp, association(scp.port) as req:
            await req.send_message(1, _store_command_with_priority(priority, ds.SOPInstanceUID),
                                   encode_dataset(ds))
            rsp = await req.recv_message(5.0)
            status = status_of(rsp)
            assert 0xC000 <= status <= 0xCFFF, hex(status)
            # The association is still usable.
            assert status_of(await store(req, encode_dataset(ds), ds.SOPInstanceUID,
                                         msg_id=2)) == 0x0000

    run(main())


@pytest.mark.parametrize("max_pdu", [1, 2, 5, 6])
def test_maximum_length_too_small_for_a_pdv_is_rejected(tmp_path: Path, max_pdu: int) -> None:
    """A Maximum Length of 1-6 cannot carry a PDV (PS3.8 9.3.5: a PDV item has a 6-byte
    header): refused at negotiation instead of stored and then dropped."""

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp:
            req, answer = await associate(scp.port, max_pdu=max_pdu)
            req.close()
            assert isinstance(answer, AssociateRJ), answer
            assert (answer.result, answer.source, answer.reason) == (1, 1, 1)
            assert scp.records_total == 0

    run(main())
    assert _visible(tmp_path) == []


def test_smallest_usable_maximum_length_gets_its_response(tmp_path: Path) -> None:
    """Maximum Length 8: the response comes back in 2-byte fragments, after the store."""
    ds = make_ct()

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp, \
                association(scp.port, max_pdu=8) as req:
            await req.send_message(1, encode_command(CStoreRQ(1, CT, ds.SOPInstanceUID, 0, 0)),
                                   encode_dataset(ds), max_pdu=16384)
            assert status_of(await req.recv_message(10.0)) == 0x0000
            assert scp.records_total == 1

    run(main())
    assert len(_visible(tmp_path)) == 1


def test_exception_in_a_callback_aborts_and_logs_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The last-resort handler: an exception escaping the SCP's processing becomes an
    A-ABORT (source 2, reason 0) and one log line, not a dropped connection."""

    def broken(self: SCPAssociation, *args: object) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(SCPAssociation, "on_command", broken)
    ds = make_ct()

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp, association(scp.port) as req:
            got = await store(req, encode_dataset(ds), ds.SOPInstanceUID)
            assert isinstance(got, PeerEnded) and got.kind == "abort", got
            assert isinstance(got.pdu, Abort)
            assert (got.pdu.source, got.pdu.reason) == (2, 0)
            await asyncio.sleep(0.05)
            assert not scp.server.associations or all(
                a.ended for a in scp.server.associations)

    with caplog.at_level(logging.ERROR):
        run(main())
    lines = [r for r in caplog.records if "injected failure" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert lines[0].exc_info is None  # one line, no traceback
    assert not [r for r in caplog.records if r.name == "asyncio"]
    assert _visible(tmp_path) == []


# --- 3. an over-long P-DATA-TF is aborted on its header --------------------------------------

@pytest.mark.parametrize("length", [65537, 1 << 20, 1048582])
def test_over_long_pdata_is_aborted_on_its_header(tmp_path: Path, length: int) -> None:
    """Only the 6-byte header of a P-DATA-TF announcing more than our maximum (64 KiB): the
    SCP answers A-ABORT (2,6) at once (PS3.8 D.1), without waiting for the body."""

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp, association(scp.port) as req:
            req.conn.send_bytes(struct.pack(">BBI", 0x04, 0, length) + b"\x00" * 10)
            got = await req.recv_pdu(5.0)
            assert isinstance(got, PeerEnded) is False, got
            assert isinstance(got.pdu, Abort), got
            assert (got.pdu.source, got.pdu.reason) == (2, 6)

    run(main())


# --- 2. value lengths against the VR ---------------------------------------------------------

def _with_vr(data: bytes, tag: tuple[int, int], vr: bytes) -> bytes:
    """The Explicit VR LE data set with the VR of one short-header element replaced."""
    needle = struct.pack("<HH", *tag)
    at = data.index(needle)
    return data[:at + 4] + vr + data[at + 6:]


@pytest.mark.parametrize(("tag", "vr"), [
    ((0x0010, 0x0010), b"FD"),  # PatientName "Test^Patient" (12 bytes): not a multiple of 8
    ((0x0010, 0x0020), b"UL"),  # PatientID "HARNESS-1 " (10 bytes): not a multiple of 4
    ((0x0008, 0x0020), b"FD"),  # StudyDate (8 bytes) as FD is fine for length ...
    ((0x0020, 0x0013), b"UL"),  # InstanceNumber "7 " (2 bytes)
    ((0x0028, 0x0030), b"AT"),  # PixelSpacing "0.5\\0.5 " (8 bytes) is a multiple of 4 ...
])
def test_value_length_not_fitting_its_vr_is_not_stored(tmp_path: Path, tag: tuple[int, int],
                                                      vr: bytes) -> None:
    ds = make_ct()
    data = _with_vr(encode_dataset(ds, EXPLICIT_VR_LE), tag, vr)
    size = {b"FD": 8, b"UL": 4, b"AT": 4}[vr]
    length = struct.unpack_from("<H", data, data.index(struct.pack("<HH", *tag)) + 6)[0]

    async def main() -> int:
        async with running_scp(storage_dir=tmp_path) as scp, association(scp.port) as req:
            return status_of(await store(req, data, ds.SOPInstanceUID))

    status = run(main())
    if length % size:
        assert status == 0xC210, hex(status)
        assert _visible(tmp_path) == []
    else:  # the length fits the VR: structurally valid, pydicom reads it
        assert status == 0x0000, hex(status)


@pytest.mark.parametrize(("transfer_syntax", "keyword"), [
    (EXPLICIT_VR_LE, "Rows"), (IMPLICIT_VR_LE, "Columns"), (IMPLICIT_VR_LE, "BitsAllocated"),
])
def test_image_pixel_values_of_wrong_length_are_refused(tmp_path: Path, transfer_syntax: str,
                                                        keyword: str) -> None:
    """Rows, Columns and Bits Allocated are US, VM 1: exactly 2 bytes (PS3.3 C.7.6.3)."""
    ds = make_ct()
    data = encode_dataset(ds, transfer_syntax)
    tag = ds.data_element(keyword).tag  # type: ignore[union-attr]
    value = struct.pack("<H", ds[tag].value)
    if transfer_syntax == EXPLICIT_VR_LE:
        old = struct.pack("<HH", tag.group, tag.element) + b"US" + struct.pack("<H", 2) + value
        new = struct.pack("<HH", tag.group, tag.element) + b"US" + struct.pack("<H", 4) + \
            value + b"\x00\x00"
    else:
        old = struct.pack("<HHI", tag.group, tag.element, 2) + value
        new = struct.pack("<HHI", tag.group, tag.element, 4) + value + b"\x00\x00"
    assert data.count(old) == 1
    data = data.replace(old, new)

    async def main() -> int:
        pcs = contexts((CT, [transfer_syntax]))
        async with running_scp(storage_dir=tmp_path) as scp, association(scp.port, pcs) as req:
            return status_of(await store(req, data, ds.SOPInstanceUID))

    status = run(main())
    assert status in (0xA900, 0xC210), hex(status)
    assert _visible(tmp_path) == []


def test_accepted_max_length_is_sent_back(tmp_path: Path) -> None:
    """Guard: an ordinary association is still accepted with our maximum."""

    async def main() -> None:
        async with running_scp(Profile(), storage_dir=tmp_path) as scp:
            req, answer = await associate(scp.port)
            req.close()
            assert isinstance(answer, AssociateAC)
            assert answer.max_pdu_length == 65536

    run(main())


# --- 6. the state table drives the acceptor --------------------------------------------------

def _abort_of(got: object) -> tuple[int, int]:
    assert not isinstance(got, PeerEnded) or got.kind == "abort", got
    pdu = got.pdu  # type: ignore[attr-defined]
    assert isinstance(pdu, Abort), got
    return pdu.source, pdu.reason


@pytest.mark.parametrize("second", ["p-data", "release-rq"])
def test_pdus_after_the_peers_release_request_are_aa8(tmp_path: Path, second: str) -> None:
    """Sta8 (the peer asked to release, a response is still due): a P-DATA-TF or another
    A-RELEASE-RQ is AA-8 in PS3.8 Table 9-10, A-ABORT (2,2), not processed."""
    ds = make_ct()
    data = encode_dataset(ds)

    async def main() -> tuple[int, int]:
        profile = Profile(delay_before_response=0.5)
        async with running_scp(profile, storage_dir=tmp_path) as scp, \
                association(scp.port) as req:
            await req.send_message(1, encode_command(CStoreRQ(1, CT, ds.SOPInstanceUID, 0, 0)),
                                   data)
            req.conn.send_bytes(ReleaseRQ().encode())
            if second == "p-data":
                await req.send_message(1, encode_command(CStoreRQ(2, CT, "1.2.3.4", 0, 0)),
                                       data)
            else:
                req.conn.send_bytes(ReleaseRQ().encode())
            while True:  # skip nothing but wait for the A-ABORT
                got = await req.recv_pdu(5.0)
                if isinstance(got, PeerEnded) or isinstance(got.pdu, Abort):
                    return _abort_of(got)

    assert run(main()) == (2, 2)
    assert not (tmp_path / "1.2.3.4.dcm").exists()


@pytest.mark.parametrize("pdu", [
    bytes.fromhex("02000000000400000000"),  # A-ASSOCIATE-AC too short to decode
    bytes.fromhex("03000000000400010101"),  # A-ASSOCIATE-RJ
    bytes.fromhex("040000000006000000020103"),  # P-DATA-TF
    bytes.fromhex("05000000000400000000"),  # A-RELEASE-RQ
    bytes.fromhex("06000000000400000000"),  # A-RELEASE-RP
    bytes.fromhex("09000000000400000000"),  # unknown type
], ids=["ac", "rj", "p-data", "release-rq", "release-rp", "unknown"])
def test_pdus_before_the_associate_request_follow_the_table(tmp_path: Path, pdu: bytes) -> None:
    """Sta2: anything but an A-ASSOCIATE-RQ (or an A-ABORT) is AA-1, an A-ABORT whose source
    and reason are those of ``abort_advice`` for Sta2 (the table is the single source)."""
    expected = abort_advice(State.STA2, pdu[0],
                            decodable=pdu[0] != 0x02)  # the truncated AC does not decode

    async def main() -> tuple[int, int]:
        async with running_scp(storage_dir=tmp_path) as scp:
            reader, writer = await asyncio.open_connection("127.0.0.1", scp.port)
            writer.write(pdu)
            try:
                got = await asyncio.wait_for(reader.readexactly(10), 5.0)
            finally:
                writer.close()
            assert got[0] == 0x07, got.hex()
            return got[8], got[9]

    assert expected is not None
    assert run(main()) == (expected.source, expected.reason)


def test_response_to_a_reset_peer_stops_at_the_first_lost_write(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by the long fuzz run: a response cut into many PDUs (small Maximum Length) for a
    peer that reset the connection kept writing to the dead transport (asyncio logs
    "socket.send() raised exception." on stderr after five). Writes stop once the transport
    is closing."""
    ds = make_ct()

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp:
            for i in range(20):  # the reset has to race the response: try a few times
                async with association(scp.port, max_pdu=8) as req:
                    await req.send_message(1, encode_command(CStoreRQ(
                        1, CT, ds.SOPInstanceUID, 0, 0)), encode_dataset(ds), max_pdu=16384)
                    if i % 2:
                        await asyncio.sleep(0)
                    req.conn.reset()
            await asyncio.sleep(0.3)

    with caplog.at_level(logging.WARNING):
        run(main())
    assert not [r for r in caplog.records if "socket.send()" in r.getMessage()], \
        [r.getMessage() for r in caplog.records]


def test_peer_chosen_text_cannot_forge_log_lines(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Found by the long fuzz run: AE titles and UIDs are the peer's bytes; a newline in one
    split the SCP's log line in two (a forged line). They are logged escaped."""
    ds = make_ct()

    async def main() -> None:
        async with running_scp(storage_dir=tmp_path) as scp:
            req, _answer = await associate(scp.port, calling="EVIL\nstore x")
            req.close()
            async with association(scp.port) as req:
                await store(req, encode_dataset(ds), "1.2.3\n4", msg_id=1)

    with caplog.at_level(logging.INFO, logger="harness.scp"):
        run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.scp"]
    assert any("EVIL\\nstore x" in m for m in messages), messages
    assert any("1.2.3\\n4" in m for m in messages), messages
    assert not [m for m in messages if "\n" in m]


def test_exception_in_a_timer_callback_is_logged_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The last resort covers the association's timers too (ARTIM here): one log line, the
    connection closed, nothing for asyncio's "Exception in callback" handler."""

    def broken(self: SCPAssociation, *args: object) -> None:
        raise RuntimeError("injected failure at the end")

    monkeypatch.setattr(SCPAssociation, "on_end", broken)

    async def main() -> None:
        async with running_scp(Profile(artim_timeout=0.2), storage_dir=tmp_path) as scp:
            reader, writer = await asyncio.open_connection("127.0.0.1", scp.port)
            try:
                await asyncio.wait_for(reader.read(100), 5.0)  # closed by ARTIM expiry
            finally:
                writer.close()

    with caplog.at_level(logging.ERROR):
        run(main())
    lines = [r for r in caplog.records if "injected failure" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.name == "asyncio"]
