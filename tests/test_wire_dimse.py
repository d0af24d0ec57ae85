"""Tests for harness.wire.dimse: typed messages, fast codec, validating decoder, raw encoder."""

from __future__ import annotations

import struct
import tracemalloc
from io import BytesIO
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.wire.dimse import (
    COMMAND_ELEMENTS,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    DecodedCommand,
    Message,
    decode_command,
    encode_command,
    encode_elements,
    message_elements,
    summarize,
    value_ae,
    value_at,
    value_lo,
    value_ui,
    value_ul,
    value_us,
)
from harness.wire.findings import Finding

CT = "1.2.840.10008.5.1.4.1.1.2"
INST = "1.2.826.0.1.3680043.8.498.1234567890123"
STORE = CStoreRQ(5, CT, INST, command_data_set_type=0x0001)

# ---------------------------------------------------------------------------------------------
# Strategies.

_component = st.one_of(st.just("0"), st.integers(1, 10**8).map(str))
uids = st.lists(_component, min_size=2, max_size=12).map(".".join).filter(lambda u: len(u) <= 64)
ae_titles = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=16)
comments = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789 .:_-()", max_size=64).map(
    lambda s: s.strip(" "))
us = st.integers(0, 0xFFFF)
tags = st.integers(0, 0xFFFFFFFF)

store_rqs = st.builds(CStoreRQ, us, uids, uids, us, us, st.none() | ae_titles, st.none() | us)
store_rsps = st.builds(CStoreRSP, us, us, st.none() | uids, st.none() | uids, st.none() | us,
                       st.none() | comments, st.none() | st.lists(tags, max_size=5),
                       st.none() | us)
echo_rqs = st.builds(CEchoRQ, us, uids)
echo_rsps = st.builds(CEchoRSP, us, us, st.none() | uids, st.none() | comments)
cancels = st.builds(CCancelRQ, us)
messages = st.one_of(store_rqs, store_rsps, echo_rqs, echo_rsps, cancels)


def errors(d: DecodedCommand) -> list[Finding]:
    return [f for f in d.findings if f.severity == "error"]


def has(d: DecodedCommand, field_part: str, *, severity: str | None = None,
        section: str | None = None) -> Finding:
    """The first finding whose field contains ``field_part`` (fails the test if none)."""
    for f in d.findings:
        if field_part in f.field and (severity is None or f.severity == severity) and (
                section is None or section in f.section):
            return f
    raise AssertionError(f"no finding on {field_part!r} in {[str(f) for f in d.findings]}")


def elements_of(msg: Message, drop: int | None = None,
                replace: dict[int, bytes] | None = None) -> list[tuple[int, bytes]]:
    out = [(e, (replace or {}).get(e, v)) for e, v in message_elements(msg) if e != drop]
    return out


# ---------------------------------------------------------------------------------------------
# Round trips.

@pytest.mark.parametrize("msg", [
    STORE,
    CStoreRQ(65535, CT, INST, 2, 0xFEFE, "MOVER", 17),
    CStoreRSP(5, 0x0000),
    CStoreRSP(5, 0xB000, CT, INST, 9, "coerced", [0x00100010, 0x7FE00010]),
    CEchoRQ(1),
    CEchoRSP(1, 0x0000),
    CEchoRSP(1, 0x0122, None, "nope"),
    CCancelRQ(7),
])
def test_round_trip_examples(msg: Message) -> None:
    data = encode_command(msg)
    d = decode_command(data)
    assert d.message == msg
    assert d.findings == [], [str(f) for f in d.findings]
    assert d.command_field == msg.command_field
    assert d.order == sorted(d.order) and d.order[0] == 0
    assert struct.unpack_from("<I", data, 8)[0] == len(data) - 12


@given(messages)
@settings(max_examples=300)
def test_round_trip_hypothesis(msg: Message) -> None:
    data = encode_command(msg)
    assert len(data) % 2 == 0
    d = decode_command(data)
    assert d.message == msg
    assert d.elements[0x0000] == len(data) - 12
    # Findings only where the generated values themselves deviate (priority, data set type,
    # status legality), never structural ones.
    for f in d.findings:
        assert f.field[:11] in ("(0000,0700)", "(0000,0800)", "(0000,0900)", "(0000,0901)",
                                "(0000,0902)", "(0000,0903)"), str(f)


