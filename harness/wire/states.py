"""The DICOM Upper Layer state machine of PS3.8 9.2, as data.

States (9.2.1, Tables 9-1 to 9-5), events (the rows of Table 9-10), actions (9.2.2, Tables 9-6
to 9-9) and the state transition table (9.2.3, Table 9-10) are kept here as data, in the
manner of h11's ``_state.py``: nothing in this module does I/O or runs a timer. The network
layer feeds events in and performs the returned action; scenario code asks the same table what
a PDU received in a given state means ("A-ASSOCIATE-AC in Sta6 -> AA-8") to explain what a
peer got wrong.

Two actions have a next state that depends on a condition the table cannot see:

- AE-6 (an A-ASSOCIATE-RQ arrives in Sta2): ``"accept"`` -> Sta3 when the UL service-provider
  finds the request acceptable, ``"reject"`` -> Sta13 (it sends an A-ASSOCIATE-RJ itself).
- AR-8 (release collision, A-RELEASE-RQ received in Sta7): ``"requestor"`` -> Sta9 on the
  association-requestor, ``"acceptor"`` -> Sta10 on the association-acceptor.

Callers name the branch, or pass ``accepted=`` / ``association_requestor=``;
``UpperLayerStateMachine`` resolves AR-8 from its own role.

Size (about 750 lines): most of it is PS3.8's tables themselves (13 states, 19 events, 28
actions, the Table 9-10 transitions), kept together so each row can be checked against the
standard in one place; the functions after them only query those tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple

from harness.wire.constants import ABORT_REASONS, PDUType
from harness.wire.findings import Finding

__all__ = [
    "ACCEPT",
    "ACCEPTOR",
    "ARTIM_STATES",
    "REJECT",
    "REQUESTOR",
    "TRANSITIONS",
    "AbortAdvice",
    "Action",
    "BranchRequired",
    "Event",
    "InvalidTransition",
    "Role",
    "State",
    "StateMachineError",
    "UpperLayerStateMachine",
    "abort_advice",
    "describe_transition",
    "expected_pdu_events",
    "expects_artim",
    "is_defined",
    "pdu_event",
    "transition",
    "unexpected_pdu_finding",
]

SECTION = "PS3.8 9.2.3 Table 9-10"

Role = Literal["requestor", "acceptor"]

# Branch names of the two conditional actions.
ACCEPT = "accept"
REJECT = "reject"
REQUESTOR = "requestor"
ACCEPTOR = "acceptor"


class State(Enum):
    """Machine states Sta1..Sta13 (PS3.8 9.2.1)."""

    STA1 = "Sta1"
    STA2 = "Sta2"
    STA3 = "Sta3"
    STA4 = "Sta4"
    STA5 = "Sta5"
    STA6 = "Sta6"
    STA7 = "Sta7"
    STA8 = "Sta8"
    STA9 = "Sta9"
    STA10 = "Sta10"
    STA11 = "Sta11"
    STA12 = "Sta12"
    STA13 = "Sta13"

    @property
    def label(self) -> str:
        return self.value

    @property
    def number(self) -> int:
        return int(self.value[3:])

    @property
    def description(self) -> str:
        return _STATE_TEXT[self][1]

    @property
    def table(self) -> str:
        """The PS3.8 table defining the state ("9-1" .. "9-5")."""
        return _STATE_TEXT[self][0]

    @property
    def group(self) -> str:
        return _STATE_GROUP[_STATE_TEXT[self][0]]

    def __str__(self) -> str:
        return self.value


_STATE_GROUP = {
    "9-1": "No association",
    "9-2": "Association establishment",
    "9-3": "Data transfer",
    "9-4": "Association release",
    "9-5": "Waiting for transport connection close",
}

_STATE_TEXT: dict[State, tuple[str, str]] = {
    State.STA1: ("9-1", "Idle"),
    State.STA2: ("9-2", "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)"),
    State.STA3: ("9-2", "Awaiting local A-ASSOCIATE response primitive (from local user)"),
    State.STA4: (
        "9-2",
        "Awaiting transport connection opening to complete (from local transport service)",
    ),
    State.STA5: ("9-2", "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU"),
    State.STA6: ("9-3", "Association established and ready for data transfer"),
    State.STA7: ("9-4", "Awaiting A-RELEASE-RP PDU"),
    State.STA8: ("9-4", "Awaiting local A-RELEASE response primitive (from local user)"),
    State.STA9: (
        "9-4",
        "Release collision requestor side; awaiting A-RELEASE response (from local user)",
    ),
    State.STA10: ("9-4", "Release collision acceptor side; awaiting A-RELEASE-RP PDU"),
    State.STA11: ("9-4", "Release collision requestor side; awaiting A-RELEASE-RP PDU"),
    State.STA12: (
        "9-4",
        "Release collision acceptor side; awaiting A-RELEASE response primitive (from local user)",
    ),
    State.STA13: (
        "9-5",
        "Awaiting Transport Connection Close Indication (Association no longer exists)",
    ),
}

EventSource = Literal["local-user", "transport", "pdu", "timer"]


class Event(Enum):
    """Events Evt1..Evt19 (the rows of PS3.8 Table 9-10)."""

    EVT1 = "Evt1"
    EVT2 = "Evt2"
    EVT3 = "Evt3"
    EVT4 = "Evt4"
    EVT5 = "Evt5"
    EVT6 = "Evt6"
    EVT7 = "Evt7"
    EVT8 = "Evt8"
    EVT9 = "Evt9"
    EVT10 = "Evt10"
    EVT11 = "Evt11"
    EVT12 = "Evt12"
    EVT13 = "Evt13"
    EVT14 = "Evt14"
    EVT15 = "Evt15"
    EVT16 = "Evt16"
    EVT17 = "Evt17"
    EVT18 = "Evt18"
    EVT19 = "Evt19"

    @property
    def label(self) -> str:
        return self.value

    @property
    def number(self) -> int:
        return int(self.value[3:])

    @property
    def description(self) -> str:
        return _EVENT_TEXT[self][1]

    @property
    def source(self) -> EventSource:
        """Where the event comes from: the local user, the transport, a received PDU, ARTIM."""
        return _EVENT_TEXT[self][0]

    @property
    def is_received_pdu(self) -> bool:
        return _EVENT_TEXT[self][0] == "pdu"

    @property
    def pdu_type(self) -> PDUType | None:
        """The PDU type whose arrival raises this event (``None`` for Evt19 and non-PDU events)."""
        return _EVENT_PDU.get(self)

    def __str__(self) -> str:
        return self.value


_EVENT_TEXT: dict[Event, tuple[EventSource, str]] = {
    Event.EVT1: ("local-user", "A-ASSOCIATE Request (local user)"),
    Event.EVT2: ("transport", "Transport Conn. Confirm (local transport service)"),
    Event.EVT3: ("pdu", "A-ASSOCIATE-AC PDU (received on transport connection)"),
    Event.EVT4: ("pdu", "A-ASSOCIATE-RJ PDU (received on transport connection)"),
    Event.EVT5: ("transport", "Transport Connection Indication (local transport service)"),
    Event.EVT6: ("pdu", "A-ASSOCIATE-RQ PDU (received on transport connection)"),
    Event.EVT7: ("local-user", "A-ASSOCIATE response primitive (accept)"),
    Event.EVT8: ("local-user", "A-ASSOCIATE response primitive (reject)"),
    Event.EVT9: ("local-user", "P-DATA request primitive"),
    Event.EVT10: ("pdu", "P-DATA-TF PDU"),
    Event.EVT11: ("local-user", "A-RELEASE Request primitive"),
    Event.EVT12: ("pdu", "A-RELEASE-RQ PDU (received on open transport connection)"),
    Event.EVT13: ("pdu", "A-RELEASE-RP PDU (received on transport connection)"),
    Event.EVT14: ("local-user", "A-RELEASE Response primitive"),
    Event.EVT15: ("local-user", "A-ABORT Request primitive"),
    Event.EVT16: ("pdu", "A-ABORT PDU (received on open transport connection)"),
    Event.EVT17: ("transport", "Transport connection closed indication (local transport service)"),
    Event.EVT18: ("timer", "ARTIM timer expired (Association reject/release timer)"),
    Event.EVT19: ("pdu", "Unrecognized or invalid PDU received"),
}

_EVENT_PDU: dict[Event, PDUType] = {
    Event.EVT3: PDUType.A_ASSOCIATE_AC,
    Event.EVT4: PDUType.A_ASSOCIATE_RJ,
    Event.EVT6: PDUType.A_ASSOCIATE_RQ,
    Event.EVT10: PDUType.P_DATA_TF,
    Event.EVT12: PDUType.A_RELEASE_RQ,
    Event.EVT13: PDUType.A_RELEASE_RP,
    Event.EVT16: PDUType.A_ABORT,
}
_PDU_EVENT: dict[int, Event] = {int(pdu): event for event, pdu in _EVENT_PDU.items()}


class Action(Enum):
    """Actions of PS3.8 9.2.2 (Tables 9-6 to 9-9)."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"

    @property
    def label(self) -> str:
        return self.value

    @property
    def table(self) -> str:
        return _ACTIONS[self].table

    @property
    def description(self) -> str:
        return _ACTIONS[self].description

    @property
    def next_state(self) -> State | None:
        """The next state the action fixes; ``None`` for the conditional AE-6 and AR-8."""
        return _ACTIONS[self].next_state

    @property
    def branches(self) -> Mapping[str, State]:
        """Branch name -> next state for a conditional action; empty otherwise."""
        return dict(_ACTIONS[self].branches)

    @property
    def next_states(self) -> tuple[State, ...]:
        """Every state the action can lead to (one, or one per branch)."""
        spec = _ACTIONS[self]
        if spec.next_state is not None:
            return (spec.next_state,)
        return tuple(state for _, state in spec.branches)

    @property
    def is_conditional(self) -> bool:
        return _ACTIONS[self].next_state is None

    @property
    def note(self) -> str:
        return _ACTIONS[self].note

    @property
    def closes_transport(self) -> bool:
        """The action itself closes the transport connection (AE-4, AR-3, AA-2, AA-3)."""
        return _ACTIONS[self].closes_transport

    @property
    def abort_source(self) -> int | None:
        """A-ABORT source the action sends: 0 service-user (AA-1), 2 service-provider (AA-8)."""
        return _ACTIONS[self].abort_source

    def sends(self, branch: str | None = None) -> PDUType | None:
        """The PDU this action writes on the connection, if any (AE-6 only on ``"reject"``)."""
        spec = _ACTIONS[self]
        if spec.sends_on_branch is not None and branch != spec.sends_on_branch:
            return None
        return spec.sends

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class _ActionSpec:
    table: str
    description: str
    next_state: State | None
    branches: tuple[tuple[str, State], ...] = ()
    note: str = ""
    sends: PDUType | None = None
    sends_on_branch: str | None = None
    closes_transport: bool = False
    abort_source: int | None = None


