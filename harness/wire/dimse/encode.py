"""Typed message -> element list -> bytes: the generic DIMSE command set encoder and the raw
one fault injection uses (wrong group length, missing or foreign elements, lying lengths,
Explicit VR by mistake). Command sets are Implicit VR Little Endian (PS3.7 6.3.1); the
C-STORE shapes go through the templates of :mod:`harness.wire.dimse.fast`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    COMMAND_GROUP_LENGTH,
    ERROR_COMMENT,
    ERROR_ID,
    EXPLICIT_LE_ELEMENT_HEADER,
    EXPLICIT_LE_LONG_ELEMENT_HEADER,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    NO_DATA_SET,
    OFFENDING_ELEMENT,
    PRIORITY,
    STATUS,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _HDR
from harness.wire.dataset_raw import LONG_LENGTH_VRS
from harness.wire.dimse.elements import vr_of
from harness.wire.dimse.fast import _fast_store_rq, _fast_store_rsp
from harness.wire.dimse.messages import CCancelRQ, CEchoRQ, CEchoRSP, CStoreRQ, CStoreRSP, Message
from harness.wire.dimse.values import value_ae, value_at, value_lo, value_ui, value_ul, value_us


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
    if code in LONG_LENGTH_VRS:
        return EXPLICIT_LE_LONG_ELEMENT_HEADER.pack(group, element, code, 0, length)
    return EXPLICIT_LE_ELEMENT_HEADER.pack(group, element, code, length)


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
            vr = vr_of(element) if group == 0 else "UN"
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
    gl_len = overrides.get(COMMAND_GROUP_LENGTH, 4)
    head = (_explicit_header(0, COMMAND_GROUP_LENGTH, "UL", gl_len) if explicit_vr
            else _HDR.pack(0, COMMAND_GROUP_LENGTH, gl_len))
    return head + value_ul(gl_value) + body


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
