"""The association requestor (SCU side): connect, negotiate, exchange DIMSE messages, end.

Every wait takes a timeout. The peer's maximum PDU length is honoured when fragmenting,
unless a caller overrides it on purpose. Low-level handles (``send_pdu``, ``send_bytes``,
``half_close``, ``reset``) stay available for fault injection between the high-level steps.
The connection follows the requestor's PS3.8 Table 9-10 state (``RequestorStates``): the table
never blocks what we send, and a PDU the SCP sends where the table answers AA-1/AA-7/AA-8
gets a finding on its trace entry.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from harness.net.connection import (
    ConnectionClosed,
    PDUConnection,
    PDUStream,
    PeerTimeout,
    Received,
)
from harness.net.trace import Trace
from harness.wire.constants import COMMAND_DATA_SET_TYPE, NO_DATA_SET
from harness.wire.dimse import DecodedCommand, decode_command
from harness.wire.findings import Finding
from harness.wire.fragment import (
    CommandComplete,
    DataFragment,
    MessageAssembler,
    Misframed,
    Packing,
    message_pdvs,
    pack,
)
from harness.wire.framing import Oversized
from harness.wire.pdu import (
    PDU,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
)
from harness.wire.requestor_states import RequestorStates


class AssociationError(Exception):
    """The association could not be set up or used as the script expected."""


@dataclass(slots=True)
class DimseMessage:
    """A DIMSE message received from the peer: its command (decoded) and its data set bytes."""

    context_id: int
    command_bytes: bytes
    command: DecodedCommand
    data: bytes | None = None
    findings: list[Finding] = field(default_factory=list)
    pdus: list[Received] = field(default_factory=list)


@dataclass(slots=True)
class PeerEnded:
    """What ended the conversation instead of an expected message."""

    kind: str  # "abort" | "release-rq" | "closed" | "timeout" | "unexpected" | "oversized"
    pdu: PDU | None = None
    detail: str = ""


async def open_connection(host: str, port: int, *, timeout: float, trace: Trace | None = None,
                          assoc_id: int = 1, max_receive: int | None = 64 << 20,
                          tls: ssl.SSLContext | None = None,
                          server_hostname: str | None = None) -> tuple[
                              PDUConnection, PDUStream]:
    """TCP connect (TCP_NODELAY on) with a timeout; returns the connection and its stream.
    With ``tls`` the TLS handshake is part of the connect (and of its timeout)."""
    loop = asyncio.get_running_loop()
    stream = PDUStream()

    def connected() -> PDUConnection:
        # Called once TCP is connected, before anything can be read: the SCP's first PDU
        # already meets the Table 9-10 state (Sta5, see RequestorStates.connected).
        conn = PDUConnection(stream, max_receive=max_receive, trace=trace, assoc_id=assoc_id)
        conn.observer = states = RequestorStates()
        states.connected()
        return conn

    try:
        _transport, conn = await asyncio.wait_for(
            loop.create_connection(
                connected,
                host, port, ssl=tls,
                server_hostname=(server_hostname or host) if tls is not None else None,
                ssl_handshake_timeout=timeout if tls is not None else None,
                # After our close_notify, wait this long for the SCP's before dropping TCP
                # (asyncio's default, 30 s, would hold a single-process SCP that long).
                ssl_shutdown_timeout=min(timeout, 2.0) if tls is not None else None),
            timeout)
    except TimeoutError as exc:
        raise PeerTimeout(f"TCP connect to {host}:{port} timed out after {timeout:g} s") from exc
    except ssl.SSLError as exc:
        from harness.net.tls import handshake_error_text

        raise ConnectionClosed(f"{host}:{port}: {handshake_error_text(exc)}") from exc
    except OSError as exc:
        raise ConnectionClosed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    if trace is not None:
        trace.event(assoc_id, "TCP connected", f"{host}:{port}")
        if tls is not None and conn.transport is not None:
            from harness.net.tls import describe

            info = describe(conn.transport.get_extra_info("ssl_object"))
            trace.event(assoc_id, "TLS established",
                        f"{info.get('version')} {info.get('cipher')} "
                        f"peer {info.get('peer_subject') or '(not verified)'}")
    return conn, stream


class Requestor:
    """One association from the requestor's side."""

    def __init__(self, conn: PDUConnection, stream: PDUStream, *, timeout: float = 10.0) -> None:
        self.conn = conn
        self.stream = stream
        self.timeout = timeout
        self.rq: AssociateRQ | None = None
        self.ac: AssociateAC | None = None
        self.rj: AssociateRJ | None = None
        self.ended: PeerEnded | None = None
        self.assembler = MessageAssembler()
        self._partial: list[bytes] = []

    @property
    def states(self) -> RequestorStates | None:
        """Our Table 9-10 state as followed by the connection (None if not watched)."""
        observer = self.conn.observer
        return observer if isinstance(observer, RequestorStates) else None

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = 10.0,
                      trace: Trace | None = None, assoc_id: int = 1,
                      tls: ssl.SSLContext | None = None,
                      server_hostname: str | None = None) -> Requestor:
        """``server_hostname``: the name the SCP's certificate must carry (``host`` if
        None), as ``--tls-server-name`` gives it."""
        conn, stream = await open_connection(host, port, timeout=timeout, trace=trace,
                                             assoc_id=assoc_id, tls=tls,
                                             server_hostname=server_hostname)
        return cls(conn, stream, timeout=timeout)

    # negotiation -----------------------------------------------------------------------
    @property
    def accepted_contexts(self) -> dict[int, tuple[str, str]]:
        """Context ID -> (abstract syntax, transfer syntax) for every accepted context."""
        if self.ac is None or self.rq is None:
            return {}
        proposed = {pc.context_id: str(pc.abstract_syntax) for pc in self.rq.presentation_contexts}
        return {pc.context_id: (proposed.get(pc.context_id, ""), str(pc.transfer_syntax))
                for pc in self.ac.presentation_contexts if pc.result == 0}

    @property
    def peer_max_pdu(self) -> int:
        value = self.ac.max_pdu_length if self.ac is not None else None
        return 0 if value is None else value

    def context_for(self, abstract_syntax: str) -> tuple[int, str] | None:
        for cid, (abstract, ts) in sorted(self.accepted_contexts.items()):
            if abstract == abstract_syntax:
                return cid, ts
        return None

    async def associate(self, rq: AssociateRQ, timeout: float | None = None) -> (
            AssociateAC | AssociateRJ | PeerEnded):
        self.rq = rq
        self.conn.send_pdu(rq)
        got = await self.recv_pdu(timeout)
        if isinstance(got, Received):
            if isinstance(got.pdu, AssociateAC):
                self.ac = got.pdu
                return got.pdu
            if isinstance(got.pdu, AssociateRJ):
                self.rj = got.pdu
                return got.pdu
            if isinstance(got.pdu, Abort):
                return self._end("abort", got.pdu)
            return self._end("unexpected", got.pdu)
        return got

    # receiving ---------------------------------------------------------------------------
    def _end(self, kind: str, pdu: PDU | None = None, detail: str = "") -> PeerEnded:
        self.ended = PeerEnded(kind, pdu, detail)
        return self.ended

    async def recv_pdu(self, timeout: float | None = None) -> Received | PeerEnded:
        wait = self.timeout if timeout is None else timeout
        try:
            item = await self.stream.get(wait)
        except PeerTimeout:
            return PeerEnded("timeout", None, f"no answer within {wait:g} s")
        except ConnectionClosed:
            return self._end("closed", None, "the peer closed the connection")
        if isinstance(item, Oversized):
            return self._end("oversized", None, f"PDU-length {item.length} over {item.limit}")
        return item

    async def recv_message(self, timeout: float | None = None) -> DimseMessage | PeerEnded:
        """The next complete DIMSE message; anything else ends the wait as :class:`PeerEnded`."""
        loop = asyncio.get_running_loop()
        wait = self.timeout if timeout is None else timeout
        deadline = loop.time() + wait
        message: DimseMessage | None = None
        data: list[bytes] = []
        while True:
            got = await self.recv_pdu(max(0.0, deadline - loop.time()))
            if isinstance(got, PeerEnded):
                return got
            pdu = got.pdu
            if isinstance(pdu, Abort):
                return self._end("abort", pdu)
            if isinstance(pdu, ReleaseRQ):
                return self._end("release-rq", pdu)
            if isinstance(pdu, ReleaseRP):
                return self._end("release-rp", pdu)
            if not isinstance(pdu, PDataTF):
                return self._end("unexpected", pdu)
            for pdv in pdu.pdvs:
                event = self.assembler.feed(pdv)
                if isinstance(event, CommandComplete):
                    decoded = decode_command(event.command)
                    data_set_type = decoded.elements.get(COMMAND_DATA_SET_TYPE, NO_DATA_SET)
                    has_data = data_set_type != NO_DATA_SET
                    self.assembler.expect_data(has_data)
                    message = DimseMessage(event.context_id, event.command, decoded,
                                           findings=[*event.findings, *decoded.findings])
                    message.pdus.append(got)
                    if not has_data:
                        return message
                elif isinstance(event, DataFragment) and message is not None:
                    data.append(bytes(event.data))
                    message.findings += event.findings
                    if event.last:
                        message.data = b"".join(data)
                        return message
                elif isinstance(event, Misframed):
                    self.assembler.reset()
                    return self._end("unexpected", pdu, "; ".join(map(str, event.findings)))

    # sending -----------------------------------------------------------------------------
    async def send_message(self, context_id: int, command: bytes | memoryview,
                           data: bytes | bytearray | memoryview | None = None, *,
                           max_pdu: int | None = None, packing: Packing = "separate") -> None:
        limit = self.peer_max_pdu if max_pdu is None else max_pdu
        for pdu in pack(message_pdvs(context_id, command, data, limit), limit, packing):
            self.conn.send_pdu(pdu)
            await self.conn.drain(self.timeout)

    async def release(self, timeout: float | None = None, *,
                      close: bool = True) -> ReleaseRP | PeerEnded:
        """A-RELEASE-RQ, wait for A-RELEASE-RP (skipping late P-DATA), then close (unless
        ``close`` is False: then the peer is left to close, as PS3.8 AR-4 expects)."""
        self.conn.send_pdu(ReleaseRQ())
        try:
            while True:
                got = await self.recv_pdu(timeout)
                if isinstance(got, PeerEnded):
                    return got
                if isinstance(got.pdu, ReleaseRP):
                    return got.pdu
                if isinstance(got.pdu, Abort):
                    return self._end("abort", got.pdu)
                if not isinstance(got.pdu, PDataTF):
                    return self._end("unexpected", got.pdu)
        finally:
            if close:
                self.conn.close()

    def abort(self, source: int = 0, reason: int = 0) -> None:
        if not self.conn.is_closed:
            self.conn.send_pdu(Abort(source, reason))
            self.conn.close()

    def close(self) -> None:
        self.conn.close()