_S = State
_P = PDUType

_ACTIONS: dict[Action, _ActionSpec] = {
    # Table 9-6, association establishment related actions.
    Action.AE_1: _ActionSpec(
        "9-6", "Issue TRANSPORT CONNECT request primitive to local transport service", _S.STA4
    ),
    Action.AE_2: _ActionSpec("9-6", "Send A-ASSOCIATE-RQ-PDU", _S.STA5, sends=_P.A_ASSOCIATE_RQ),
    Action.AE_3: _ActionSpec("9-6", "Issue A-ASSOCIATE confirmation (accept) primitive", _S.STA6),
    Action.AE_4: _ActionSpec(
        "9-6",
        "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
        _S.STA1,
        closes_transport=True,
    ),
    Action.AE_5: _ActionSpec(
        "9-6", "Issue Transport connection response primitive; start ARTIM timer", _S.STA2
    ),
    Action.AE_6: _ActionSpec(
        "9-6",
        "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue "
        "A-ASSOCIATE indication primitive (next state is Sta3); otherwise: issue "
        "A-ASSOCIATE-RJ-PDU and start ARTIM timer (next state is Sta13)",
        None,
        branches=((ACCEPT, _S.STA3), (REJECT, _S.STA13)),
        note="Conditional: 'accept' when the UL service-provider finds the A-ASSOCIATE-RQ "
        "acceptable (-> Sta3, the local user then answers with Evt7/Evt8), 'reject' when the "
        "provider itself rejects it with an A-ASSOCIATE-RJ (-> Sta13).",
        sends=_P.A_ASSOCIATE_RJ,
        sends_on_branch=REJECT,
    ),
    Action.AE_7: _ActionSpec("9-6", "Send A-ASSOCIATE-AC PDU", _S.STA6, sends=_P.A_ASSOCIATE_AC),
    Action.AE_8: _ActionSpec(
        "9-6", "Send A-ASSOCIATE-RJ PDU and start ARTIM timer", _S.STA13, sends=_P.A_ASSOCIATE_RJ
    ),
    # Table 9-7, data transfer related actions.
    Action.DT_1: _ActionSpec("9-7", "Send P-DATA-TF PDU", _S.STA6, sends=_P.P_DATA_TF),
    Action.DT_2: _ActionSpec("9-7", "Send P-DATA indication primitive", _S.STA6),
    # Table 9-8, association release related actions.
    Action.AR_1: _ActionSpec("9-8", "Send A-RELEASE-RQ PDU", _S.STA7, sends=_P.A_RELEASE_RQ),
    Action.AR_2: _ActionSpec("9-8", "Issue A-RELEASE indication primitive", _S.STA8),
    Action.AR_3: _ActionSpec(
        "9-8",
        "Issue A-RELEASE confirmation primitive, and close transport connection",
        _S.STA1,
        closes_transport=True,
    ),
    Action.AR_4: _ActionSpec(
        "9-8", "Issue A-RELEASE-RP PDU and start ARTIM timer", _S.STA13, sends=_P.A_RELEASE_RP
    ),
    Action.AR_5: _ActionSpec("9-8", "Stop ARTIM timer", _S.STA1),
    Action.AR_6: _ActionSpec("9-8", "Issue P-DATA indication", _S.STA7),
    Action.AR_7: _ActionSpec("9-8", "Issue P-DATA-TF PDU", _S.STA8, sends=_P.P_DATA_TF),
    Action.AR_8: _ActionSpec(
        "9-8",
        "Issue A-RELEASE indication (release collision): if association-requestor, next state "
        "is Sta9; if not, next state is Sta10",
        None,
        branches=((REQUESTOR, _S.STA9), (ACCEPTOR, _S.STA10)),
        note="Conditional on the local role: 'requestor' (association-requestor) -> Sta9, "
        "'acceptor' -> Sta10.",
    ),
    Action.AR_9: _ActionSpec("9-8", "Send A-RELEASE-RP PDU", _S.STA11, sends=_P.A_RELEASE_RP),
    Action.AR_10: _ActionSpec("9-8", "Issue A-RELEASE confirmation primitive", _S.STA12),
    # Table 9-9, association abort related actions.
    Action.AA_1: _ActionSpec(
        "9-9",
        "Send A-ABORT PDU (service-user source) and start (or restart if already started) "
        "ARTIM timer",
        _S.STA13,
        sends=_P.A_ABORT,
        abort_source=0,
    ),
    Action.AA_2: _ActionSpec(
        "9-9",
        "Stop ARTIM timer if running. Close transport connection",
        _S.STA1,
        closes_transport=True,
    ),
    Action.AA_3: _ActionSpec(
        "9-9",
        "If (service-user initiated abort): issue A-ABORT indication and close transport "
        "connection; otherwise (service-provider initiated abort): issue A-P-ABORT indication "
        "and close transport connection",
        _S.STA1,
        note="The indication depends on the source of the received A-ABORT; the next state "
        "does not.",
        closes_transport=True,
    ),
    Action.AA_4: _ActionSpec("9-9", "Issue A-P-ABORT indication primitive", _S.STA1),
    Action.AA_5: _ActionSpec("9-9", "Stop ARTIM timer", _S.STA1),
    Action.AA_6: _ActionSpec("9-9", "Ignore PDU", _S.STA13),
    Action.AA_7: _ActionSpec(
        "9-9",
        "Send A-ABORT PDU",
        _S.STA13,
        note="The standard does not name the abort source here; the association no longer "
        "exists, so it is the service-provider answering a PDU it cannot accept.",
        sends=_P.A_ABORT,
    ),
    Action.AA_8: _ActionSpec(
        "9-9",
        "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start "
        "ARTIM timer",
        _S.STA13,
        sends=_P.A_ABORT,
        abort_source=2,
    ),
}

