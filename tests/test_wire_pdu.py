"""Tests for harness.wire.pdu and harness.wire.items: encoders, round trips, fault injection,
and byte-for-byte agreement with pynetdicom 3.0.4's PDU encoders and decoders."""

from __future__ import annotations

import string
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.wire.constants import (
    ABORT_REASONS,
    APPLICATION_CONTEXT_NAME,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    RJ_REASONS,
    VERIFICATION_SOP_CLASS,
    ItemType,
    PDUType,
)
from harness.wire.decode import decode_pdu, summarize
from harness.wire.findings import Finding
from harness.wire.items import (
    ApplicationContextItem,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RawItem,
    RoleSelection,
    SOPClassCommonExtended,
    SOPClassExtended,
    SubItem,
    SyntaxSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from harness.wire.pdu import (
    HARNESS_IMPLEMENTATION_CLASS_UID,
    HARNESS_IMPLEMENTATION_VERSION,
    PDU,
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    RawPDU,
    ReleaseRP,
    ReleaseRQ,
    associate_ac,
    associate_rq,
    pdu_header,
    pdu_name,
    standard_user_information,
)
from harness.wire.uid import encode_ae_title

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
STORAGE = "1.2.840.10008.4.2"


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def roundtrip(pdu: PDU) -> tuple[PDU, list[Finding], bytes]:
    """Encode, decode, and check the decoded object re-encodes to the very same bytes."""
    data = pdu.encode()
    decoded, findings = decode_pdu(data)
    assert decoded.encode() == data
    return decoded, findings, data


def full_rq() -> AssociateRQ:
    """An A-ASSOCIATE-RQ with every RQ sub-item type."""
    return associate_rq(
        "STORE-SCP",
        "HARNESS",
        [
            PresentationContextRQ(1, VERIFICATION_SOP_CLASS, [IMPLICIT_VR_LE]),
            PresentationContextRQ(3, CT, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]),
            PresentationContextRQ(255, MR, [IMPLICIT_VR_LE]),
        ],
        max_pdu=32768,
        extra_user_items=[
            AsyncOpsWindow(5, 3),
            RoleSelection(CT, 1, 0),
            SOPClassExtended(CT, b"\x01\x00\x01"),
            SOPClassCommonExtended(CT, STORAGE, ["1.2.840.10008.5.1.4.1.1.2.1", "1.2.3"]),
            UserIdentityRQ(2, b"user", b"secret", 1),
        ],
    )


def full_ac() -> AssociateAC:
    rq = full_rq()
    return associate_ac(
        rq,
        [
            PresentationContextAC(1, 0, IMPLICIT_VR_LE),
            PresentationContextAC(3, 0, EXPLICIT_VR_LE),
            PresentationContextAC(255, 3, IMPLICIT_VR_LE),
        ],
        max_pdu=65536,
        extra_user_items=[AsyncOpsWindow(1, 1), RoleSelection(CT, 1, 0), UserIdentityAC(b"tok")],
    )


# --- round trips of every PDU type -----------------------------------------------------------


def test_associate_rq_roundtrip_fields() -> None:
    rq = full_rq()
    decoded, findings, data = roundtrip(rq)
    assert findings == []
    assert isinstance(decoded, AssociateRQ)
    assert data[0] == 0x01 and data[1] == 0
    assert struct.unpack(">I", data[2:6])[0] == len(data) - 6
    assert decoded.called_ae_title == "STORE-SCP"
    assert decoded.calling_ae_title == "HARNESS"
    assert decoded.called_ae == b"STORE-SCP       "
    assert decoded.items == rq.items
    assert decoded.application_context == APPLICATION_CONTEXT_NAME
    assert decoded.max_pdu_length == 32768
    assert [pc.context_id for pc in decoded.presentation_contexts] == [1, 3, 255]
    assert decoded.presentation_contexts[1].transfer_syntaxes == [EXPLICIT_VR_LE, IMPLICIT_VR_LE]
    ui = decoded.user_information
    assert ui is not None
    assert ui.implementation_class_uid == HARNESS_IMPLEMENTATION_CLASS_UID
    assert ui.implementation_version_name == HARNESS_IMPLEMENTATION_VERSION
    assert ui.async_ops_window == (5, 3)
    assert ui.role_selections == [RoleSelection(CT, 1, 0)]
    assert decoded.protocol_version == 1


def test_associate_ac_roundtrip_fields() -> None:
    ac = full_ac()
    decoded, findings, data = roundtrip(ac)
    assert findings == []
    assert isinstance(decoded, AssociateAC)
    assert data[0] == 0x02
    assert decoded.items == ac.items
    # PS3.8 9.3.3: bytes 11-42 and 43-74 echo the RQ.
    assert data[10:74] == full_rq().encode()[10:74]
    results = decoded.presentation_contexts
    assert [(p.context_id, p.result, p.accepted) for p in results] == [
        (1, 0, True), (3, 0, True), (255, 3, False)]
    assert results[1].transfer_syntax == EXPLICIT_VR_LE
    assert decoded.max_pdu_length == 65536


