"""DIMSE command sets (PS3.7 6.3, 9.3, Annex E): typed messages, a fast codec, a raw encoder.

Command sets are always Implicit VR Little Endian (PS3.7 6.3.1). Three paths:

- fast: :func:`encode_command` builds a typed message's bytes with ``struct`` templates and
  :func:`decode_command` parses them in one tight loop; no pydicom anywhere on this path;
- validating: :func:`decode_command` never raises and reports every deviation as a
  :class:`~harness.wire.findings.Finding` (offsets count from the first byte of the command set);
- raw: :func:`encode_elements` emits any element list exactly as asked (wrong group length,
  missing or foreign elements, wrong lengths, Explicit VR by mistake) for fault injection.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, cast

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    ERROR_COMMENT,
    ERROR_ID,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_DESTINATION,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    NO_DATA_SET,
    OFFENDING_ELEMENT,
    PRIORITIES,
    PRIORITY,
    STATUS,
    VERIFICATION_SOP_CLASS,
    CommandField,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _HDR
from harness.wire.findings import Finding
from harness.wire.status import StatusCategory, c_store_legality, classify, describe
from harness.wire.uid import uid_name, uid_problem

# ---------------------------------------------------------------------------------------------
# The command element dictionary (PS3.7 E.1): element number of group 0000 -> (keyword, VR).

COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0003: ("RequestedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0600: ("MoveDestination", "AE"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x0901: ("OffendingElement", "AT"),
    0x0902: ("ErrorComment", "LO"),
    0x0903: ("ErrorID", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1001: ("RequestedSOPInstanceUID", "UI"),
    0x1002: ("EventTypeID", "US"),
    0x1005: ("AttributeIdentifierList", "AT"),
    0x1008: ("ActionTypeID", "US"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}

# Retired command elements (PS3.7 E.2): decoded, but reported as a warning when seen.
RETIRED_COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0001: ("CommandLengthToEnd", "UL"),
    0x0010: ("CommandRecognitionCode", "SH"),
    0x0200: ("Initiator", "AE"),
    0x0300: ("Receiver", "AE"),
    0x0400: ("FindLocation", "AE"),
    0x0850: ("NumberOfMatches", "US"),
    0x0860: ("ResponseSequenceNumber", "US"),
    0x4000: ("DialogReceiver", "LT"),
    0x4010: ("TerminalType", "LT"),
    0x5010: ("MessageSetID", "SH"),
    0x5020: ("EndMessageID", "SH"),
    0x5110: ("DisplayFormat", "LT"),
    0x5120: ("PagePositionID", "LT"),
    0x5130: ("TextFormatID", "CS"),
    0x5140: ("NormalReverse", "CS"),
    0x5150: ("AddGrayScale", "CS"),
    0x5160: ("Borders", "CS"),
    0x5170: ("Copies", "IS"),
    0x5180: ("CommandMagnificationType", "CS"),
    0x5190: ("Erase", "CS"),
    0x51A0: ("Print", "CS"),
    0x51B0: ("Overlays", "US"),
}

KEYWORD_TO_ELEMENT: dict[str, int] = {kw: el for el, (kw, _) in COMMAND_ELEMENTS.items()}

COMMAND_NAMES: dict[int, str] = {cf.value: cf.name.replace("_", "-") for cf in CommandField}

# Explicit VR codes whose header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_ALL_VRS = _LONG_VRS | frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
     b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})

_SEC_CMD = "PS3.7 6.3.1"
_SEC_E1 = "PS3.7 E.1"
_SEC_LEN = "PS3.5 7.1.1"
_SEC_VR = "PS3.5 6.2"

# ---------------------------------------------------------------------------------------------
# Typed messages.


@dataclass(slots=True)
class CStoreRQ:
    """C-STORE-RQ, PS3.7 9.3.1.1. ``command_data_set_type`` 0101H would mean no data set."""

    command_field: ClassVar[int] = CommandField.C_STORE_RQ.value
    message_id: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = 0
    command_data_set_type: int = 0x0000
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None

    @property
    def has_data_set(self) -> bool:
        return self.command_data_set_type != NO_DATA_SET


@dataclass(slots=True)
class CStoreRSP:
    """C-STORE-RSP, PS3.7 9.3.1.2 (plus Annex C related fields)."""

    command_field: ClassVar[int] = CommandField.C_STORE_RSP.value
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    message_id: int | None = None
    error_comment: str | None = None
    offending_element: list[int] | None = None
    error_id: int | None = None

    @property
    def has_data_set(self) -> bool:
        return False


@dataclass(slots=True)
class CEchoRQ:
    """C-ECHO-RQ, PS3.7 9.3.5.1."""

    command_field: ClassVar[int] = CommandField.C_ECHO_RQ.value
    message_id: int
    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS

    @property
    def has_data_set(self) -> bool:
        return False


@dataclass(slots=True)
class CEchoRSP:
    """C-ECHO-RSP, PS3.7 9.3.5.2."""

    command_field: ClassVar[int] = CommandField.C_ECHO_RSP.value
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = VERIFICATION_SOP_CLASS
    error_comment: str | None = None

    @property
    def has_data_set(self) -> bool:
        return False


@dataclass(slots=True)
class CCancelRQ:
    """C-CANCEL-RQ (C-CANCEL-FIND/GET/MOVE-RQ), PS3.7 9.3.2.3: Command Field 0FFFH."""

    command_field: ClassVar[int] = CommandField.C_CANCEL_RQ.value
    message_id_being_responded_to: int

    @property
    def has_data_set(self) -> bool:
        return False


Message = CStoreRQ | CStoreRSP | CEchoRQ | CEchoRSP | CCancelRQ


@dataclass(slots=True)
class DecodedCommand:
    """What :func:`decode_command` saw. ``message`` is ``None`` when the Command Field is
    unknown (or has no typed class here) or a mandatory element is missing or mistyped;
    a message can be present *and* come with findings: check :attr:`ok`."""

    elements: dict[int, object] = field(default_factory=dict)
    raw: dict[int, bytes] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    command_field: int | None = None
    message: Message | None = None
    findings: list[Finding] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)  # element -> offset of its tag
    foreign: dict[int, bytes] = field(default_factory=dict)  # full tag -> value, not group 0000
    explicit_vr: bool = False
    length: int = 0

    @property
    def ok(self) -> bool:
        """No error-severity finding (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def command_name(self) -> str:
        cf = self.command_field
        if cf is None:
            return "no-command-field"
        return COMMAND_NAMES.get(cf, f"unknown-0x{cf:04X}")


# ---------------------------------------------------------------------------------------------
# Value encoders (raw path helpers, also used by the generic encoder).

_P_H = struct.Struct("<H").pack
_P_I = struct.Struct("<I").pack
_P_HH = struct.Struct("<HH").pack


def value_us(value: int) -> bytes:
    """US value (2 bytes LE). Raises ``struct.error`` outside 0..65535."""
    return _P_H(value)


def value_ul(value: int) -> bytes:
    return _P_I(value)


def _text(value: str | bytes, pad: bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    return raw + pad if len(raw) & 1 else raw


def value_ui(uid: str | bytes) -> bytes:
    """UI value padded to even length with one NUL (PS3.5 6.2); bytes are padded as given."""
    return _text(uid, b"\x00")


def value_ae(title: str | bytes) -> bytes:
    """AE value padded to even length with a space (not to 16: that is the PDU field's rule)."""
    return _text(title, b" ")


def value_lo(text: str | bytes) -> bytes:
    return _text(text, b" ")


def value_str(text: str | bytes, pad: bytes = b" ") -> bytes:
    """Any string VR, padded to even length with ``pad``."""
    return _text(text, pad)


def value_at(tags: Iterable[int]) -> bytes:
    """AT value: each 32-bit tag as group (US) then element (US), little endian."""
    return b"".join(_P_HH(t >> 16, t & 0xFFFF) for t in tags)


def encode_value(element: int, value: int | str | bytes | Iterable[int]) -> bytes:
    """Encode a Python value by the VR the dictionary gives ``element``; bytes pass through."""
    if isinstance(value, bytes):
        return value
    vr = _vr_of(element)
    if vr == "US" and isinstance(value, int):
        return value_us(value)
    if vr == "UL" and isinstance(value, int):
        return value_ul(value)
    if vr == "UI" and isinstance(value, str):
        return value_ui(value)
    if vr == "AT" and not isinstance(value, str):
        return value_at([value] if isinstance(value, int) else value)
    if isinstance(value, str):
        return value_str(value)
    raise TypeError(f"cannot encode {value!r} for element 0x{element:04X} ({vr})")


def _vr_of(element: int) -> str:
    entry = COMMAND_ELEMENTS.get(element) or RETIRED_COMMAND_ELEMENTS.get(element)
    return entry[1] if entry else "UN"


# ---------------------------------------------------------------------------------------------
# Typed message -> element list -> bytes.


def message_elements(msg: Message) -> list[tuple[int, bytes]]:
    """The elements of ``msg`` in ascending order, group length excluded (see encode_elements)."""
    out: list[tuple[int, bytes]] = []
    if isinstance(msg, CStoreRQ):
        out += [(AFFECTED_SOP_CLASS_UID, value_ui(msg.affected_sop_class_uid)),
                (COMMAND_FIELD, value_us(msg.command_field)),
                (MESSAGE_ID, value_us(msg.message_id)),
                (PRIORITY, value_us(msg.priority)),
                (COMMAND_DATA_SET_TYPE, value_us(msg.command_data_set_type)),
                (AFFECTED_SOP_INSTANCE_UID, value_ui(msg.affected_sop_instance_uid))]
        if msg.move_originator_aet is not None:
            out.append((MOVE_ORIGINATOR_AET, value_ae(msg.move_originator_aet)))
        if msg.move_originator_message_id is not None:
            out.append((MOVE_ORIGINATOR_MESSAGE_ID, value_us(msg.move_originator_message_id)))
    elif isinstance(msg, CStoreRSP):
        if msg.affected_sop_class_uid is not None:
            out.append((AFFECTED_SOP_CLASS_UID, value_ui(msg.affected_sop_class_uid)))
        out.append((COMMAND_FIELD, value_us(msg.command_field)))
        if msg.message_id is not None:
            out.append((MESSAGE_ID, value_us(msg.message_id)))
        out += [(MESSAGE_ID_BEING_RESPONDED_TO, value_us(msg.message_id_being_responded_to)),
                (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET)),
                (STATUS, value_us(msg.status))]
        if msg.offending_element is not None:
            out.append((OFFENDING_ELEMENT, value_at(msg.offending_element)))
        if msg.error_comment is not None:
            out.append((ERROR_COMMENT, value_lo(msg.error_comment)))
        if msg.error_id is not None:
            out.append((ERROR_ID, value_us(msg.error_id)))
        if msg.affected_sop_instance_uid is not None:
            out.append((AFFECTED_SOP_INSTANCE_UID, value_ui(msg.affected_sop_instance_uid)))
    elif isinstance(msg, CEchoRQ):
        out += [(AFFECTED_SOP_CLASS_UID, value_ui(msg.affected_sop_class_uid)),
                (COMMAND_FIELD, value_us(msg.command_field)),
                (MESSAGE_ID, value_us(msg.message_id)),
                (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET))]
    elif isinstance(msg, CEchoRSP):
        if msg.affected_sop_class_uid is not None:
            out.append((AFFECTED_SOP_CLASS_UID, value_ui(msg.affected_sop_class_uid)))
        out += [(COMMAND_FIELD, value_us(msg.command_field)),
                (MESSAGE_ID_BEING_RESPONDED_TO, value_us(msg.message_id_being_responded_to)),
                (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET)),
                (STATUS, value_us(msg.status))]
        if msg.error_comment is not None:
            out.append((ERROR_COMMENT, value_lo(msg.error_comment)))
    elif isinstance(msg, CCancelRQ):
        out += [(COMMAND_FIELD, value_us(msg.command_field)),
                (MESSAGE_ID_BEING_RESPONDED_TO, value_us(msg.message_id_being_responded_to)),
                (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET))]
    else:
        raise TypeError(f"not a DIMSE message: {msg!r}")
    return out


