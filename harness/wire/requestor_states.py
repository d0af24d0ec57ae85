"""The association-requestor's PS3.8 state, followed through Table 9-10 (sans-I/O).

The simulated SCUs break the protocol on purpose, so here the table never blocks a send: it
only follows what the requestor did and classifies what the SCP sent. Every PDU sent or
received is an event of Table 9-10 (``harness.wire.states``); the state moves as the table
says. A received PDU whose action is AA-1, AA-7 or AA-8 is one the standard does not allow
in that state (a P-DATA-TF before the A-ASSOCIATE-AC, a second A-ASSOCIATE-AC, an
A-RELEASE-RP no release asked for): ``received`` returns a finding citing the cell.

Where the table has no cell for what happened (our own fault: P-DATA-TF before the
A-ASSOCIATE-AC, a second A-RELEASE-RQ, raw bytes, a FIN) the state becomes unknown (``None``)
and nothing received afterwards is judged: the SCP's answer to our fault is not its fault.
AA-6 (Sta13, ignore) is no finding either: PDUs the SCP sent before our A-ABORT reached it
cross it on the wire. An undecodable or unknown PDU (Evt19) moves the state but is reported
by the validating decoder, not here.
"""

from __future__ import annotations

from harness.wire.constants import PDUType
from harness.wire.findings import Finding
from harness.wire.states import (
    Action,
    Event,
    State,
    StateMachineError,
    pdu_event,
    transition,
    unexpected_pdu_finding,
)

__all__ = ["PEER_FAULT_ACTIONS", "RequestorStates"]

# PDUs the requestor sends, as the local events of Table 9-10 that send them. The
# A-ASSOCIATE-RQ is not here: it is AE-2, the action of Evt2 (see ``connected``).
_SENT_EVENT: dict[int, Event] = {
    PDUType.A_ASSOCIATE_AC: Event.EVT7,
    PDUType.A_ASSOCIATE_RJ: Event.EVT8,
    PDUType.P_DATA_TF: Event.EVT9,
    PDUType.A_RELEASE_RQ: Event.EVT11,
    PDUType.A_RELEASE_RP: Event.EVT14,
    PDUType.A_ABORT: Event.EVT15,
}

PEER_FAULT_ACTIONS = frozenset({Action.AA_1, Action.AA_7, Action.AA_8})
"""The table's answers to a PDU that must not arrive in that state (AA-6 is left out: it
ignores PDUs crossing our A-ABORT)."""


class RequestorStates:
    """One association-requestor's Table 9-10 state; ``None`` once it cannot be known."""

    def __init__(self) -> None:
        self.state: State | None = State.STA1
        self._rq_sent = False
        # The state changes: (state, event, action, next state).
        self.history: list[tuple[State, Event, Action, State]] = []

    def __repr__(self) -> str:
        return f"<RequestorStates {self.state.value if self.state else 'unknown'}>"

    def _feed(self, event: Event) -> Action | None:
        """Follow the table; a blank cell makes the state unknown."""
        if self.state is None:
            return None
        try:
            action, after = transition(self.state, event, association_requestor=True)
        except StateMachineError:  # a blank cell (InvalidTransition)
            self.state = None
            return None
        if after is not self.state:  # not every P-DATA-TF: long associations stay small
            self.history.append((self.state, event, action, after))
        self.state = after
        return action

    # what the requestor did ---------------------------------------------------------------
    def connected(self) -> None:
        """TCP connected: Evt1 (AE-1, Sta4) and Evt2 (AE-2, Sta5). AE-2 sends the
        A-ASSOCIATE-RQ; the script sends it next, and to the SCP a slow requestor looks the
        same as one whose RQ is on its way."""
        self._feed(Event.EVT1)
        self._feed(Event.EVT2)

    def sent(self, pdu_type: int) -> None:
        """A PDU of ``pdu_type`` was sent (whatever the state: faults are allowed)."""
        if pdu_type == PDUType.A_ASSOCIATE_RQ:
            if self.state is State.STA5 and not self._rq_sent:
                self._rq_sent = True  # AE-2's own PDU
            else:
                self.state = None  # no cell sends a second A-ASSOCIATE-RQ
            return
        event = _SENT_EVENT.get(pdu_type)
        if event is None:
            self.state = None
        else:
            self._feed(event)

    def unknown(self) -> None:
        """Something the table has no event for was done (raw bytes, FIN, RST)."""
        self.state = None

    # what the SCP did ---------------------------------------------------------------------
    def received(self, pdu_type: int, *, decodable: bool = True) -> Finding | None:
        """Classify a received PDU; a finding when Table 9-10 answers it with AA-1/7/8."""
        state = self.state
        if state is None:
            return None
        event = pdu_event(pdu_type, decodable=decodable)
        action = self._feed(event)  # the cell's action; None for a blank one
        if action not in PEER_FAULT_ACTIONS or event is Event.EVT19:
            return None
        return unexpected_pdu_finding(state, pdu_type, decodable=decodable)

    def closed(self) -> None:
        """The transport connection closed (Evt17)."""
        self._feed(Event.EVT17)