def test_associate_ac_rejected_context_without_transfer_syntax() -> None:
    ac = associate_ac(full_rq(), [PresentationContextAC(1, 4, None)])
    decoded, findings, data = roundtrip(ac)
    assert errors(findings) == []
    assert isinstance(decoded, AssociateAC)
    assert decoded.presentation_contexts == [PresentationContextAC(1, 4, None)]
    # The item is just the 4-byte header plus 4 fixed bytes: no 40H sub-item.
    pos = 74 + len(ApplicationContextItem().encode())
    assert data[pos: pos + 8] == bytes((0x21, 0, 0, 4, 1, 0, 4, 0))


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (AssociateRJ(1, 1, 7), bytes.fromhex("03 00 00000004 00 01 01 07")),
        (AssociateRJ(2, 3, 2), bytes.fromhex("03 00 00000004 00 02 03 02")),
        (ReleaseRQ(), bytes.fromhex("05 00 00000004 00000000")),
        (ReleaseRP(), bytes.fromhex("06 00 00000004 00000000")),
        (Abort(0, 0), bytes.fromhex("07 00 00000004 0000 00 00")),
        (Abort(2, 6), bytes.fromhex("07 00 00000004 0000 02 06")),
        (PDataTF([PDV(1, 3, b"\x01\x02")]), bytes.fromhex("04 00 00000008 00000004 01 03 0102")),
        (RawPDU(0x08, b"\xAA\xBB"), bytes.fromhex("08 00 00000002 AABB")),
    ],
)
def test_fixed_pdus_exact_bytes_and_roundtrip(pdu: PDU, expected: bytes) -> None:
    assert pdu.encode() == expected
    decoded, findings, _ = roundtrip(pdu)
    assert decoded == pdu
    if isinstance(pdu, RawPDU):
        assert [f.field for f in findings] == ["PDU-type"]
    else:
        assert findings == []


def test_pdata_roundtrip_several_pdvs_views() -> None:
    pdu = PDataTF([PDV(1, 1, b"cmd1"), PDV(1, 3, b"cmd2!!"), PDV(1, 0, b"da"), PDV(1, 2, b"ta")])
    decoded, findings, data = roundtrip(pdu)
    assert findings == []
    assert isinstance(decoded, PDataTF)
    assert decoded == pdu
    assert [(p.is_command, p.is_last) for p in decoded.pdvs] == [
        (True, False), (True, True), (False, False), (False, True)]
    # Decoded fragments are views into the received bytes, not copies.
    assert all(isinstance(p.data, memoryview) and p.data.obj is data for p in decoded.pdvs)
    assert b"".join(pdu.encode_parts()) == data
    assert struct.unpack(">I", data[2:6])[0] == sum(p.item_size for p in pdu.pdvs)


def test_pdata_encode_parts_does_not_copy_fragments() -> None:
    payload = bytes(range(200)) * 10
    view = memoryview(payload)[10:1010]
    parts = PDataTF([PDV(5, 2, view)]).encode_parts()
    assert len(parts) == 3
    assert parts[2] is view
    assert parts[0] == pdu_header(PDUType.P_DATA_TF, 1006)
    assert parts[1] == struct.pack(">IBB", 1002, 5, 2)


# --- every item and sub-item type ------------------------------------------------------------

SUB_ITEMS: list[tuple[SubItem, bytes]] = [
    (MaximumLength(16384), bytes.fromhex("51 00 0004 00004000")),
    (ImplementationClassUID("1.2.3"), b"\x52\x00\x00\x051.2.3"),
    (ImplementationVersionName("V1"), b"\x55\x00\x00\x02V1"),
    (AsyncOpsWindow(2, 0), bytes.fromhex("53 00 0004 0002 0000")),
    (RoleSelection("1.2", 0, 1), b"\x54\x00\x00\x07\x00\x031.2\x00\x01"),
    (SOPClassExtended("1.2", b"\x01"), b"\x56\x00\x00\x06\x00\x031.2\x01"),
    (SOPClassCommonExtended("1.2", "1.3", ["1.4"]),
     b"\x57\x00\x00\x11\x00\x031.2\x00\x031.3\x00\x05\x00\x031.4"),
    (UserIdentityRQ(1, b"bob", b"", 1), b"\x58\x00\x00\x09\x01\x01\x00\x03bob\x00\x00"),
    (UserIdentityAC(b"ok"), b"\x59\x00\x00\x04\x00\x02ok"),
    (RawItem(0x5F, b"\x01\x02"), b"\x5f\x00\x00\x02\x01\x02"),
]
SUB_IDS = [f"{sub.item_type:02X}H" for sub, _ in SUB_ITEMS]


@pytest.mark.parametrize(("sub", "expected"), SUB_ITEMS, ids=SUB_IDS)
def test_sub_item_encoding(sub: SubItem, expected: bytes) -> None:
    assert sub.encode() == expected