def _explicit_header(group: int, element: int, vr: str, length: int) -> bytes:
    code = vr.encode("ascii")
    if code in _LONG_VRS:
        return struct.pack("<HH2sHI", group, element, code, 0, length)
    return struct.pack("<HH2sH", group, element, code, length)


def encode_elements(
    elements: Sequence[tuple[int, bytes]],
    *,
    group_length: int | Literal["auto", "omit"] | None = "auto",
    explicit_vr: bool = False,
    length_overrides: Mapping[int, int] | None = None,
) -> bytes:
    """Emit ``elements`` exactly in the given order: the raw path for fault injection.

    Each entry is (element number of group 0000, encoded value) or (full 32-bit tag, value) to
    place an element of another group. ``group_length``: ``"auto"`` prepends (0000,0000) with
    the byte count of the group-0000 elements that follow as written; an int prepends that
    value instead; ``None``/``"omit"`` leaves it out (a (0000,0000) in ``elements`` is written
    as given either way). ``length_overrides`` (element or tag -> value length) writes a
    different length in the header than the value actually has. ``explicit_vr`` writes
    Explicit VR Little Endian headers (the PS3.7 6.3.1 violation of scenario G07).
    """
    overrides = length_overrides or {}
    parts: list[bytes] = []
    group0_bytes = 0
    for tag, value in elements:
        group, element = (tag >> 16) & 0xFFFF, tag & 0xFFFF
        key = tag if tag > 0xFFFF else element
        length = overrides.get(key, len(value))
        if explicit_vr:
            vr = _vr_of(element) if group == 0 else "UN"
            header = _explicit_header(group, element, vr, length)
        else:
            header = _HDR.pack(group, element, length)
        parts.append(header)
        parts.append(value)
        if group == 0:
            group0_bytes += len(header) + len(value)
    body = b"".join(parts)
    if group_length is None or group_length == "omit":
        return body
    gl_value = group0_bytes if group_length == "auto" else int(group_length)
    gl_len = overrides.get(0x0000, 4)
    head = _explicit_header(0, 0, "UL", gl_len) if explicit_vr else _HDR.pack(0, 0, gl_len)
    return head + _P_I(gl_value) + body