@given(messages)
def test_fast_path_equals_generic_path(msg: Message) -> None:
    assert encode_command(msg) == encode_elements(message_elements(msg))


def test_has_data_set_and_command_field() -> None:
    assert STORE.has_data_set and CStoreRQ.command_field == 0x0001
    assert not CStoreRQ(1, CT, INST, command_data_set_type=0x0101).has_data_set
    assert not CStoreRSP(1, 0).has_data_set and CStoreRSP.command_field == 0x8001
    assert CEchoRQ.command_field == 0x0030 and CEchoRSP.command_field == 0x8030
    assert CCancelRQ.command_field == 0x0FFF and not CCancelRQ(1).has_data_set


def test_padding_rules() -> None:
    assert value_ui("1.2.3") == b"1.2.3\x00" and value_ui("1.2") == b"1.2\x00"
    assert value_ui("1.23") == b"1.23"
    assert value_ae("ABC") == b"ABC " and value_lo("x") == b"x "
    assert value_at([0x00100020]) == b"\x10\x00\x20\x00"
    assert value_us(0x0101) == b"\x01\x01" and value_ul(12) == b"\x0c\x00\x00\x00"
    data = encode_command(CStoreRSP(1, 0xC000, "1.2.3", error_comment="abc"))
    assert b"1.2.3\x00" in data and b"abc " in data


# ---------------------------------------------------------------------------------------------
# Byte-for-byte equality with pynetdicom.

def _pynetdicom_bytes(msg: Message) -> bytes:
    from pynetdicom.dimse_messages import (
        C_CANCEL_RQ,
        C_ECHO_RQ,
        C_ECHO_RSP,
        C_STORE_RQ,
        C_STORE_RSP,
    )
    from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_STORE

    prim: Any
    cls: Any
    if isinstance(msg, CStoreRQ):
        prim, cls = C_STORE(), C_STORE_RQ
        prim.MessageID = msg.message_id
        prim.AffectedSOPClassUID = msg.affected_sop_class_uid
        prim.AffectedSOPInstanceUID = msg.affected_sop_instance_uid
        prim.Priority = msg.priority
        if msg.move_originator_aet is not None:
            prim.MoveOriginatorApplicationEntityTitle = msg.move_originator_aet
        if msg.move_originator_message_id is not None:
            prim.MoveOriginatorMessageID = msg.move_originator_message_id
        prim.DataSet = BytesIO(b"\x00\x00")
    elif isinstance(msg, CStoreRSP):
        prim, cls = C_STORE(), C_STORE_RSP
        prim.MessageIDBeingRespondedTo = msg.message_id_being_responded_to
        prim.Status = msg.status
        prim.AffectedSOPClassUID = msg.affected_sop_class_uid
        prim.AffectedSOPInstanceUID = msg.affected_sop_instance_uid
        prim.ErrorComment = msg.error_comment
        prim.OffendingElement = msg.offending_element
    elif isinstance(msg, CEchoRQ):
        prim, cls = C_ECHO(), C_ECHO_RQ
        prim.MessageID = msg.message_id
        prim.AffectedSOPClassUID = msg.affected_sop_class_uid
    elif isinstance(msg, CEchoRSP):
        prim, cls = C_ECHO(), C_ECHO_RSP
        prim.MessageIDBeingRespondedTo = msg.message_id_being_responded_to
        prim.Status = msg.status
        prim.AffectedSOPClassUID = msg.affected_sop_class_uid
        prim.ErrorComment = msg.error_comment
    else:
        prim, cls = C_CANCEL(), C_CANCEL_RQ
        prim.MessageIDBeingRespondedTo = msg.message_id_being_responded_to
    message = cls()
    message.primitive_to_message(prim)
    pdata = next(message.encode_msg(1, 0))
    pdv = pdata.presentation_data_value_list[0][1]
    assert pdv[0] == 0x03  # last command fragment
    return bytes(pdv[1:])