@pytest.mark.parametrize(("sub", "_expected"), SUB_ITEMS, ids=SUB_IDS)
def test_sub_item_roundtrip_in_pdu(sub: SubItem, _expected: bytes) -> None:
    if isinstance(sub, UserIdentityAC):
        pdu: AssociateRQ | AssociateAC = associate_ac(
            full_rq(), [PresentationContextAC(1, 0, IMPLICIT_VR_LE)], extra_user_items=[sub])
    else:
        pdu = associate_rq("A", "B", [PresentationContextRQ(1, CT, [IMPLICIT_VR_LE])],
                           extra_user_items=[sub])
    ui = pdu.user_information
    assert ui is not None
    if isinstance(sub, MaximumLength | ImplementationClassUID):
        ui.sub_items = [s for s in ui.sub_items if type(s) is not type(sub) or s is sub]
    decoded, findings, _ = roundtrip(pdu)
    assert isinstance(decoded, type(pdu))
    ui = decoded.user_information
    assert ui is not None
    assert ui.sub_items[-1] == sub
    if isinstance(sub, RawItem):
        # PS3.8 D.2 Note 2: an unknown sub-item is kept and only recorded (info).
        assert [(f.severity, f.field) for f in findings] == [
            ("info", "user information sub-item")]
    else:
        assert findings == []


def test_item_encodings() -> None:
    app_name = APPLICATION_CONTEXT_NAME.encode()
    assert ApplicationContextItem().encode() == b"\x10\x00\x00\x15" + app_name
    assert SyntaxSubItem(ItemType.ABSTRACT_SYNTAX, "1.2").encode() == b"\x30\x00\x00\x031.2"
    assert SyntaxSubItem(ItemType.TRANSFER_SYNTAX, "1.2").encode() == b"\x40\x00\x00\x031.2"
    rq_pc = PresentationContextRQ(3, "1.2", ["1.3", "1.4"])
    assert rq_pc.encode() == (b"\x20\x00\x00\x19\x03\x00\x00\x00" + b"\x30\x00\x00\x031.2"
                              + b"\x40\x00\x00\x031.3" + b"\x40\x00\x00\x031.4")
    ac_pc = PresentationContextAC(3, 2, "1.3")
    assert ac_pc.encode() == b"\x21\x00\x00\x0b\x03\x00\x02\x00" + b"\x40\x00\x00\x031.3"
    ui = UserInformation([MaximumLength(0)])
    assert ui.encode() == bytes.fromhex("50 00 0008 51 00 0004 00000000")
    assert ui.maximum_length == 0
    assert ui.implementation_class_uid is None
    assert ui.implementation_version_name is None
    assert ui.async_ops_window is None
    assert ui.role_selections == []


def test_raw_item_kept_in_presentation_context_and_top_level() -> None:
    # An unknown 35H sub-item inside a PC and an unknown 60H item at the top level.
    pc = PresentationContextRQ(1, CT, [IMPLICIT_VR_LE], extra_sub_items=[RawItem(0x35, b"xy")])
    rq = associate_rq("A", "B", [pc])
    rq.items.append(RawItem(0x60, b"\x00\x01"))
    decoded, findings, _ = roundtrip(rq)
    assert isinstance(decoded, AssociateRQ)
    assert decoded.presentation_contexts[0].extra_sub_items == [RawItem(0x35, b"xy")]
    assert decoded.items[-1] == RawItem(0x60, b"\x00\x01")
    assert {f.field for f in errors(findings)} == {"sub-item-type", "item-type"}


def test_accessors_with_bytes_values() -> None:
    rq = AssociateRQ(called_ae=b"  SCP  \x00", calling_ae="  SCU ",
                     items=[ApplicationContextItem(b"1.2.3"),
                            UserInformation([ImplementationClassUID(b"1.2"),
                                             ImplementationVersionName(b"X")])])
    assert rq.called_ae_title == "SCP"
    assert rq.calling_ae_title == "SCU"
    assert rq.application_context == "1.2.3"
    assert rq.user_information is not None
    assert rq.user_information.implementation_class_uid == "1.2"
    assert rq.user_information.implementation_version_name == "X"
    assert rq.max_pdu_length is None
    assert AssociateRQ().application_context is None
    assert AssociateRQ().user_information is None


def test_helpers() -> None:
    assert pdu_name(1) == "A-ASSOCIATE-RQ"
    assert pdu_name(7) == "A-ABORT"
    assert pdu_name(0x42) == "PDU-0x42"
    assert pdu_header(4, 10, 0xFF) == b"\x04\xff\x00\x00\x00\x0a"
    assert pdu_header(4, 1 << 32) == b"\x04\x00\x00\x00\x00\x00"  # masked, never raises
    ui = standard_user_information(1234, "1.2.3", None, [AsyncOpsWindow(1, 1)])
    assert ui.sub_items == [MaximumLength(1234), ImplementationClassUID("1.2.3"),
                            AsyncOpsWindow(1, 1)]
    assert AssociateRJ(1, 1, 7).describe() == (
        "rejected-permanent, source 1, called-AE-title-not-recognized")
    assert "unknown result 9" in AssociateRJ(9, 4, 4).describe()
    assert Abort(2, 1).describe() == "DICOM UL service-provider, unrecognized-PDU"
    assert Abort(0, 0).describe() == "DICOM UL service-user (reason 0)"