# Fast path templates: (0000,0000) header, fixed (0000,xxxx) headers and the US run.
_GL_HDR = _HDR.pack(0, 0x0000, 4)
_H_0002 = _P_HH(0, 0x0002)
_H_1000 = _P_HH(0, 0x1000)
_US4 = struct.Struct("<" + "HHIH" * 4)
_STORE_RQ_TAIL = struct.Struct("<HHIH")


def _fast_store_rq(msg: CStoreRQ) -> bytes:
    cuid = msg.affected_sop_class_uid.encode("latin-1")
    if len(cuid) & 1:
        cuid += b"\x00"
    iuid = msg.affected_sop_instance_uid.encode("latin-1")
    if len(iuid) & 1:
        iuid += b"\x00"
    body = b"".join((
        _H_0002, _P_I(len(cuid)), cuid,
        _US4.pack(0, 0x0100, 2, 0x0001, 0, 0x0110, 2, msg.message_id,
                  0, 0x0700, 2, msg.priority, 0, 0x0800, 2, msg.command_data_set_type),
        _H_1000, _P_I(len(iuid)), iuid,
    ))
    if msg.move_originator_aet is not None:
        ae = value_ae(msg.move_originator_aet)
        body += _HDR.pack(0, 0x1030, len(ae)) + ae
    if msg.move_originator_message_id is not None:
        body += _STORE_RQ_TAIL.pack(0, 0x1031, 2, msg.move_originator_message_id)
    return _GL_HDR + _P_I(len(body)) + body


_US3 = struct.Struct("<" + "HHIH" * 3)


