"""Sans-I/O PDU framing: feed received bytes, take out whole PDUs.

The framer never allocates what a PDU-length field claims. A declared length above
``max_length`` is reported at once (so the endpoint can abort, PS3.8 D.1) instead of waiting
for gigabytes that may never come.

:class:`ReceiveBuffer` is one reusable buffer that the socket reads into
(``asyncio.BufferedProtocol``) and hands out frames as views into it, valid only until the
next :meth:`ReceiveBuffer.get_buffer` or :meth:`ReceiveBuffer.feed` (copy them to keep them).
It copies nothing per PDU: complete PDUs are used in place and only an incomplete tail is
moved to the front. The buffer is allocated on the first read (a connection that never sends
costs nothing) and :meth:`ReceiveBuffer.trim` gives it back while the connection is idle
(however large PDUs made it grow). :class:`PDUFramer` is the same framer for callers that
keep what they get: its frames are copies, valid forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.wire.constants import PDU_HEADER as _HDR
from harness.wire.constants import PDU_HEADER_LEN


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


_MIN_READ = 1 << 16  # compact when less than this is free behind the buffered bytes
# Where a broken buffer reads what it drops: one for all, its content is never looked at.
_DISCARD = memoryview(bytearray(_MIN_READ))


class ReceiveBuffer:
    """A reusable receive buffer that frames PDUs in place.

    Protocol: ``get_buffer()`` gives the free space to receive into, ``updated(n)`` says how
    many bytes arrived there, then ``next_frame()`` until ``None``. A :class:`Frame`'s
    ``data`` is a view into the buffer: valid until the next ``get_buffer()``.
    After :class:`Oversized` the buffer stays broken and drops what arrives.
    """

    __slots__ = ("_broken", "_buf", "_end", "_size", "_start", "_view", "max_length")

    def __init__(self, max_length: int | None = None, size: int = 1 << 18) -> None:
        self._size = max(size, _MIN_READ)  # allocated on the first get_buffer()
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = 0  # first byte not yet framed
        self._end = 0  # end of the received bytes
        self._broken = False
        self.max_length = max_length

    @property
    def buffered(self) -> int:
        return self._end - self._start

    @property
    def capacity(self) -> int:
        return len(self._buf)

    @property
    def pending_header(self) -> tuple[int, int] | None:
        """The (type, length) of a PDU that has started to arrive but is not complete."""
        if self._end - self._start >= PDU_HEADER_LEN:
            pdu_type, _r, length = _HDR.unpack_from(self._buf, self._start)
            return pdu_type, length
        return None

    @property
    def broken(self) -> bool:
        return self._broken

    def stop(self) -> None:
        """Drop what is buffered and whatever arrives from now on (the stream is done)."""
        self._broken = True
        self.trim()

    def trim(self) -> bool:
        """Give the buffer back if nothing is pending (an idle or closed connection); the
        next read allocates it again. True if memory was released."""
        if (self._start != self._end and not self._broken) or not len(self._buf):
            return False
        self._start = self._end = 0
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        return True

    def get_buffer(self) -> memoryview:
        """Free space to receive into (never empty). Invalidates the frames handed out."""
        start, end = self._start, self._end
        if self._broken:
            return _DISCARD
        if start == end:
            self._start = self._end = 0
            if not len(self._buf):  # the first read, or the first since trim()
                self._buf = bytearray(self._size)
                self._view = memoryview(self._buf)
            return self._view
        need = _MIN_READ
        if end - start >= PDU_HEADER_LEN:
            # Room for the rest of the PDU that has started, but never more than the bytes
            # already here: a lying PDU-length grows the buffer only as data really comes.
            length = _HDR.unpack_from(self._buf, start)[2]
            need = max(need, min(PDU_HEADER_LEN + length - (end - start), end - start))
        if len(self._buf) - end < need:
            self._make_room(need)
        return self._view[self._end:]

    def updated(self, nbytes: int) -> None:
        """``nbytes`` were received into the last buffer from ``get_buffer``."""
        if not self._broken:
            self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` in (for callers without a socket). Invalidates the frames handed out."""
        if self._broken:
            return
        if self._start == self._end:
            self._start = self._end = 0
        n = len(data)
        if len(self._buf) - self._end < n:
            # At least double what is pending: a large PDU fed in small pieces must not
            # cost a reallocation per piece.
            self._make_room(max(n, self._end - self._start))
        self._buf[self._end:self._end + n] = data
        self._end += n

    def _make_room(self, need: int) -> None:
        """Move the unframed bytes (at most one incomplete PDU when fed from a socket) to
        the front, growing the buffer when ``need`` more bytes would still not fit."""
        start, end = self._start, self._end
        pending = end - start
        if pending + need <= len(self._buf):
            if start:
                self._buf[:pending] = bytes(self._view[start:end])  # regions may overlap
        else:
            grown = bytearray(pending + need)
            grown[:pending] = self._view[start:end]
            self._buf = grown
            self._view = memoryview(grown)
        self._start, self._end = 0, pending

    def next_frame(self) -> Frame | Oversized | None:
        got = self.take()
        return Frame(*got) if isinstance(got, tuple) else got

    def take(self) -> tuple[int, int, memoryview] | Oversized | None:
        """:meth:`next_frame` without the :class:`Frame`: (PDU type, PDU-length, the whole
        PDU as a view), for the receive loop."""
        start = self._start
        avail = self._end - start
        if self._broken or avail < PDU_HEADER_LEN:
            return None
        pdu_type, _reserved, length = _HDR.unpack_from(self._buf, start)
        if self.max_length is not None and length > self.max_length:
            self._broken = True
            self._start = self._end = 0
            return Oversized(pdu_type, length, self.max_length)
        total = PDU_HEADER_LEN + length
        if avail < total:
            return None
        self._start = start + total
        return pdu_type, length, self._view[start:start + total]


class PDUFramer(ReceiveBuffer):
    """Accumulates bytes and yields complete PDU frames that the caller owns.

    ``max_length`` bounds the PDU-length field accepted (``None`` = no bound beyond 2**32-1).
    After :class:`Oversized` the framer stays broken: the stream has lost its framing.
    """

    __slots__ = ()

    def __init__(self, max_length: int | None = None) -> None:
        super().__init__(max_length, size=0)

    def next_frame(self) -> Frame | Oversized | None:
        got = self.take()
        if isinstance(got, tuple):
            pdu_type, length, view = got
            return Frame(pdu_type, length, memoryview(bytes(view)))
        return got