def test_associate_ac_echoes_rq_fields() -> None:
    rq = full_rq()
    rq.reserved_tail = bytes(range(32))
    rq.called_ae = b"\\weird title \x01\x7f\x00"  # raw bytes echo as they came, even if invalid
    ac = associate_ac(rq, [PresentationContextAC(1, 0, IMPLICIT_VR_LE)])
    rq_bytes, ac_bytes = rq.encode(), ac.encode()
    assert ac_bytes[10:26] == rq_bytes[10:26] == b"\\weird title \x01\x7f\x00"
    assert ac_bytes[26:42] == rq_bytes[26:42]
    assert ac_bytes[42:74] == rq_bytes[42:74] == bytes(range(32))


def test_summarize() -> None:
    assert "contexts=[1:1.2.840.10008.1.1" in summarize(full_rq())
    assert "max_pdu=65536" in summarize(full_ac())
    assert summarize(AssociateRJ(1, 1, 3)).endswith("calling-AE-title-not-recognized")
    pdata = PDataTF([PDV(1, 0, b"ab")] * 6)
    assert summarize(pdata).endswith("(+2 more)")
    assert summarize(RawPDU(9, b"abc")) == "type=09H body=3 bytes"
    assert summarize(ReleaseRQ()) == ""


# --- fault injection: overrides produce exactly the bytes asked for --------------------------


def test_pdu_header_overrides() -> None:
    for pdu in (full_rq(), full_ac(), AssociateRJ(), PDataTF([PDV(1, 3, b"ab")]), ReleaseRQ(),
                ReleaseRP(), Abort(), RawPDU(9, b"zz")):
        clean = pdu.encode()
        pdu.length = 0xFFFFFFFF
        pdu.reserved_header = 0xA5
        data = pdu.encode()
        assert data[0] == clean[0]
        assert data[1] == 0xA5
        assert data[2:6] == b"\xff\xff\xff\xff"
        assert data[6:] == clean[6:]
        decoded, findings = decode_pdu(data)
        # The lie is kept, so re-encoding reproduces the sent bytes.
        assert decoded.encode() == data
        assert decoded.length == 0xFFFFFFFF
        assert {(f.offset, f.field) for f in findings} >= {(1, "PDU reserved byte"),
                                                            (2, "PDU-length")}


def test_associate_fixed_field_overrides() -> None:
    rq = full_rq()
    rq.protocol_version = 0x8002
    rq.reserved_version = 0x1234
    rq.reserved_tail = b"\xEE" * 32
    rq.called_ae = b"SHORT"  # 5 bytes instead of 16: the fixed part shrinks
    rq.calling_ae = b"X" * 20  # 20 bytes instead of 16
    data = rq.encode()
    items = b"".join(i.encode() for i in rq.items)
    assert data[6:10] == b"\x80\x02\x12\x34"
    assert data[10:15] == b"SHORT"
    assert data[15:35] == b"X" * 20
    assert data[35:67] == b"\xEE" * 32
    assert data[67:] == items
    assert struct.unpack(">I", data[2:6])[0] == 4 + 5 + 20 + 32 + len(items)


def test_item_overrides() -> None:
    app = ApplicationContextItem("1.2", reserved=0x11, length=0xFFFF)
    assert app.encode() == b"\x10\x11\xff\xff1.2"
    app.item_type = 0x99
    assert app.encode()[0] == 0x99
    pc = PresentationContextRQ(2, "1.2", ["1.3"], reserved=(1, 2, 3, 4), length=7)
    assert pc.encode()[:8] == b"\x20\x01\x00\x07\x02\x02\x03\x04"
    pc_empty = PresentationContextRQ(1, "", [])  # no transfer syntax: only an empty 30H item
    assert pc_empty.encode() == b"\x20\x00\x00\x08\x01\x00\x00\x00\x30\x00\x00\x00"
    ac = PresentationContextAC(1, 0, "1.2", reserved=(9, 8, 7, 6), length=1)
    assert ac.encode()[:8] == b"\x21\x09\x00\x01\x01\x08\x00\x06"  # byte 3 stays the result
    ui = UserInformation([MaximumLength(1, reserved=0x22, length=2)], reserved=0x33, length=0)
    assert ui.encode() == b"\x50\x33\x00\x00" + b"\x51\x22\x00\x02\x00\x00\x00\x01"
    assert AsyncOpsWindow(1, 2, length=3).encode() == b"\x53\x00\x00\x03\x00\x01\x00\x02"
    assert RoleSelection("1.2", 2, 3, reserved=1).encode() == b"\x54\x01\x00\x07\x00\x031.2\x02\x03"
    long_name = ImplementationVersionName("X" * 20, length=16)
    assert long_name.encode() == b"\x55\x00\x00\x10" + b"X" * 20
    assert ImplementationClassUID(b"\x00\xff").encode() == b"\x52\x00\x00\x02\x00\xff"
    assert SOPClassCommonExtended("1", "2", reserved=0).encode()[:2] == b"\x57\x00"
    assert SOPClassCommonExtended("1", "2", reserved=1).encode()[:2] == b"\x57\x01"  # version
    assert RawItem(0x51, b"\x00", reserved=0xFF, length=4).encode() == b"\x51\xff\x00\x04\x00"
    assert MaximumLength(-1).encode() == b"\x51\x00\x00\x04\xff\xff\xff\xff"  # masked