# PS3.8 Table 9-10, laid out as in the standard: one row per event, one column per state;
# "." is a blank cell (the event cannot occur in that state, or the standard defines nothing).
_TABLE_9_10 = """
        Sta1  Sta2  Sta3  Sta4  Sta5  Sta6  Sta7  Sta8  Sta9  Sta10 Sta11 Sta12 Sta13
Evt1    AE-1  .     .     .     .     .     .     .     .     .     .     .     .
Evt2    .     .     .     AE-2  .     .     .     .     .     .     .     .     .
Evt3    .     AA-1  AA-8  .     AE-3  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt4    .     AA-1  AA-8  .     AE-4  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt5    AE-5  .     .     .     .     .     .     .     .     .     .     .     .
Evt6    .     AE-6  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
Evt7    .     .     AE-7  .     .     .     .     .     .     .     .     .     .
Evt8    .     .     AE-8  .     .     .     .     .     .     .     .     .     .
Evt9    .     .     .     .     .     DT-1  .     AR-7  .     .     .     .     .
Evt10   .     AA-1  AA-8  .     AA-8  DT-2  AR-6  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt11   .     .     .     .     .     AR-1  .     .     .     .     .     .     .
Evt12   .     AA-1  AA-8  .     AA-8  AR-2  AR-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt13   .     AA-1  AA-8  .     AA-8  AA-8  AR-3  AA-8  AA-8  AR-10 AR-3  AA-8  AA-6
Evt14   .     .     .     .     .     .     .     AR-4  AR-9  .     .     AR-4  .
Evt15   .     .     AA-1  AA-2  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  .
Evt16   .     AA-2  AA-3  .     AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-2
Evt17   .     AA-5  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AR-5
Evt18   .     AA-2  .     .     .     .     .     .     .     .     .     .     AA-2
Evt19   .     AA-1  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
"""


