"""The association acceptor (SCP side): one association under the PS3.8 acceptor rules.

The acceptor owns the Upper Layer duties: ARTIM before the A-ASSOCIATE-RQ and after
RJ/RP/abort (PS3.8 9.1.5), the idle timeout, A-ABORT for unexpected or invalid PDUs (AA-8),
our maximum PDU length (PS3.8 D.1), PDV reassembly checks (Annex E) and fragmentation to the
peer's maximum. Policy (which contexts, which AE titles) and DIMSE processing belong to an
:class:`AcceptorHandler` made per association; callbacks run in the event loop as PDUs
arrive, so data set fragments can stream to disk without buffering. The TCP server that
makes one :class:`AcceptorAssociation` per connection is
:class:`harness.net.acceptor_server.AcceptorServer` (also importable from here).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.net.connection import PDUConnection, Received
from harness.wire.constants import (
    COMMAND_DATA_SET_TYPE,
    NO_DATA_SET,
    PDV_HEADER_LEN,
    AbortReason,
    AbortSource,
    RejectReason,
    RejectResult,
    RejectSource,
)
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
from harness.wire.pdu import (
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    RawPDU,
    ReleaseRP,
)
from harness.wire.states import (
    ACCEPT,
    REJECT,
    TRANSITIONS,
    Action,
    Event,
    State,
    abort_advice,
)

if TYPE_CHECKING:
    from harness.net.acceptor_server import AcceptorServer as AcceptorServer

ASSOCIATE_RQ_LIMIT = 1 << 20

# Table 9-10 (harness.wire.states) as the acceptor looks it up: (state label, received PDU
# type; 0 for Evt19) -> action, and (state label, local event) -> (action, next state label).
# Plain dicts with string keys: one lookup per PDU on the receive path.
_RECEIVED: dict[tuple[str, int], Action] = {
    (state.value, int(event.pdu_type) if event.pdu_type is not None else 0): action
    for (state, event), action in TRANSITIONS.items() if event.is_received_pdu}
_LOCAL: dict[tuple[str, Event], tuple[Action, str]] = {
    (state.value, event): (action, action.next_state.value)
    for (state, event), action in TRANSITIONS.items()
    if not event.is_received_pdu and action.next_state is not None}


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
    # TCP connections waiting for their A-ASSOCIATE-RQ (Sta2) at once; when one more comes,
    # the oldest of them is closed (0 = no limit). Bounds what a flood of connections costs.
    max_pending: int = 64
    # Every this many seconds, connections that received nothing since the last look give
    # their receive buffer back (it is allocated again on the next read).
    idle_trim_interval: float = 5.0
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
        self.received_at_trim = -1  # conn.bytes_received when the server last looked
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
        try:
            self._on_timer(which)
        except Exception as exc:  # a timer callback is a protocol callback too
            self.conn.fail(exc)

    def _on_timer(self, which: str) -> None:
        self._timer = None
        if which == "idle" and self.config.idle_timeout is not None:
            # Received PDUs only stamp the time (re-arming a timer per PDU is costly): if
            # something arrived since, wait for the rest of the idle period.
            rest = self._last_activity + self.config.idle_timeout - self.loop.time()
            if rest > 0:
                self._timer = self.loop.call_later(rest, self._expired, which)
                return
        if which == "artim":
            # Evt18 -> AA-2 (Sta2, Sta13): close the transport without any PDU.
            self.trace_event("ARTIM expired", f"after {self.config.artim_timeout:g} s")
            self._local(Event.EVT18)
            self._finish("artim-timeout")
            self.conn.close()
        else:
            self.trace_event("idle timeout", f"after {self.config.idle_timeout} s")
            self.abort(how="idle-timeout")

    def evict(self) -> None:
        """Close a connection still waiting for its A-ASSOCIATE-RQ early: ARTIM expiry
        (Evt18 -> AA-2) brought forward because too many connections wait."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.trace_event("closed early", "too many connections waiting for A-ASSOCIATE-RQ")
        self._local(Event.EVT18)
        self._finish("closed: too many waiting connections")
        self.conn.close()

    def trace_event(self, kind: str, summary: str = "") -> None:
        if self.conn.trace is not None:
            self.conn.trace.event(self.assoc_id, kind, summary)

    # received PDUs (called by the server's sink) -----------------------------------------
    def pdu_received(self, item: Received) -> None:
        """Evt3-Evt19 for a received PDU: Table 9-10 names the action, this runs it."""
        pdu = item.pdu
        # Evt19 (unrecognized or invalid PDU) is keyed as type 0: a RawPDU is an unknown type
        # or a known one that did not decode.
        action = _RECEIVED.get((self.state, 0 if isinstance(pdu, RawPDU) else pdu.pdu_type))
        if action is Action.DT_2:  # nearly every PDU: first
            if self._timer is not None:
                self._last_activity = self.loop.time()  # the idle timer checks it on expiry
            self._pdata(pdu, item)  # type: ignore[arg-type]
        elif action is Action.AE_6:
            self._associate_rq(pdu, item.findings)  # type: ignore[arg-type]
        elif action is Action.AR_2:
            self._release_rq()
        elif action is Action.AA_3 or action is Action.AA_2:
            # A-ABORT received (AA-3), or in Sta2/Sta13 (AA-2): close, send nothing.
            self._finish("aborted by peer")
            self.state = "Sta1"
            self.conn.close()
        elif action is None or action is Action.AA_6:
            pass  # AA-6: ignore (Sta13); no cell: the association is already gone (Sta1)
        elif not self.config.abort_on_bad_pdu:
            # Override for the hang_on_bad_pdu fault: AA-1/AA-7/AA-8 become "ignore".
            self.trace_event("PDU ignored", f"{type(pdu).__name__} in {self.state} "
                             f"({action.value} overridden)")
        else:
            # AA-1 (Sta2), AA-7 (Sta13), AA-8 (elsewhere): the source and reason PS3.8 gives
            # for this PDU here (abort_advice; invalid-parameter 6 for a known type that did
            # not decode).
            advice = abort_advice(State(self.state), pdu.pdu_type,
                                  decodable=not isinstance(pdu, RawPDU))
            assert advice is not None
            reason = AbortReason(advice.reason)
            self.abort(advice.source, advice.reason, event=action,
                       how=f"{reason.name.lower().replace('_', '-')} "
                           f"({type(pdu).__name__} in {self.state}: {action.value})")

    def _associate_rq(self, pdu: AssociateRQ, findings: list[Finding]) -> None:
        self.rq = pdu
        peer_max = pdu.max_pdu_length or 0
        if 0 < peer_max <= PDV_HEADER_LEN:
            # No room for even an empty PDV (PS3.8 9.3.5.1): no response could ever be sent,
            # so the provider refuses (AE-6, reject branch) rather than store and fail to
            # answer.
            self.trace_event("A-ASSOCIATE-RJ", f"Maximum Length {peer_max} cannot carry a PDV")
            self.conn.send_pdu(AssociateRJ(result=RejectResult.PERMANENT,
                                           source=RejectSource.SERVICE_USER,
                                           reason=RejectReason.NO_REASON_GIVEN))
            self.state = Action.AE_6.branches[REJECT].value
            self._arm("artim")
            self._finish("rejected")
            return
        self.state = Action.AE_6.branches[ACCEPT].value  # Sta3: the local user decides
        answer = self.handler.negotiate(self, pdu, findings)
        if isinstance(answer, AssociateAC):
            self._local(Event.EVT7)  # AE-7: send A-ASSOCIATE-AC -> Sta6
            self._accept(answer)
        elif isinstance(answer, AssociateRJ):
            self._local(Event.EVT8)  # AE-8: send A-ASSOCIATE-RJ, start ARTIM -> Sta13
            self.conn.send_pdu(answer)
            self._arm("artim")
            self._finish("rejected")
        elif answer is None:
            # Policy outside the table (refuse_tcp_when_full): close without any PDU.
            self.state = "Sta1"
            self._finish("closed without answer")
            self.conn.close()
        else:
            self.abort(answer.source, answer.reason, how="aborted during negotiation")

    def _local(self, event: Event) -> Action | None:
        """A local event (Evt7-Evt18) through Table 9-10: the new state, and the action, or
        None where the table has no cell (nothing to do in this state)."""
        got = _LOCAL.get((self.state, event))
        if got is None:
            return None
        action, nxt = got
        self.state = nxt
        return action

    def _accept(self, ac: AssociateAC) -> None:
        assert self.rq is not None
        self.ac = ac
        proposed = {pc.context_id: str(pc.abstract_syntax) for pc in self.rq.presentation_contexts}
        self.contexts = {pc.context_id: (proposed.get(pc.context_id, ""), str(pc.transfer_syntax))
                         for pc in ac.presentation_contexts if pc.result == 0}
        self.peer_max_pdu = self.rq.max_pdu_length or 0
        self.conn.framer.max_length = self._established_limit
        self.conn.send_pdu(ac)
        self._arm("idle")

    def data_fast(self, context_id: int, last: bool, fragment: memoryview, length: int) -> bool:
        """The connection's ``data_hook``: a clean one-PDV data set P-DATA-TF (most of the
        PDUs of a large store) straight to the handler, with the checks of
        :meth:`pdu_received` (Table 9-10: DT-2 in Sta6) and :meth:`_pdata` that apply to it;
        False sends anything else (other states, over the limit, unknown context,
        misframed) the usual way.
        Keep in step with those two methods."""
        if self.state != "Sta6":  # DT-2 only in Sta6; Sta8 + P-DATA-TF is AA-8
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
            self.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                       how=f"P-DATA-TF of {item.length} bytes over our maximum {limit}")
            return
        broken = [f for f in item.findings if f.severity == "error"]
        if broken and not self.config.abort_on_bad_pdu:
            self.trace_event("PDU ignored", "invalid P-DATA-TF")
            return
        if broken:
            # Lengths that do not add up (PS3.8 9.3.5): the stream cannot be trusted.
            self.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                       how=f"invalid P-DATA-TF: {broken[0].field}: {broken[0].found}")
            return
        for pdv in pdu.pdvs:
            if pdv.context_id not in self.contexts and not self.config.accept_unaccepted_context:
                self.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                           how=f"PDV on presentation context {pdv.context_id}, which was not "
                               "accepted")
                return
            event = self.assembler.feed(pdv)
            if event is None:
                continue
            if isinstance(event, CommandComplete):
                decoded = decode_command(event.command)
                has_data = decoded.elements.get(COMMAND_DATA_SET_TYPE, NO_DATA_SET) != NO_DATA_SET
                self.assembler.expect_data(has_data)
                self.handler.on_command(self, event.context_id, decoded,
                                        [*event.findings, *decoded.findings])
            elif isinstance(event, DataFragment):
                self.handler.on_data(self, event.context_id, event.data, event.last)
            elif isinstance(event, Misframed):
                if self.config.lenient_framing:
                    self.trace_event("PDV ignored", "; ".join(f.found for f in event.findings))
                    continue
                self.abort(reason=AbortReason.UNEXPECTED_PDU_PARAMETER,
                           how="; ".join(f.found for f in event.findings))
            if self.ended is not None:
                return

    def _release_rq(self) -> None:
        self.state = "Sta8"  # AR-2: A-RELEASE indication to the local user
        if self.handler.on_release(self):
            self.release_rp()

    def release_rp(self) -> None:
        if self.ended is not None or not self.conn.writable:
            return
        if self._local(Event.EVT14) is None:  # AR-4 (Sta8): send A-RELEASE-RP -> Sta13
            return
        self.conn.send_pdu(ReleaseRP())
        self._arm("artim")
        self._finish("released")

    # actions available to the handler ----------------------------------------------------
    async def send_message(self, context_id: int, command: bytes,
                           data: bytes | memoryview | None = None, *, max_pdu: int | None = None,
                           packing: Packing = "separate") -> None:
        limit = self.peer_max_pdu if max_pdu is None else max_pdu
        for pdu in pack(message_pdvs(context_id, command, data, limit), limit, packing):
            if not self.conn.writable:
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
            if not self.conn.writable:  # reset while sending a response cut very small
                return
            self.conn.send_pdu(pdu)

    def abort(self, source: int = AbortSource.SERVICE_PROVIDER,
              reason: int = AbortReason.NOT_SPECIFIED, *, how: str = "aborted",
              event: Action | None = None) -> None:
        """Send A-ABORT and close: Evt15 (AA-1) when the local user asks, or the AA-1/AA-7/
        AA-8 that ``pdu_received`` found in Table 9-10 (``event``); either way Sta13."""
        if not self.conn.writable:
            # Closed, reset, or closing already: the PDU could go nowhere. AA-7 in Sta13 (a
            # burst of bad PDUs read after our first A-ABORT, the peer reset meanwhile) would
            # otherwise write again and again to a lost transport, which asyncio logs.
            self._finish(how)
            return
        self.trace_event("A-ABORT by us", how)
        with contextlib.suppress(Exception):
            self.conn.send_pdu(Abort(source, reason))
        if event is None:
            self._local(Event.EVT15)
        self.state = "Sta13"  # every A-ABORT sending action ends in Sta13
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
        how = "closed before association" if self.state == "Sta2" else "closed"
        self._local(Event.EVT17)  # AA-4 / AA-5 / AR-5: Sta1
        self.state = "Sta1"
        self._finish(how)


def __getattr__(name: str) -> Any:
    # AcceptorServer moved to acceptor_server.py (which imports this module): given here on
    # first use for code that imports it from its old place.
    if name == "AcceptorServer":
        from harness.net.acceptor_server import AcceptorServer

        return AcceptorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