def test_pdv_and_body_overrides() -> None:
    pdv = PDV(2, 0xFF, b"abc", length=1)
    assert pdv.header() == b"\x00\x00\x00\x01\x02\xff"
    assert PDataTF([pdv]).encode() == b"\x04\x00\x00\x00\x00\x09" + pdv.header() + b"abc"
    assert PDataTF([]).encode() == b"\x04\x00\x00\x00\x00\x00"
    assert PDataTF([PDV(1, 0, b"")]).encode() == bytes.fromhex("04 00 00000006 00000002 01 00")
    assert AssociateRJ(reserved_body=0x7F).encode()[6] == 0x7F
    assert Abort(1, 3, reserved_body=(0xAB, 0xCD)).encode()[6:] == b"\xab\xcd\x01\x03"
    assert ReleaseRQ(body=b"12345").encode() == b"\x05\x00\x00\x00\x00\x0512345"
    assert ReleaseRP(body=b"").encode() == b"\x06\x00\x00\x00\x00\x00"
    assert RawPDU(0xFF, b"", reserved_header=1, length=99).encode() == b"\xff\x01\x00\x00\x00\x63"


def test_reserved_bytes_roundtrip() -> None:
    """B08-style PDU: every reserved byte that the objects hold survives decode/encode."""
    rq = full_rq()
    rq.reserved_header = 1
    rq.reserved_version = 2
    rq.reserved_tail = b"\x03" * 32
    rq.items[0] = ApplicationContextItem(reserved=4)
    pc = rq.presentation_contexts[0]
    pc.reserved = (5, 6, 7, 8)
    ui = rq.user_information
    assert ui is not None
    ui.reserved = 9
    ui.sub_items[0] = MaximumLength(16384, reserved=10)
    _, findings, _ = roundtrip(rq)
    assert errors(findings) == []
    assert len(findings) == 10  # every reserved field reported, as a warning
    assert {f.offset for f in findings} >= {1, 8, 42}


# --- hypothesis: random valid PDUs round trip without errors ---------------------------------

uid_component = st.one_of(st.just("0"), st.integers(1, 99999).map(str))
uids = st.lists(uid_component, min_size=2, max_size=10).map(".".join)
ae_titles = st.text(alphabet=string.ascii_letters + string.digits + " -_.", min_size=1,
                    max_size=16).filter(lambda s: s.strip() != "")
version_names = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1,
                        max_size=16)
context_ids = st.lists(st.integers(0, 127).map(lambda i: 2 * i + 1), min_size=1, max_size=8,
                       unique=True)


@st.composite
def user_identity_rqs(draw: st.DrawFn) -> UserIdentityRQ:
    identity_type = draw(st.integers(1, 5))
    # PS3.7 Table D.3-14: type 2 (username and passcode) carries a non-empty
    # secondary field; pynetdicom refuses to encode one without it.
    secondary = draw(st.binary(min_size=1 if identity_type == 2 else 0, max_size=24))
    return UserIdentityRQ(identity_type, draw(st.binary(max_size=24)), secondary,
                          draw(st.integers(0, 1)))