@pytest.mark.parametrize("msg", [
    STORE,
    CStoreRQ(77, CT, INST, 1, 0x0001, "MOVESCU", 12),
    CStoreRQ(3, "1.2.840.10008.5.1.4.1.1.4", "1.2.3", 2, 0x0001, "ODD"),
    CStoreRSP(5, 0x0000, CT, INST),
    CStoreRSP(5, 0xA900, CT, INST, error_comment="bad", offending_element=[0x00100010]),
    CStoreRSP(9, 0xB006, None, None, error_comment="odd"),
    CEchoRQ(1), CEchoRSP(1, 0x0000), CCancelRQ(7),
])
def test_same_bytes_as_pynetdicom(msg: Message) -> None:
    theirs = _pynetdicom_bytes(msg)
    assert encode_command(msg) == theirs
    d = decode_command(theirs)
    assert d.findings == [] and d.message == msg


_pn_store = st.builds(CStoreRQ, us, uids, uids, st.integers(0, 2), st.just(0x0001),
                      st.none() | ae_titles, st.none() | us)
_pn_rsp = st.builds(CStoreRSP, us, us, st.none() | uids, st.none() | uids, st.none(),
                    st.none() | comments.filter(bool), st.none() | st.lists(tags, min_size=1,
                                                                           max_size=3))


@given(st.one_of(_pn_store, _pn_rsp))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_same_bytes_as_pynetdicom_hypothesis(msg: Message) -> None:
    assert encode_command(msg) == _pynetdicom_bytes(msg)


# ---------------------------------------------------------------------------------------------
# The decoder never raises and never allocates what a length claims.

@given(st.binary(max_size=300))
@settings(max_examples=400)
def test_decoder_never_raises_on_bytes(data: bytes) -> None:
    d = decode_command(data)
    assert not any("internal decoder error" in f.found for f in d.findings)
    assert isinstance(summarize(d), str)
    # memoryview and bytearray inputs give the same answer
    assert decode_command(memoryview(data)).findings == d.findings
    assert decode_command(bytearray(data)).elements == d.elements


@given(messages, st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1,
                          max_size=4), st.integers(0, 400))
