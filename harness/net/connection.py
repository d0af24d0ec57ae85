"""One TCP connection carrying PDUs: asyncio protocol, framing, tracing, fault handles.

``PDUConnection`` turns received bytes into decoded PDUs (with findings) and hands them to a
sink; it sends PDU objects or raw bytes. Fault handles: send raw bytes, half-close (FIN),
reset (RST). ``PDUStream`` is the pull-style sink used by scripted endpoints: every wait on
it has a timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import struct
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from harness.net.trace import Trace
from harness.wire.constants import MCH_LAST, PDUType
from harness.wire.constants import PDATA_PDV_HEADER as _ONE_PDV_HDR  # P-DATA-TF + its only PDV
from harness.wire.constants import PDU_HEADER as _PDU_HDR
from harness.wire.constants import PDV_HEADER as _PDV_HDR
from harness.wire.decode import decode_pdata_clean, decode_pdu, summarize
from harness.wire.findings import Finding
from harness.wire.framing import Oversized, ReceiveBuffer
from harness.wire.pdu import PDU, PDV, PDataTF, RawPDU, pdu_name

LOG = logging.getLogger("harness.net")


def describe_exception(exc: BaseException) -> str:
    """One line naming an unexpected exception and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class ConnectionClosed(Exception):
    """The peer closed the transport connection (or it was reset)."""


class PeerTimeout(TimeoutError):
    """Nothing arrived from the peer within the allowed time."""


@dataclass(slots=True)
class Received:
    pdu: PDU
    findings: list[Finding] = field(default_factory=list)
    length: int = 0


class PDUSink(Protocol):
    def pdu_received(self, conn: PDUConnection, item: Received) -> None: ...

    def oversized(self, conn: PDUConnection, event: Oversized) -> None: ...

    def closed(self, conn: PDUConnection, exc: Exception | None) -> None: ...

    def failed(self, conn: PDUConnection, exc: Exception) -> None:
        """Processing what arrived raised ``exc`` (a bug, logged already): end the
        association (the acceptor sends A-ABORT and closes)."""
        ...


class PDUObserver(Protocol):
    """Told of every PDU sent and received (the requestor's Table 9-10 state,
    ``harness.wire.requestor_states``); a finding it returns goes on the PDU's trace entry."""

    def sent(self, pdu_type: int) -> None: ...

    def received(self, pdu_type: int, *, decodable: bool = True) -> Finding | None: ...

    def unknown(self) -> None: ...

    def closed(self) -> None: ...


def set_nodelay(sock: socket.socket | None) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_P_DATA_TF = int(PDUType.P_DATA_TF)  # a plain int: compared once per PDU
_NAMES = {t: pdu_name(t) for t in range(1, 8)}

# (context ID, last fragment, fragment, PDU-length) -> True if consumed; see ``data_hook``.
DataHook = Callable[[int, bool, memoryview, int], bool]