def optional_sub_items(is_rq: bool) -> st.SearchStrategy[list[SubItem]]:
    choices: list[st.SearchStrategy[Any]] = [
        st.builds(ImplementationVersionName, version_names),
        st.builds(AsyncOpsWindow, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        st.builds(RoleSelection, uids, st.integers(0, 1), st.integers(0, 1)),
        st.builds(SOPClassExtended, uids, st.binary(max_size=16)),
        st.builds(SOPClassCommonExtended, uids, uids, st.lists(uids, max_size=3)),
    ]
    if is_rq:
        choices.append(user_identity_rqs())
    else:
        choices.append(st.builds(UserIdentityAC, st.binary(max_size=24)))
    return st.lists(st.one_of(choices), max_size=6)


@st.composite
def user_information(draw: st.DrawFn, is_rq: bool) -> UserInformation:
    subs: list[SubItem] = [MaximumLength(draw(st.integers(0, 0xFFFFFFFF))),
                           ImplementationClassUID(draw(uids))]
    subs += draw(optional_sub_items(is_rq))
    # PS3.8 9.3.2.3 Note: sub-items may come in any order.
    return UserInformation(list(draw(st.permutations(subs))))


@st.composite
def associate_rqs(draw: st.DrawFn) -> AssociateRQ:
    contexts = [PresentationContextRQ(cid, draw(uids),
                                      draw(st.lists(uids, min_size=1, max_size=4, unique=True)))
                for cid in draw(context_ids)]
    return AssociateRQ(
        called_ae=draw(ae_titles), calling_ae=draw(ae_titles),
        items=[ApplicationContextItem(), *contexts, draw(user_information(True))],
        protocol_version=draw(st.sampled_from([1, 1, 3, 0x8001])),
    )


@st.composite
def associate_acs(draw: st.DrawFn) -> AssociateAC:
    contexts = []
    for cid in draw(context_ids):
        result = draw(st.integers(0, 4))
        ts = draw(uids) if result == 0 else draw(st.one_of(st.none(), uids))
        contexts.append(PresentationContextAC(cid, result, ts))
    return AssociateAC(
        called_ae=encode_ae_title(draw(ae_titles)), calling_ae=encode_ae_title(draw(ae_titles)),
        items=[ApplicationContextItem(), *contexts, draw(user_information(False))],
        reserved_tail=draw(st.binary(min_size=32, max_size=32)),  # an echo of anything
    )


pdvs = st.builds(PDV, st.integers(0, 127).map(lambda i: 2 * i + 1), st.integers(0, 3),
                 st.binary(min_size=1, max_size=64).map(lambda b: b + b"\x00" if len(b) % 2 else b))
pdatas = st.builds(PDataTF, st.lists(pdvs, min_size=1, max_size=6))
rjs = st.sampled_from([AssociateRJ(result, source, reason) for result in (1, 2)
                       for source, reasons in RJ_REASONS.items() for reason in reasons])
aborts = st.one_of(st.just(Abort(0, 0)), st.sampled_from(sorted(ABORT_REASONS)).map(
    lambda r: Abort(2, r)))
releases = st.sampled_from([ReleaseRQ(), ReleaseRP()])
valid_pdus = st.one_of(associate_rqs(), associate_acs(), pdatas, rjs, aborts, releases)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_pdus)
def test_valid_pdus_roundtrip_without_errors(pdu: PDU) -> None:
    decoded, findings, data = roundtrip(pdu)
    assert type(decoded) is type(pdu)
    assert errors(findings) == []
    assert struct.unpack(">I", data[2:6])[0] == len(data) - 6
    if isinstance(pdu, AssociateRQ | AssociateAC):
        assert isinstance(decoded, AssociateRQ | AssociateAC)
        assert decoded.items == pdu.items
        assert decoded.called_ae_title == pdu.called_ae_title
        assert decoded.calling_ae_title == pdu.calling_ae_title
        assert decoded.called_ae == encode_ae_title(pdu.called_ae)
        assert decoded.protocol_version == pdu.protocol_version
        assert decoded.reserved_tail == pdu.reserved_tail
        # Only the documented warning: protocol version with other bits set.
        assert all(f.field == "Protocol-version" for f in findings)
    else:
        assert decoded == pdu
        assert findings == []


# --- byte-for-byte agreement with pynetdicom 3.0.4 -------------------------------------------

pynetdicom = pytest.importorskip("pynetdicom")
from pynetdicom import pdu as pn_pdu  # noqa: E402
from pynetdicom import pdu_primitives as pn_prim  # noqa: E402
from pynetdicom.presentation import PresentationContext  # noqa: E402


def pn_user_information(subs: list[SubItem]) -> list[Any]:
    """The pynetdicom user-information primitives matching our sub-items."""
    out: list[Any] = []
    for sub in subs:
        if isinstance(sub, MaximumLength):
            p: Any = pn_prim.MaximumLengthNotification()
            p.maximum_length_received = sub.value
        elif isinstance(sub, ImplementationClassUID):
            p = pn_prim.ImplementationClassUIDNotification()
            p.implementation_class_uid = sub.uid
        elif isinstance(sub, ImplementationVersionName):
            p = pn_prim.ImplementationVersionNameNotification()
            p.implementation_version_name = sub.name
        elif isinstance(sub, AsyncOpsWindow):
            p = pn_prim.AsynchronousOperationsWindowNegotiation()
            p.maximum_number_operations_invoked = sub.invoked
            p.maximum_number_operations_performed = sub.performed
        elif isinstance(sub, RoleSelection):
            p = pn_prim.SCP_SCU_RoleSelectionNegotiation()
            p.sop_class_uid = sub.sop_class_uid
            p.scu_role = bool(sub.scu_role)
            p.scp_role = bool(sub.scp_role)
        elif isinstance(sub, SOPClassExtended):
            p = pn_prim.SOPClassExtendedNegotiation()
            p.sop_class_uid = sub.sop_class_uid
            p.service_class_application_information = sub.info
        elif isinstance(sub, SOPClassCommonExtended):
            p = pn_prim.SOPClassCommonExtendedNegotiation()
            p.sop_class_uid = sub.sop_class_uid
            p.service_class_uid = sub.service_class_uid
            p.related_general_sop_class_identification = list(sub.related_general_sop_classes)
        elif isinstance(sub, UserIdentityRQ):
            p = pn_prim.UserIdentityNegotiation()
            p.user_identity_type = sub.identity_type
            p.positive_response_requested = bool(sub.positive_response_requested)
            p.primary_field = sub.primary
            p.secondary_field = sub.secondary
        elif isinstance(sub, UserIdentityAC):
            p = pn_prim.UserIdentityNegotiation()
            p.server_response = sub.server_response
        else:
            raise AssertionError(sub)
        out.append(p)
    return out