def _fast_store_rsp(msg: CStoreRSP) -> bytes | None:
    """The usual C-STORE-RSP (both UIDs, no Message ID and no error fields) from a template;
    ``None`` for any other shape (the generic encoder writes it)."""
    cuid, iuid = msg.affected_sop_class_uid, msg.affected_sop_instance_uid
    if (type(cuid) is not str or type(iuid) is not str or msg.message_id is not None
            or msg.error_comment is not None or msg.offending_element is not None
            or msg.error_id is not None):
        return None
    c = value_ui(cuid)
    i = value_ui(iuid)
    body = b"".join((
        _H_0002, _P_I(len(c)), c,
        _US3.pack(0, 0x0100, 2, msg.command_field, 0, 0x0120, 2,
                  msg.message_id_being_responded_to, 0, 0x0800, 2, NO_DATA_SET),
        _STORE_RQ_TAIL.pack(0, 0x0900, 2, msg.status),
        _H_1000, _P_I(len(i)), i,
    ))
    return _GL_HDR + _P_I(len(body)) + body


def encode_command(msg: Message) -> bytes:
    """Encode a typed message as an Implicit VR LE command set with a correct group length.

    Values are written as given (an invalid UID stays invalid); out-of-range integers raise
    ``struct.error``. Use :func:`encode_elements` for anything the typed classes cannot say.
    """
    kind = type(msg)
    if kind is CStoreRQ:
        return _fast_store_rq(msg)  # type: ignore[arg-type]
    if kind is CStoreRSP:
        fast = _fast_store_rsp(msg)  # type: ignore[arg-type]
        if fast is not None:
            return fast
    return encode_elements(message_elements(msg))


# ---------------------------------------------------------------------------------------------
# The validating decoder.

_UNPACK_HDR = _HDR.unpack_from
_UNPACK_H = struct.Struct("<H").unpack_from
_UNPACK_I = struct.Struct("<I").unpack_from

# Value kinds for the decoder's dispatch: fixed-size ints, strings by padding, AT lists.
_K_US, _K_UL, _K_UI, _K_TEXT, _K_AT, _K_RAW = range(6)
_KIND: dict[str, int] = {"US": _K_US, "UL": _K_UL, "UI": _K_UI, "AT": _K_AT, "AE": _K_TEXT,
                         "LO": _K_TEXT, "SH": _K_TEXT, "LT": _K_TEXT, "CS": _K_TEXT,
                         "IS": _K_TEXT}
_DECODE_KIND: dict[int, int] = {el: _KIND.get(vr, _K_RAW) for el, (_, vr) in
                                 COMMAND_ELEMENTS.items()}

_UID_FAST = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_BAD_TEXT = re.compile(r"[\\\x00-\x1f\x7f-\xff]")


@dataclass(frozen=True, slots=True)
class _Spec:
    """Per command type: mandatory elements, all allowed elements, and the section to cite."""

    name: str
    mandatory: tuple[int, ...]
    allowed: frozenset[int]
    section: str
    data_set: Literal["required", "none"]
    is_rsp: bool = False
    mandatory_set: frozenset[int] = frozenset()


def _spec(name: str, mandatory: tuple[int, ...], allowed: Iterable[int], section: str,
          data_set: Literal["required", "none"]) -> _Spec:
    return _Spec(name, mandatory, frozenset(allowed), section, data_set, name.endswith("RSP"),
                 frozenset(mandatory))


_SPECS: dict[int, _Spec] = {
    0x0001: _spec("C-STORE-RQ", (0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000),
                  (0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000, 0x1030, 0x1031),
                  "PS3.7 9.3.1.1", "required"),
    # (0000,0110) Message ID in a response is retired usage, not a deviation (9.1.1.1.1);
    # (0000,0901) and (0000,0902) are the Annex C related fields of the C-STORE statuses.
    0x8001: _spec("C-STORE-RSP", (0x0100, 0x0120, 0x0800, 0x0900),
                  (0x0000, 0x0002, 0x0100, 0x0110, 0x0120, 0x0800, 0x0900, 0x1000, 0x0901,
                   0x0902), "PS3.7 9.3.1.2", "none"),
    0x0030: _spec("C-ECHO-RQ", (0x0002, 0x0100, 0x0110, 0x0800),
                  (0x0000, 0x0002, 0x0100, 0x0110, 0x0800), "PS3.7 9.3.5.1", "none"),
    0x8030: _spec("C-ECHO-RSP", (0x0100, 0x0120, 0x0800, 0x0900),
                  (0x0000, 0x0002, 0x0100, 0x0110, 0x0120, 0x0800, 0x0900, 0x0901, 0x0902),
                  "PS3.7 9.3.5.2", "none"),
    0x0FFF: _spec("C-CANCEL-RQ", (0x0100, 0x0120, 0x0800), (0x0000, 0x0100, 0x0120, 0x0800),
                  "PS3.7 9.3.2.3", "none"),
}


def _tname(group: int, element: int) -> str:
    return _fname(element) if group == 0 else f"({group:04X},{element:04X})"


def _fname(element: int) -> str:
    entry = COMMAND_ELEMENTS.get(element) or RETIRED_COMMAND_ELEMENTS.get(element)
    name = entry[0] if entry else "unknown"
    return f"(0000,{element:04X}) {name}"


