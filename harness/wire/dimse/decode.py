"""The validating DIMSE command set decoder (PS3.7 6.3, 9.3, Annex E): bytes in, a
:class:`~harness.wire.dimse.messages.DecodedCommand` out with the typed message and every
deviation as a :class:`~harness.wire.findings.Finding` (offsets count from the first byte of
the command set). It never raises: it reads element headers (Implicit VR Little Endian, or
Explicit VR by mistake), values by their VR, the group length, and hands the per-command rules
to :mod:`harness.wire.dimse.rules`. A clean C-STORE-RQ takes the template of
:mod:`harness.wire.dimse.fast`, with the same result.
"""

from __future__ import annotations

from typing import cast

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    COMMAND_GROUP_LENGTH,
    ERROR_COMMENT,
    ERROR_ID,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    OFFENDING_ELEMENT,
    PRIORITY,
    STATUS,
    TAG_LE,
    UL_LE,
    US_LE,
    CommandField,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _HDR
from harness.wire.dataset_raw import LONG_LENGTH_VRS, VALID_VRS
from harness.wire.dimse.elements import (
    COMMAND_ELEMENTS,
    COMMAND_NAMES,
    RETIRED_COMMAND_ELEMENTS,
    field_name,
    tag_name,
)
from harness.wire.dimse.fast import _clean_store_rq
from harness.wire.dimse.messages import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    DecodedCommand,
    Message,
)
from harness.wire.dimse.rules import SPECS, Spec, check_common
from harness.wire.findings import Finding

_SEC_CMD = "PS3.7 6.3.1"
_SEC_E1 = "PS3.7 E.1"
_SEC_LEN = "PS3.5 7.1.1"
_SEC_VR = "PS3.5 6.2"

_UNPACK_HDR = _HDR.unpack_from
_UNPACK_H = US_LE.unpack_from
_UNPACK_I = UL_LE.unpack_from
_C_STORE_RQ = int(CommandField.C_STORE_RQ)
_C_STORE_RSP = int(CommandField.C_STORE_RSP)
_C_ECHO_RQ = int(CommandField.C_ECHO_RQ)
_C_ECHO_RSP = int(CommandField.C_ECHO_RSP)

# Value kinds for the decoder's dispatch: fixed-size ints, strings by padding, AT lists.
_K_US, _K_UL, _K_UI, _K_TEXT, _K_AT, _K_RAW = range(6)
_KIND: dict[str, int] = {"US": _K_US, "UL": _K_UL, "UI": _K_UI, "AT": _K_AT, "AE": _K_TEXT,
                         "LO": _K_TEXT, "SH": _K_TEXT, "LT": _K_TEXT, "CS": _K_TEXT,
                         "IS": _K_TEXT}
# The fixed-size integer kinds: value length, unpacker, VR for the finding.
_FIXED = {_K_US: (2, _UNPACK_H, "US"), _K_UL: (4, _UNPACK_I, "UL")}
_DECODE_KIND: dict[int, int] = {el: _KIND.get(vr, _K_RAW) for el, (_, vr) in
                                 COMMAND_ELEMENTS.items()}


