"""The acceptor's TCP server: listens (alone, or on a socket shared by pre-forked
processes), makes one :class:`~harness.net.acceptor.AcceptorAssociation` per connection and
bounds what connections cost: waiting connections over ``max_pending`` are closed early,
quiet ones give their receive buffers back, freed heap goes back to the system after a burst.
The PS3.8 rules each association runs are in ``acceptor.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from harness.net.acceptor import AcceptorAssociation, AcceptorConfig, AcceptorHandler
from harness.net.connection import PDUConnection, Received
from harness.net.memory import release_heap
from harness.net.trace import Trace
from harness.wire.constants import AbortReason
from harness.wire.framing import Oversized


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
            assoc.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                        how=f"PDU-length {event.length} over the limit {event.limit}")
        elif assoc is not None:
            # hang_on_bad_pdu: the stream has lost its framing; the connection stays up and
            # drops what arrives (as the simulated faulty SCP would).
            conn.framer.stop()

    def closed(self, conn: PDUConnection, exc: Exception | None) -> None:
        assoc = self._get()
        if assoc is not None:
            assoc.connection_closed()

    def failed(self, conn: PDUConnection, exc: Exception) -> None:
        assoc = self._get()
        if assoc is not None:
            assoc.abort(how=f"internal error ({type(exc).__name__})")


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
        self.evicted_pending = 0  # waiting connections closed early: max_pending reached
        self._trim_timer: asyncio.TimerHandle | None = None
        self._heap_timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Open TCP connections that have not sent their A-ASSOCIATE-RQ yet (Sta2)."""
        return sum(1 for a in self.associations if a.state == "Sta2" and a.ended is None)

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
        if self.config.enforce_max_pdu and self.config.max_pdu:
            # A P-DATA-TF announcing more than we advertised is aborted on its header (PS3.8
            # D.1), not buffered first; no other PDU of an association is that long.
            limit = self.config.max_pdu
        else:
            limit = max(self.config.max_pdu or (64 << 20), 1 << 20) + 6
        # borrow: PDUs are consumed inside the callbacks (commands copied, data fragments
        # written out at once), so P-DATA fragments can stay views into the receive buffer.
        conn = PDUConnection(_ServerSink(lambda: holder[0] if holder else None),
                             max_receive=limit, trace=trace, assoc_id=assoc_id, borrow=True)
        conn.keep_open_on_eof = not self.config.close_on_eof
        original = conn.connection_made

        def made(transport: asyncio.BaseTransport) -> None:
            del conn.connection_made  # the closure refers to conn: no cycle once it ran
            original(transport)
            cap = self.config.max_pending
            if cap:
                waiting = [a for a in self.associations if a.state == "Sta2" and a.ended is None]
                if len(waiting) >= cap:
                    # The oldest waiting connection goes, as if its ARTIM had expired (AA-2):
                    # a flood of idle connections costs at most ``cap`` of them and cannot
                    # keep a real requestor out (it sends its A-ASSOCIATE-RQ at once).
                    self.evicted_pending += 1
                    min(waiting, key=lambda a: a.assoc_id).evict()
            assoc = AcceptorAssociation(self, conn, assoc_id)
            holder.append(assoc)
            conn.data_hook = assoc.data_fast
            self.associations.add(assoc)
            assoc.trace_event("TCP accepted", f"{conn.peer}")
            conn.closed_future.add_done_callback(lambda _f: self._forget(assoc))

        conn.connection_made = made  # type: ignore[method-assign]
        return conn

    def _release_heap(self) -> None:
        self._heap_timer = None
        release_heap()

    def _trim_idle(self) -> None:
        """Give back the receive buffers of connections quiet since the last call."""
        for assoc in self.associations:
            received = assoc.conn.bytes_received
            if received == assoc.received_at_trim:
                assoc.conn.framer.trim()
            assoc.received_at_trim = received
        self._trim_timer = asyncio.get_running_loop().call_later(
            self.config.idle_trim_interval, self._trim_idle)

    def _forget(self, assoc: AcceptorAssociation) -> None:
        self.associations.discard(assoc)
        if self._heap_timer is None:
            # Once the connections of a burst are gone, hand the freed heap back.
            self._heap_timer = asyncio.get_running_loop().call_later(0.5, self._release_heap)
        if self._trace_sink is not None:
            self._trace_sink(assoc)

    async def start(self, sock: socket.socket | None = None) -> int:
        """Listen on ``host``/``port``, or on ``sock``, a bound socket (pre-forked workers
        share one)."""
        loop = asyncio.get_running_loop()
        if self.config.idle_trim_interval > 0:
            self._trim_timer = loop.call_later(self.config.idle_trim_interval, self._trim_idle)
        if sock is not None:
            # Shared with other processes: accept one connection at a time, so that an
            # idle process takes the next one (as DCMTK's storescp --fork gives each its own).
            return self.accept_with(self._accept_shared, sock)
        self._server = await loop.create_server(self._protocol, self.host, self.port,
                                                reuse_address=True, backlog=128,
                                                **self._tls_kwargs())
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self.port

    def accept_with(self, accept: Callable[[socket.socket], Coroutine[Any, Any, None]],
                    sock: socket.socket) -> int:
        """Listen on ``sock``, a bound listening socket, with the accept loop ``accept(sock)``
        (which hands each connection to :meth:`adopt`); ``close()`` cancels it."""
        sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(accept(sock))
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
                    await readable(loop, sock)
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
            await self.adopt(conn)

    async def adopt(self, conn: socket.socket, *, tls: bool = True) -> None:
        """Serve ``conn``, a connection accepted outside ``start`` (a shared socket, a
        fault's own accept loop): over TLS when the server has a context and ``tls``; closed
        when it cannot be set up (a failed handshake included)."""
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._protocol, conn, **(self._tls_kwargs() if tls else {}))
        except OSError:  # ssl.SSLError is one
            conn.close()

    def _tls_kwargs(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        return {"ssl": self.tls, "ssl_handshake_timeout": self.config.artim_timeout}

    async def close(self, timeout: float = 5.0) -> None:
        for timer in (self._trim_timer, self._heap_timer):
            if timer is not None:
                timer.cancel()
        self._trim_timer = self._heap_timer = None
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


async def readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until ``sock`` is readable (for a listening socket: a connection is pending; for
    a connected one: bytes or EOF have arrived)."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