def _parse_table(text: str) -> dict[tuple[State, Event], Action]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    states = [State(label) for label in header]
    table: dict[tuple[State, Event], Action] = {}
    for row in rows:
        event, cells = Event(row[0]), row[1:]
        if len(cells) != len(states):
            raise AssertionError(f"Table 9-10 row {event} has {len(cells)} cells")
        for state, cell in zip(states, cells, strict=True):
            if cell != ".":
                table[(state, event)] = Action(cell)
    return table


TRANSITIONS: dict[tuple[State, Event], Action] = _parse_table(_TABLE_9_10)
"""Every non-blank cell of PS3.8 Table 9-10: (state, event) -> action."""

ARTIM_STATES: frozenset[State] = frozenset({State.STA2, State.STA13})
"""States in which the ARTIM timer runs (started by AE-5, AE-6 reject, AE-8, AR-4, AA-1, AA-8)."""


class StateMachineError(Exception):
    """Base class of the errors raised by this module."""


class InvalidTransition(StateMachineError):
    """The event has no action in this state: a blank cell of Table 9-10."""

    def __init__(self, state: State, event: Event, detail: str = "") -> None:
        self.state = state
        self.event = event
        message = (
            f"{event.value} ({event.description}) is not defined in {state.value} "
            f"({state.description}): blank cell of {SECTION}"
        )
        super().__init__(f"{message}; {detail}" if detail else message)