def decode_command(data: bytes | bytearray | memoryview) -> DecodedCommand:
    """Decode one complete command set; never raises, reports every deviation as a finding."""
    if type(data) is bytes:
        fast = _clean_store_rq(data)
        if fast is not None:
            return fast
    return _decode_general(data)


# A C-STORE-RQ as nearly every SCU sends it: group length, then exactly (0000,0002) UI, the
# four US elements 0100/0110/0700/0800, and (0000,1000) UI, nothing else.
_GL_HDR_VALUE = struct.Struct("<HHII")
_STORE_RQ_US = struct.Struct("<" + "HHIH" * 4)
_STORE_RQ_US_TAGS = (0, COMMAND_FIELD, 2, 0, MESSAGE_ID, 2, 0, PRIORITY, 2,
                     0, COMMAND_DATA_SET_TYPE, 2)


def _clean_ui(raw: bytes) -> str | None:
    """A UI value the general decoder accepts without any finding, or None."""
    if len(raw) & 1:
        return None
    text = raw.decode("latin-1")
    stripped = text[:-1] if text.endswith("\x00") else text
    if len(stripped) > 64 or _UID_FAST.fullmatch(stripped) is None:
        return None  # includes a second pad byte, space padding and empty UIDs
    return stripped


def _clean_store_rq(buf: bytes) -> DecodedCommand | None:
    """The general decoder's exact result for a C-STORE-RQ it would find nothing wrong in,
    built without its per-element dispatch; ``None`` for anything else (including anything
    that would give a finding), which then goes through the general decoder."""
    n = len(buf)
    if n < 78:  # 12 (group length) + 8 + 40 (US run) + 8 + two 2-byte UIDs
        return None
    g, e, gl_len, gl = _GL_HDR_VALUE.unpack_from(buf, 0)
    if g or e or gl_len != 4 or gl != n - 12:
        return None
    g, e, clen = _UNPACK_HDR(buf, 12)
    p_us = 20 + clen
    if g or e != 0x0002 or p_us + 48 > n:
        return None
    us = _STORE_RQ_US.unpack_from(buf, p_us)
    if us[0:3] + us[4:7] + us[8:11] + us[12:15] != _STORE_RQ_US_TAGS:
        return None
    cf, msg_id, prio, dst = us[3], us[7], us[11], us[15]
    if cf != 0x0001 or prio not in PRIORITIES or dst == NO_DATA_SET:
        return None
    p_iuid = p_us + 40
    g, e, ilen = _UNPACK_HDR(buf, p_iuid)
    if g or e != 0x1000 or p_iuid + 8 + ilen != n:
        return None
    craw = buf[20:p_us]
    iraw = buf[p_iuid + 8:n]
    cuid = _clean_ui(craw)
    iuid = _clean_ui(iraw)
    if cuid is None or iuid is None:
        return None
    p = p_us
    return DecodedCommand(
        elements={0x0000: gl, 0x0002: cuid, 0x0100: cf, 0x0110: msg_id, 0x0700: prio,
                  0x0800: dst, 0x1000: iuid},
        raw={0x0000: buf[8:12], 0x0002: craw, 0x0100: buf[p + 8:p + 10],
             0x0110: buf[p + 18:p + 20], 0x0700: buf[p + 28:p + 30],
             0x0800: buf[p + 38:p + 40], 0x1000: iraw},
        order=[0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000],
        command_field=cf,
        message=CStoreRQ(msg_id, cuid, iuid, prio, dst, None, None),
        offsets={0x0000: 0, 0x0002: 12, 0x0100: p, 0x0110: p + 10, 0x0700: p + 20,
                 0x0800: p + 30, 0x1000: p_iuid},
        length=n,
    )


def _decode_general(data: bytes | bytearray | memoryview) -> DecodedCommand:
    out = DecodedCommand()
    try:
        _decode_into(out, data)
    except Exception as exc:  # a decoder bug must not take the harness down; say so instead
        out.findings.append(Finding(None, "command set", "a decodable command set",
                                    f"internal decoder error: {exc!r}", _SEC_CMD))
        out.message = None
    return out


