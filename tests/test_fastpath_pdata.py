"""The receive fast path: in-place framing and the clean P-DATA-TF decoder.

- ``decode_pdata_clean`` accepts exactly the P-DATA-TF PDUs that ``decode_pdu`` decodes
  without a finding, and then returns the same PDU.
- ``ReceiveBuffer`` (socket reads into one reusable buffer) frames any byte stream, cut
  anywhere, exactly like ``PDUFramer``, and never grows for what a length only claims.
- ``PDUConnection`` gives a borrowing sink views and a keeping sink (``PDUStream``) copies
  that later reads cannot overwrite.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.net.connection import PDUConnection, PDUStream, Received
from harness.wire.decode import decode_pdata_clean, decode_pdu
from harness.wire.framing import Frame, Oversized, PDUFramer, ReceiveBuffer
from harness.wire.pdu import PDV, Abort, PDataTF, ReleaseRQ

pdv_st = st.tuples(
    st.sampled_from([1, 1, 3, 255, 2, 0]),  # context ID (even ones are findings)
    st.sampled_from([0, 1, 2, 3, 0, 2, 0x04, 0x83]),  # MCH (bits 2-7 are findings)
    st.one_of(st.binary(max_size=40).map(lambda b: b + b"\0" * (len(b) & 1)),
              st.binary(max_size=7)),  # even or any fragment
    st.sampled_from([None] * 10 + [0, 1, 2, 3, 1000]),  # item length override
)


def pdata_bytes(pdvs: list[tuple[int, int, bytes, int | None]], reserved: int = 0,
                length: int | None = None, trailing: bytes = b"") -> bytes:
    body = b"".join(struct.pack(">IBB", len(d) + 2 if n is None else n, c, m) + d
                    for c, m, d, n in pdvs) + trailing
    return struct.pack(">BBI", 4, reserved, len(body) if length is None else length) + body


@given(pdvs=st.lists(pdv_st, max_size=5), reserved=st.sampled_from([0, 0, 0, 1]),
       trailing=st.sampled_from([b"", b"", b"\0", b"\0\0\0\x02\x01"]),
       lie=st.sampled_from([None, None, None, 0, 3]))
@settings(max_examples=500, deadline=None)
def test_clean_decoder_accepts_exactly_the_finding_free(
        pdvs: list[tuple[int, int, bytes, int | None]], reserved: int, trailing: bytes,
        lie: int | None) -> None:
    raw = pdata_bytes(pdvs, reserved, None if lie is None else len(pdvs) + lie, trailing)
    full, findings = decode_pdu(raw)
    clean = decode_pdata_clean(memoryview(raw))
    if clean is None:
        assert findings or not isinstance(full, PDataTF)
    else:
        assert findings == [] and clean == full
        assert [bytes(p.data) for p in clean.pdvs] == [bytes(p.data) for p in full.pdvs]


def test_clean_decoder_on_typical_pdus() -> None:
    command = PDataTF([PDV(1, 3, b"\x00" * 40)]).encode()
    data = PDataTF([PDV(1, 0, bytes(range(256)) * 64), PDV(1, 2, b"ab")]).encode()
    for raw in (command, data):
        assert decode_pdata_clean(memoryview(raw)) == decode_pdu(raw)[0]
    assert decode_pdata_clean(memoryview(ReleaseRQ().encode())) is None
    assert decode_pdata_clean(memoryview(PDataTF([]).encode())) is None


# --- ReceiveBuffer against PDUFramer -----------------------------------------------------------

STREAM = b"".join([
    PDataTF([PDV(1, 3, b"\x00" * 40)]).encode(), ReleaseRQ().encode(),
    struct.pack(">BBI", 9, 0, 0),  # empty body
    PDataTF([PDV(1, 0, bytes(range(256)) * 300), PDV(1, 2, b"ab")]).encode(),  # 76 KB
    Abort(2, 6).encode(),
])


def as_tuple(frame: Frame | Oversized) -> tuple[object, ...]:
    if isinstance(frame, Frame):
        return frame.pdu_type, frame.length, bytes(frame.data)
    return "oversized", frame.pdu_type, frame.length, frame.limit


def reference(data: bytes, max_length: int | None) -> list[tuple[object, ...]]:
    framer = PDUFramer(max_length)
    framer.feed(data)
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(as_tuple(frame))
    return out


def by_socket_reads(data: bytes, reads: list[int], max_length: int | None,
                    size: int = 1 << 16) -> list[tuple[object, ...]]:
    """Simulate recv_into: each read fills at most what get_buffer offers."""
    buf = ReceiveBuffer(max_length, size=size)
    out: list[tuple[object, ...]] = []
    pos = 0
    reads_iter = itertools.chain(reads, itertools.repeat(1 << 20))
    while pos < len(data):
        room = buf.get_buffer()
        assert len(room) > 0
        n = min(len(room), next(reads_iter), len(data) - pos)
        room[:n] = data[pos:pos + n]
        buf.updated(n)
        pos += n
        while (frame := buf.next_frame()) is not None:
            out.append(as_tuple(frame))  # copied at once: views die at the next read
    return out


@given(reads=st.lists(st.integers(1, 90000), max_size=20),
       max_length=st.sampled_from([None, None, 80000, 50000, 4, 0]))
@settings(max_examples=200, deadline=None)
def test_receive_buffer_frames_like_pdu_framer(reads: list[int], max_length: int | None) -> None:
    assert by_socket_reads(STREAM * 2, reads, max_length) == reference(STREAM * 2, max_length)


@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=10))
@settings(max_examples=100, deadline=None)
def test_receive_buffer_feed_matches(cuts: list[int]) -> None:
    buf = ReceiveBuffer(None, size=1 << 16)
    got: list[tuple[object, ...]] = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for lo, hi in itertools.pairwise(bounds):
        buf.feed(STREAM[lo:hi])
        while (frame := buf.next_frame()) is not None:
            got.append(as_tuple(frame))
    assert got == reference(STREAM, None)
    assert buf.buffered == 0


def test_lying_length_does_not_allocate() -> None:
    buf = ReceiveBuffer(None, size=1 << 16)
    room = buf.get_buffer()
    header = struct.pack(">BBI", 4, 0, 0xFFFFFFF0)
    room[:6] = header
    buf.updated(6)
    assert buf.next_frame() is None
    for _ in range(8):  # 8 reads of 64 KiB: growth follows what arrived, not the claim
        room = buf.get_buffer()
        n = min(len(room), 1 << 16)
        buf.updated(n)
    assert buf.capacity <= 4 * buf.buffered + (1 << 17)
    assert buf.pending_header == (4, 0xFFFFFFF0)


def test_oversized_breaks_the_buffer_for_good() -> None:
    buf = ReceiveBuffer(100)
    buf.feed(struct.pack(">BBI", 4, 0, 101) + b"x" * 50)
    event = buf.next_frame()
    assert isinstance(event, Oversized) and (event.length, event.limit) == (101, 100)
    buf.feed(ReleaseRQ().encode())
    assert buf.next_frame() is None and len(buf.get_buffer()) > 0


# --- PDUConnection: borrowed views and kept copies ----------------------------------------------

class Collect:
    def __init__(self) -> None:
        self.items: list[Received] = []
        self.during: list[bytes] = []

    def pdu_received(self, conn: PDUConnection, item: Received) -> None:
        self.items.append(item)
        if isinstance(item.pdu, PDataTF):
            self.during.append(b"".join(bytes(p.data) for p in item.pdu.pdvs))

    def oversized(self, conn: PDUConnection, event: Oversized) -> None:
        pass

    def closed(self, conn: PDUConnection, exc: Exception | None) -> None:
        pass


def _pdus(count: int) -> list[bytes]:
    return [PDataTF([PDV(1, 0, bytes([i]) * 16000)]).encode() for i in range(count)]


def _read_all(conn: PDUConnection, data: bytes, chunk: int) -> None:
    pos = 0
    while pos < len(data):
        room = conn.get_buffer(-1)
        n = min(len(room), chunk, len(data) - pos)
        room[:n] = data[pos:pos + n]
        pos += n
        conn.buffer_updated(n)


def test_borrowing_sink_sees_every_fragment_during_the_call() -> None:
    async def main() -> None:
        sink = Collect()
        conn = PDUConnection(sink, borrow=True)
        pdus = _pdus(40)
        _read_all(conn, b"".join(pdus), 70001)
        assert sink.during == [bytes([i]) * 16000 for i in range(40)]
        assert conn.bytes_received == sum(map(len, pdus))
        assert all(item.findings == [] for item in sink.items)

    asyncio.run(main())


def test_keeping_sink_gets_copies_that_survive_later_reads() -> None:
    async def main() -> None:
        stream = PDUStream()
        conn = PDUConnection(stream)
        _read_all(conn, b"".join(_pdus(40)), 70001)
        kept = []
        while stream.pending():
            item = await stream.get(1)
            assert isinstance(item, Received) and isinstance(item.pdu, PDataTF)
            kept.append(bytes(item.pdu.pdvs[0].data))
        assert kept == [bytes([i]) * 16000 for i in range(40)]

    asyncio.run(main())


def test_findings_of_a_bad_pdata_reach_the_sink() -> None:
    async def main() -> None:
        sink = Collect()
        conn = PDUConnection(sink, borrow=True)
        bad = pdata_bytes([(2, 0, b"ab", None)])  # even context ID
        conn.data_received(bad)
        assert sink.items and sink.items[0].findings == decode_pdu(bad)[1] != []

    asyncio.run(main())


class _Wire(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def writelines(self, parts: Iterable[bytes | bytearray | memoryview]) -> None:
        for part in parts:
            self.out += part

    def is_closing(self) -> bool:
        return False


@given(cid=st.integers(1, 255), mch=st.integers(0, 3), data=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_send_pdv_sends_what_send_pdu_sends(cid: int, mch: int, data: bytes) -> None:
    from harness.net.trace import Trace

    async def main() -> None:
        lean, full = (PDUConnection(trace=Trace()) for _ in range(2))
        wires = [_Wire(), _Wire()]
        for conn, wire in zip((lean, full), wires, strict=True):
            conn.connection_made(wire)
        lean.send_pdv(cid, mch, data)
        full.send_pdu(PDataTF([PDV(cid, mch, data)]))
        assert wires[0].out == wires[1].out
        assert lean.bytes_sent == full.bytes_sent == len(wires[0].out)
        assert lean.trace is not None and full.trace is not None
        assert [(e.dir, e.type, e.length, e.summary) for e in lean.trace.entries] == \
            [(e.dir, e.type, e.length, e.summary) for e in full.trace.entries]

    asyncio.run(main())