class BranchRequired(StateMachineError, ValueError):
    """A conditional action (AE-6, AR-8) was reached without a usable branch."""

    def __init__(self, action: Action, branch: str | None) -> None:
        self.action = action
        self.branch = branch
        options = ", ".join(repr(name) for name in action.branches)
        given = "no branch" if branch is None else f"branch {branch!r}"
        super().__init__(f"{action.value} is conditional ({options}); got {given}")


def is_defined(state: State, event: Event) -> bool:
    """True when Table 9-10 has an action for ``event`` in ``state``."""
    return (state, event) in TRANSITIONS


def _resolve_branch(
    action: Action,
    branch: str | None,
    accepted: bool | None,
    association_requestor: bool | None,
) -> State:
    spec = _ACTIONS[action]
    if spec.next_state is not None:
        # Conditions only matter to the conditional actions; callers may pass them always.
        return spec.next_state
    if branch is None:
        if action is Action.AE_6 and accepted is not None:
            branch = ACCEPT if accepted else REJECT
        elif action is Action.AR_8 and association_requestor is not None:
            branch = REQUESTOR if association_requestor else ACCEPTOR
    for name, state in spec.branches:
        if name == branch:
            return state
    raise BranchRequired(action, branch)


def transition(
    state: State,
    event: Event,
    *,
    branch: str | None = None,
    accepted: bool | None = None,
    association_requestor: bool | None = None,
) -> tuple[Action, State]:
    """Look up Table 9-10: the action for ``event`` in ``state`` and the state it leads to.

    For AE-6 give ``branch="accept"|"reject"`` or ``accepted=``; for AR-8 give
    ``branch="requestor"|"acceptor"`` or ``association_requestor=``. A blank cell raises
    ``InvalidTransition``; a conditional action without a branch raises ``BranchRequired``.
    """
    try:
        action = TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None
    return action, _resolve_branch(action, branch, accepted, association_requestor)