def _decode_into(out: DecodedCommand, data: bytes | bytearray | memoryview) -> None:
    buf: bytes | memoryview = data if type(data) is bytes else memoryview(data).cast("B")
    n = len(buf)
    out.length = n
    elements, raw, order, offsets, findings = (out.elements, out.raw, out.order, out.offsets,
                                               out.findings)
    kinds = _DECODE_KIND
    unpack_hdr = _UNPACK_HDR
    pos = 0
    last_tag = -1
    seen_gl = False
    group0_after_gl = 0  # bytes of group-0000 elements after (0000,0000), as on the wire
    explicit = False

    while pos < n:
        if n - pos < 8:
            findings.append(Finding(pos, "element header", "8 bytes (tag + 4-byte length)",
                                    f"{n - pos} bytes left", _SEC_CMD))
            break
        group, element, length = unpack_hdr(buf, pos)
        vstart = pos + 8
        if explicit or vstart + length > n:
            # Slow path: a length that does not fit is either a lie or an Explicit VR header.
            probe = _probe_explicit(buf, pos, n)
            if probe is not None:
                if not explicit:
                    explicit = out.explicit_vr = True
                    vr_text = bytes(buf[pos + 4:pos + 6]).decode("latin-1")
                    findings.append(Finding(pos, "command set encoding",
                                            "Implicit VR Little Endian",
                                            f"Explicit VR (VR {vr_text!r} after the tag)",
                                            _SEC_CMD))
                vstart, length = probe
            elif vstart + length > n:
                found = ("undefined length (FFFFFFFFH)" if length == 0xFFFFFFFF
                         else f"length {length} with {n - vstart} bytes left")
                findings.append(Finding(pos, f"({group:04X},{element:04X}) value length",
                                        "a value inside the command set", found, _SEC_CMD))
                break
        vend = vstart + length
        # Never more than the bytes present: vend <= n was checked above. bytes() of a bytes
        # slice is the slice itself; of a memoryview slice, a copy of just this value.
        value = bytes(buf[vstart:vend])
        tag = group << 16 | element
        if group == 0 and seen_gl:
            group0_after_gl += vend - pos
        if tag <= last_tag:
            if group == 0 and element in raw:
                findings.append(Finding(pos, _fname(element), "each element once",
                                        "duplicate tag (later value ignored)", _SEC_CMD))
                pos = vend
                continue
            findings.append(Finding(pos, _tname(group, element), "elements in ascending tag "
                                    "order", f"after ({last_tag >> 16:04X},"
                                    f"{last_tag & 0xFFFF:04X})", "PS3.5 7.1; PS3.7 6.3.1"))
        else:
            last_tag = tag
        if group != 0:
            findings.append(Finding(pos, _tname(group, element),
                                    "only command elements of group 0000",
                                    "element of another group", "PS3.7 6.3.1; PS3.7 E.1"))
            out.foreign.setdefault(tag, bytes(value))
            pos = vend
            continue
        if element == 0:
            seen_gl = True
        kind = kinds.get(element)
        if kind is None:
            kind = _unlisted_kind(element, pos, findings)
        decoded: object
        if kind == _K_US:
            if length == 2:
                decoded = _UNPACK_H(value)[0]
            else:
                decoded = value
                findings.append(Finding(pos, _fname(element), "value length 2 (US)",
                                        f"length {length}", _SEC_LEN))
        elif kind == _K_UI:
            decoded = _decode_ui(value, pos, element, length, findings)
        elif kind == _K_UL:
            if length == 4:
                decoded = _UNPACK_I(value)[0]
            else:
                decoded = value
                findings.append(Finding(pos, _fname(element), "value length 4 (UL)",
                                        f"length {length}", _SEC_LEN))
        elif kind == _K_TEXT:
            decoded = _decode_text(value, pos, element, length, findings)
        elif kind == _K_AT:
            if length % 4 == 0:
                decoded = [(g << 16) | e for g, e in struct.iter_unpack("<HH", value)]
            else:
                decoded = value
                findings.append(Finding(pos, _fname(element), "value length a multiple of 4 "
                                        "(AT)", f"length {length}", _SEC_LEN))
        else:
            decoded = value
        elements[element] = decoded
        raw[element] = value
        order.append(element)
        offsets[element] = pos
        pos = vend

    # Group length (0000,0000): present, first, and equal to the bytes that follow it.
    if not seen_gl:
        findings.append(Finding(0, _fname(0), "present as the first element (UL)", "missing",
                                "PS3.7 6.3.1; PS3.7 9.3"))
    else:
        if order[0] != 0x0000:
            findings.append(Finding(offsets[0], _fname(0), "the first element",
                                    f"after {_fname(order[0])}", "PS3.7 6.3.1"))
        gl = elements[0x0000]
        if isinstance(gl, int) and gl != group0_after_gl:
            findings.append(Finding(offsets[0], _fname(0),
                                    f"{group0_after_gl} (bytes of group 0000 that follow)",
                                    str(gl), "PS3.7 6.3.1; PS3.7 9.3"))

    cf = elements.get(COMMAND_FIELD)
    if cf is None:
        findings.append(Finding(None, _fname(COMMAND_FIELD), "present (US)", "missing", _SEC_E1))
        return
    if not isinstance(cf, int):
        return  # wrong length, already reported
    out.command_field = cf
    if cf not in COMMAND_NAMES:
        findings.append(Finding(offsets[COMMAND_FIELD], _fname(COMMAND_FIELD),
                                "a Command Field of PS3.7 E.1", f"0x{cf:04X}",
                                "PS3.7 E.1; PS3.7 9.1.1.1.9"))
        return
    spec = _SPECS.get(cf)
    if spec is None:
        return  # a known DIMSE command without a typed class here (C-FIND, N-...)
    _check_common(out, spec)
    out.message = _build(cf, elements, spec)


def _unlisted_kind(element: int, pos: int, findings: list[Finding]) -> int:
    """Report a retired or unknown element; return how to decode its value."""
    retired = RETIRED_COMMAND_ELEMENTS.get(element)
    if retired is not None:
        findings.append(Finding(pos, _fname(element), "no retired command elements",
                                "retired element present", "PS3.7 E.2", "warning"))
        return _KIND.get(retired[1], _K_RAW)
    findings.append(Finding(pos, _fname(element), "a command element of PS3.7 E.1",
                            "unknown command element", _SEC_E1))
    return _K_RAW