class PDUConnection(asyncio.BufferedProtocol):
    """PDUs over one TCP connection.

    The socket is read straight into one reusable buffer (``framer``) and PDUs are decoded
    in place. With ``borrow=True`` the sink gets PDUs whose P-DATA fragments are views into
    that buffer, valid only during its ``pdu_received`` call (the acceptor consumes them
    there: it copies commands and writes data fragments out at once); otherwise every PDU
    is copied out first, so a sink may keep what it gets (``PDUStream`` queues them).
    """

    def __init__(self, sink: PDUSink | None = None, *, max_receive: int | None = None,
                 trace: Trace | None = None, assoc_id: int = 1, borrow: bool = False) -> None:
        self.sink = sink
        self.framer = ReceiveBuffer(max_receive)
        self.borrow = borrow
        # With ``borrow``: offered every clean one-PDV data set P-DATA-TF before any PDU
        # object is built (after its trace entry); returning False sends it the usual way.
        self.data_hook: DataHook | None = None
        self.trace = trace
        self.assoc_id = assoc_id
        # Not with ``borrow`` (the acceptor runs Table 9-10 itself): its fast data path
        # bypasses ``_deliver``.
        self.observer: PDUObserver | None = None
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.is_closed = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.keep_open_on_eof = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.closed_future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        set_nodelay(sock)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.framer.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.bytes_received += nbytes
        self.framer.updated(nbytes)
        try:  # free unless something raises
            self._frames()
        except Exception as exc:
            self.fail(exc)

    def data_received(self, data: bytes) -> None:
        """Bytes that did not come through ``get_buffer`` (tests, replays)."""
        self.bytes_received += len(data)
        self.framer.feed(data)
        try:
            self._frames()
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        """The last resort: an exception escaped PDU processing (or a timer of the
        association). Without this asyncio drops
        the connection with a traceback on stderr and the peer gets nothing; instead log one
        line and let the sink end the association (A-ABORT), then stop reading."""
        LOG.error("association %d: internal error, association aborted: %s", self.assoc_id,
                  describe_exception(exc))
        if self.trace is not None:
            self.trace.event(self.assoc_id, "internal error", describe_exception(exc))
        failed = getattr(self.sink, "failed", None)
        if failed is not None:
            with contextlib.suppress(Exception):
                failed(self, exc)
        self.framer.stop()  # drop whatever else arrives on this connection
        self.close()

    def _frames(self) -> None:
        take = self.framer.take
        hook = self.data_hook if self.borrow else None
        unpack_pdv = _PDV_HDR.unpack_from
        while True:
            got = take()
            if got is None:
                return
            if isinstance(got, Oversized):
                self._oversized(got)
                return
            pdu_type, length, data = got
            if pdu_type == _P_DATA_TF and hook is not None and length >= 6 and not data[1]:
                # One PDV filling the PDU, a non-empty even data set fragment (MCH 00H or
                # 02H) on an odd context: exactly what decode_pdu passes without findings.
                size, cid, mch = unpack_pdv(data, 6)
                if size == length - 4 and size > 2 and not size & 1 and cid & 1 \
                        and not mch & 0xFD:
                    self._clean_data(length, data, cid, mch, hook)
                    if self.is_closed:
                        return
                    continue
            self._deliver(pdu_type, length, data)
            if self.is_closed:
                return

    def _oversized(self, event: Oversized) -> None:
        if self.observer is not None:
            self.observer.unknown()  # not read: which event it was is unknown
        if self.trace is not None:
            self.trace.record(self.assoc_id, "recv", pdu_name(event.pdu_type), event.length,
                              f"PDU-length {event.length} over the limit {event.limit}")
        if self.sink is not None:
            self.sink.oversized(self, event)

    def _deliver(self, pdu_type: int, length: int, data: memoryview) -> None:
        if not self.borrow:
            data = memoryview(bytes(data))  # the sink may keep what it gets
        # A clean P-DATA-TF (nearly all PDUs) skips the validating decoder; anything else
        # goes through it and gets exactly its findings.
        clean = decode_pdata_clean(data) if pdu_type == _P_DATA_TF else None
        pdu: PDU
        findings: list[Finding]
        if clean is not None:
            pdu, findings = clean, []
        else:
            pdu, findings = decode_pdu(data)
        traced = findings
        if self.observer is not None:
            # Its finding is about the state, not the PDU: on the trace entry only.
            state = self.observer.received(pdu.pdu_type, decodable=not isinstance(pdu, RawPDU))
            if state is not None:
                traced = [*findings, state]
        trace = self.trace
        # A full trace keeps only entries with findings: do not build summaries it drops.
        if trace is not None and (traced or len(trace.entries) < trace.limit):
            trace.record(self.assoc_id, "recv", _NAMES.get(pdu_type) or pdu_name(pdu_type),
                         length, summarize(pdu), traced)
        if self.sink is not None:
            self.sink.pdu_received(self, Received(pdu, findings, length))

    def _clean_data(self, length: int, data: memoryview, cid: int, mch: int,
                    hook: DataHook) -> None:
        trace = self.trace
        if trace is not None and len(trace.entries) < trace.limit:
            trace.record(self.assoc_id, "recv", "P-DATA-TF", length,
                         f"pc={cid} mch={mch:02X}H len={length - 6}")
        fragment = data[12:]
        if hook(cid, mch == MCH_LAST, fragment, length):
            return
        if self.sink is not None:
            self.sink.pdu_received(self, Received(PDataTF([PDV(cid, mch, fragment)]), [],
                                                  length))

    def eof_received(self) -> bool | None:
        # Close our side too: a DICOM peer that sends FIN is done (PS3.8 Evt17). Keeping it
        # open is only for simulating a faulty SCP.
        return True if self.keep_open_on_eof else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        if self.observer is not None:
            self.observer.closed()
        if self.trace is not None:
            self.trace.event(self.assoc_id, "TCP closed", str(exc) if exc else "")
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        sink, self.sink = self.sink, None
        if sink is not None:
            try:
                sink.closed(self, exc)
            except Exception as error:  # the last resort here too: one line, no traceback
                LOG.error("association %d: internal error after the connection closed: %s",
                          self.assoc_id, describe_exception(error))
        # Teardown: what the connection refers to (its sink, the data hook, both reaching
        # back to it) goes, so a closed connection is freed at once rather than by the
        # cycle collector, and the receive buffer with it.
        self.data_hook = None
        self.framer.stop()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # sending --------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """Open and not closing: after a reset the transport is closing before
        ``connection_lost`` runs, and every write then is lost (asyncio warns after five)."""
        return self.transport is not None and not self.is_closed and \
            not self.transport.is_closing()

    def send_pdu(self, pdu: PDU, *, summary: str | None = None) -> None:
        if self.transport is None or self.is_closed:
            raise ConnectionClosed("connection is closed")
        parts: Sequence[bytes | memoryview]
        parts = pdu.encode_parts() if isinstance(pdu, PDataTF) else [pdu.encode()]
        length = _PDU_HDR.unpack_from(parts[0])[2]
        if self.trace is not None and len(self.trace.entries) < self.trace.limit:
            self.trace.record(self.assoc_id, "sent", pdu_name(pdu.pdu_type), length,
                              summary if summary is not None else summarize(pdu))
        if self.observer is not None:
            self.observer.sent(pdu.pdu_type)
        self.bytes_sent += sum(len(p) for p in parts)
        self.transport.writelines(parts)

    def send_pdv(self, context_id: int, mch: int, data: bytes) -> None:
        """Send ``PDataTF([PDV(context_id, mch, data)])`` (same bytes, same trace entry) in
        one write, without building the objects: the response path."""
        if self.transport is None or self.is_closed:
            raise ConnectionClosed("connection is closed")
        n = len(data)
        trace = self.trace
        if trace is not None and len(trace.entries) < trace.limit:
            trace.record(self.assoc_id, "sent", "P-DATA-TF", n + 6,
                         f"pc={context_id} mch={mch:02X}H len={n}")
        if self.observer is not None:
            self.observer.sent(_P_DATA_TF)
        self.bytes_sent += n + 12
        self.transport.write(_ONE_PDV_HDR.pack(_P_DATA_TF, 0, n + 6, n + 2, context_id & 0xFF,
                                               mch & 0xFF) + data)

    def send_pdus(self, pdus: Sequence[PDU]) -> None:
        """Several PDUs in one write: they reach the peer together (pipelining scenarios)."""
        if self.transport is None or self.is_closed:
            raise ConnectionClosed("connection is closed")
        parts: list[bytes | memoryview] = []
        for pdu in pdus:
            mine = pdu.encode_parts() if isinstance(pdu, PDataTF) else [pdu.encode()]
            if self.trace is not None:
                self.trace.record(self.assoc_id, "sent", pdu_name(pdu.pdu_type),
                                  _PDU_HDR.unpack_from(mine[0])[2], summarize(pdu))
            parts.extend(mine)
            if self.observer is not None:
                self.observer.sent(pdu.pdu_type)
        self.bytes_sent += sum(len(p) for p in parts)
        self.transport.writelines(parts)

    def send_bytes(self, data: bytes | memoryview, label: str = "raw bytes") -> None:
        if self.transport is None or self.is_closed:
            raise ConnectionClosed("connection is closed")
        if self.trace is not None:
            self.trace.record(self.assoc_id, "sent", label, len(data), data[:16].hex())
        if self.observer is not None:
            self.observer.unknown()  # any bytes at all: no event of the table
        self.bytes_sent += len(data)
        self.transport.write(data)

    async def drain(self, timeout: float | None = None) -> None:
        if not self._write_paused or self.is_closed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError as exc:
            raise PeerTimeout(f"peer did not read for {timeout} s (send buffer full)") from exc
        if self.is_closed:
            raise ConnectionClosed("connection closed while sending")

    # closing and faults --------------------------------------------------------------
    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def half_close(self) -> None:
        """Send FIN and keep reading."""
        if self.observer is not None:
            self.observer.unknown()  # our FIN is no event of Table 9-10
        if self.transport is not None and self.transport.can_write_eof():
            if self.trace is not None:
                self.trace.event(self.assoc_id, "FIN sent")
            self.transport.write_eof()
        elif self.transport is not None and self.transport.get_extra_info("ssl_object"):
            # asyncio's TLS transport cannot half-close: FIN on the raw socket (no
            # close_notify), which is what a peer's TCP stack sees from a plain half-close.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                if self.trace is not None:
                    self.trace.event(self.assoc_id, "FIN sent", "under TLS, no close_notify")

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0) instead of FIN."""
        if self.transport is None:
            return
        if self.observer is not None:
            self.observer.unknown()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if self.trace is not None:
            self.trace.event(self.assoc_id, "RST sent")
        self.transport.abort()

    async def wait_closed(self, timeout: float) -> bool:
        """True if the connection closed within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self.closed_future), timeout)
        except TimeoutError:
            return False
        return True


class PDUStream:
    """Pull-style sink: received PDUs queue up until a scripted endpoint asks for them."""

    def __init__(self) -> None:
        self._items: collections.deque[Received | Oversized] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.is_closed = False
        self.close_error: Exception | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def pdu_received(self, conn: PDUConnection, item: Received) -> None:
        self._items.append(item)
        self._wake()

    def oversized(self, conn: PDUConnection, event: Oversized) -> None:
        self._items.append(event)
        self._wake()

    def closed(self, conn: PDUConnection, exc: Exception | None) -> None:
        self.close_error = exc
        self.is_closed = True
        self._wake()

    def failed(self, conn: PDUConnection, exc: Exception) -> None:
        self.close_error = exc  # the connection closes next: waiters see ConnectionClosed

    def pending(self) -> int:
        return len(self._items)

    async def get(self, timeout: float) -> Received | Oversized:
        """The next received PDU; :class:`PeerTimeout` or :class:`ConnectionClosed` otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._items:
            if self.is_closed:
                raise ConnectionClosed("peer closed the connection")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PeerTimeout(f"nothing received within {timeout:g} s")
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiter = None
        return self._items.popleft()