@settings(max_examples=400)
def test_decoder_never_raises_on_damaged_commands(msg: Message,
                                                  edits: list[tuple[int, int]],
                                                  cut: int) -> None:
    data = bytearray(encode_command(msg))
    for pos, byte in edits:
        if pos < len(data):
            data[pos] = byte
    d = decode_command(bytes(data[: max(cut, 0)] if cut < len(data) else data))
    assert not any("internal decoder error" in f.found for f in d.findings)
    if d.message is not None:
        assert d.command_field == d.message.command_field


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x7FFFFFFF, 0x10000000])
def test_lying_length_does_not_allocate(length: int) -> None:
    data = encode_elements([(0x0002, value_ui(CT)), (0x0100, value_us(1))],
                           length_overrides={0x0002: length})
    tracemalloc.start()
    try:
        d = decode_command(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    f = has(d, "value length")
    assert f.offset == 12
    if length == 0xFFFFFFFF:
        assert "undefined length" in f.found


# ---------------------------------------------------------------------------------------------
# Each finding, triggered by a crafted command.

def test_truncated_header() -> None:
    d = decode_command(encode_command(STORE) + b"\x00\x00\x01")
    f = has(d, "element header")
    assert f.offset == len(encode_command(STORE)) and "3 bytes" in f.found
    assert d.message == STORE  # everything before the damage is kept


def test_truncated_value() -> None:
    data = encode_command(STORE)
    d = decode_command(data[:-4])
    has(d, "value length")
    assert d.message is None  # (0000,1000) was the truncated element
    has(d, "(0000,1000)", section="9.3.1.1")


def test_odd_value_length() -> None:
    els = elements_of(STORE, replace={0x1000: b"1.2.3"})
    d = decode_command(encode_elements(els))
    f = has(d, "(0000,1000)", section="PS3.5 7.1.1")
    assert f.found == "length 5"
    assert isinstance(d.message, CStoreRQ) and d.message.affected_sop_instance_uid == "1.2.3"


@pytest.mark.parametrize(("element", "value", "expected"), [
    (0x0110, b"\x05\x00\x00\x00", "value length 2 (US)"),
    (0x0700, b"\x00", "value length 2 (US)"),
])
def test_us_length_must_be_2(element: int, value: bytes, expected: str) -> None:
    d = decode_command(encode_elements(elements_of(STORE, replace={element: value})))
    f = has(d, f"(0000,{element:04X})")
    assert f.expected == expected
    assert d.elements[element] == value
    assert d.message is None  # a mandatory element without a usable value


def test_ul_and_at_lengths() -> None:
    els = [(0x0000, b"\x10\x00"), *message_elements(CStoreRSP(1, 0xC000))]  # 2-byte UL
    d = decode_command(encode_elements(els, group_length="omit"))
    assert has(d, "(0000,0000)").expected == "value length 4 (UL)"
    rsp = elements_of(CStoreRSP(1, 0xC000, offending_element=[0x00100010]),
                      replace={0x0901: b"\x10\x00\x10\x00\x20\x00"})
    d = decode_command(encode_elements(rsp))
    assert "multiple of 4" in has(d, "(0000,0901)").expected
    assert isinstance(d.message, CStoreRSP) and d.message.offending_element is None


def test_group_length_missing_wrong_and_not_first() -> None:
    d = decode_command(encode_elements(message_elements(STORE), group_length="omit"))
    f = has(d, "(0000,0000)")
    assert f.found == "missing"
    assert d.message == STORE  # tolerant: the command itself is complete

    wrong = encode_elements(message_elements(STORE), group_length=9999)
    assert struct.unpack_from("<I", wrong, 8)[0] == 9999  # really on the wire
    d = decode_command(wrong)
    f = has(d, "(0000,0000)")
    assert f.found == "9999" and f.expected.startswith(str(len(wrong) - 12))

    els = message_elements(STORE)
    after = [els[0], (0x0000, value_ul(len(encode_command(STORE)) - 12 - 8 - len(els[0][1])))]
    d = decode_command(encode_elements(after + els[1:], group_length="omit"))
    assert any(f.field.startswith("(0000,0000)") and f.expected == "the first element"
               and f.offset == 8 + len(els[0][1]) for f in d.findings)
    assert sum(1 for f in d.findings if "ascending" in f.expected) == 1
    # the value counts the bytes *after* it, so this one is right
    assert not any(f.found.isdigit() for f in d.findings)


def test_not_ascending_and_duplicate() -> None:
    els = message_elements(STORE)
    swapped = [els[0], els[2], els[1], *els[3:]]
    d = decode_command(encode_elements(swapped))
    f = has(d, "(0000,0100)")
    assert "ascending" in f.expected and "(0000,0110)" in f.found
    assert d.message == STORE

    dup = [*els[:3], (0x0110, value_us(99)), *els[3:]]
    d = decode_command(encode_elements(dup))
    f = has(d, "(0000,0110)")
    assert f.expected == "each element once"
    assert d.elements[0x0110] == 5  # first value wins
    assert not any("(0000,0000)" in f.field for f in d.findings)  # duplicates still counted


def test_element_outside_group_0000() -> None:
    els = [*message_elements(STORE), (0x00080016, value_ui(CT))]
    d = decode_command(encode_elements(els))
    f = has(d, "(0008,0016)")
    assert "group 0000" in f.expected
    assert d.foreign == {0x00080016: value_ui(CT)}
    assert 0x0016 not in d.elements
    assert d.message == STORE
    # group length counts only group 0000: "auto" left the foreign element out
    assert not any("(0000,0000)" in f.field for f in d.findings)


def test_unknown_and_retired_elements() -> None:
    els = [*message_elements(STORE)]
    els.insert(5, (0x0850, value_us(3)))   # retired Number of Matches
    els.insert(6, (0x0855, b"\x01\x02"))   # never defined
    d = decode_command(encode_elements(els))
    assert has(d, "(0000,0850)", severity="warning").section == "PS3.7 E.2"
    assert d.elements[0x0850] == 3
    f = has(d, "(0000,0855)", severity="error")
    assert f.found == "unknown command element" and d.elements[0x0855] == b"\x01\x02"


def test_explicit_vr_detected_and_recovered() -> None:
    data = encode_elements(message_elements(STORE), explicit_vr=True)
    assert data[4:6] == b"UL" and data[16:18] == b"UI"
    d = decode_command(data)
    f = has(d, "command set encoding")
    assert f.expected == "Implicit VR Little Endian" and "'UL'" in f.found and f.offset == 0
    assert d.explicit_vr
    assert d.message == STORE  # recovered, but the finding is an error
    assert not d.ok
    assert "(explicit VR)" in summarize(d)


def test_explicit_vr_long_form_header() -> None:
    els = [*message_elements(STORE), (0x0855, b"\x00\x01")]  # unknown -> UN, 4-byte length
    data = encode_elements(els, explicit_vr=True)
    d = decode_command(data)
    assert d.explicit_vr and d.elements[0x0855] == b"\x00\x01"


def test_unknown_command_field() -> None:
    els = [(0x0100, value_us(0x0002)), (0x0110, value_us(1)), (0x0800, value_us(0x0101))]
    d = decode_command(encode_elements(els))
    f = has(d, "(0000,0100)")
    assert f.found == "0x0002" and d.message is None and d.command_field == 2
    assert d.command_name == "unknown-0x0002"


def test_known_command_without_typed_class() -> None:
    els = [(0x0002, value_ui("1.2.840.10008.5.1.4.1.2.2.1")), (0x0100, value_us(0x0020)),
           (0x0110, value_us(1)), (0x0700, value_us(0)), (0x0800, value_us(0x0001))]
    d = decode_command(encode_elements(els))
    assert d.findings == [] and d.message is None and d.command_name == "C-FIND-RQ"


@pytest.mark.parametrize("element", [0x1000, 0x0002, 0x0110, 0x0700, 0x0800, 0x0100])
def test_c_store_rq_missing_mandatory(element: int) -> None:
    d = decode_command(encode_elements(elements_of(STORE, drop=element)))
    assert d.message is None
    f = has(d, f"(0000,{element:04X})")
    assert f.found == "missing"
    if element != 0x0100:
        assert f.section == "PS3.7 9.3.1.1"


@pytest.mark.parametrize(("msg", "element", "section"), [
    (CStoreRSP(1, 0), 0x0120, "9.3.1.2"), (CStoreRSP(1, 0), 0x0900, "9.3.1.2"),
    (CStoreRSP(1, 0), 0x0800, "9.3.1.2"), (CEchoRQ(1), 0x0110, "9.3.5.1"),
    (CEchoRQ(1), 0x0002, "9.3.5.1"), (CEchoRSP(1, 0), 0x0900, "9.3.5.2"),
    (CCancelRQ(4), 0x0120, "9.3.2.3"), (CCancelRQ(4), 0x0800, "9.3.2.3"),
])
def test_other_missing_mandatory(msg: Message, element: int, section: str) -> None:
    d = decode_command(encode_elements(elements_of(msg, drop=element)))
    assert d.message is None
    assert has(d, f"(0000,{element:04X})", section=section).found == "missing"


def test_optional_elements_may_be_absent() -> None:
    d = decode_command(encode_command(CStoreRSP(1, 0)))
    assert d.findings == [] and d.message == CStoreRSP(1, 0)


def test_priority_out_of_range() -> None:
    d = decode_command(encode_command(CStoreRQ(1, CT, INST, priority=5)))
    assert has(d, "(0000,0700)").found == "0x0005"
    assert isinstance(d.message, CStoreRQ) and d.message.priority == 5


def test_data_set_type_rules() -> None:
    d = decode_command(encode_command(CStoreRQ(1, CT, INST, command_data_set_type=0x0101)))
    f = has(d, "(0000,0800)", section="9.3.1.1")
    assert "other than 0101H" in f.expected
    rsp = elements_of(CStoreRSP(1, 0), replace={0x0800: value_us(0x0001)})
    d = decode_command(encode_elements(rsp))
    assert has(d, "(0000,0800)", section="9.3.1.2").found == "0x0001"
    d = decode_command(encode_elements(elements_of(CCancelRQ(3),
                                                   replace={0x0800: value_us(0)})))
    has(d, "(0000,0800)", section="9.3.2.3")


@pytest.mark.parametrize(("uid", "problem"), [
    ("1." + "2" * 70, "more than 64"), ("1.2.abc", "characters"), ("1.02.3", "leading zero"),
    ("", "empty"),
])
def test_invalid_uids(uid: str, problem: str) -> None:
    d = decode_command(encode_command(CStoreRQ(1, CT, uid)))
    f = has(d, "(0000,1000)", section="PS3.5 9.1")
    assert problem in f.found
    assert isinstance(d.message, CStoreRQ) and d.message.affected_sop_instance_uid == uid


def test_uid_space_padding() -> None:
    els = elements_of(STORE, replace={0x1000: b"1.2.3 "})
    d = decode_command(encode_elements(els))
    f = has(d, "(0000,1000)")
    assert f.found == "space padding" and f.section == "PS3.5 6.2"
    assert isinstance(d.message, CStoreRQ) and d.message.affected_sop_instance_uid == "1.2.3"
    ok = decode_command(encode_elements(elements_of(STORE, replace={0x1000: b"1.2.3\x00"})))
    assert ok.findings == []


@pytest.mark.parametrize(("comment", "expected"), [
    ("x" * 65, "at most 64"), ("a\\b", "backslash"), ("a\tb", "control"),
])
def test_error_comment_rules(comment: str, expected: str) -> None:
    d = decode_command(encode_command(CStoreRSP(1, 0xC000, error_comment=comment)))
    assert expected in has(d, "(0000,0902)").expected


def test_move_originator_ae_rules() -> None:
    d = decode_command(encode_command(CStoreRQ(1, CT, INST, move_originator_aet="X" * 17)))
    assert "more than 16" in has(d, "(0000,1030)").found
    d = decode_command(encode_command(CStoreRQ(1, CT, INST, move_originator_aet="A\\B")))
    has(d, "(0000,1030)")


def test_rsp_extra_elements_are_warnings() -> None:
    els = [*message_elements(CStoreRSP(1, 0)), (0x1031, value_us(2))]
    d = decode_command(encode_elements(els))
    f = has(d, "(0000,1031)", severity="warning")
    assert f.section == "PS3.7 9.3.1.2"
    assert d.ok  # warnings only
    d = decode_command(encode_command(CStoreRSP(1, 0x0000, error_comment="fine",
                                                offending_element=[0x00100010])))
    assert has(d, "(0000,0901)", severity="warning").section == "PS3.7 Annex C"
    assert has(d, "(0000,0902)", severity="warning")
    d = decode_command(encode_command(CStoreRSP(1, 0xA700, error_comment="disk full")))
    assert d.findings == []
    d = decode_command(encode_command(CStoreRSP(1, 0xA700, offending_element=[1])))
    has(d, "(0000,0901)", severity="warning")
    d = decode_command(encode_command(CStoreRSP(1, 0x0110, error_id=3)))
    has(d, "(0000,0903)", severity="warning")  # Error ID is no C-STORE related field
    assert isinstance(d.message, CStoreRSP) and d.message.error_id == 3


@pytest.mark.parametrize(("status", "severity"), [
    (0xFE00, "error"), (0xFF00, "error"), (0x1234, "error"), (0x0111, "warning"),
    (0x0213, "warning"),
])
def test_c_store_rsp_status_legality(status: int, severity: str) -> None:
    d = decode_command(encode_command(CStoreRSP(1, status)))
    has(d, "(0000,0900)", severity=severity)
    assert isinstance(d.message, CStoreRSP) and d.message.status == status


def test_echo_rsp_illegal_status() -> None:
    d = decode_command(encode_command(CEchoRSP(1, 0xD000)))
    has(d, "(0000,0900)", severity="error")
    assert decode_command(encode_command(CEchoRSP(1, 0x0122))).findings == []


def test_empty_input() -> None:
    d = decode_command(b"")
    assert d.message is None and d.command_field is None
    has(d, "(0000,0000)")
    has(d, "(0000,0100)")


# ---------------------------------------------------------------------------------------------
# encode_elements produces what was asked.

def test_encode_elements_exact_layout() -> None:
    data = encode_elements([(0x0100, value_us(1)), (0x0110, value_us(2))])
    assert data == struct.pack("<HHII", 0, 0, 4, 20) + struct.pack("<HHIH", 0, 0x100, 2, 1) \
        + struct.pack("<HHIH", 0, 0x110, 2, 2)
    data = encode_elements([(0x0110, value_us(2)), (0x0100, value_us(1))],
                           group_length="omit")
    assert data[:8] == struct.pack("<HHI", 0, 0x0110, 2)  # order as given
    assert encode_elements([], group_length=None) == b""
    data = encode_elements([(0x0100, value_us(1))], length_overrides={0x0100: 7})
    assert struct.unpack_from("<HHI", data, 12) == (0, 0x0100, 7) and data[20:] == b"\x01\x00"
    assert struct.unpack_from("<I", data, 8)[0] == 10  # group length counts actual bytes
    data = encode_elements([(0x0100, value_us(1))], length_overrides={0x0000: 2})
    assert struct.unpack_from("<HHI", data, 0) == (0, 0, 2)
    data = encode_elements([(0x0100, value_us(1)), (0x00080016, b"12")])
    assert struct.unpack_from("<HHI", data, 22) == (8, 0x16, 2)
    assert struct.unpack_from("<I", data, 8)[0] == 10


def test_encode_elements_explicit_headers() -> None:
    data = encode_elements([(0x0100, value_us(1)), (0x1000, value_ui("1.2"))],
                           explicit_vr=True)
    # UL is a short-form VR: tag, "UL", 2-byte length, then the value (10 + 12 bytes follow)
    assert data[:12] == struct.pack("<HH2sHI", 0, 0, b"UL", 4, 22)
    assert data[12:20] == struct.pack("<HH2sH", 0, 0x100, b"US", 2)
    assert data[22:30] == struct.pack("<HH2sH", 0, 0x1000, b"UI", 4)


def test_message_elements_exclude_group_length_and_are_ascending() -> None:
    for msg in (STORE, CStoreRSP(1, 0xB000, CT, INST, 1, "c", [1], 2), CEchoRQ(1),
                CEchoRSP(1, 0), CCancelRQ(1)):
        els = [e for e, _ in message_elements(msg)]
        assert 0x0000 not in els and els == sorted(els)
        assert all(e in COMMAND_ELEMENTS for e in els)


def test_summarize() -> None:
    line = summarize(decode_command(encode_command(CStoreRQ(5, CT, "1.2.3.4"))))
    assert line == "C-STORE-RQ id=5 CT Image Storage 1.2.3.4 prio=MEDIUM"
    line = summarize(decode_command(encode_command(CStoreRSP(5, 0xA700))))
    assert line == "C-STORE-RSP to=5 status=0xA700 Failure"
    line = summarize(decode_command(encode_command(CStoreRQ(5, CT, "1." + "2" * 40,
                                                            priority=9))))
    assert "..." in line and "prio=0x0009" in line and "[1 findings, 1 errors]" in line


@given(st.text("0123456789.a ", max_size=70))
def test_uid_finding_iff_uid_rules_broken(uid: str) -> None:
    from harness.wire.uid import uid_problem

    uid = uid.strip(" ")  # trailing spaces are padding, reported separately
    d = decode_command(encode_command(CStoreRQ(1, CT, uid)))
    flagged = any(f.section == "PS3.5 9.1" for f in d.findings)
    assert flagged == (uid_problem(uid) is not None)
