"""Sans-I/O PDU framing: feed received bytes, take out whole PDUs.

The framer never allocates what a PDU-length field claims. A declared length above
``max_length`` is reported at once (so the endpoint can abort, PS3.8 D.1) instead of waiting
for gigabytes that may never come.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.wire.constants import PDU_HEADER_LEN

_HDR = struct.Struct(">BBI")


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete PDU as received: its type, declared length and the whole bytes."""

    pdu_type: int
    length: int
    data: memoryview  # header + body

    @property
    def body(self) -> memoryview:
        return self.data[PDU_HEADER_LEN:]


@dataclass(frozen=True, slots=True)
class Oversized:
    """A PDU header announced more than the framer accepts; nothing more can be framed."""

    pdu_type: int
    length: int
    limit: int


class PDUFramer:
    """Accumulates bytes and yields complete PDU frames.

    ``max_length`` bounds the PDU-length field accepted (``None`` = no bound beyond 2**32-1).
    After :class:`Oversized` the framer stays broken: the stream has lost its framing.
    """

    __slots__ = ("_broken", "_buf", "max_length")

    def __init__(self, max_length: int | None = None) -> None:
        self._buf = bytearray()
        self._broken = False
        self.max_length = max_length

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not self._broken:
            self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def pending_header(self) -> tuple[int, int] | None:
        """The (type, length) of a PDU that has started to arrive but is not complete."""
        if len(self._buf) >= PDU_HEADER_LEN:
            pdu_type, _r, length = _HDR.unpack_from(self._buf, 0)
            return pdu_type, length
        return None

    def next_frame(self) -> Frame | Oversized | None:
        buf = self._buf
        if self._broken or len(buf) < PDU_HEADER_LEN:
            return None
        pdu_type, _reserved, length = _HDR.unpack_from(buf, 0)
        if self.max_length is not None and length > self.max_length:
            self._broken = True
            self._buf = bytearray()
            return Oversized(pdu_type, length, self.max_length)
        total = PDU_HEADER_LEN + length
        if len(buf) < total:
            return None
        if len(buf) == total:
            # Common case: hand over the buffer itself instead of copying it.
            self._buf = bytearray()
            return Frame(pdu_type, length, memoryview(buf))
        data = bytes(buf[:total])
        del buf[:total]
        return Frame(pdu_type, length, memoryview(data))
