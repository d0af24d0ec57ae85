"""Simulated SCU: script-level operations with fault injection at every layer.

``SimulatedSCU`` wraps one association (:class:`harness.net.requestor.Requestor`) and offers
the operations scenarios are written in: associate (any proposal, malformed ones included),
store (with chosen framing, command fields, aborts at a point, trickling), echo, cancel,
send any PDU or raw bytes, abort / RST / FIN, release, and waits. Every operation returns
an :class:`~harness.scu.outcome.Outcome` and never waits without a timeout.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.net.connection import ConnectionClosed, PeerTimeout
from harness.net.requestor import DimseMessage, PeerEnded, Requestor
from harness.net.trace import Trace
from harness.scu.outcome import Outcome, from_peer_ended
from harness.wire.constants import (
    CT_IMAGE_STORAGE,
    DEFAULT_CALLING_AE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    MCH_COMMAND,
    MCH_LAST,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MR_IMAGE_STORAGE,
    VERIFICATION_SOP_CLASS,
    PDUType,
)
from harness.wire.dimse import (
    CCancelRQ,
    CEchoRQ,
    CStoreRQ,
    encode_command,
    encode_elements,
    encode_value,
    message_elements,
)
from harness.wire.fragment import max_fragment, message_pdvs, pieces
from harness.wire.items import PresentationContextRQ, SubItem
from harness.wire.pdu import (
    PDU,
    PDV,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
    associate_rq,
)


def standard_contexts() -> list[PresentationContextRQ]:
    """The catalogue's std-RQ contexts: CT {IVRLE, EVRLE}, MR {IVRLE}, Verification {IVRLE}."""
    return [
        PresentationContextRQ(1, CT_IMAGE_STORAGE, [IMPLICIT_VR_LE, EXPLICIT_VR_LE]),
        PresentationContextRQ(3, MR_IMAGE_STORAGE, [IMPLICIT_VR_LE]),
        PresentationContextRQ(5, VERIFICATION_SOP_CLASS, [IMPLICIT_VR_LE]),
    ]


AbortPoint = Literal["before-command", "inside-command", "inside-data", "after-data"]
AbortKind = Literal["abort", "rst", "fin", "release"]


@dataclass(slots=True)
class Framing:
    """How a message is cut into PDVs and PDUs; the defaults are the catalogue's std-store."""

    max_pdu: int | None = None  # None: the SCP's advertised maximum
    packing: Literal["separate", "together"] = "separate"
    command_splits: Sequence[int] = ()
    data_splits: Sequence[int] = ()
    mch_command_bits: int = 0  # OR-ed into command MCH (e.g. 0xFC sets the reserved bits)
    mch_data_bits: int = 0
    empty_final_pdv: bool = False  # data with MCH 00H, then a zero-length last fragment
    data_context_id: int | None = None  # send data fragments on another context
    trickle_bytes: int = 0  # with trickle_delay: PDUs of this many data bytes ...
    trickle_delay: float = 0.0  # ... one every trickle_delay seconds
    abort_at: AbortPoint | None = None
    abort_after_bytes: int = 0  # for inside-data: after this many data bytes
    abort_kind: AbortKind = "abort"
    last_bit_early: bool = False  # set the last-fragment bit on the final PDV sent
    pdu_reserved: int = 0  # value of the reserved byte of every P-DATA-TF header
    max_pdu_factor: float = 0.0  # send PDUs this many times the SCP's maximum (H03)
    # Messages injected after this many data bytes (PS3.8 E.1 forbids interleaving):
    interleave_after_bytes: int = 0
    interleave: list[tuple[bytes, bytes | None]] = field(default_factory=list)


@dataclass(slots=True)
class StoreRequest:
    """The command side of a C-STORE as scripted: typed fields plus raw overrides."""

    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    priority: int = 0
    command_data_set_type: int = 0x0000
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None
    # element number -> value (int/str/bytes) to replace, or None to omit the element
    overrides: dict[int, Any] = field(default_factory=dict)
    group_length: int | Literal["auto", "omit"] | None = "auto"
    explicit_vr: bool = False

    def encode(self) -> bytes:
        msg = CStoreRQ(self.message_id, self.sop_class_uid, self.sop_instance_uid,
                       self.priority, self.command_data_set_type, self.move_originator_aet,
                       self.move_originator_message_id)
        if not self.overrides and self.group_length == "auto" and not self.explicit_vr:
            return encode_command(msg)
        elements = dict(message_elements(msg))
        for element, value in self.overrides.items():
            if value is None:
                elements.pop(element, None)
            elif isinstance(value, bytes):
                elements[element] = value
            else:
                elements[element] = encode_value(element, value)
        ordered = sorted(elements.items())
        return encode_elements(ordered, group_length=self.group_length,
                               explicit_vr=self.explicit_vr)


