"""Tests for harness.wire.states: the PS3.8 9.2 Upper Layer state machine as data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.wire.constants import PDUType
from harness.wire.states import (
    ACCEPT,
    ACCEPTOR,
    REJECT,
    REQUESTOR,
    TRANSITIONS,
    Action,
    BranchRequired,
    Event,
    InvalidTransition,
    State,
    UpperLayerStateMachine,
    abort_advice,
    describe_transition,
    expected_pdu_events,
    expects_artim,
    is_defined,
    pdu_event,
    transition,
    unexpected_pdu_finding,
)

S = State
E = Event
A = Action

# --- the table itself --------------------------------------------------------------------


def test_counts() -> None:
    assert len(State) == 13
    assert len(Event) == 19
    assert len(Action) == 28  # AE 8 + DT 2 + AR 10 + AA 8
    # Non-blank cells of Table 9-10, counted row by row from the standard.
    per_event = {
        1: 1, 2: 1, 3: 11, 4: 11, 5: 1, 6: 11, 7: 1, 8: 1, 9: 2, 10: 11,
        11: 1, 12: 11, 13: 11, 14: 3, 15: 10, 16: 11, 17: 12, 18: 2, 19: 11,
    }  # fmt: skip
    for event in Event:
        cells = [s for s in State if (s, event) in TRANSITIONS]
        assert len(cells) == per_event[event.number], event
    assert len(TRANSITIONS) == sum(per_event.values()) == 123


def test_every_action_is_used_and_every_state_reachable() -> None:
    assert set(TRANSITIONS.values()) == set(Action)
    reached = {s for a in TRANSITIONS.values() for s in a.next_states}
    assert reached == set(State)


def test_sta1_only_starts_an_association() -> None:
    assert {e for (s, e) in TRANSITIONS if s is S.STA1} == {E.EVT1, E.EVT5}


# Cells copied from PS3.8 Table 9-10 and the next states of Tables 9-6..9-9.
SPOT_CHECKS: list[tuple[State, Event, Action, State | None]] = [
    (S.STA1, E.EVT1, A.AE_1, S.STA4),
    (S.STA4, E.EVT2, A.AE_2, S.STA5),
    (S.STA5, E.EVT3, A.AE_3, S.STA6),
    (S.STA5, E.EVT4, A.AE_4, S.STA1),
    (S.STA1, E.EVT5, A.AE_5, S.STA2),
    (S.STA2, E.EVT6, A.AE_6, None),
    (S.STA3, E.EVT7, A.AE_7, S.STA6),
    (S.STA3, E.EVT8, A.AE_8, S.STA13),
    (S.STA6, E.EVT9, A.DT_1, S.STA6),
    (S.STA6, E.EVT10, A.DT_2, S.STA6),
    (S.STA6, E.EVT11, A.AR_1, S.STA7),
    (S.STA6, E.EVT12, A.AR_2, S.STA8),
    (S.STA7, E.EVT13, A.AR_3, S.STA1),
    (S.STA8, E.EVT14, A.AR_4, S.STA13),
    (S.STA13, E.EVT17, A.AR_5, S.STA1),
    (S.STA7, E.EVT10, A.AR_6, S.STA7),
    (S.STA8, E.EVT9, A.AR_7, S.STA8),
    (S.STA7, E.EVT12, A.AR_8, None),
    (S.STA9, E.EVT14, A.AR_9, S.STA11),
    (S.STA10, E.EVT13, A.AR_10, S.STA12),
    (S.STA11, E.EVT13, A.AR_3, S.STA1),
    (S.STA12, E.EVT14, A.AR_4, S.STA13),
    (S.STA2, E.EVT3, A.AA_1, S.STA13),
    (S.STA2, E.EVT10, A.AA_1, S.STA13),
    (S.STA2, E.EVT19, A.AA_1, S.STA13),
    (S.STA6, E.EVT15, A.AA_1, S.STA13),
    (S.STA4, E.EVT15, A.AA_2, S.STA1),
    (S.STA2, E.EVT16, A.AA_2, S.STA1),
    (S.STA2, E.EVT18, A.AA_2, S.STA1),
    (S.STA13, E.EVT16, A.AA_2, S.STA1),
    (S.STA13, E.EVT18, A.AA_2, S.STA1),
    (S.STA6, E.EVT16, A.AA_3, S.STA1),
    (S.STA3, E.EVT16, A.AA_3, S.STA1),
    (S.STA6, E.EVT17, A.AA_4, S.STA1),
    (S.STA4, E.EVT17, A.AA_4, S.STA1),
    (S.STA2, E.EVT17, A.AA_5, S.STA1),
    (S.STA13, E.EVT3, A.AA_6, S.STA13),
    (S.STA13, E.EVT10, A.AA_6, S.STA13),
    (S.STA13, E.EVT12, A.AA_6, S.STA13),
    (S.STA13, E.EVT6, A.AA_7, S.STA13),
    (S.STA13, E.EVT19, A.AA_7, S.STA13),
    (S.STA6, E.EVT19, A.AA_8, S.STA13),
    (S.STA6, E.EVT3, A.AA_8, S.STA13),
    (S.STA6, E.EVT4, A.AA_8, S.STA13),
    (S.STA6, E.EVT6, A.AA_8, S.STA13),
    (S.STA6, E.EVT13, A.AA_8, S.STA13),
    (S.STA5, E.EVT6, A.AA_8, S.STA13),
    (S.STA5, E.EVT10, A.AA_8, S.STA13),
    (S.STA8, E.EVT10, A.AA_8, S.STA13),
    (S.STA3, E.EVT19, A.AA_8, S.STA13),
]


@pytest.mark.parametrize(("state", "event", "action", "next_state"), SPOT_CHECKS)
def test_spot_checks(state: State, event: Event, action: Action, next_state: State | None) -> None:
    assert TRANSITIONS[(state, event)] is action
    assert is_defined(state, event)
    assert action.next_state is next_state
    if next_state is not None:
        assert transition(state, event) == (action, next_state)


BLANKS = [
    (S.STA1, E.EVT3),
    (S.STA1, E.EVT10),
    (S.STA1, E.EVT17),
    (S.STA2, E.EVT1),
    (S.STA2, E.EVT15),
    (S.STA4, E.EVT6),
    (S.STA6, E.EVT1),
    (S.STA6, E.EVT5),
    (S.STA6, E.EVT7),
    (S.STA6, E.EVT14),
    (S.STA6, E.EVT18),
    (S.STA7, E.EVT9),
    (S.STA7, E.EVT11),
    (S.STA10, E.EVT14),
    (S.STA13, E.EVT9),
    (S.STA13, E.EVT15),
]


@pytest.mark.parametrize(("state", "event"), BLANKS)
def test_blank_cells_raise(state: State, event: Event) -> None:
    assert not is_defined(state, event)
    with pytest.raises(InvalidTransition) as info:
        transition(state, event)
    assert info.value.state is state and info.value.event is event
    text = str(info.value)
    assert f"{state.value} " in text and f"{event.value} " in text and "Table 9-10" in text


def test_matches_pynetdicom_table() -> None:
    # An independent transcription of Table 9-10; keys there are (event label, state label).
    fsm = pytest.importorskip("pynetdicom.fsm")
    theirs = {(State(s), Event(e)): Action(a) for (e, s), a in fsm.TRANSITION_TABLE.items()}
    assert theirs == TRANSITIONS
    for action in Action:
        their_next = fsm.ACTIONS[action.value][2]
        ours = tuple(s.value for s in action.next_states)
        assert ours == (their_next if isinstance(their_next, tuple) else (their_next,))


# --- descriptions ------------------------------------------------------------------------


def test_descriptions() -> None:
    assert S.STA1.description == "Idle"
    assert S.STA6.description == "Association established and ready for data transfer"
    assert S.STA13.description.startswith("Awaiting Transport Connection Close Indication")
    assert S.STA7.table == "9-4" and S.STA7.group == "Association release"
    assert E.EVT3.description == "A-ASSOCIATE-AC PDU (received on transport connection)"
    assert E.EVT19.description == "Unrecognized or invalid PDU received"
    assert E.EVT18.source == "timer" and E.EVT1.source == "local-user"
    assert A.AA_8.description == (
        "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start "
        "ARTIM timer"
    )
    assert A.AA_6.description == "Ignore PDU"
    assert A.AR_5.description == "Stop ARTIM timer"
    for member in [*State, *Event, *Action]:
        assert member.description, member
    assert {a.table for a in Action} == {"9-6", "9-7", "9-8", "9-9"}
    assert [a.value for a in Action if a.table == "9-7"] == ["DT-1", "DT-2"]


def test_named_next_states() -> None:
    # Every unconditional action's next state as named in Tables 9-6..9-9.
    expected = {
        "AE-1": "Sta4", "AE-2": "Sta5", "AE-3": "Sta6", "AE-4": "Sta1", "AE-5": "Sta2",
        "AE-7": "Sta6", "AE-8": "Sta13", "DT-1": "Sta6", "DT-2": "Sta6", "AR-1": "Sta7",
        "AR-2": "Sta8", "AR-3": "Sta1", "AR-4": "Sta13", "AR-5": "Sta1", "AR-6": "Sta7",
        "AR-7": "Sta8", "AR-9": "Sta11", "AR-10": "Sta12", "AA-1": "Sta13", "AA-2": "Sta1",
        "AA-3": "Sta1", "AA-4": "Sta1", "AA-5": "Sta1", "AA-6": "Sta13", "AA-7": "Sta13",
        "AA-8": "Sta13",
    }  # fmt: skip
    for action in Action:
        if action in (A.AE_6, A.AR_8):
            assert action.next_state is None and action.is_conditional and action.note
        else:
            assert action.next_state is State(expected[action.value]), action
            assert action.next_states == (action.next_state,)
            assert not action.is_conditional and action.branches == {}
    assert A.AE_6.branches == {ACCEPT: S.STA3, REJECT: S.STA13}
    assert A.AR_8.branches == {REQUESTOR: S.STA9, ACCEPTOR: S.STA10}
    assert A.AE_6.next_states == (S.STA3, S.STA13)


def test_action_side_effects() -> None:
    assert A.AE_2.sends() is PDUType.A_ASSOCIATE_RQ
    assert A.AE_7.sends() is PDUType.A_ASSOCIATE_AC
    assert A.AE_6.sends(ACCEPT) is None and A.AE_6.sends() is None
    assert A.AE_6.sends(REJECT) is PDUType.A_ASSOCIATE_RJ
    assert A.AR_4.sends() is PDUType.A_RELEASE_RP and A.AR_9.sends() is PDUType.A_RELEASE_RP
    assert A.DT_2.sends() is None and A.AA_6.sends() is None
    assert A.AA_1.abort_source == 0 and A.AA_8.abort_source == 2
    assert {a for a in Action if a.closes_transport} == {A.AE_4, A.AR_3, A.AA_2, A.AA_3}


# --- conditional actions -----------------------------------------------------------------


def test_ae6_branches() -> None:
    assert transition(S.STA2, E.EVT6, accepted=True) == (A.AE_6, S.STA3)
    assert transition(S.STA2, E.EVT6, accepted=False) == (A.AE_6, S.STA13)
    assert transition(S.STA2, E.EVT6, branch=REJECT) == (A.AE_6, S.STA13)
    with pytest.raises(BranchRequired, match="AE-6"):
        transition(S.STA2, E.EVT6)
    with pytest.raises(BranchRequired):
        transition(S.STA2, E.EVT6, branch="maybe")
    with pytest.raises(ValueError):  # BranchRequired is a ValueError too
        transition(S.STA2, E.EVT6, association_requestor=True)


def test_ar8_branches() -> None:
    assert transition(S.STA7, E.EVT12, association_requestor=True) == (A.AR_8, S.STA9)
    assert transition(S.STA7, E.EVT12, association_requestor=False) == (A.AR_8, S.STA10)
    assert transition(S.STA7, E.EVT12, branch=ACCEPTOR) == (A.AR_8, S.STA10)
    with pytest.raises(BranchRequired, match="AR-8"):
        transition(S.STA7, E.EVT12, accepted=True)


def test_conditions_ignored_for_unconditional_actions() -> None:
    assert transition(S.STA6, E.EVT10, accepted=False, branch="x") == (A.DT_2, S.STA6)


# --- ARTIM -------------------------------------------------------------------------------


def test_expects_artim() -> None:
    assert {s for s in State if expects_artim(s)} == {S.STA2, S.STA13}


def test_artim_changes_are_in_the_action_text() -> None:
    # Whenever a transition enters or leaves an ARTIM state, the action says so (start/stop),
    # or the transport is already gone (Sta2 + Evt17 -> AA-5 also stops it).
    for (state, event), action in TRANSITIONS.items():
        for nxt in action.next_states:
            if expects_artim(state) != expects_artim(nxt):
                assert "ARTIM" in action.description, (state, event, action)
            if expects_artim(nxt) and not expects_artim(state):
                assert "start" in action.description, (state, event, action)


# --- PDUs --------------------------------------------------------------------------------


def test_pdu_event() -> None:
    assert pdu_event(0x01) is E.EVT6
    assert pdu_event(0x02) is E.EVT3
    assert pdu_event(0x03) is E.EVT4
    assert pdu_event(0x04) is E.EVT10
    assert pdu_event(0x05) is E.EVT12
    assert pdu_event(0x06) is E.EVT13
    assert pdu_event(0x07) is E.EVT16
    assert pdu_event(0x04, decodable=False) is E.EVT19
    for bad in (0x00, 0x08, 0x10, 0xFF, -1, 256):
        assert pdu_event(bad) is E.EVT19
    for event in Event:
        if event.pdu_type is not None:
            assert pdu_event(event.pdu_type) is event and event.is_received_pdu


@given(st.integers(min_value=-10, max_value=300), st.booleans())
def test_pdu_event_total(pdu_type: int, decodable: bool) -> None:
    event = pdu_event(pdu_type, decodable=decodable)
    assert event.is_received_pdu
    if not decodable or not 1 <= pdu_type <= 7:
        assert event is E.EVT19
    else:
        assert event.pdu_type == pdu_type


def test_expected_pdu_events() -> None:
    assert expected_pdu_events(S.STA6) == (E.EVT10, E.EVT12, E.EVT16)
    assert expected_pdu_events(S.STA5) == (E.EVT3, E.EVT4, E.EVT16)
    assert expected_pdu_events(S.STA2) == (E.EVT6, E.EVT16)
    assert expected_pdu_events(S.STA7) == (E.EVT10, E.EVT12, E.EVT13, E.EVT16)
    assert expected_pdu_events(S.STA13) == (E.EVT16,)
    assert expected_pdu_events(S.STA1) == ()


def test_abort_advice() -> None:
    # AA-8: unexpected PDU -> reason 2, unrecognized PDU -> reason 1, source 2.
    advice = abort_advice(S.STA6, 0x02)
    assert advice is not None and advice == (A.AA_8, 2, 2)
    assert advice.reason_text == "unexpected-PDU"
    assert abort_advice(S.STA6, 0x09) == (A.AA_8, 2, 1)
    assert abort_advice(S.STA6, 0x01, decodable=False) == (A.AA_8, 2, 6)
    assert abort_advice(S.STA6, 0x01, decodable=False, invalid_reason=4) == (A.AA_8, 2, 4)
    assert abort_advice(S.STA13, 0x01) == (A.AA_7, 2, 2)
    assert abort_advice(S.STA13, 0x55) == (A.AA_7, 2, 1)
    # Sta2: AA-1 is a service-user abort, whose reason is 0.
    assert abort_advice(S.STA2, 0x04) == (A.AA_1, 0, 0)
    # Handled normally, ignored, or impossible: no abort.
    assert abort_advice(S.STA6, 0x04) is None
    assert abort_advice(S.STA6, 0x07) is None
    assert abort_advice(S.STA13, 0x04) is None
    assert abort_advice(S.STA1, 0x01) is None


def test_unexpected_pdu_finding() -> None:
    finding = unexpected_pdu_finding(S.STA6, 0x02)
    assert finding is not None
    assert finding.found == "A-ASSOCIATE-AC"
    assert "Sta6" in finding.expected and "P-DATA-TF" in finding.expected
    assert "AA-8" in finding.section and "Table 9-10" in finding.section
    assert finding.severity == "error"
    odd = unexpected_pdu_finding(S.STA6, 0x0A)
    assert odd is not None and "0x0A" in odd.found and "unrecognized" in odd.found
    assert unexpected_pdu_finding(S.STA6, 0x04) is None
    assert unexpected_pdu_finding(S.STA7, 0x06) is None
    ignored = unexpected_pdu_finding(S.STA13, 0x04)
    assert ignored is not None and "AA-6" in ignored.section


def test_describe_transition() -> None:
    text = describe_transition(S.STA6, E.EVT3, A.AA_8, S.STA13)
    assert text.startswith("Sta6 + Evt3 (A-ASSOCIATE-AC PDU") and text.endswith("AA-8 -> Sta13")


# --- the machine -------------------------------------------------------------------------


def at(machine: UpperLayerStateMachine, state: State) -> bool:
    # A function call, so mypy does not narrow ``machine.state`` across feeds.
    return machine.state is state


def _run(machine: UpperLayerStateMachine, steps: list[tuple[Event, Action, State]]) -> None:
    for event, action, state in steps:
        accepted = True if event is E.EVT6 else None
        assert machine.feed(event, accepted=accepted) is action, (event, machine.state)
        assert machine.state is state


def test_requestor_happy_path() -> None:
    m = UpperLayerStateMachine("requestor")
    assert at(m, S.STA1) and m.history == []
    steps = [
        (E.EVT1, A.AE_1, S.STA4),  # A-ASSOCIATE request: connect
        (E.EVT2, A.AE_2, S.STA5),  # connected: send A-ASSOCIATE-RQ
        (E.EVT3, A.AE_3, S.STA6),  # A-ASSOCIATE-AC received
        (E.EVT9, A.DT_1, S.STA6),  # send C-STORE-RQ
        (E.EVT10, A.DT_2, S.STA6),  # C-STORE-RSP received
        (E.EVT11, A.AR_1, S.STA7),  # send A-RELEASE-RQ
        (E.EVT10, A.AR_6, S.STA7),  # a late P-DATA still arrives
        (E.EVT13, A.AR_3, S.STA1),  # A-RELEASE-RP: confirm and close
    ]
    _run(m, steps)
    assert [h[2] for h in m.history] == [s[1] for s in steps]
    assert m.history[0] == (S.STA1, E.EVT1, A.AE_1, S.STA4)
    assert all(prev[3] is nxt[0] for prev, nxt in zip(m.history, m.history[1:], strict=False))
    assert len(m.trace()) == len(steps) and "AE-1" in m.trace()[0]


def test_acceptor_happy_path() -> None:
    m = UpperLayerStateMachine("acceptor")
    _run(
        m,
        [
            (E.EVT5, A.AE_5, S.STA2),  # incoming connection, ARTIM started
            (E.EVT6, A.AE_6, S.STA3),  # A-ASSOCIATE-RQ acceptable
            (E.EVT7, A.AE_7, S.STA6),  # send A-ASSOCIATE-AC
            (E.EVT10, A.DT_2, S.STA6),  # C-STORE-RQ received
            (E.EVT9, A.DT_1, S.STA6),  # send C-STORE-RSP
            (E.EVT12, A.AR_2, S.STA8),  # A-RELEASE-RQ received
            (E.EVT9, A.AR_7, S.STA8),  # an outstanding response may still go out
            (E.EVT14, A.AR_4, S.STA13),  # send A-RELEASE-RP, ARTIM started
            (E.EVT17, A.AR_5, S.STA1),  # peer closed
        ],
    )
    assert not m.artim_running


def test_acceptor_artim_expiry_paths() -> None:
    m = UpperLayerStateMachine("acceptor")
    m.feed(E.EVT5)
    assert m.artim_running
    assert m.feed(E.EVT18) is A.AA_2 and at(m, S.STA1)  # connect and say nothing
    m = UpperLayerStateMachine("acceptor")
    _run(m, [(E.EVT5, A.AE_5, S.STA2), (E.EVT6, A.AE_6, S.STA3), (E.EVT8, A.AE_8, S.STA13)])
    assert m.artim_running
    assert m.feed(E.EVT18) is A.AA_2 and at(m, S.STA1)


def test_provider_reject() -> None:
    m = UpperLayerStateMachine("acceptor")
    m.feed(E.EVT5)
    assert m.feed(E.EVT6, accepted=False) is A.AE_6
    assert at(m, S.STA13) and A.AE_6.sends(REJECT) is PDUType.A_ASSOCIATE_RJ
    assert m.feed_pdu(0x04) is A.AA_6 and at(m, S.STA13)  # ignored after the reject
    assert m.feed_pdu(0x01) is A.AA_7 and at(m, S.STA13)


def test_requestor_rejected() -> None:
    m = UpperLayerStateMachine("requestor")
    _run(m, [(E.EVT1, A.AE_1, S.STA4), (E.EVT2, A.AE_2, S.STA5), (E.EVT4, A.AE_4, S.STA1)])


def test_abort_paths() -> None:
    # Local abort in Sta6, then the peer closes.
    m = UpperLayerStateMachine("requestor")
    _run(m, [(E.EVT1, A.AE_1, S.STA4), (E.EVT2, A.AE_2, S.STA5), (E.EVT3, A.AE_3, S.STA6)])
    _run(m, [(E.EVT15, A.AA_1, S.STA13), (E.EVT17, A.AR_5, S.STA1)])
    # Peer abort in Sta6.
    m = UpperLayerStateMachine("acceptor")
    _run(m, [(E.EVT5, A.AE_5, S.STA2), (E.EVT6, A.AE_6, S.STA3), (E.EVT7, A.AE_7, S.STA6)])
    assert m.feed_pdu(PDUType.A_ABORT) is A.AA_3 and at(m, S.STA1)
    # Unexpected PDU in Sta6: AA-8 with reason 2, then ARTIM runs in Sta13.
    m = UpperLayerStateMachine("acceptor")
    _run(m, [(E.EVT5, A.AE_5, S.STA2), (E.EVT6, A.AE_6, S.STA3), (E.EVT7, A.AE_7, S.STA6)])
    assert m.abort_reason(0x01) == 2 and m.abort_reason(0x42) == 1 and m.abort_reason(4) is None
    advice = m.abort_advice(0x01)
    assert advice is not None and advice.source == 2
    finding = m.unexpected_pdu_finding(0x01)
    assert finding is not None and finding.found == "A-ASSOCIATE-RQ"
    assert m.feed_pdu(0x01) is A.AA_8 and at(m, S.STA13) and m.artim_running
    assert m.feed(E.EVT18) is A.AA_2 and at(m, S.STA1)
    # Transport lost in Sta6.
    m = UpperLayerStateMachine("requestor")
    _run(m, [(E.EVT1, A.AE_1, S.STA4), (E.EVT2, A.AE_2, S.STA5), (E.EVT3, A.AE_3, S.STA6)])
    assert m.feed(E.EVT17) is A.AA_4 and at(m, S.STA1)
    # Connection attempt abandoned.
    m = UpperLayerStateMachine("requestor")
    _run(m, [(E.EVT1, A.AE_1, S.STA4), (E.EVT15, A.AA_2, S.STA1)])


def _established(role: str) -> UpperLayerStateMachine:
    m = UpperLayerStateMachine("requestor" if role == REQUESTOR else "acceptor")
    if role == REQUESTOR:
        for event in (E.EVT1, E.EVT2, E.EVT3):
            m.feed(event)
    else:
        m.feed(E.EVT5)
        m.feed(E.EVT6, accepted=True)
        m.feed(E.EVT7)
    assert at(m, S.STA6)
    return m


def test_release_collision_both_sides() -> None:
    # Both sides send A-RELEASE-RQ at once; each receives the other's.
    req, acc = _established(REQUESTOR), _established(ACCEPTOR)
    assert req.feed(E.EVT11) is A.AR_1 and acc.feed(E.EVT11) is A.AR_1
    assert req.feed(E.EVT12) is A.AR_8 and at(req, S.STA9)
    assert acc.feed(E.EVT12) is A.AR_8 and at(acc, S.STA10)
    # The requestor answers first (Sta9 -> AR-9 -> Sta11), the acceptor gets that RP.
    assert req.feed(E.EVT14) is A.AR_9 and at(req, S.STA11)
    assert acc.feed(E.EVT13) is A.AR_10 and at(acc, S.STA12)
    assert acc.feed(E.EVT14) is A.AR_4 and at(acc, S.STA13)
    assert req.feed(E.EVT13) is A.AR_3 and at(req, S.STA1)
    assert acc.feed(E.EVT17) is A.AR_5 and at(acc, S.STA1)


def test_invalid_feed_leaves_state() -> None:
    m = _established(REQUESTOR)
    before = list(m.history)
    assert not m.can_feed(E.EVT14)
    with pytest.raises(InvalidTransition, match="Sta6"):
        m.feed(E.EVT14)
    assert at(m, S.STA6) and m.history == before
    m2 = UpperLayerStateMachine("acceptor")
    m2.feed(E.EVT5)
    with pytest.raises(BranchRequired):
        m2.feed(E.EVT6)
    assert at(m2, S.STA2)


def test_bad_role() -> None:
    with pytest.raises(ValueError, match="role"):
        UpperLayerStateMachine("server")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([REQUESTOR, ACCEPTOR]),
    st.lists(st.tuples(st.sampled_from(list(Event)), st.booleans()), max_size=30),
)
def test_random_event_sequences(role: str, events: list[tuple[Event, bool]]) -> None:
    m = UpperLayerStateMachine("requestor" if role == REQUESTOR else "acceptor")
    for event, accepted in events:
        before = m.state
        if not m.can_feed(event):
            with pytest.raises(InvalidTransition):
                m.feed(event, accepted=accepted)
            assert m.state is before
            continue
        action = m.feed(event, accepted=accepted)
        assert action is TRANSITIONS[(before, event)]
        assert m.state in action.next_states
        if action is A.AR_8:
            assert m.state is (S.STA9 if role == REQUESTOR else S.STA10)
        if action is A.AE_6:
            assert m.state is (S.STA3 if accepted else S.STA13)
        assert m.history[-1] == (before, event, action, m.state)