def _probe_explicit(buf: bytes | memoryview, pos: int, n: int) -> tuple[int, int] | None:
    """If an Explicit VR header at ``pos`` fits the data, return (value start, length)."""
    if n - pos < 8:
        return None
    code = bytes(buf[pos + 4:pos + 6])
    if code not in _ALL_VRS:
        return None
    if code in _LONG_VRS:
        if n - pos < 12:
            return None
        length = _UNPACK_I(buf, pos + 8)[0]
        vstart = pos + 12
    else:
        length = _UNPACK_H(buf, pos + 6)[0]
        vstart = pos + 8
    if vstart + length > n:
        return None
    return vstart, length


def _decode_ui(value: bytes, pos: int, element: int, length: int,
               findings: list[Finding]) -> str:
    text = value.decode("latin-1")
    if length & 1:
        findings.append(Finding(pos, _fname(element), "an even value length",
                                f"length {length}", _SEC_LEN))
    stripped = text.rstrip("\x00")
    if stripped.endswith(" "):
        findings.append(Finding(pos, _fname(element), "UI padded with a single NUL (00H)",
                                "space padding", _SEC_VR))
        stripped = stripped.rstrip(" \x00")
    if len(text) - len(stripped) > 1:
        findings.append(Finding(pos, _fname(element), "at most one padding byte",
                                f"{len(text) - len(stripped)} padding bytes", _SEC_VR,
                                "warning"))
    return stripped


def _decode_text(value: bytes, pos: int, element: int, length: int,
                 findings: list[Finding]) -> str:
    text = value.decode("latin-1")
    if length & 1:
        findings.append(Finding(pos, _fname(element), "an even value length",
                                f"length {length}", _SEC_LEN))
    return text.strip(" ")


_UI_ELEMENTS = tuple(el for el, (_, vr) in COMMAND_ELEMENTS.items() if vr == "UI")


def _check_common(out: DecodedCommand, spec: _Spec) -> None:
    """Mandatory elements, allowed elements, and the value rules of the known commands."""
    el = out.elements
    findings = out.findings
    offsets = out.offsets
    if not el.keys() >= spec.mandatory_set:
        for element in spec.mandatory:
            if element not in el:
                findings.append(Finding(None, _fname(element), f"present in a {spec.name}",
                                        "missing", spec.section))
    if not spec.allowed >= el.keys():
        for element in out.order:
            if element not in spec.allowed and element in COMMAND_ELEMENTS:
                findings.append(Finding(offsets[element], _fname(element),
                                        f"only the fields of {spec.name} (and Annex C "
                                        "related)", "element not defined for this command",
                                        spec.section, "warning"))
    dst = el.get(COMMAND_DATA_SET_TYPE)
    if isinstance(dst, int):
        if spec.data_set == "required" and dst == NO_DATA_SET:
            findings.append(Finding(offsets[COMMAND_DATA_SET_TYPE],
                                    _fname(COMMAND_DATA_SET_TYPE),
                                    "any value other than 0101H (a data set follows)",
                                    "0x0101 (no data set)", spec.section))
        elif spec.data_set == "none" and dst != NO_DATA_SET:
            findings.append(Finding(offsets[COMMAND_DATA_SET_TYPE],
                                    _fname(COMMAND_DATA_SET_TYPE), "0x0101 (no data set)",
                                    f"0x{dst:04X}", spec.section))
    prio = el.get(PRIORITY)
    if isinstance(prio, int) and prio not in PRIORITIES:
        findings.append(Finding(offsets[PRIORITY], _fname(PRIORITY),
                                "0000H MEDIUM, 0001H HIGH or 0002H LOW", f"0x{prio:04X}",
                                spec.section))
    for element in _UI_ELEMENTS:
        uid = el.get(element)
        # The fast full match accepts exactly what uid_problem accepts; it explains failures.
        if isinstance(uid, str) and (len(uid) > 64 or _UID_FAST.fullmatch(uid) is None):
            problem = uid_problem(uid)
            if problem is not None:
                findings.append(Finding(offsets[element], _fname(element),
                                        "a valid UID (digits and '.', <= 64 chars)",
                                        f"{uid!r}: {problem}", "PS3.5 9.1"))
    if ERROR_COMMENT in el or MOVE_ORIGINATOR_AET in el or MOVE_DESTINATION in el:
        _check_text_fields(out)
    status = el.get(STATUS)
    if spec.is_rsp and isinstance(status, int):
        _check_status(out, spec, status)


def _check_text_fields(out: DecodedCommand) -> None:
    el, raw, findings, offsets = out.elements, out.raw, out.findings, out.offsets
    comment = el.get(ERROR_COMMENT)
    if isinstance(comment, str):
        where = offsets[ERROR_COMMENT]
        text = raw[ERROR_COMMENT].decode("latin-1").rstrip(" ")
        if len(text) > 64:
            findings.append(Finding(where, _fname(ERROR_COMMENT), "at most 64 characters (LO)",
                                    f"{len(text)} characters", "PS3.5 6.2; PS3.7 C.4"))
        bad = _BAD_TEXT.search(text)
        if bad is not None:
            findings.append(Finding(where, _fname(ERROR_COMMENT),
                                    "LO in the default repertoire, no "
                                    "backslash or control characters",
                                    f"character {bad.group()!r} at {bad.start()}",
                                    "PS3.5 6.2; PS3.5 6.1"))
    for element in (MOVE_DESTINATION, MOVE_ORIGINATOR_AET):
        title = el.get(element)
        if isinstance(title, str):
            problem = None
            if len(title) > 16:
                problem = f"{len(title)} characters (more than 16)"
            elif not title:
                problem = "all spaces"
            elif _BAD_TEXT.search(title):
                problem = "backslash, control or non-ASCII character"
            if problem is not None:
                findings.append(Finding(offsets[element], _fname(element),
                                        "an AE title (1-16 characters, no backslash or control "
                                        "characters)", f"{title!r}: {problem}", "PS3.5 6.2"))


