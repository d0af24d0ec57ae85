"""Tests for harness.wire.framing.PDUFramer: chunking never changes the frames, and an
oversized PDU-length is reported at once, before its body arrives."""

from __future__ import annotations

import itertools
import struct
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.wire.framing import Frame, Oversized, PDUFramer
from harness.wire.pdu import PDV, Abort, PDataTF, RawPDU, ReleaseRQ

STREAM_PDUS = [
    PDataTF([PDV(1, 3, b"\x00" * 40)]).encode(),
    ReleaseRQ().encode(),
    RawPDU(0x09, b"").encode(),  # empty body: a 6-byte PDU
    PDataTF([PDV(1, 0, bytes(range(256)) * 3), PDV(1, 2, b"ab")]).encode(),
    Abort(2, 6).encode(),
]


def drain(framer: PDUFramer) -> list[Frame | Oversized]:
    out: list[Frame | Oversized] = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def as_tuples(frames: list[Frame | Oversized]) -> list[tuple[object, ...]]:
    return [(f.pdu_type, f.length, bytes(f.data)) if isinstance(f, Frame) else
            ("oversized", f.pdu_type, f.length, f.limit) for f in frames]


def feed_chunks(data: bytes, cuts: list[int], max_length: int | None = None) -> list[Frame |
                                                                                    Oversized]:
    framer = PDUFramer(max_length)
    frames: list[Frame | Oversized] = []
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    for lo, hi in itertools.pairwise(bounds):
        framer.feed(data[lo:hi])
        frames += drain(framer)
    return frames


def test_all_at_once() -> None:
    stream = b"".join(STREAM_PDUS)
    framer = PDUFramer()
    framer.feed(stream)
    frames = drain(framer)
    assert [bytes(f.data) for f in frames if isinstance(f, Frame)] == STREAM_PDUS
    assert [f.pdu_type for f in frames] == [4, 5, 9, 4, 7]
    assert all(isinstance(f, Frame) and f.length == len(f.data) - 6 for f in frames)
    assert framer.buffered == 0
    assert framer.next_frame() is None


def test_frame_body() -> None:
    framer = PDUFramer()
    framer.feed(ReleaseRQ(body=b"wxyz").encode())
    frame = framer.next_frame()
    assert isinstance(frame, Frame)
    assert bytes(frame.body) == b"wxyz"


def test_byte_by_byte_equals_all_at_once() -> None:
    stream = b"".join(STREAM_PDUS)
    assert as_tuples(feed_chunks(stream, list(range(len(stream))))) == as_tuples(
        feed_chunks(stream, []))


def test_pending_header_and_buffered() -> None:
    framer = PDUFramer()
    data = STREAM_PDUS[0]
    framer.feed(data[:5])
    assert framer.pending_header is None
    assert framer.next_frame() is None
    framer.feed(data[5:10])
    assert framer.pending_header == (4, len(data) - 6)
    assert framer.buffered == 10
    assert framer.next_frame() is None
    framer.feed(data[10:] + b"\x05")
    frame = framer.next_frame()
    assert isinstance(frame, Frame) and bytes(frame.data) == data
    assert framer.buffered == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(STREAM_PDUS), min_size=1, max_size=6),
       st.lists(st.integers(0, 4000), max_size=30))
def test_random_chunks_same_frames(pdus: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pdus)
    frames = feed_chunks(stream, cuts)
    assert [bytes(f.data) for f in frames if isinstance(f, Frame)] == pdus
    assert as_tuples(frames) == as_tuples(feed_chunks(stream, []))


def test_several_pdus_in_one_chunk_and_frames_stay_valid() -> None:
    framer = PDUFramer()
    framer.feed(b"".join(STREAM_PDUS[:3]) + STREAM_PDUS[3][:7])
    frames = drain(framer)
    assert [bytes(f.data) for f in frames if isinstance(f, Frame)] == STREAM_PDUS[:3]
    # Frames handed out earlier are not disturbed by later feeding.
    framer.feed(STREAM_PDUS[3][7:])
    later = drain(framer)
    assert [bytes(f.data) for f in frames if isinstance(f, Frame)] == STREAM_PDUS[:3]
    assert [bytes(f.data) for f in later if isinstance(f, Frame)] == [STREAM_PDUS[3]]


def test_oversized_reported_before_body_arrives() -> None:
    framer = PDUFramer(max_length=16384)
    framer.feed(ReleaseRQ().encode())
    framer.feed(struct.pack(">BBI", 4, 0, 16385))  # header only: no body yet
    frames = drain(framer)
    assert isinstance(frames[0], Frame)
    assert frames[1] == Oversized(4, 16385, 16384)
    assert len(frames) == 2
    # After that the framer stays broken: nothing more is framed or buffered.
    framer.feed(ReleaseRQ().encode() * 3)
    assert framer.next_frame() is None
    assert framer.buffered == 0


def test_exact_max_length_is_accepted() -> None:
    data = PDataTF([PDV(1, 2, b"\x00" * 58)]).encode()  # PDU-length 64
    framer = PDUFramer(max_length=64)
    framer.feed(data)
    frame = framer.next_frame()
    assert isinstance(frame, Frame) and frame.length == 64


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 20), max_size=10))
def test_oversized_with_random_chunking(cuts: list[int]) -> None:
    stream = STREAM_PDUS[1] + struct.pack(">BBI", 4, 0, 0xFFFFFFFF) + b"\x00" * 30
    frames = feed_chunks(stream, [sum(cuts[:i + 1]) for i in range(len(cuts))], max_length=1000)
    assert as_tuples(frames) == [(5, 4, STREAM_PDUS[1]), ("oversized", 4, 0xFFFFFFFF, 1000)]


def test_huge_declared_length_without_limit_does_not_allocate() -> None:
    framer = PDUFramer()
    tracemalloc.start()
    try:
        framer.feed(struct.pack(">BBI", 4, 0, 0xFFFFFFFF) + b"\x00" * 100)
        assert framer.next_frame() is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert framer.pending_header == (4, 0xFFFFFFFF)