def pn_associate(pdu: AssociateRQ | AssociateAC) -> bytes:
    prim = pn_prim.A_ASSOCIATE()
    prim.called_ae_title = pdu.called_ae_title
    prim.calling_ae_title = pdu.calling_ae_title
    prim.application_context_name = pdu.application_context
    ui = pdu.user_information
    assert ui is not None
    prim.user_information = pn_user_information(ui.sub_items)
    contexts = []
    for pc in pdu.presentation_contexts:
        cx: Any = PresentationContext()
        cx.context_id = pc.context_id
        if isinstance(pc, PresentationContextRQ):
            cx.abstract_syntax = pc.abstract_syntax
            cx.transfer_syntax = list(pc.transfer_syntaxes)
        else:
            cx.result = pc.result
            cx.transfer_syntax = [pc.transfer_syntax]
        contexts.append(cx)
    encoder: Any
    if isinstance(pdu, AssociateRQ):
        prim.presentation_context_definition_list = contexts
        encoder = pn_pdu.A_ASSOCIATE_RQ()
    else:
        prim.presentation_context_definition_results_list = contexts
        encoder = pn_pdu.A_ASSOCIATE_AC()
    encoder.from_primitive(prim)
    return bytes(encoder.encode())


def test_pynetdicom_associate_rq_identical_bytes() -> None:
    rq = full_rq()
    assert rq.encode() == pn_associate(rq)


def test_pynetdicom_associate_ac_identical_bytes() -> None:
    ac = full_ac()
    assert ac.encode() == pn_associate(ac)


def test_pynetdicom_minimal_rq_identical_bytes() -> None:
    rq = associate_rq("ANY-SCP", "ECHOSCU", [PresentationContextRQ(1, VERIFICATION_SOP_CLASS,
                                                                    [IMPLICIT_VR_LE])],
                      max_pdu=16382)
    assert rq.encode() == pn_associate(rq)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(associate_rqs(), associate_acs()))
def test_pynetdicom_random_associate_identical_bytes(pdu: AssociateRQ | AssociateAC) -> None:
    # pynetdicom always writes protocol version 1, zero bytes 43-74 and a TS sub-item for
    # every result item: align the parts it cannot express, then the bytes must agree.
    pdu.protocol_version = 1
    pdu.reserved_tail = bytes(32)
    pdu.called_ae = pdu.called_ae_title
    pdu.calling_ae = pdu.calling_ae_title
    for pc in pdu.presentation_contexts:
        if isinstance(pc, PresentationContextAC) and pc.transfer_syntax is None:
            pc.transfer_syntax = IMPLICIT_VR_LE
    for role in pdu.user_information.role_selections if pdu.user_information else []:
        role.scu_role |= not role.scp_role  # pynetdicom refuses to propose neither role
    assert pdu.encode() == pn_associate(pdu)


@pytest.mark.parametrize(("result", "source", "reason"),
                         [(1, 1, 1), (1, 1, 7), (2, 2, 2), (2, 3, 1), (1, 3, 2)])
def test_pynetdicom_rj_identical_bytes(result: int, source: int, reason: int) -> None:
    prim = pn_prim.A_ASSOCIATE()
    prim.result = result
    prim.result_source = source
    prim.diagnostic = reason
    pn = pn_pdu.A_ASSOCIATE_RJ()
    pn.from_primitive(prim)
    ours = AssociateRJ(result, source, reason).encode()
    assert ours == pn.encode()
    theirs = pn_pdu.A_ASSOCIATE_RJ()
    theirs.decode(ours)
    assert (theirs.result, theirs.source, theirs.reason_diagnostic) == (result, source, reason)