def _check_status(out: DecodedCommand, spec: _Spec, status: int) -> None:
    el, findings, offsets = out.elements, out.findings, out.offsets
    where = offsets[STATUS]
    if spec.name == "C-STORE-RSP":
        legality = c_store_legality(status)
        if legality == "illegal":
            findings.append(Finding(where, _fname(STATUS), "a C-STORE status (PS3.4 Table "
                                    "B.2-1)", f"0x{status:04X} ({classify(status).value}, not "
                                    "valid in a C-STORE-RSP)", "PS3.7 Annex C; PS3.7 9.1.1.1.9"))
        elif legality == "not-listed":
            findings.append(Finding(where, _fname(STATUS), "a C-STORE status (PS3.4 Table "
                                    "B.2-1)", f"0x{status:04X} ({describe(status).meaning}; "
                                    "not listed for C-STORE)", "PS3.7 9.1.1.1.9; PS3.4 B.2.3",
                                    "warning"))
    elif classify(status) is StatusCategory.ILLEGAL:
        findings.append(Finding(where, _fname(STATUS), "a status of the Annex C classes",
                                f"0x{status:04X}", "PS3.7 Annex C"))
    related = describe(status).related_fields
    for element in (OFFENDING_ELEMENT, ERROR_COMMENT):
        if element in el and element not in related:
            findings.append(Finding(offsets[element], _fname(element),
                                    f"only with statuses whose related fields include it "
                                    f"(not 0x{status:04X})", "present", "PS3.7 Annex C",
                                    "warning"))


def _int(v: object) -> int | None:
    return v if isinstance(v, int) else None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


_INT_STR = (int, str)


def _build(cf: int, el: dict[int, object], spec: _Spec) -> Message | None:
    """The typed message, if every mandatory element is present with a decodable value."""
    for element in spec.mandatory:
        if not isinstance(el.get(element), _INT_STR):  # missing or undecodable (reported)
            return None
    g = el.get
    if cf == 0x0001:
        return CStoreRQ(cast(int, g(MESSAGE_ID)), cast(str, g(AFFECTED_SOP_CLASS_UID)),
                        cast(str, g(AFFECTED_SOP_INSTANCE_UID)), cast(int, g(PRIORITY)),
                        cast(int, g(COMMAND_DATA_SET_TYPE)), _str(g(MOVE_ORIGINATOR_AET)),
                        _int(g(MOVE_ORIGINATOR_MESSAGE_ID)))
    if cf == 0x8001:
        off = g(OFFENDING_ELEMENT)
        return CStoreRSP(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)), cast(int, g(STATUS)),
                         _str(g(AFFECTED_SOP_CLASS_UID)), _str(g(AFFECTED_SOP_INSTANCE_UID)),
                         _int(g(MESSAGE_ID)), _str(g(ERROR_COMMENT)),
                         cast(list[int], off) if isinstance(off, list) else None,
                         _int(g(ERROR_ID)))
    if cf == 0x0030:
        return CEchoRQ(cast(int, g(MESSAGE_ID)), cast(str, g(AFFECTED_SOP_CLASS_UID)))
    if cf == 0x8030:
        return CEchoRSP(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)), cast(int, g(STATUS)),
                        _str(g(AFFECTED_SOP_CLASS_UID)), _str(g(ERROR_COMMENT)))
    return CCancelRQ(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)))


# ---------------------------------------------------------------------------------------------
# One-line summary.


def _short(uid: str, keep: int = 24) -> str:
    return uid if len(uid) <= keep else uid[:keep] + "..."


def summarize(decoded: DecodedCommand) -> str:
    """One line, e.g. ``C-STORE-RQ id=5 CT Image Storage 1.2.3... prio=MEDIUM``."""
    el = decoded.elements
    parts = [decoded.command_name]
    mid, to = el.get(MESSAGE_ID), el.get(MESSAGE_ID_BEING_RESPONDED_TO)
    if isinstance(to, int):
        parts.append(f"to={to}")
    if isinstance(mid, int):
        parts.append(f"id={mid}")
    cuid = el.get(AFFECTED_SOP_CLASS_UID)
    if isinstance(cuid, str) and cuid:
        parts.append(uid_name(cuid))
    iuid = el.get(AFFECTED_SOP_INSTANCE_UID)
    if isinstance(iuid, str) and iuid:
        parts.append(_short(iuid))
    prio = el.get(PRIORITY)
    if isinstance(prio, int):
        parts.append(f"prio={PRIORITIES.get(prio, f'0x{prio:04X}')}")
    status = el.get(STATUS)
    if isinstance(status, int):
        parts.append(f"status=0x{status:04X} {classify(status).value}")
    comment = el.get(ERROR_COMMENT)
    if isinstance(comment, str) and comment:
        parts.append(f"comment={_short(comment, 40)!r}")
    if decoded.explicit_vr:
        parts.append("(explicit VR)")
    if decoded.findings:
        errors = sum(1 for f in decoded.findings if f.severity == "error")
        parts.append(f"[{len(decoded.findings)} findings, {errors} errors]")
    return " ".join(parts)