def pdu_event(pdu_type: int, *, decodable: bool = True) -> Event:
    """The event raised by receiving a PDU of ``pdu_type`` (Evt19 if unknown or undecodable)."""
    event = _PDU_EVENT.get(pdu_type)
    if event is None or not decodable:
        return Event.EVT19
    return event


def expects_artim(state: State) -> bool:
    """True in the states where ARTIM runs (Sta2, Sta13): the peer is on the clock."""
    return state in ARTIM_STATES


# Actions after which a received PDU has been handled as the protocol intends; the rest
# (AA-1, AA-6, AA-7, AA-8) are the table's reaction to a PDU that should not have come.
_ERROR_ACTIONS = frozenset({Action.AA_1, Action.AA_6, Action.AA_7, Action.AA_8})


def expected_pdu_events(state: State) -> tuple[Event, ...]:
    """Received-PDU events that ``state`` handles normally (e.g. Sta6: Evt10, Evt12, Evt16)."""
    return tuple(
        event
        for event in Event
        if event.is_received_pdu
        and (action := TRANSITIONS.get((state, event))) is not None
        and action not in _ERROR_ACTIONS
    )


class AbortAdvice(NamedTuple):
    """What PS3.8 says to send when a PDU arrives where it should not."""

    action: Action
    source: int  # 0 service-user, 2 service-provider (PS3.8 9.3.8)
    reason: int  # Table 9-26: 0 not specified, 1 unrecognized PDU, 2 unexpected PDU, ...

    @property
    def reason_text(self) -> str:
        return ABORT_REASONS.get(self.reason, f"reserved ({self.reason})")


def abort_advice(
    state: State, pdu_type: int, *, decodable: bool = True, invalid_reason: int = 6
) -> AbortAdvice | None:
    """The A-ABORT PS3.8 prescribes for a PDU of ``pdu_type`` received in ``state``, if any.

    AA-8 (and AA-7 in Sta13) are provider aborts: reason 1 (unrecognized-PDU) for an unknown
    PDU type, 2 (unexpected-PDU) for a known PDU in the wrong state, and ``invalid_reason``
    (default 6, invalid-PDU-parameter-value; a decoder may know 4 or 5 is closer) for a known
    type that could not be decoded. AA-1 (Sta2) is a service-user abort, whose reason is 0.
    Returns ``None`` when the PDU is handled normally, ignored (AA-6) or cannot occur.
    """
    event = pdu_event(pdu_type, decodable=decodable)
    action = TRANSITIONS.get((state, event))
    if action is Action.AA_1:
        return AbortAdvice(action, 0, 0)
    if action not in (Action.AA_7, Action.AA_8):
        return None
    if pdu_type not in _PDU_EVENT:
        reason = 1
    elif not decodable:
        reason = invalid_reason
    else:
        reason = 2
    return AbortAdvice(action, 2, reason)


