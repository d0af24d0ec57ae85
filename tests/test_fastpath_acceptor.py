"""The acceptor's data fast path (``data_hook``) and lean response send change nothing.

The reference SCP is driven in-process through a fake transport with PDU streams (clean
stores and damaged ones: misframed, wrong contexts, reserved bits, odd or empty fragments,
PDUs over the limit, several PDVs per PDU), once with the fast paths and once with them
switched off. Everything observable must be the same: bytes sent back, trace entries, the
store records, and the files left in the storage directory.
"""

from __future__ import annotations

import asyncio
import struct
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.net.acceptor import AcceptorAssociation
from harness.net.connection import PDUConnection
from harness.scp import Profile, StorageSCP
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE
from harness.wire.dimse import CStoreRQ, encode_command
from harness.wire.items import PresentationContextRQ
from harness.wire.pdu import PDV, PDataTF, ReleaseRQ, associate_rq

CT = "1.2.840.10008.5.1.4.1.1.2"
MAX_PDU = 4096


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4242), "socket": None}.get(name, default)

    def write(self, data: Any) -> None:
        self.sent += data

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.sent += part

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def dataset(uid: str, pixels: int) -> bytes:
    def el(group: int, element: int, vr: bytes, value: bytes) -> bytes:
        if vr in (b"OB", b"OW"):
            return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", group, element, vr, len(value)) + value

    ui = uid.encode() + b"\0" * (len(uid) & 1)
    return b"".join([el(8, 0x16, b"UI", CT.encode() + b"\0"), el(8, 0x18, b"UI", ui),
                     el(0x28, 0x10, b"US", b"\x02\x00"), el(0x28, 0x11, b"US", b"\x02\x00"),
                     el(0x28, 0x100, b"US", b"\x10\x00"),
                     el(0x7FE0, 0x10, b"OW", bytes(range(256)) * (pixels // 256) + bytes(
                         pixels % 256))])


def store_pdus(msg_id: int, pixels: int, *, context: int = 1, split: int = 1000,
               data_context: int | None = None, mch_extra: int = 0,
               together: bool = False) -> list[bytes]:
    uid = f"1.2.826.0.1.3680043.8.498.77.{msg_id}"
    command = encode_command(CStoreRQ(msg_id, CT, uid))
    data = dataset(uid, pixels)
    cuts = list(range(0, len(data), split)) or [0]
    pdvs = [PDV(context, 0x03, command)]
    for i, lo in enumerate(cuts):
        last = i == len(cuts) - 1
        pdvs.append(PDV(data_context or context, (0x02 if last else 0x00) | mch_extra,
                        data[lo:lo + split]))
    if together:
        return [PDataTF(pdvs).encode()]
    return [PDataTF([p]).encode() for p in pdvs]


def run(stream: list[bytes], fast: bool, reads: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            scp = StorageSCP(Profile(max_pdu=MAX_PDU, idle_timeout=None), tmp)
            conn: PDUConnection = scp.server._protocol()
            transport = FakeTransport()
            conn.connection_made(transport)
            if not fast:
                conn.data_hook = None
                original = AcceptorAssociation.send_message_nowait

                def slow_send(self: AcceptorAssociation, context_id: int, command: bytes) -> None:
                    from harness.wire.fragment import message_pdvs, pack

                    limit = self.peer_max_pdu
                    for pdu in pack(message_pdvs(context_id, command, None, limit), limit):
                        self.conn.send_pdu(pdu)

                AcceptorAssociation.send_message_nowait = slow_send  # type: ignore[method-assign]
            try:
                data = b"".join(stream)
                step = max(1, len(data) // reads)
                for lo in range(0, len(data), step):
                    chunk = data[lo:lo + step]
                    room = conn.get_buffer(-1)
                    n = min(len(room), len(chunk))
                    room[:n] = chunk[:n]
                    conn.buffer_updated(n)
                    if n < len(chunk):
                        conn.data_received(chunk[n:])
                    await asyncio.sleep(0)
                await asyncio.sleep(0)
            finally:
                if not fast:
                    AcceptorAssociation.send_message_nowait = original  # type: ignore[method-assign]
            assert conn.trace is not None
            trace = [(e.dir, e.type, e.length, e.summary, e.findings)
                     for e in conn.trace.entries]
            records = [(r.message_id, r.sop_instance, r.status, r.bytes, r.comment,
                        r.path.name if r.path else None) for r in scp.records]
            files = {p.name if not p.name.endswith(".part") else "PART": p.read_bytes()
                     for p in Path(tmp).iterdir()}
            conn.connection_lost(None)
            return {"sent": bytes(transport.sent), "trace": trace, "records": records,
                    "files": files, "closed": transport.closed,
                    "bytes": (conn.bytes_received, conn.bytes_sent)}

    return asyncio.run(main())


def associate() -> bytes:
    rq = associate_rq("ANY-SCP", "FASTPATH", [
        PresentationContextRQ(1, CT, [EXPLICIT_VR_LE]),
        PresentationContextRQ(3, CT, [IMPLICIT_VR_LE]),
    ], max_pdu=MAX_PDU)
    return rq.encode()


def same(stream: list[bytes], reads: int = 7) -> dict[str, Any]:
    fast = run(stream, True, reads)
    slow = run(stream, False, reads)
    assert fast == slow
    return fast


def test_clean_stores_identical_and_stored() -> None:
    stream = [associate()]
    for i in range(1, 6):
        stream += store_pdus(i, 3000 * i)
    stream.append(ReleaseRQ().encode())
    result = same(stream, reads=3)
    assert [r[2] for r in result["records"]] == [0] * 5
    assert len(result["files"]) == 5


piece_st = st.fixed_dictionaries({
    "pixels": st.sampled_from([0, 2, 100, 3000, 9000, 9000]),
    "split": st.sampled_from([1000, 1001, 2, 4090, 5000, 5000]),  # 5000: over MAX_PDU
    "context": st.sampled_from([1, 1, 1, 3, 5, 2]),
    "data_context": st.sampled_from([None, None, None, 3, 7]),
    "mch_extra": st.sampled_from([0, 0, 0, 0x04]),
    "together": st.booleans(),
})


@given(pieces=st.lists(piece_st, min_size=1, max_size=4), reads=st.integers(1, 12),
       release=st.booleans(), garbage=st.sampled_from([b"", b"", b"\x04\x00\x00\x00\x00\x01"]))
@settings(max_examples=120, deadline=None)
def test_random_streams_identical(pieces: list[dict[str, Any]], reads: int, release: bool,
                                  garbage: bytes) -> None:
    stream = [associate()]
    for i, piece in enumerate(pieces, start=1):
        stream += store_pdus(i, **piece)
    stream.append(garbage)
    if release:
        stream.append(ReleaseRQ().encode())
    same(stream, reads)


def test_deviations_take_the_slow_path_with_its_outcome() -> None:
    unaccepted = same([associate(), *store_pdus(1, 3000, data_context=7)])
    assert unaccepted["closed"] and unaccepted["records"] == []
    over = same([associate(), *store_pdus(1, 9000, split=5000)])
    assert over["closed"] and over["records"] == []
    reserved = same([associate(), *store_pdus(1, 3000, mch_extra=0x04)])
    assert [r[2] for r in reserved["records"]] == [0]
    assert any(f for entry in reserved["trace"] for f in entry[4])  # the warnings are kept
