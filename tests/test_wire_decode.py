"""Tests for harness.wire.decode: the validating decoder never raises, never allocates what a
length field claims, and reports each deviation with the right field, severity and offset."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.wire.constants import IMPLICIT_VR_LE, PDUType
from harness.wire.decode import decode_pdu, decode_pdvs, summarize
from harness.wire.findings import Finding
from harness.wire.items import (
    ApplicationContextItem,
    AsyncOpsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    Item,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RawItem,
    RoleSelection,
    SOPClassCommonExtended,
    SOPClassExtended,
    SubItem,
    UserIdentityRQ,
    UserInformation,
)
from harness.wire.pdu import (
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
)

CT = "1.2.840.10008.5.1.4.1.1.2"
ITEMS_START = 74  # first byte of the variable items of an A-ASSOCIATE-RQ/AC
SEVERITIES = {"error", "warning", "info"}


def base_rq(**kwargs: object) -> AssociateRQ:
    return associate_rq("STORE-SCP", "HARNESS", [PresentationContextRQ(1, CT, [IMPLICIT_VR_LE])],
                        **kwargs)  # type: ignore[arg-type]


def base_ac() -> AssociateAC:
    return associate_ac(base_rq(), [PresentationContextAC(1, 0, IMPLICIT_VR_LE)])


def item_offset(pdu: AssociateRQ | AssociateAC, index: int) -> int:
    """PDU offset of the first byte of ``pdu.items[index]``."""
    return ITEMS_START + sum(len(item.encode()) for item in pdu.items[:index])


def sub_item_offset(pdu: AssociateRQ | AssociateAC, index: int) -> int:
    """PDU offset of the first byte of the ``index``-th user information sub-item."""
    ui_index = next(i for i, it in enumerate(pdu.items) if isinstance(it, UserInformation))
    ui = pdu.items[ui_index]
    assert isinstance(ui, UserInformation)
    return item_offset(pdu, ui_index) + 4 + sum(len(s.encode()) for s in ui.sub_items[:index])


def decode(data: bytes) -> tuple[PDU, list[Finding]]:
    pdu, findings = decode_pdu(data)
    assert all(isinstance(f, Finding) and f.severity in SEVERITIES for f in findings)
    return pdu, findings


def only(findings: list[Finding], field: str) -> Finding:
    """The single finding whose field contains ``field``."""
    hits = [f for f in findings if field in f.field]
    assert len(hits) == 1, findings
    return hits[0]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def user_items(pdu: AssociateRQ | AssociateAC) -> list[SubItem]:
    ui = pdu.user_information
    assert ui is not None
    return ui.sub_items


# --- never raises ------------------------------------------------------------------------------

SEEDS: list[bytes] = [
    base_rq(extra_user_items=[AsyncOpsWindow(2, 2), RoleSelection(CT, 1, 0),
                              SOPClassExtended(CT, b"\x01"),
                              SOPClassCommonExtended(CT, "1.2.840.10008.4.2", ["1.2.3"]),
                              UserIdentityRQ(2, b"u", b"p"), RawItem(0x5F, b"\x01\x02")]).encode(),
    base_ac().encode(),
    associate_ac(base_rq(), [PresentationContextAC(1, 3, None)]).encode(),
    PDataTF([PDV(1, 3, b"\x02\x00" * 8), PDV(1, 0, b"ab"), PDV(1, 2, b"cd")]).encode(),
    AssociateRJ(1, 1, 7).encode(),
    Abort(2, 6).encode(),
    ReleaseRQ().encode(),
    ReleaseRP().encode(),
]


def check_total(data: bytes) -> tuple[PDU, list[Finding]]:
    pdu, findings = decode(data)
    for f in findings:
        assert f.offset is None or 0 <= f.offset <= len(data), f
        assert str(f)
    # Whatever came out can be summarised and encoded again without raising.
    summarize(pdu)
    pdu.encode()
    if not findings:
        # Nothing to report means nothing was lost: the object re-encodes to the input.
        assert pdu.encode() == data
    return pdu, findings


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_total(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([*range(1, 8), 0, 8, 0xFF]), st.integers(0, 255),
       st.binary(max_size=300), st.booleans())
def test_valid_header_prefix_never_raises(pdu_type: int, reserved: int, body: bytes,
                                          honest_length: bool) -> None:
    length = len(body) if honest_length else (len(body) * 7 + 3) & 0xFFFFFFFF
    check_total(struct.pack(">BBI", pdu_type, reserved, length) + body)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "delete", "fixlen"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos: pos + draw(st.integers(1, 8))]
        elif op == "fixlen" and len(data) >= 6:
            # Keep the PDU-length honest so the mutation reaches the body decoders.
            data[2:6] = struct.pack(">I", len(data) - 6)
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_pdus_never_raise(data: bytes) -> None:
    check_total(data)


@pytest.mark.parametrize("data", SEEDS, ids=lambda d: f"type{d[0]}")
def test_every_truncation_never_raises(data: bytes) -> None:
    for cut in range(len(data)):
        _, findings = check_total(data[:cut])
        assert errors(findings), cut  # a truncated PDU is always reported


def test_accepts_bytearray_and_memoryview() -> None:
    data = SEEDS[0]
    expected = decode_pdu(data)
    assert decode_pdu(bytearray(data)) == expected
    assert decode_pdu(memoryview(data)) == expected


def test_short_input() -> None:
    for data in (b"", b"\x01", b"\x04\x00\x00\x00\x00"):
        pdu, findings = decode(data)
        assert isinstance(pdu, RawPDU)
        assert [(f.offset, f.field, f.severity) for f in findings] == [(0, "PDU header", "error")]


# --- lengths that lie do not allocate -----------------------------------------------------------


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("pdu_type", list(range(1, 9)))
def test_huge_pdu_length_no_allocation(pdu_type: int) -> None:
    data = struct.pack(">BBI", pdu_type, 0, 0xFFFFFFFF) + SEEDS[0][6:]
    result: list[tuple[PDU, list[Finding]]] = []
    assert peak_bytes(lambda: result.append(decode_pdu(data))) < 1 << 20
    pdu, findings = result[0]
    f = only(findings, "PDU-length")
    assert (f.offset, f.found, f.severity) == (2, str(0xFFFFFFFF), "error")
    if pdu_type in (1, 2, 5, 6, 8):  # bodies these objects hold verbatim
        assert pdu.encode() == data


def test_huge_item_length_no_allocation() -> None:
    rq = base_rq()
    rq.items[1] = PresentationContextRQ(1, CT, [IMPLICIT_VR_LE], length=0xFFFF)
    data = rq.encode()
    result: list[tuple[PDU, list[Finding]]] = []
    assert peak_bytes(lambda: result.append(decode_pdu(data))) < 1 << 20
    f = only(result[0][1], "item 20H length")
    assert f.offset == item_offset(rq, 1) + 2
    assert f.found == "65535"


def test_huge_sub_item_and_pdv_lengths_no_allocation() -> None:
    rq = base_rq(extra_user_items=[RawItem(0x55, b"x", length=0xFFFF)])
    data = rq.encode()
    pdata = PDataTF([PDV(1, 3, b"ab", length=0xFFFFFFFF)]).encode()
    results: list[tuple[PDU, list[Finding]]] = []
    assert peak_bytes(lambda: results.extend([decode_pdu(data), decode_pdu(pdata)])) < 1 << 20
    f = only(results[0][1], "sub-item 55H length")
    assert f.offset == sub_item_offset(rq, 3) + 2
    assert only(results[1][1], "PDV Item-length").offset == 6


# --- one test per finding type ------------------------------------------------------------------


def test_pdu_length_mismatch() -> None:
    data = ReleaseRQ().encode()
    for wrong in (3, 5, 0):
        _, findings = decode(data[:2] + struct.pack(">I", wrong) + data[6:])
        f = only(findings, "PDU-length")
        assert (f.offset, f.found, f.severity, f.section) == (2, str(wrong), "error", "PS3.8 9.3.1")


def test_unknown_pdu_type() -> None:
    data = b"\x08\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    pdu, findings = decode(data)
    assert pdu == RawPDU(8, b"\x00" * 4)
    f = only(findings, "PDU-type")
    assert (f.offset, f.found, f.severity) == (0, "08H", "error")


def test_unknown_pdu_type_with_lying_length_reencodes() -> None:
    data = b"\x09\x00\x00\x00\x00\x09abcd"
    pdu, findings = decode(data)
    assert pdu.encode() == data
    assert {f.field for f in findings} == {"PDU-type", "PDU-length"}


def test_protocol_version_bit0_clear_is_error() -> None:
    rq = base_rq()
    rq.protocol_version = 0x0002
    _, findings = decode(rq.encode())
    f = only(findings, "Protocol-version")
    assert (f.offset, f.severity, f.found) == (6, "error", "0002H")


@pytest.mark.parametrize("version", [0x0003, 0x8001])
def test_protocol_version_other_bits_warning_only(version: int) -> None:
    rq = base_rq()
    rq.protocol_version = version
    _, findings = decode(rq.encode())
    assert errors(findings) == []
    f = only(findings, "Protocol-version")
    assert (f.offset, f.severity) == (6, "warning")


def test_reserved_bytes_in_associate_rq_are_warnings() -> None:
    rq = base_rq()
    rq.reserved_header = 0x01
    rq.reserved_version = 0x0203
    rq.reserved_tail = b"\x00" * 31 + b"\x04"
    rq.items[0] = ApplicationContextItem(reserved=0x05)
    rq.items[1] = PresentationContextRQ(1, CT, [IMPLICIT_VR_LE], reserved=(6, 7, 0, 8))
    user_items(rq)[0] = MaximumLength(16384, reserved=9)
    ui = rq.user_information
    assert ui is not None
    ui.reserved = 10
    _, findings = decode(rq.encode())
    assert errors(findings) == []
    assert all(f.severity == "warning" for f in findings)
    pc = item_offset(rq, 1)
    got = {(f.offset, f.found) for f in findings}
    assert got == {
        (1, "01H"), (8, "0203H"), (42, "non-zero bytes"), (ITEMS_START + 1, "05H"),
        (pc + 1, "06H"), (pc + 5, "07H"), (pc + 7, "08H"),
        (item_offset(rq, 2) + 1, "0AH"), (sub_item_offset(rq, 0) + 1, "09H"),
    }


def test_reserved_bytes_in_associate_ac_are_warnings() -> None:
    ac = base_ac()
    ac.reserved_tail = b"\xff" * 32  # an AC echoes the RQ: never reported
    ac.items[1] = PresentationContextAC(1, 0, IMPLICIT_VR_LE, reserved=(1, 2, 0, 3))
    _, findings = decode(ac.encode())
    pc = item_offset(ac, 1)
    assert {(f.offset, f.severity) for f in findings} == {
        (pc + 1, "warning"), (pc + 5, "warning"), (pc + 7, "warning")}


def test_sop_class_common_extended_version_byte_not_reported() -> None:
    rq = base_rq(extra_user_items=[SOPClassCommonExtended(CT, "1.2", reserved=1)])
    pdu, findings = decode(rq.encode())
    assert findings == []
    assert isinstance(pdu, AssociateRQ)
    assert user_items(pdu)[-1] == SOPClassCommonExtended(CT, "1.2", reserved=1)


@pytest.mark.parametrize(("raw", "problem"), [
    (b" " * 16, "all spaces"),
    (b"BAD\\AE".ljust(16), "backslash or control character"),
    (b"BAD\x07AE".ljust(16), "backslash or control character"),
    (b"\xc3\xa9AE".ljust(16), "non-ASCII bytes"),
])
def test_ae_title_problems(raw: bytes, problem: str) -> None:
    for attr, offset in (("called_ae", 10), ("calling_ae", 26)):
        rq = base_rq()
        setattr(rq, attr, raw)
        pdu, findings = decode(rq.encode())
        f = only(findings, "AE-title")
        assert (f.offset, f.severity) == (offset, "error")
        assert problem in f.found
        assert pdu.encode() == rq.encode()


def test_ae_title_with_inner_space_and_padding_is_fine() -> None:
    rq = base_rq()
    rq.called_ae = b"  MY SCP        "
    pdu, findings = decode(rq.encode())
    assert findings == []
    assert isinstance(pdu, AssociateRQ) and pdu.called_ae_title == "MY SCP"


def structure_findings(items: list[Item], is_rq: bool = True) -> list[Finding]:
    pdu: AssociateRQ | AssociateAC = AssociateRQ(items=items) if is_rq else AssociateAC(items=items)
    return decode(pdu.encode())[1]


def test_missing_application_context() -> None:
    rq = base_rq()
    f = only(structure_findings(rq.items[1:]), "Application Context item")
    assert (f.found, f.severity, f.offset) == ("0", "error", None)


def test_two_application_contexts() -> None:
    rq = base_rq()
    f = only(structure_findings([rq.items[0], *rq.items]), "Application Context item")
    assert f.found == "2"


@pytest.mark.parametrize("is_rq", [True, False])
def test_missing_presentation_contexts(is_rq: bool) -> None:
    pdu = base_rq() if is_rq else base_ac()
    f = only(structure_findings([pdu.items[0], pdu.items[2]], is_rq), "Presentation Context items")
    assert (f.found, f.severity) == ("none", "error")


def test_missing_user_information() -> None:
    f = only(structure_findings(base_rq().items[:2]), "User Information item")
    assert (f.found, f.severity) == ("0", "error")


def test_item_order_wrong() -> None:
    app, pc, ui = base_rq().items
    findings = structure_findings([pc, app, ui])
    f = only(findings, "item order")
    assert f.severity == "warning"
    assert errors(findings) == []
    assert only(structure_findings([app, ui, pc]), "item order").found == "another order"


@pytest.mark.parametrize("is_rq", [True, False])
def test_even_presentation_context_id(is_rq: bool) -> None:
    pdu = base_rq() if is_rq else base_ac()
    pc = pdu.items[1]
    assert isinstance(pc, PresentationContextRQ | PresentationContextAC)
    pc.context_id = 2
    f = only(decode(pdu.encode())[1], "Presentation-context-ID")
    assert (f.found, f.severity) == ("2", "error")


def test_duplicate_presentation_context_ids() -> None:
    rq = base_rq()
    rq.items.insert(2, PresentationContextRQ(1, CT, [IMPLICIT_VR_LE]))
    f = only(decode(rq.encode())[1], "Presentation-context-ID")
    assert (f.found, f.expected, f.severity) == ("1 used 2 times", "unique within the PDU", "error")


def test_pc_without_abstract_syntax() -> None:
    rq = base_rq()
    # A 20H item with a transfer syntax sub-item only.
    raw = RawItem(0x20, b"\x01\x00\x00\x00" + b"\x40\x00\x00\x11" + IMPLICIT_VR_LE.encode())
    rq.items[1] = raw
    pdu, findings = decode(rq.encode())
    f = only(findings, "Presentation Context 1")
    assert (f.expected, f.offset) == ("one Abstract Syntax sub-item", item_offset(rq, 1) + 4)
    assert isinstance(pdu, AssociateRQ)
    assert pdu.presentation_contexts[0].transfer_syntaxes == [IMPLICIT_VR_LE]


def test_pc_without_transfer_syntax() -> None:
    rq = base_rq()
    rq.items[1] = PresentationContextRQ(3, CT, [])
    f = only(decode(rq.encode())[1], "Presentation Context 3")
    assert (f.expected, f.offset) == ("one or more Transfer Syntax sub-items",
                                      item_offset(rq, 1) + 4)


def test_accepted_ac_context_needs_one_transfer_syntax() -> None:
    ac = base_ac()
    ac.items[1] = PresentationContextAC(1, 0, None)
    f = only(decode(ac.encode())[1], "Presentation Context 1")
    assert (f.found, f.severity, f.offset) == ("0", "error", item_offset(ac, 1) + 4)


def test_rejected_ac_context_transfer_syntax_not_tested() -> None:
    ac = base_ac()
    ac.items[1] = PresentationContextAC(1, 3, "not a uid")  # PS3.8 9.3.3.2: not tested
    assert decode(ac.encode())[1] == []


def test_invalid_pc_result() -> None:
    ac = base_ac()
    ac.items[1] = PresentationContextAC(1, 5, None)
    f = only(decode(ac.encode())[1], "Result/Reason")
    assert (f.found, f.offset) == ("5", item_offset(ac, 1) + 6)


@pytest.mark.parametrize(("uid", "problem"), [
    ("1.2.840.010008.1", "leading zero"),
    ("1.2.abc.4", "characters other than digits"),
    ("1." + "2" * 63, "more than 64"),
    ("1..2", "empty component"),
    ("", "empty UID"),
])
def test_invalid_uid_syntax(uid: str, problem: str) -> None:
    rq = base_rq()
    rq.items[1] = PresentationContextRQ(1, uid, [IMPLICIT_VR_LE])
    abstract_value = item_offset(rq, 1) + 4 + 4 + 4
    f = only(decode(rq.encode())[1], "Abstract-syntax-name")
    assert (f.offset, f.severity, f.section) == (abstract_value, "error", "PS3.8 9.3.2.2.1")
    assert problem in f.found


def test_invalid_uid_in_each_place() -> None:
    bad = "1.02"
    rq = associate_rq("A", "B", [PresentationContextRQ(1, CT, [bad])],
                      application_context=bad)
    ui = rq.user_information
    assert ui is not None
    ui.sub_items[1] = ImplementationClassUID(bad)
    ui.sub_items.append(RoleSelection(bad, 1, 0))
    findings = decode(rq.encode())[1]
    fields = sorted(f.field for f in errors(findings))
    assert fields == ["Application-context-name", "Implementation-class-uid", "SOP-class-uid",
                      "Transfer-syntax-name"]
    # The application context is also not the DICOM one: a separate warning.
    assert [f.severity for f in findings if f.section == "PS3.7 A.2.1"] == ["warning"]


def test_uid_trailing_nul_is_warning() -> None:
    rq = base_rq()
    rq.items[1] = PresentationContextRQ(1, CT.encode() + b"\x00", [IMPLICIT_VR_LE])
    pdu, findings = decode(rq.encode())
    f = only(findings, "Abstract-syntax-name")
    assert f.severity == "warning"
    assert isinstance(pdu, AssociateRQ) and pdu.presentation_contexts[0].abstract_syntax == CT


def test_maximum_length_missing() -> None:
    rq = base_rq()
    del user_items(rq)[0]
    f = only(decode(rq.encode())[1], "Maximum Length sub-item")
    assert (f.found, f.severity) == ("0", "error")


def test_maximum_length_wrong_size() -> None:
    rq = base_rq()
    user_items(rq)[0] = RawItem(0x51, b"\x00\x00\x40")
    findings = decode(rq.encode())[1]
    f = only(findings, "Maximum Length sub-item length")
    assert (f.offset, f.found) == (sub_item_offset(rq, 0) + 2, "3")
    assert only(findings, "sub-item 51H").expected == "at least 4 bytes"


def test_implementation_class_uid_missing() -> None:
    rq = base_rq()
    del user_items(rq)[1]
    f = only(decode(rq.encode())[1], "Implementation Class UID sub-item")
    assert (f.found, f.severity) == ("0", "error")


def test_implementation_version_name_too_long() -> None:
    rq = base_rq()
    user_items(rq)[2] = ImplementationVersionName("X" * 17)
    f = only(decode(rq.encode())[1], "Implementation-version-name length")
    assert (f.offset, f.found, f.severity) == (sub_item_offset(rq, 2) + 2, "17", "error")


def test_async_window_wrong_length() -> None:
    rq = base_rq(extra_user_items=[RawItem(0x53, b"\x00\x01\x00\x01\x00")])
    pdu, findings = decode(rq.encode())
    f = only(findings, "Asynchronous Operations Window length")
    assert (f.offset, f.found) == (sub_item_offset(rq, 3) + 2, "5")
    assert isinstance(pdu, AssociateRQ)
    ui = pdu.user_information
    assert ui is not None and ui.async_ops_window == (1, 1)


@pytest.mark.parametrize("which", ["SCU-role", "SCP-role"])
def test_role_selection_role_value_2(which: str) -> None:
    role = RoleSelection(CT, 2, 0) if which == "SCU-role" else RoleSelection(CT, 1, 2)
    rq = base_rq(extra_user_items=[role])
    f = only(decode(rq.encode())[1], which)
    value = sub_item_offset(rq, 3) + 4
    role_byte = value + 2 + len(CT) + (0 if which == "SCU-role" else 1)
    assert (f.offset, f.found, f.severity) == (role_byte, "2", "error")
    assert rq.encode()[role_byte] == 2


def test_role_selection_uid_length_mismatch() -> None:
    rq = base_rq(extra_user_items=[RawItem(0x54, b"\x00\x09" + CT.encode() + b"\x01\x00")])
    f = only(decode(rq.encode())[1], "UID-length")
    assert f.offset == sub_item_offset(rq, 3) + 4


def test_user_identity_type_out_of_range() -> None:
    rq = base_rq(extra_user_items=[UserIdentityRQ(9, b"x")])
    f = only(decode(rq.encode())[1], "User-Identity-Type")
    assert (f.offset, f.found) == (sub_item_offset(rq, 3) + 4, "9")


def test_common_extended_inconsistent_lengths() -> None:
    rq = base_rq(extra_user_items=[RawItem(0x57, b"\x00\x10abc")])
    f = only(decode(rq.encode())[1], "SOP Class Common Extended")
    assert f.offset == sub_item_offset(rq, 3)


def test_common_extended_trailing_bytes() -> None:
    good = SOPClassCommonExtended(CT, "1.2", ["1.3"]).encode()
    rq = base_rq(extra_user_items=[RawItem(0x57, good[4:] + b"\x00")])
    pdu, findings = decode(rq.encode())
    assert only(findings, "SOP Class Common Extended").offset == sub_item_offset(rq, 3)
    assert pdu.encode() == rq.encode()


def test_common_extended_uids_checked() -> None:
    rq = base_rq(extra_user_items=[SOPClassCommonExtended("1.02", "1.2", ["1.3", "x"])])
    findings = decode(rq.encode())[1]
    value = sub_item_offset(rq, 3) + 4
    assert only(findings, "SOP-class-uid").offset == value + 2
    related = only(findings, "Related-general-sop-class-uid")
    assert related.offset == value + 2 + 4 + 2 + 3 + 2 + 2 + 3 + 2
    assert rq.encode()[related.offset: related.offset + 1] == b"x"


def test_sop_class_extended_uid_checked() -> None:
    rq = base_rq(extra_user_items=[SOPClassExtended("1.2.x", b"\x01")])
    f = only(decode(rq.encode())[1], "SOP-class-uid")
    assert (f.offset, f.section) == (sub_item_offset(rq, 3) + 6, "PS3.7 D.3.3.5")


def test_implementation_version_name_non_ascii_kept_as_bytes() -> None:
    rq = base_rq()
    user_items(rq)[2] = ImplementationVersionName(b"V\xc4")
    pdu, findings = decode(rq.encode())
    f = only(findings, "Implementation-version-name")
    assert (f.offset, f.severity) == (sub_item_offset(rq, 2) + 4, "error")
    assert pdu.encode() == rq.encode()


def test_user_identity_secondary_length_mismatch() -> None:
    raw = RawItem(0x58, b"\x02\x00\x00\x01u\x00\x05pw")
    rq = base_rq(extra_user_items=[raw])
    f = only(decode(rq.encode())[1], "Secondary-field-length")
    assert (f.offset, f.found) == (sub_item_offset(rq, 3) + 4 + 5, "5")


def test_user_identity_server_response_length_mismatch() -> None:
    ac = associate_ac(base_rq(), [PresentationContextAC(1, 0, IMPLICIT_VR_LE)],
                      extra_user_items=[RawItem(0x59, b"\x00\x05ab")])
    f = only(decode(ac.encode())[1], "Server-response-length")
    assert (f.offset, f.found) == (sub_item_offset(ac, 3) + 4, "5")


@pytest.mark.parametrize("is_rq", [True, False])
def test_unknown_sub_item_is_info_and_kept(is_rq: bool) -> None:
    unknown = RawItem(0x5F, b"\x01\x02")
    pdu: AssociateRQ | AssociateAC
    if is_rq:
        pdu = base_rq(extra_user_items=[unknown])
    else:
        pdu = associate_ac(base_rq(), [PresentationContextAC(1, 0, IMPLICIT_VR_LE)],
                           extra_user_items=[unknown])
    decoded, findings = decode(pdu.encode())
    assert type(decoded) is type(pdu)
    assert [(f.severity, f.offset, f.found) for f in findings] == [
        ("info", sub_item_offset(pdu, 3), "5FH")]
    assert isinstance(decoded, AssociateRQ | AssociateAC)
    assert user_items(decoded)[-1] == unknown
    assert decoded.encode() == pdu.encode()


def test_unexpected_item_type() -> None:
    rq = base_rq()
    rq.items.insert(2, PresentationContextAC(3, 0, IMPLICIT_VR_LE))  # 21H inside an RQ
    pdu, findings = decode(rq.encode())
    f = only(findings, "item-type")
    assert (f.offset, f.found, f.severity) == (item_offset(rq, 2), "21H", "error")
    assert isinstance(pdu, AssociateRQ) and isinstance(pdu.items[2], RawItem)
    assert pdu.encode() == rq.encode()


def test_associate_too_short_for_fixed_fields() -> None:
    data = base_rq().encode()[:50]
    data = data[:2] + struct.pack(">I", 44) + data[6:]
    pdu, findings = decode(data)
    assert isinstance(pdu, RawPDU)
    f = only(findings, "A-ASSOCIATE-RQ")
    assert (f.offset, f.found) == (6, "44 bytes")
    assert pdu.encode() == data


def test_item_header_truncated() -> None:
    rq = base_rq()
    data = rq.encode() + b"\x50\x00"
    data = data[:2] + struct.pack(">I", len(data) - 6) + data[6:]
    f = only(decode(data)[1], "item header")
    assert f.offset == len(data) - 2


@pytest.mark.parametrize(("source", "reason"), [(1, 4), (2, 3), (3, 3), (4, 1), (0, 1)])
def test_rj_invalid_source_reason(source: int, reason: int) -> None:
    pdu, findings = decode(AssociateRJ(1, source, reason).encode())
    f = only(findings, "Source/Reason")
    assert (f.offset, f.severity) == (8, "error")
    assert pdu == AssociateRJ(1, source, reason)


def test_rj_invalid_result_and_reserved() -> None:
    findings = decode(AssociateRJ(3, 1, 1, reserved_body=1).encode())[1]
    assert only(findings, "Result").offset == 7
    reserved = only(findings, "reserved")
    assert (reserved.offset, reserved.severity) == (6, "warning")


def test_abort_source_1() -> None:
    f = only(decode(Abort(1, 0).encode())[1], "Source")
    assert (f.offset, f.found, f.severity) == (8, "1", "error")


def test_abort_source_0_with_reason_is_warning() -> None:
    # PS3.8 Table 9-26: for source 0 the reason "shall not be significant ... not tested".
    findings = decode(Abort(0, 5).encode())[1]
    f = only(findings, "Reason/Diag.")
    assert (f.offset, f.found, f.severity) == (9, "05H", "warning")


def test_abort_source_2_reason_3() -> None:
    f = only(decode(Abort(2, 3).encode())[1], "Reason/Diag.")
    assert (f.offset, f.found, f.severity) == (9, "3", "error")


def test_abort_reserved_bytes() -> None:
    pdu, findings = decode(Abort(2, 1, reserved_body=(0, 1)).encode())
    f = only(findings, "reserved")
    assert (f.offset, f.severity, f.found) == (6, "warning", "0001")
    assert pdu == Abort(2, 1, reserved_body=(0, 1))


@pytest.mark.parametrize("cls", [ReleaseRQ, ReleaseRP])
@pytest.mark.parametrize("body", [b"", b"\x00" * 3, b"\x00" * 5])
def test_release_body_not_4_bytes(cls: type[ReleaseRQ], body: bytes) -> None:
    pdu, findings = decode(cls(body=body).encode())
    f = only(findings, "body")
    assert (f.offset, f.found, f.severity) == (6, f"{len(body)} bytes", "error")
    assert pdu == cls(body=body)


def test_release_reserved_is_warning() -> None:
    f = only(decode(ReleaseRP(body=b"\x00\x00\x00\x01").encode())[1], "reserved")
    assert (f.offset, f.severity) == (6, "warning")


@pytest.mark.parametrize(("cls", "name"), [(AssociateRJ, "A-ASSOCIATE-RJ"), (Abort, "A-ABORT")])
def test_four_byte_pdus_too_short(cls: type[AssociateRJ | Abort], name: str) -> None:
    data = cls().encode()[:8]
    data = data[:2] + b"\x00\x00\x00\x02" + data[6:]
    pdu, findings = decode(data)
    assert isinstance(pdu, RawPDU)
    assert only(findings, name).offset == 6
    assert pdu.encode() == data


# --- P-DATA-TF ------------------------------------------------------------------------------


def test_pdv_length_overrunning() -> None:
    pdu = PDataTF([PDV(1, 3, b"ab"), PDV(1, 2, b"cdef", length=100)])
    pdata, findings = decode(pdu.encode())
    f = only(findings, "PDV Item-length")
    assert (f.offset, f.found, f.severity) == (6 + 8, "100", "error")
    assert isinstance(pdata, PDataTF)
    assert [bytes(p.data) for p in pdata.pdvs] == [b"ab", b"cdef"]  # cut to what is there


def test_pdv_length_below_2() -> None:
    for length in (0, 1):
        data = PDataTF([PDV(1, 3, b"", length=length)]).encode()
        f = only(decode(data)[1], "PDV Item-length")
        assert (f.offset, f.found) == (6, str(length))


def test_pdv_item_truncated_header() -> None:
    data = PDataTF([PDV(1, 3, b"ab")]).encode() + b"\x00\x00\x00"
    data = data[:2] + struct.pack(">I", len(data) - 6) + data[6:]
    f = only(decode(data)[1], "PDV item")
    assert (f.offset, f.found) == (14, "3 trailing bytes")


def test_pdata_without_pdvs() -> None:
    pdu, findings = decode(PDataTF([]).encode())
    assert isinstance(pdu, PDataTF) and pdu.pdvs == []
    f = only(findings, "P-DATA-TF")
    assert (f.offset, f.found, f.severity) == (6, "none", "error")


def test_pdv_even_context_id() -> None:
    f = only(decode(PDataTF([PDV(1, 1, b"ab"), PDV(2, 3, b"cd")]).encode())[1], "context-ID")
    assert (f.field, f.found, f.severity) == ("PDV 1 Presentation-context-ID", "2", "error")


def test_pdv_mch_reserved_bits_warning() -> None:
    pdu, findings = decode(PDataTF([PDV(1, 0xFF, b"ab")]).encode())
    f = only(findings, "Message Control Header")
    assert (f.found, f.severity) == ("FFH", "warning")
    assert isinstance(pdu, PDataTF) and pdu.pdvs[0].is_command and pdu.pdvs[0].is_last


def test_empty_pdv_warning() -> None:
    findings = decode(PDataTF([PDV(1, 0, b"ab"), PDV(1, 2, b"")]).encode())[1]
    f = only(findings, "fragment")
    assert (f.field, f.found, f.severity) == ("PDV 1 fragment", "empty fragment", "warning")


def test_odd_fragment_warning() -> None:
    findings = decode(PDataTF([PDV(1, 2, b"abc")]).encode())[1]
    f = only(findings, "fragment length")
    assert (f.found, f.severity) == ("3", "warning")


def test_decode_pdvs_without_findings_list() -> None:
    body = memoryview(PDataTF([PDV(1, 3, b"ab"), PDV(3, 2, b"cd", length=99)]).encode())[6:]
    pdvs = decode_pdvs(body)
    assert [(p.context_id, bytes(p.data)) for p in pdvs] == [(1, b"ab"), (3, b"cd")]
    assert all(p.data.obj is body.obj for p in pdvs if isinstance(p.data, memoryview))


def test_pdata_reserved_header() -> None:
    pdu, findings = decode(PDataTF([PDV(1, 3, b"ab")], reserved_header=0x80).encode())
    assert [(f.offset, f.severity) for f in findings] == [(1, "warning")]
    assert isinstance(pdu, PDataTF) and pdu.reserved_header == 0x80


def test_all_pdu_types_decode_to_their_class() -> None:
    expected = {PDUType.A_ASSOCIATE_RQ: AssociateRQ, PDUType.A_ASSOCIATE_AC: AssociateAC,
                PDUType.P_DATA_TF: PDataTF, PDUType.A_ASSOCIATE_RJ: AssociateRJ,
                PDUType.A_ABORT: Abort, PDUType.A_RELEASE_RQ: ReleaseRQ,
                PDUType.A_RELEASE_RP: ReleaseRP}
    for data in SEEDS:
        pdu, _ = decode(data)
        assert type(pdu) is expected[PDUType(data[0])]