def describe_transition(
    state: State, event: Event, action: Action, next_state: State | None = None
) -> str:
    """One line for traces and findings, e.g. ``Sta6 + Evt3 (A-ASSOCIATE-AC ...) -> AA-8 ...``."""
    text = f"{state.value} + {event.value} ({event.description}) -> {action.value}"
    if next_state is not None:
        text += f" -> {next_state.value}"
    return text


def _pdu_name(pdu_type: int) -> str:
    return PDUType(pdu_type).name.replace("_", "-")


def unexpected_pdu_finding(
    state: State, pdu_type: int, *, decodable: bool = True, offset: int | None = 0
) -> Finding | None:
    """A ``Finding`` when a PDU received in ``state`` is not one the state expects."""
    event = pdu_event(pdu_type, decodable=decodable)
    action = TRANSITIONS.get((state, event))
    if action is not None and action not in _ERROR_ACTIONS:
        return None
    wanted = [_pdu_name(e.pdu_type) for e in expected_pdu_events(state) if e.pdu_type is not None]
    found = _pdu_name(pdu_type) if pdu_type in _PDU_EVENT else f"PDU type 0x{pdu_type:02X}"
    if event is Event.EVT19:
        found += " (unrecognized)" if pdu_type not in _PDU_EVENT else " (undecodable)"
    where = f"{state.value} ({state.description})"
    result = f"{action.value}: {action.description}" if action else "blank cell"
    return Finding(
        offset,
        "PDU-type",
        f"in {where}: " + (" or ".join(wanted) if wanted else "no PDU"),
        found,
        f"{SECTION}, {state.value} + {event.value} -> {result}",
    )


class UpperLayerStateMachine:
    """One association endpoint's Upper Layer state, driven by events (sans-I/O).

    ``feed`` looks the event up in Table 9-10, moves to the next state and returns the action
    for the caller to perform. An undefined event raises ``InvalidTransition`` and leaves the
    state as it was. AR-8 (release collision) is resolved from ``role``; AE-6 needs
    ``accepted=`` (or ``branch=``).
    """

    def __init__(self, role: Role) -> None:
        if role not in (REQUESTOR, ACCEPTOR):
            raise ValueError(f"role must be 'requestor' or 'acceptor', not {role!r}")
        self.role: Role = role
        self.state: State = State.STA1
        self.history: list[tuple[State, Event, Action, State]] = []

    def __repr__(self) -> str:
        return f"<UpperLayerStateMachine {self.role} {self.state.value}>"

    @property
    def artim_running(self) -> bool:
        return expects_artim(self.state)

    def can_feed(self, event: Event) -> bool:
        return is_defined(self.state, event)

    def feed(
        self, event: Event, *, branch: str | None = None, accepted: bool | None = None
    ) -> Action:
        """Apply ``event``; return the action to perform. The state advances only on success."""
        action, next_state = transition(
            self.state,
            event,
            branch=branch,
            accepted=accepted,
            association_requestor=self.role == REQUESTOR,
        )
        self.history.append((self.state, event, action, next_state))
        self.state = next_state
        return action

    def feed_pdu(self, pdu_type: int, *, decodable: bool = True) -> Action:
        """Apply the event raised by receiving a PDU of ``pdu_type`` (see ``pdu_event``)."""
        return self.feed(pdu_event(pdu_type, decodable=decodable))

    def abort_advice(
        self, pdu_type: int, *, decodable: bool = True, invalid_reason: int = 6
    ) -> AbortAdvice | None:
        """What to send if a PDU of ``pdu_type`` arrived now (see module ``abort_advice``)."""
        return abort_advice(
            self.state, pdu_type, decodable=decodable, invalid_reason=invalid_reason
        )

    def abort_reason(self, pdu_type: int, *, decodable: bool = True) -> int | None:
        """Just the A-ABORT reason PS3.8 suggests for ``pdu_type`` now (None: no abort)."""
        advice = self.abort_advice(pdu_type, decodable=decodable)
        return None if advice is None else advice.reason

    def unexpected_pdu_finding(self, pdu_type: int, *, decodable: bool = True) -> Finding | None:
        return unexpected_pdu_finding(self.state, pdu_type, decodable=decodable)

    def trace(self) -> list[str]:
        """The history as readable lines."""
        return [describe_transition(*step) for step in self.history]