class SimulatedSCU:
    """One simulated SCU association with scriptable faults."""

    def __init__(self, requestor: Requestor, trace: Trace | None, assoc_id: int) -> None:
        self.requestor = requestor
        self.trace = trace
        self.assoc_id = assoc_id
        self.timeout = requestor.timeout
        self.pending: list[int] = []  # Message IDs sent and not yet answered

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = 10.0,
                      trace: Trace | None = None, assoc_id: int = 1,
                      tls: ssl.SSLContext | None = None,
                      server_hostname: str | None = None) -> SimulatedSCU:
        """TCP connect (and TLS handshake with ``tls``, checking the SCP's certificate for
        ``server_hostname``, else ``host``); raises :class:`ConnectionClosed` /
        :class:`PeerTimeout` if impossible."""
        req = await Requestor.connect(host, port, timeout=timeout, trace=trace,
                                      assoc_id=assoc_id, tls=tls,
                                      server_hostname=server_hostname)
        return cls(req, trace, assoc_id)

    @property
    def conn(self) -> Any:
        return self.requestor.conn

    @property
    def ac(self) -> AssociateAC | None:
        return self.requestor.ac

    # association ---------------------------------------------------------------------------
    def build_rq(self, called_ae: str | bytes, calling_ae: str | bytes = DEFAULT_CALLING_AE, *,
                 contexts: list[PresentationContextRQ] | None = None, max_pdu: int = 16384,
                 extra_user_items: list[SubItem] | None = None,
                 modify: Callable[[AssociateRQ], None] | None = None) -> AssociateRQ:
        rq = associate_rq(called_ae, calling_ae, contexts or standard_contexts(),
                          max_pdu=max_pdu, extra_user_items=extra_user_items)
        if modify is not None:
            modify(rq)
        return rq

    async def associate(self, rq: AssociateRQ, timeout: float | None = None) -> Outcome:
        start = time.monotonic()
        got = await self.requestor.associate(rq, timeout)
        elapsed = time.monotonic() - start
        if isinstance(got, AssociateAC):
            return Outcome("accepted", f"{len(self.requestor.accepted_contexts)} context(s) "
                           "accepted", elapsed)
        if isinstance(got, AssociateRJ):
            return Outcome("rejected", got.describe(), elapsed, result=got.result,
                           source=got.source, reason=got.reason)
        return from_peer_ended(got, elapsed)

    def context_for(self, sop_class_uid: str) -> tuple[int, str] | None:
        return self.requestor.context_for(sop_class_uid)

    # DIMSE ---------------------------------------------------------------------------------
    async def store(self, request: StoreRequest, data: bytes | bytearray | memoryview | None,
                    context_id: int, *, framing: Framing | None = None, wait: bool = True,
                    timeout: float | None = None) -> Outcome:
        """Send one C-STORE-RQ (command + data set) and, if ``wait``, its response."""
        framing = framing or Framing()
        start = time.monotonic()
        try:
            stopped = await self._send_store(request.encode(), data, context_id, framing)
        except (ConnectionClosed, PeerTimeout) as exc:
            return await self._after_send_failure(str(exc), start)
        if stopped is not None:
            return stopped
        self.pending.append(request.message_id)
        if not wait:
            return Outcome("sent", f"C-STORE-RQ id={request.message_id}",
                           time.monotonic() - start)
        return await self.wait_response(timeout, start=start)

    async def store_batch(self, batch: list[tuple[StoreRequest, bytes | None]],
                          context_id: int) -> Outcome:
        """Several C-STORE-RQs written in one go, without waiting: they arrive together, so
        the first is still outstanding when the next one is read (D02, D03)."""
        limit = self.requestor.peer_max_pdu
        pdus: list[PDU] = []
        for request, data in batch:
            for pdv in message_pdvs(context_id, request.encode(), data, limit):
                pdus.append(PDataTF([pdv]))
            self.pending.append(request.message_id)
        try:
            self.requestor.conn.send_pdus(pdus)
            await self.requestor.conn.drain(self.timeout)
        except (ConnectionClosed, PeerTimeout) as exc:
            return await self._after_send_failure(str(exc), time.monotonic())
        return Outcome("sent", f"{len(batch)} C-STORE-RQs in one write")

    async def store_stream(self, request: StoreRequest,
                           chunks: Iterable[bytes | memoryview], context_id: int, *,
                           timeout: float | None = None) -> Outcome:
        """C-STORE whose data set comes from an iterator (a 2 GiB instance never sits in
        memory): each chunk is cut to the SCP's maximum PDU; the last fragment bit goes on
        the final piece."""
        start = time.monotonic()
        limit = max_fragment(self.requestor.peer_max_pdu)
        conn = self.requestor.conn
        try:
            for pdv in self._command_pdvs(request.encode(), context_id, limit, Framing()):
                conn.send_pdu(PDataTF([pdv]))
            pending: memoryview | None = None
            for chunk in chunks:
                for piece in pieces(chunk, limit):
                    if pending is not None:
                        conn.send_pdu(PDataTF([PDV(context_id, 0, pending)]), summary="")
                        await conn.drain(self.timeout)
                    pending = piece
            if pending is not None:
                conn.send_pdu(PDataTF([PDV(context_id, MCH_LAST, pending)]))
        except (ConnectionClosed, PeerTimeout) as exc:
            return await self._after_send_failure(str(exc), start)
        self.pending.append(request.message_id)
        return await self.wait_response(timeout, start=start)

    async def _after_send_failure(self, detail: str, start: float) -> Outcome:
        # The SCP may have aborted while we were still sending: read what it said.
        got = await self.requestor.recv_pdu(0.5)
        if isinstance(got, PeerEnded):
            if got.kind == "timeout":
                return Outcome("close", detail, time.monotonic() - start)
            return from_peer_ended(got, time.monotonic() - start)
        return from_peer_ended(PeerEnded("unexpected", got.pdu, detail), time.monotonic() - start)

    async def _send_store(self, command: bytes, data: bytes | bytearray | memoryview | None,
                          context_id: int, f: Framing) -> Outcome | None:
        peer_max = self.requestor.peer_max_pdu if f.max_pdu is None else f.max_pdu
        if f.max_pdu_factor and peer_max:
            peer_max = int(peer_max * f.max_pdu_factor)
        limit = max_fragment(peer_max)
        if f.trickle_bytes:
            limit = min(limit, max(2, f.trickle_bytes))
        if f.abort_at == "before-command":
            return await self._do_abort(f.abort_kind)
        pdvs = list(self._command_pdvs(command, context_id, limit, f))
        if f.abort_at == "inside-command":
            pdvs = pdvs[:1]
            pdvs[0] = PDV(context_id, pdvs[0].mch & ~MCH_LAST, pdvs[0].data[: len(pdvs[0].data)
                                                                             // 2])
            await self._send_pdvs(pdvs, peer_max, f)
            return await self._do_abort(f.abort_kind)
        data_pdvs: list[PDV] = []
        if data is not None:
            view = memoryview(data)
            if f.abort_at == "inside-data":
                view = view[: f.abort_after_bytes or len(view) // 2]
            data_pdvs = list(self._data_pdvs(view, context_id, limit, f))
        if f.interleave and data_pdvs:
            await self._send_pdvs(pdvs, peer_max, f)
            head, tail = _split_pdvs(data_pdvs, f.interleave_after_bytes)
            await self._send_pdvs(head, peer_max, f)
            for command2, data2 in f.interleave:
                await self._send_pdvs(list(self._command_pdvs(command2, context_id, limit, f)),
                                      peer_max, f)
                if data2 is not None:
                    await self._send_pdvs(list(self._data_pdvs(memoryview(data2), context_id,
                                                               limit, Framing())), peer_max, f)
            await self._send_pdvs(tail, peer_max, f)
        elif f.packing == "together" and data_pdvs:
            await self._send_pdvs(pdvs + data_pdvs, peer_max, f)
        else:
            await self._send_pdvs(pdvs, peer_max, f)
            await self._send_pdvs(data_pdvs, peer_max, f, trickle=f.trickle_delay)
        if f.abort_at in ("inside-data", "after-data"):
            return await self._do_abort(f.abort_kind)
        return None

    def _command_pdvs(self, command: bytes, context_id: int, limit: int,
                      f: Framing) -> Iterator[PDV]:
        parts = pieces(command, limit, f.command_splits)
        for i, piece in enumerate(parts):
            last = MCH_LAST if i == len(parts) - 1 else 0
            yield PDV(context_id, (MCH_COMMAND | last | f.mch_command_bits) & 0xFF, piece)

    def _data_pdvs(self, data: memoryview, context_id: int, limit: int,
                   f: Framing) -> Iterator[PDV]:
        cid = f.data_context_id if f.data_context_id is not None else context_id
        parts = pieces(data, limit, f.data_splits)
        final_last = f.abort_at != "inside-data" or f.last_bit_early
        for i, piece in enumerate(parts):
            is_last = i == len(parts) - 1 and final_last and not f.empty_final_pdv
            yield PDV(cid, ((MCH_LAST if is_last else 0) | f.mch_data_bits) & 0xFF, piece)
        if f.empty_final_pdv:
            yield PDV(cid, (MCH_LAST | f.mch_data_bits) & 0xFF, b"")

    async def _send_pdvs(self, pdvs: list[PDV], max_pdu: int, f: Framing,
                         trickle: float = 0.0) -> None:
        conn = self.requestor.conn
        if f.packing == "together":
            limit = (1 << 32) - 1 if max_pdu == 0 else max_pdu
            batch: list[PDV] = []
            size = 0
            for pdv in pdvs:
                if batch and size + pdv.item_size > limit:
                    conn.send_pdu(PDataTF(batch, f.pdu_reserved))
                    batch, size = [], 0
                batch.append(pdv)
                size += pdv.item_size
            if batch:
                conn.send_pdu(PDataTF(batch, f.pdu_reserved))
            await conn.drain(self.timeout)
            return
        for pdv in pdvs:
            conn.send_pdu(PDataTF([pdv], f.pdu_reserved))
            await conn.drain(self.timeout)
            if trickle:
                await asyncio.sleep(trickle)

    async def _do_abort(self, kind: AbortKind) -> Outcome:
        if kind == "release":
            self.requestor.conn.send_pdu(ReleaseRQ())
            return Outcome("sent", "A-RELEASE-RQ sent")
        if kind == "abort":
            self.requestor.abort(0, 0)
        elif kind == "rst":
            self.requestor.conn.reset()
        else:
            self.requestor.conn.half_close()
        return Outcome("sent", f"{kind} sent")

    async def wait_response(self, timeout: float | None = None, *,
                            start: float | None = None) -> Outcome:
        begin = time.monotonic() if start is None else start
        got = await self.requestor.recv_message(timeout)
        elapsed = time.monotonic() - begin
        if isinstance(got, PeerEnded):
            return from_peer_ended(got, elapsed)
        return self._response_outcome(got, elapsed)

    def _response_outcome(self, msg: DimseMessage, elapsed: float) -> Outcome:
        answered = msg.command.elements.get(MESSAGE_ID_BEING_RESPONDED_TO)
        if answered in self.pending:
            self.pending.remove(answered)  # type: ignore[arg-type]
        return Outcome("response", "", elapsed, message=msg, findings=list(msg.findings))

    async def echo(self, message_id: int = 1, *, context_id: int | None = None,
                   timeout: float | None = None) -> Outcome:
        cid = context_id
        if cid is None:
            found = self.context_for(VERIFICATION_SOP_CLASS)
            if found is None:
                return Outcome("error", "no accepted Verification context")
            cid = found[0]
        start = time.monotonic()
        try:
            await self.requestor.send_message(cid, encode_command(CEchoRQ(message_id)))
        except (ConnectionClosed, PeerTimeout) as exc:
            return await self._after_send_failure(str(exc), start)
        self.pending.append(message_id)
        return await self.wait_response(timeout, start=start)

    async def cancel(self, message_id: int, context_id: int) -> Outcome:
        """Send C-CANCEL-RQ for ``message_id``; C-CANCEL is unconfirmed, so nothing is awaited."""
        try:
            await self.requestor.send_message(context_id,
                                              encode_command(CCancelRQ(message_id)))
        except (ConnectionClosed, PeerTimeout) as exc:
            return Outcome("close", str(exc))
        return Outcome("sent", f"C-CANCEL-RQ for {message_id}")

    async def send_command(self, context_id: int, command: bytes,
                           data: bytes | None = None, *, wait: bool = True,
                           timeout: float | None = None) -> Outcome:
        """Send any command set bytes (and data) as a message; optionally wait for an answer."""
        start = time.monotonic()
        try:
            await self.requestor.send_message(context_id, command, data)
        except (ConnectionClosed, PeerTimeout) as exc:
            return await self._after_send_failure(str(exc), start)
        if not wait:
            return Outcome("sent", "command sent")
        return await self.wait_response(timeout, start=start)

    # raw and faults ------------------------------------------------------------------------
    def send_pdu(self, pdu: PDU) -> Outcome:
        try:
            self.requestor.conn.send_pdu(pdu)
        except ConnectionClosed as exc:
            return Outcome("close", str(exc))
        return Outcome("sent", type(pdu).__name__)

    def send_bytes(self, data: bytes) -> Outcome:
        try:
            self.requestor.conn.send_bytes(data)
        except ConnectionClosed as exc:
            return Outcome("close", str(exc))
        return Outcome("sent", f"{len(data)} raw bytes")

    async def expect_pdu(self, timeout: float | None = None) -> Outcome:
        """Wait for whatever the SCP sends next (PDU, close or nothing)."""
        start = time.monotonic()
        got = await self.requestor.recv_pdu(timeout)
        elapsed = time.monotonic() - start
        if isinstance(got, PeerEnded):
            return from_peer_ended(got, elapsed)
        pdu = got.pdu
        if isinstance(pdu, PDataTF):
            return Outcome("unexpected", "P-DATA-TF", elapsed, findings=got.findings)
        if isinstance(pdu, ReleaseRP):
            return Outcome("release", "A-RELEASE-RP", elapsed)
        if isinstance(pdu, AssociateAC):
            return Outcome("accepted", "A-ASSOCIATE-AC", elapsed)
        how = "abort" if pdu.pdu_type == PDUType.A_ABORT else "unexpected"
        return from_peer_ended(PeerEnded(how, pdu), elapsed)

    async def expect_close(self, timeout: float) -> Outcome:
        """Wait until the SCP closes the connection (ARTIM checks); PDUs on the way are noted."""
        start = time.monotonic()
        seen: list[str] = []
        while True:
            remaining = timeout - (time.monotonic() - start)
            got = await self.requestor.recv_pdu(max(0.0, remaining))
            if isinstance(got, PeerEnded):
                out = from_peer_ended(got, time.monotonic() - start)
                out.extra["pdus"] = seen
                return out
            seen.append(type(got.pdu).__name__)

    async def release(self, timeout: float | None = None, *, close: bool = True) -> Outcome:
        start = time.monotonic()
        try:
            got = await self.requestor.release(timeout, close=close)
        except ConnectionClosed as exc:
            return Outcome("close", str(exc), time.monotonic() - start)
        if isinstance(got, ReleaseRP):
            return Outcome("release", "A-RELEASE-RP", time.monotonic() - start)
        return from_peer_ended(got, time.monotonic() - start)

    def abort(self, source: int = 0, reason: int = 0) -> Outcome:
        self.requestor.abort(source, reason)
        return Outcome("sent", "A-ABORT")

    def reset(self) -> Outcome:
        self.requestor.conn.reset()
        return Outcome("sent", "RST")

    def fin(self) -> Outcome:
        self.requestor.conn.half_close()
        return Outcome("sent", "FIN")

    def close(self) -> None:
        self.requestor.close()


def _split_pdvs(pdvs: list[PDV], after: int) -> tuple[list[PDV], list[PDV]]:
    """PDVs carrying the first ``after`` data bytes, and the rest (cut inside a PDV)."""
    head: list[PDV] = []
    sent = 0
    for i, pdv in enumerate(pdvs):
        if sent + len(pdv.data) <= after:
            head.append(PDV(pdv.context_id, pdv.mch & ~MCH_LAST, pdv.data))
            sent += len(pdv.data)
            continue
        cut = max(2, (after - sent) & ~1)
        if cut < len(pdv.data):
            head.append(PDV(pdv.context_id, pdv.mch & ~MCH_LAST, pdv.data[:cut]))
            return head, [PDV(pdv.context_id, pdv.mch, pdv.data[cut:]), *pdvs[i + 1:]]
        return head, list(pdvs[i:])
    return head[:-1], pdvs[len(head) - 1:]