@pytest.mark.parametrize("payloads", [
    [(1, b"\x03" + b"\x00" * 10)],
    [(1, b"\x01" + b"ab"), (1, b"\x03" + b"cd"), (1, b"\x02" + bytes(range(256)) * 4)],
    [(255, b"\x00" + b"x" * 16384)],
])
def test_pynetdicom_pdata_identical_bytes(payloads: list[tuple[int, bytes]]) -> None:
    prim: Any = pn_prim.P_DATA()
    prim.presentation_data_value_list = [[cid, value] for cid, value in payloads]
    pn = pn_pdu.P_DATA_TF()
    pn.from_primitive(prim)
    ours = PDataTF([PDV(cid, value[0], value[1:]) for cid, value in payloads])
    assert ours.encode() == pn.encode()
    decoded, findings = decode_pdu(pn.encode())
    assert findings == []
    assert decoded == ours
    back = pn_pdu.P_DATA_TF()
    back.decode(ours.encode())
    assert back.to_primitive().presentation_data_value_list == payloads
    assert [list(p) for p in back.to_primitive().presentation_data_value_list] == [
        [cid, value] for cid, value in payloads]


def test_pynetdicom_release_and_abort_identical_bytes() -> None:
    assert ReleaseRQ().encode() == pn_pdu.A_RELEASE_RQ().encode()
    assert ReleaseRP().encode() == pn_pdu.A_RELEASE_RP().encode()
    user = pn_prim.A_ABORT()
    user.abort_source = 0
    assert Abort(0, 0).encode() == pn_pdu.A_ABORT_RQ(user).encode()
    for reason in sorted(ABORT_REASONS):
        provider = pn_prim.A_P_ABORT()
        provider.provider_reason = reason
        assert Abort(2, reason).encode() == pn_pdu.A_ABORT_RQ(provider).encode()
    theirs = pn_pdu.A_ABORT_RQ()
    theirs.decode(Abort(2, 6).encode())
    assert (theirs.source, theirs.reason_diagnostic) == (2, 6)
    for pn_cls, ours in ((pn_pdu.A_RELEASE_RQ, ReleaseRQ), (pn_pdu.A_RELEASE_RP, ReleaseRP)):
        decoded, findings = decode_pdu(pn_cls().encode())
        assert findings == []
        assert decoded == ours()


def test_our_decoder_on_pynetdicom_rq() -> None:
    data = pn_associate(full_rq())
    decoded, findings = decode_pdu(data)
    assert findings == []
    assert isinstance(decoded, AssociateRQ)
    assert decoded.items == full_rq().items
    assert (decoded.called_ae_title, decoded.calling_ae_title) == ("STORE-SCP", "HARNESS")


def test_our_decoder_on_pynetdicom_ac() -> None:
    data = pn_associate(full_ac())
    decoded, findings = decode_pdu(data)
    assert findings == []
    assert isinstance(decoded, AssociateAC)
    assert decoded.items == full_ac().items


def test_pynetdicom_decoder_on_our_rq() -> None:
    theirs: Any = pn_pdu.A_ASSOCIATE_RQ()
    theirs.decode(full_rq().encode())
    assert theirs.called_ae_title == "STORE-SCP"
    assert theirs.calling_ae_title == "HARNESS"
    assert theirs.application_context_name == APPLICATION_CONTEXT_NAME
    contexts = theirs.presentation_context
    assert [c.context_id for c in contexts] == [1, 3, 255]
    assert contexts[1].abstract_syntax == CT
    assert contexts[1].transfer_syntax == [EXPLICIT_VR_LE, IMPLICIT_VR_LE]
    ui = theirs.user_information
    assert ui.maximum_length == 32768
    assert ui.implementation_class_uid == HARNESS_IMPLEMENTATION_CLASS_UID
    assert ui.implementation_version_name == HARNESS_IMPLEMENTATION_VERSION
    assert ui.async_ops_window.maximum_number_operations_invoked == 5
    assert ui.async_ops_window.maximum_number_operations_performed == 3
    role = ui.role_selection[CT]
    assert (role.scu_role, role.scp_role) == (1, 0)
    assert ui.ext_neg[0].service_class_application_information == b"\x01\x00\x01"
    common = ui.common_ext_neg[0]
    assert common.service_class_uid == STORAGE
    assert common.related_general_sop_class_identification == [
        "1.2.840.10008.5.1.4.1.1.2.1", "1.2.3"]
    identity = ui.user_identity
    assert (identity.user_identity_type, identity.primary_field,
            identity.secondary_field) == (2, b"user", b"secret")
    assert theirs.encode() == full_rq().encode()


def test_pynetdicom_decoder_on_our_ac() -> None:
    theirs: Any = pn_pdu.A_ASSOCIATE_AC()
    theirs.decode(full_ac().encode())
    assert theirs.reserved_aet == "STORE-SCP"
    assert theirs.reserved_aec == "HARNESS"
    assert [(c.context_id, c.result, c.transfer_syntax) for c in theirs.presentation_context] == [
        (1, 0, IMPLICIT_VR_LE), (3, 0, EXPLICIT_VR_LE), (255, 3, IMPLICIT_VR_LE)]
    assert theirs.user_information.maximum_length == 65536
    assert theirs.user_information.user_identity.server_response == b"tok"
    assert theirs.encode() == full_ac().encode()