def decode_command(data: bytes | bytearray | memoryview) -> DecodedCommand:
    """Decode one complete command set; never raises, reports every deviation as a finding."""
    if type(data) is bytes:
        fast = _clean_store_rq(data)
        if fast is not None:
            return fast
    return _decode_general(data)


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
                findings.append(Finding(pos, field_name(element), "each element once",
                                        "duplicate tag (later value ignored)", _SEC_CMD))
                pos = vend
                continue
            findings.append(Finding(pos, tag_name(group, element), "elements in ascending tag "
                                    "order", f"after ({last_tag >> 16:04X},"
                                    f"{last_tag & 0xFFFF:04X})", "PS3.5 7.1; PS3.7 6.3.1"))
        else:
            last_tag = tag
        if group != 0:
            findings.append(Finding(pos, tag_name(group, element),
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
        if kind <= _K_UL:  # US or UL: one fixed-size integer
            size, unpack, vr = _FIXED[kind]
            if length == size:
                decoded = unpack(value)[0]
            else:
                decoded = value
                findings.append(Finding(pos, field_name(element), f"value length {size} ({vr})",
                                        f"length {length}", _SEC_LEN))
        elif kind == _K_UI:
            decoded = _decode_ui(value, pos, element, length, findings)
        elif kind == _K_TEXT:
            decoded = _decode_text(value, pos, element, length, findings)
        elif kind == _K_AT:
            if length % 4 == 0:
                decoded = [(g << 16) | e for g, e in TAG_LE.iter_unpack(value)]
            else:
                decoded = value
                findings.append(Finding(pos, field_name(element), "value length a multiple of 4 "
                                        "(AT)", f"length {length}", _SEC_LEN))
        else:
            decoded = value
        elements[element] = decoded
        raw[element] = value
        order.append(element)
        offsets[element] = pos
        pos = vend

    # Group length (0000,0000): present, first, and equal to the bytes that follow it.
    gl_name = field_name(COMMAND_GROUP_LENGTH)
    if not seen_gl:
        findings.append(Finding(0, gl_name, "present as the first element (UL)", "missing",
                                "PS3.7 6.3.1; PS3.7 9.3"))
    else:
        gl_at = offsets[COMMAND_GROUP_LENGTH]
        if order[0] != COMMAND_GROUP_LENGTH:
            findings.append(Finding(gl_at, gl_name, "the first element",
                                    f"after {field_name(order[0])}", "PS3.7 6.3.1"))
        gl = elements[COMMAND_GROUP_LENGTH]
        if isinstance(gl, int) and gl != group0_after_gl:
            findings.append(Finding(gl_at, gl_name,
                                    f"{group0_after_gl} (bytes of group 0000 that follow)",
                                    str(gl), "PS3.7 6.3.1; PS3.7 9.3"))

    cf = elements.get(COMMAND_FIELD)
    if cf is None:
        findings.append(Finding(None, field_name(COMMAND_FIELD), "present (US)", "missing",
                                _SEC_E1))
        return
    if not isinstance(cf, int):
        return  # wrong length, already reported
    out.command_field = cf
    if cf not in COMMAND_NAMES:
        findings.append(Finding(offsets[COMMAND_FIELD], field_name(COMMAND_FIELD),
                                "a Command Field of PS3.7 E.1", f"0x{cf:04X}",
                                "PS3.7 E.1; PS3.7 9.1.1.1.9"))
        return
    spec = SPECS.get(cf)
    if spec is None:
        return  # a known DIMSE command without a typed class here (C-FIND, N-...)
    check_common(out, spec)
    out.message = _build(cf, elements, spec)


def _unlisted_kind(element: int, pos: int, findings: list[Finding]) -> int:
    """Report a retired or unknown element; return how to decode its value."""
    retired = RETIRED_COMMAND_ELEMENTS.get(element)
    if retired is not None:
        findings.append(Finding(pos, field_name(element), "no retired command elements",
                                "retired element present", "PS3.7 E.2", "warning"))
        return _KIND.get(retired[1], _K_RAW)
    findings.append(Finding(pos, field_name(element), "a command element of PS3.7 E.1",
                            "unknown command element", _SEC_E1))
    return _K_RAW


def _probe_explicit(buf: bytes | memoryview, pos: int, n: int) -> tuple[int, int] | None:
    """If an Explicit VR header at ``pos`` fits the data, return (value start, length)."""
    if n - pos < 8:
        return None
    code = bytes(buf[pos + 4:pos + 6])
    if code not in VALID_VRS:
        return None
    if code in LONG_LENGTH_VRS:
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


def _even_text(value: bytes, pos: int, element: int, length: int,
               findings: list[Finding]) -> str:
    """A string value as text; an odd length is a finding (PS3.5 7.1.1)."""
    if length & 1:
        findings.append(Finding(pos, field_name(element), "an even value length",
                                f"length {length}", _SEC_LEN))
    return value.decode("latin-1")


def _decode_ui(value: bytes, pos: int, element: int, length: int,
               findings: list[Finding]) -> str:
    text = _even_text(value, pos, element, length, findings)
    stripped = text.rstrip("\x00")
    if stripped.endswith(" "):
        findings.append(Finding(pos, field_name(element), "UI padded with a single NUL (00H)",
                                "space padding", _SEC_VR))
        stripped = stripped.rstrip(" \x00")
    if len(text) - len(stripped) > 1:
        findings.append(Finding(pos, field_name(element), "at most one padding byte",
                                f"{len(text) - len(stripped)} padding bytes", _SEC_VR,
                                "warning"))
    return stripped


def _decode_text(value: bytes, pos: int, element: int, length: int,
                 findings: list[Finding]) -> str:
    return _even_text(value, pos, element, length, findings).strip(" ")



def _int(v: object) -> int | None:
    return v if isinstance(v, int) else None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


_INT_STR = (int, str)


def _build(cf: int, el: dict[int, object], spec: Spec) -> Message | None:
    """The typed message, if every mandatory element is present with a decodable value."""
    for element in spec.mandatory:
        if not isinstance(el.get(element), _INT_STR):  # missing or undecodable (reported)
            return None
    g = el.get
    if cf == _C_STORE_RQ:
        return CStoreRQ(cast(int, g(MESSAGE_ID)), cast(str, g(AFFECTED_SOP_CLASS_UID)),
                        cast(str, g(AFFECTED_SOP_INSTANCE_UID)), cast(int, g(PRIORITY)),
                        cast(int, g(COMMAND_DATA_SET_TYPE)), _str(g(MOVE_ORIGINATOR_AET)),
                        _int(g(MOVE_ORIGINATOR_MESSAGE_ID)))
    if cf == _C_STORE_RSP:
        off = g(OFFENDING_ELEMENT)
        return CStoreRSP(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)), cast(int, g(STATUS)),
                         _str(g(AFFECTED_SOP_CLASS_UID)), _str(g(AFFECTED_SOP_INSTANCE_UID)),
                         _int(g(MESSAGE_ID)), _str(g(ERROR_COMMENT)),
                         cast(list[int], off) if isinstance(off, list) else None,
                         _int(g(ERROR_ID)))
    if cf == _C_ECHO_RQ:
        return CEchoRQ(cast(int, g(MESSAGE_ID)), cast(str, g(AFFECTED_SOP_CLASS_UID)))
    if cf == _C_ECHO_RSP:
        return CEchoRSP(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)), cast(int, g(STATUS)),
                        _str(g(AFFECTED_SOP_CLASS_UID)), _str(g(ERROR_COMMENT)))
    return CCancelRQ(cast(int, g(MESSAGE_ID_BEING_RESPONDED_TO)))
