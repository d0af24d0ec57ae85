"""The association acceptor (SCP side): a TCP server running the PS3.8 acceptor rules.

The acceptor owns the Upper Layer duties: ARTIM before the A-ASSOCIATE-RQ and after
RJ/RP/abort (PS3.8 9.1.5), the idle timeout, A-ABORT for unexpected or invalid PDUs (AA-8),
our maximum PDU length (PS3.8 D.1), PDV reassembly checks (Annex E) and fragmentation to the
peer's maximum. Policy (which contexts, which AE titles) and DIMSE processing belong to an
:class:`AcceptorHandler` made per association; callbacks run in the event loop as PDUs
arrive, so data set fragments can stream to disk without buffering.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.net.connection import PDUConnection, Received
from harness.net.trace import Trace
from harness.wire.constants import NO_DATA_SET
from harness.wire.dimse import DecodedCommand, decode_command
from harness.wire.findings import Finding
from harness.wire.fragment import (
    CommandComplete,
    DataFragment,
    MessageAssembler,
    Misframed,
    Packing,
    max_fragment,
    message_pdvs,
    pack,
)
from harness.wire.framing import Oversized
from harness.wire.pdu import (
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    RawPDU,
    ReleaseRP,
    ReleaseRQ,
)

ASSOCIATE_RQ_LIMIT = 1 << 20


@dataclass(slots=True)
class AcceptorConfig:
    max_pdu: int = 65536  # what we advertise and enforce on received P-DATA-TF (0 = none)
    artim_timeout: float = 30.0
    idle_timeout: float | None = 600.0
    enforce_max_pdu: bool = True
    abort_on_bad_pdu: bool = True  # False only to simulate an SCP that hangs (a fault)
    # On a listening socket shared by processes: seconds per open association that a busy
    # one waits between seeing a pending connection and accepting it, so that idle ones
    # take new connections first.
    shared_accept_backoff: float = 0.005
    # The switches below exist only to simulate faulty SCPs (reference SCP fault profiles).
    lenient_framing: bool = False  # ignore misframed PDVs instead of A-ABORT
    accept_unaccepted_context: bool = False  # process PDVs on contexts never accepted
    close_on_eof: bool = True  # False: keep the connection open after the peer's FIN
    count_idle_connections: bool = False  # idle TCP connections count as associations
    trace_limit: int = 2000
    trace: bool = True


class AcceptorHandler(Protocol):
    """What the SCP layer plugs into an association."""

    def negotiate(self, assoc: AcceptorAssociation, rq: AssociateRQ,
                  findings: list[Finding]) -> AssociateAC | AssociateRJ | Abort | None:
        """The answer to an A-ASSOCIATE-RQ; ``None`` closes the connection without a PDU."""
        ...

    def on_command(self, assoc: AcceptorAssociation, context_id: int, command: DecodedCommand,
                   findings: list[Finding]) -> None: ...

    def on_data(self, assoc: AcceptorAssociation, context_id: int, fragment: memoryview,
                last: bool) -> None: ...

    def on_release(self, assoc: AcceptorAssociation) -> bool:
        """Return True to answer A-RELEASE-RP now; False if the handler will call release_rp."""
        ...

    def on_end(self, assoc: AcceptorAssociation, how: str) -> None:
        """The association is over: "released", "aborted", "closed", or our own abort."""
        ...


class AcceptorAssociation:
    """One accepted TCP connection and the association on it."""

    def __init__(self, server: AcceptorServer, conn: PDUConnection, assoc_id: int) -> None:
        self.server = server
        self.config = server.config
        self.conn = conn
        self.assoc_id = assoc_id
        self.loop = asyncio.get_running_loop()
        self.handler: AcceptorHandler = server.handler_factory()
        self.state = "Sta2"  # transport open, waiting for A-ASSOCIATE-RQ (PS3.8 9.2)
        self.rq: AssociateRQ | None = None
        self.ac: AssociateAC | None = None
        self.contexts: dict[int, tuple[str, str]] = {}
        self.peer_max_pdu = 0
        self.assembler = MessageAssembler()
        self.ended: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_activity = self.loop.time()
        # Before association only an A-ASSOCIATE-RQ is expected: no need to buffer more than
        # 1 MiB (a TLS hello or HTTP request announces absurd lengths).
        self._established_limit = conn.framer.max_length
        conn.framer.max_length = ASSOCIATE_RQ_LIMIT
        self._arm("artim")

    # timers ------------------------------------------------------------------------------
    def _arm(self, which: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = self.config.artim_timeout if which == "artim" else self.config.idle_timeout
        self._last_activity = self.loop.time()
        self._timer = None if delay is None else self.loop.call_later(delay, self._expired, which)

    def _expired(self, which: str) -> None:
        self._timer = None
        if which == "idle" and self.config.idle_timeout is not None:
            # Received PDUs only stamp the time (re-arming a timer per PDU is costly): if
            # something arrived since, wait for the rest of the idle period.
            rest = self._last_activity + self.config.idle_timeout - self.loop.time()
            if rest > 0:
                self._timer = self.loop.call_later(rest, self._expired, which)
                return
        if which == "artim":
            # AA-2: ARTIM expiry closes the transport without any PDU.
            self.trace_event("ARTIM expired", f"after {self.config.artim_timeout:g} s")
            self._finish("artim-timeout")
            self.conn.close()
        else:
            self.trace_event("idle timeout", f"after {self.config.idle_timeout} s")
            self.abort(2, 0, how="idle-timeout")

    def trace_event(self, kind: str, summary: str = "") -> None:
        if self.conn.trace is not None:
            self.conn.trace.event(self.assoc_id, kind, summary)

    # received PDUs (called by the server's sink) -----------------------------------------
    def pdu_received(self, item: Received) -> None:
        pdu = item.pdu
        if self.state == "Sta13":
            # AA-6: ignore what arrives while we wait for the peer to close.
            return
        if self.state == "Sta2":
            self._in_sta2(pdu, item.findings)
            return
        if self.state in ("Sta6", "Sta8"):
            if self._timer is not None:
                self._last_activity = self.loop.time()  # the idle timer checks it on expiry
            if isinstance(pdu, PDataTF):
                self._pdata(pdu, item)
            elif isinstance(pdu, ReleaseRQ):
                self._release_rq()
            elif isinstance(pdu, Abort):
                self._peer_abort()
            elif not self.config.abort_on_bad_pdu:
                self.trace_event("PDU ignored", type(pdu).__name__)
            elif isinstance(pdu, RawPDU) and pdu.pdu_type not in range(1, 8):
                self.abort(2, 1, how="unrecognized PDU")
            elif isinstance(pdu, RawPDU):
                self.abort(2, 6, how="invalid PDU")  # a known type that did not decode
            else:
                self.abort(2, 2, how="unexpected PDU")

    def _in_sta2(self, pdu: object, findings: list[Finding]) -> None:
        if isinstance(pdu, AssociateRQ):
            self.rq = pdu
            answer = self.handler.negotiate(self, pdu, findings)
            if isinstance(answer, AssociateAC):
                self._accept(answer)
            elif isinstance(answer, AssociateRJ):
                self.conn.send_pdu(answer)
                self.state = "Sta13"
                self._arm("artim")
                self._finish("rejected")
            elif answer is None:
                self._finish("closed without answer")
                self.conn.close()
            else:
                self.abort(answer.source, answer.reason, how="aborted during negotiation")
        elif isinstance(pdu, Abort):
            self._peer_abort()
        elif not self.config.abort_on_bad_pdu:
            self.trace_event("PDU ignored", type(pdu).__name__)
        else:
            # Sta2 + anything but A-ASSOCIATE-RQ: AA-1 (send A-ABORT, start ARTIM).
            reason = 1 if isinstance(pdu, RawPDU) and pdu.pdu_type not in range(1, 8) else 2
            if isinstance(pdu, RawPDU) and pdu.pdu_type == 1:
                reason = 6
            self.abort(2, reason, how="invalid PDU before association")

    def _accept(self, ac: AssociateAC) -> None:
        assert self.rq is not None
        self.ac = ac
        proposed = {pc.context_id: str(pc.abstract_syntax) for pc in self.rq.presentation_contexts}
        self.contexts = {pc.context_id: (proposed.get(pc.context_id, ""), str(pc.transfer_syntax))
                         for pc in ac.presentation_contexts if pc.result == 0}
        self.peer_max_pdu = self.rq.max_pdu_length or 0
        self.conn.framer.max_length = self._established_limit
        self.conn.send_pdu(ac)
        self.state = "Sta6"
        self._arm("idle")

    def data_fast(self, context_id: int, last: bool, fragment: memoryview, length: int) -> bool:
        """The connection's ``data_hook``: a clean one-PDV data set P-DATA-TF (most of the
        PDUs of a large store) straight to the handler, with the checks of
        :meth:`pdu_received` and :meth:`_pdata` that apply to it; False sends anything
        else (other states, over the limit, unknown context, misframed) the usual way.
        Keep in step with those two methods."""
        if self.state != "Sta6" and self.state != "Sta8":
            return False
        limit = self.config.max_pdu
        if (self.config.enforce_max_pdu and limit and length > limit) or \
                context_id not in self.contexts or not self.assembler.take_data(context_id, last):
            return False
        if self._timer is not None:
            self._last_activity = self.loop.time()
        self.handler.on_data(self, context_id, fragment, last)
        return True

    def _pdata(self, pdu: PDataTF, item: Received) -> None:
        limit = self.config.max_pdu
        if self.config.enforce_max_pdu and limit and item.length > limit:
            self.abort(2, 6, how=f"P-DATA-TF of {item.length} bytes over our maximum {limit}")
            return
        broken = [f for f in item.findings if f.severity == "error"]
        if broken and not self.config.abort_on_bad_pdu:
            self.trace_event("PDU ignored", "invalid P-DATA-TF")
            return
        if broken:
            # Lengths that do not add up (PS3.8 9.3.5): the stream cannot be trusted.
            self.abort(2, 6, how=f"invalid P-DATA-TF: {broken[0].field}: {broken[0].found}")
            return
        for pdv in pdu.pdvs:
            if pdv.context_id not in self.contexts and not self.config.accept_unaccepted_context:
                self.abort(2, 6, how=f"PDV on presentation context {pdv.context_id}, "
                                     "which was not accepted")
                return
            event = self.assembler.feed(pdv)
            if event is None:
                continue
            if isinstance(event, CommandComplete):
                decoded = decode_command(event.command)
                has_data = decoded.elements.get(0x0800, NO_DATA_SET) != NO_DATA_SET
                self.assembler.expect_data(has_data)
                self.handler.on_command(self, event.context_id, decoded,
                                        [*event.findings, *decoded.findings])
            elif isinstance(event, DataFragment):
                self.handler.on_data(self, event.context_id, event.data, event.last)
            elif isinstance(event, Misframed):
                if self.config.lenient_framing:
                    self.trace_event("PDV ignored", "; ".join(f.found for f in event.findings))
                    continue
                self.abort(2, 5, how="; ".join(f.found for f in event.findings))
            if self.ended is not None:
                return

    def _release_rq(self) -> None:
        self.state = "Sta8"
        if self.handler.on_release(self):
            self.release_rp()

    def release_rp(self) -> None:
        if self.ended is not None or self.conn.is_closed:
            return
        self.conn.send_pdu(ReleaseRP())
        self.state = "Sta13"
        self._arm("artim")
        self._finish("released")

    def _peer_abort(self) -> None:
        # AA-3: close the transport, send nothing.
        self._finish("aborted by peer")
        self.conn.close()

    # actions available to the handler ----------------------------------------------------
    async def send_message(self, context_id: int, command: bytes,
                           data: bytes | memoryview | None = None, *, max_pdu: int | None = None,
                           packing: Packing = "separate") -> None:
        limit = self.peer_max_pdu if max_pdu is None else max_pdu
        for pdu in pack(message_pdvs(context_id, command, data, limit), limit, packing):
            if self.conn.is_closed:
                return
            self.conn.send_pdu(pdu)
            await self.conn.drain(self.config.artim_timeout)

    def send_message_nowait(self, context_id: int, command: bytes) -> None:
        """Send a data-less message (a response) now: one PDU in the common case."""
        limit = self.peer_max_pdu
        if len(command) <= max_fragment(limit):
            self.conn.send_pdv(context_id, 0x03, command)  # what pack() would send, leaner
            return
        for pdu in pack(message_pdvs(context_id, command, None, limit), limit, "separate"):
            self.conn.send_pdu(pdu)

    def abort(self, source: int = 2, reason: int = 0, *, how: str = "aborted") -> None:
        if self.conn.is_closed:
            self._finish(how)
            return
        self.trace_event("A-ABORT by us", how)
        with contextlib.suppress(Exception):
            self.conn.send_pdu(Abort(source, reason))
        self.state = "Sta13"
        self._finish(how)
        # AA-1/AA-8 start ARTIM; we close right after the PDU is flushed.
        self.loop.call_soon(self.conn.close)

    def _finish(self, how: str) -> None:
        if self.ended is None:
            self.ended = how
            self.handler.on_end(self, how)

    def connection_closed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._finish("closed" if self.state in ("Sta6", "Sta8") else "closed before association"
                     if self.state == "Sta2" else "closed")


class _ServerSink:
    def __init__(self, assoc_getter: Callable[[], AcceptorAssociation | None]) -> None:
        self._get = assoc_getter

    def pdu_received(self, conn: PDUConnection, item: Received) -> None:
        assoc = self._get()
        if assoc is not None:
            assoc.pdu_received(item)

    def oversized(self, conn: PDUConnection, event: Oversized) -> None:
        assoc = self._get()
        if assoc is not None and assoc.config.abort_on_bad_pdu:
            assoc.abort(2, 6, how=f"PDU-length {event.length} over the limit {event.limit}")

    def closed(self, conn: PDUConnection, exc: Exception | None) -> None:
        assoc = self._get()
        if assoc is not None:
            assoc.connection_closed()


class AcceptorServer:
    """TCP server making one :class:`AcceptorAssociation` per connection."""

    def __init__(self, handler_factory: Callable[[], AcceptorHandler], host: str = "127.0.0.1",
                 port: int = 0, config: AcceptorConfig | None = None,
                 trace_sink: Callable[[AcceptorAssociation], None] | None = None) -> None:
        self.handler_factory = handler_factory
        self.host = host
        self.port = port
        self.config = config or AcceptorConfig()
        self.associations: set[AcceptorAssociation] = set()
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._trace_sink = trace_sink
        # TLS (PS3.15 Annex B): set before start(); the handshake must finish within ARTIM.
        self.tls: ssl.SSLContext | None = None

    @property
    def active(self) -> int:
        """Established associations (idle TCP connections waiting in Sta2 do not count)."""
        if self.config.count_idle_connections:
            return sum(1 for a in self.associations if a.ended is None) - 1
        return sum(1 for a in self.associations if a.ended is None and
                   a.state in ("Sta6", "Sta8"))

    def _protocol(self) -> PDUConnection:
        holder: list[AcceptorAssociation] = []
        assoc_id = next(self._ids)
        trace = Trace(self.config.trace_limit) if self.config.trace else None
        limit = max(self.config.max_pdu or (64 << 20), 1 << 20) + 6
        # borrow: PDUs are consumed inside the callbacks (commands copied, data fragments
        # written out at once), so P-DATA fragments can stay views into the receive buffer.
        conn = PDUConnection(_ServerSink(lambda: holder[0] if holder else None),
                             max_receive=limit, trace=trace, assoc_id=assoc_id, borrow=True)
        conn.keep_open_on_eof = not self.config.close_on_eof
        original = conn.connection_made

        def made(transport: asyncio.BaseTransport) -> None:
            original(transport)
            assoc = AcceptorAssociation(self, conn, assoc_id)
            holder.append(assoc)
            conn.data_hook = assoc.data_fast
            self.associations.add(assoc)
            assoc.trace_event("TCP accepted", f"{conn.peer}")
            conn.closed_future.add_done_callback(lambda _f: self._forget(assoc))

        conn.connection_made = made  # type: ignore[method-assign]
        return conn

    def _forget(self, assoc: AcceptorAssociation) -> None:
        self.associations.discard(assoc)
        if self._trace_sink is not None:
            self._trace_sink(assoc)

    async def start(self, sock: socket.socket | None = None) -> int:
        """Listen on ``host``/``port``, or on ``sock``, a bound socket (pre-forked workers
        share one)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            # Shared with other processes: accept one connection at a time, so that an
            # idle process takes the next one (as DCMTK's storescp --fork gives each its own).
            sock.setblocking(False)
            self._accepting = loop.create_task(self._accept_shared(sock))
            self.port = sock.getsockname()[1]
            return self.port
        self._server = await loop.create_server(self._protocol, self.host, self.port,
                                                reuse_address=True, backlog=128,
                                                **self._tls_kwargs())
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self.port

    async def _accept_shared(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            busy = len(self.associations)
            try:
                if busy:
                    # Every process waiting on the shared socket wakes for a new connection
                    # and the first to accept it wins. A busy one waits a little after the
                    # wake-up, so an idle one, which accepts at once, gets it.
                    await _readable(loop, sock)
                    await asyncio.sleep(self.config.shared_accept_backoff * min(busy, 8))
                    conn, _addr = sock.accept()
                else:
                    conn, _addr = await loop.sock_accept(sock)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # another process took it
            except OSError:
                # Out of descriptors or the like: back off rather than spin.
                await asyncio.sleep(0.1)
                continue
            try:
                await loop.connect_accepted_socket(self._protocol, conn,
                                                   **self._tls_kwargs())
            except OSError:
                conn.close()

    def _tls_kwargs(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        return {"ssl": self.tls, "ssl_handshake_timeout": self.config.artim_timeout}

    async def close(self, timeout: float = 5.0) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
            self._accepting = None
        if self._server is not None:
            self._server.close()
        for assoc in list(self.associations):
            assoc.conn.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until ``sock`` is readable (for a listening socket: a connection is pending)."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
