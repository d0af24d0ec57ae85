"""The DIMSE hot paths: ``struct`` templates for the command sets a store exchanges.

- :func:`_fast_store_rq` and :func:`_fast_store_rsp` write a C-STORE-RQ and the usual
  C-STORE-RSP byte for byte as the generic encoder would (tests/test_fastpath_dimse.py);
- :func:`_clean_store_rq` gives the validating decoder's exact result for a C-STORE-RQ it would
  find nothing wrong in, without its per-element dispatch;
- :func:`read_store_rsp` and :func:`read_store_rsp_pdu` take the Message ID Being Responded To
  and the Status out of a C-STORE-RSP without allocating (the bench's receive paths).

Each returns ``None`` for anything outside its shape; the caller then takes the general path,
which says what is wrong. No pydicom, no findings here.
"""

from __future__ import annotations

import struct

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    COMMAND_GROUP_LENGTH,
    MCH_COMMAND,
    MCH_LAST,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    NO_DATA_SET,
    PDU_HEADER_LEN,
    PRIORITIES,
    PRIORITY,
    STATUS,
    TAG_LE,
    UL_ELEMENT_LE,
    UL_LE,
    US_ELEMENT_LE,
    US_LE,
    CommandField,
    PDUType,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _HDR
from harness.wire.constants import PDATA_PDV_HEADER as _PDU_PDV
from harness.wire.dimse.messages import CStoreRQ, CStoreRSP, DecodedCommand
from harness.wire.dimse.values import value_ae, value_ui
from harness.wire.uid import UID_SYNTAX

_C_STORE_RQ = int(CommandField.C_STORE_RQ)
_C_STORE_RSP = int(CommandField.C_STORE_RSP)
_P_DATA_TF = int(PDUType.P_DATA_TF)
_COMMAND_LAST = MCH_COMMAND | MCH_LAST


# The four US elements of a C-STORE-RQ (0100, 0110, 0700, 0800), read in one step.
_US4 = struct.Struct("<" + US_ELEMENT_LE.format[1:] * 4)
_PACK_HDR = _HDR.pack
_UNPACK_HDR = _HDR.unpack_from
_UNPACK_H = US_LE.unpack_from
# The encoders' templates: the constant bytes of each command set (headers, and whole
# elements whose value never changes) prebuilt once, so a message costs a few one-value packs.
# (0000,0000) Command Group Length ahead of the body (PS3.7 6.3.1), written inline.
_GL_HDR = _PACK_HDR(0, COMMAND_GROUP_LENGTH, 4)
_P_I = UL_LE.pack
_P_H = US_LE.pack
_H_CLASS = TAG_LE.pack(0, AFFECTED_SOP_CLASS_UID)  # then its 4-byte length and the UID
_H_INSTANCE = TAG_LE.pack(0, AFFECTED_SOP_INSTANCE_UID)
_H_PRIORITY = _PACK_HDR(0, PRIORITY, 2)
_H_DATA_SET_TYPE = _PACK_HDR(0, COMMAND_DATA_SET_TYPE, 2)
_RQ_CF_ID = US_ELEMENT_LE.pack(0, COMMAND_FIELD, 2, _C_STORE_RQ) + _PACK_HDR(0, MESSAGE_ID, 2)
_RSP_CF_TO = (US_ELEMENT_LE.pack(0, COMMAND_FIELD, 2, _C_STORE_RSP)
              + _PACK_HDR(0, MESSAGE_ID_BEING_RESPONDED_TO, 2))
_RSP_DST_STATUS = (US_ELEMENT_LE.pack(0, COMMAND_DATA_SET_TYPE, 2, NO_DATA_SET)
                   + _PACK_HDR(0, STATUS, 2))


# --- encoding -------------------------------------------------------------------------------

def _fast_store_rq(msg: CStoreRQ) -> bytes:
    """A C-STORE-RQ from the template (every field of the class has its place in it)."""
    cuid = msg.affected_sop_class_uid.encode("latin-1")
    if len(cuid) & 1:
        cuid += b"\x00"
    iuid = msg.affected_sop_instance_uid.encode("latin-1")
    if len(iuid) & 1:
        iuid += b"\x00"
    body = b"".join((
        _H_CLASS, _P_I(len(cuid)), cuid,
        _RQ_CF_ID, _P_H(msg.message_id), _H_PRIORITY, _P_H(msg.priority),
        _H_DATA_SET_TYPE, _P_H(msg.command_data_set_type),
        _H_INSTANCE, _P_I(len(iuid)), iuid,
    ))
    if msg.move_originator_aet is not None:
        ae = value_ae(msg.move_originator_aet)
        body += _PACK_HDR(0, MOVE_ORIGINATOR_AET, len(ae)) + ae
    if msg.move_originator_message_id is not None:
        body += US_ELEMENT_LE.pack(0, MOVE_ORIGINATOR_MESSAGE_ID, 2,
                                   msg.move_originator_message_id)
    return _GL_HDR + _P_I(len(body)) + body


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
        _H_CLASS, _P_I(len(c)), c,
        _RSP_CF_TO, _P_H(msg.message_id_being_responded_to),
        _RSP_DST_STATUS, _P_H(msg.status),
        _H_INSTANCE, _P_I(len(i)), i,
    ))
    return _GL_HDR + _P_I(len(body)) + body


# --- decoding a clean C-STORE-RQ --------------------------------------------------------------

# A C-STORE-RQ as nearly every SCU sends it: group length, then exactly (0000,0002) UI, the
# four US elements 0100/0110/0700/0800, and (0000,1000) UI, nothing else.
_STORE_RQ_US_TAGS = (0, COMMAND_FIELD, 2, 0, MESSAGE_ID, 2, 0, PRIORITY, 2,
                     0, COMMAND_DATA_SET_TYPE, 2)
_STORE_RQ_ORDER = (COMMAND_GROUP_LENGTH, AFFECTED_SOP_CLASS_UID, COMMAND_FIELD, MESSAGE_ID,
                   PRIORITY, COMMAND_DATA_SET_TYPE, AFFECTED_SOP_INSTANCE_UID)
assert _STORE_RQ_ORDER == (0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000)


def _clean_ui(raw: bytes) -> str | None:
    """A UI value the general decoder accepts without any finding, or None."""
    if len(raw) & 1:
        return None
    text = raw.decode("latin-1")
    stripped = text[:-1] if text.endswith("\x00") else text
    if len(stripped) > 64 or UID_SYNTAX.fullmatch(stripped) is None:
        return None  # includes a second pad byte, space padding and empty UIDs
    return stripped


def _clean_store_rq(buf: bytes) -> DecodedCommand | None:
    """The general decoder's exact result for a C-STORE-RQ it would find nothing wrong in,
    built without its per-element dispatch; ``None`` for anything else (including anything
    that would give a finding), which then goes through the general decoder."""
    n = len(buf)
    if n < 78:  # 12 (group length) + 8 + 40 (US run) + 8 + two 2-byte UIDs
        return None
    g, e, gl_len, gl = UL_ELEMENT_LE.unpack_from(buf, 0)
    if g or e != COMMAND_GROUP_LENGTH or gl_len != 4 or gl != n - 12:
        return None
    g, e, clen = _UNPACK_HDR(buf, 12)
    p_us = 20 + clen
    if g or e != AFFECTED_SOP_CLASS_UID or p_us + 48 > n:
        return None
    us = _US4.unpack_from(buf, p_us)
    if us[0:3] + us[4:7] + us[8:11] + us[12:15] != _STORE_RQ_US_TAGS:
        return None
    cf, msg_id, prio, dst = us[3], us[7], us[11], us[15]
    if cf != _C_STORE_RQ or prio not in PRIORITIES or dst == NO_DATA_SET:
        return None
    p_iuid = p_us + 40
    g, e, ilen = _UNPACK_HDR(buf, p_iuid)
    if g or e != AFFECTED_SOP_INSTANCE_UID or p_iuid + 8 + ilen != n:
        return None
    craw = buf[20:p_us]
    iraw = buf[p_iuid + 8:n]
    cuid = _clean_ui(craw)
    iuid = _clean_ui(iraw)
    if cuid is None or iuid is None:
        return None
    p = p_us
    # Literal keys: a dict display of constants is built in one step (BUILD_CONST_KEY_MAP);
    # _STORE_RQ_ORDER names them, and the assertion next to it keeps the two in step.
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


# --- reading a C-STORE-RSP --------------------------------------------------------------------

def read_store_rsp(buf: bytes | bytearray | memoryview, pos: int,
                   end: int) -> tuple[int, int] | None:
    """(Message ID Being Responded To, Status) of the C-STORE-RSP command set in
    ``buf[pos:end]`` (PS3.7 9.3.1.2), or ``None`` when it is not one: another Command Field,
    either element missing or not 2 bytes long, an element of another group, a length
    running past ``end`` or bytes left over. Nothing is copied."""
    command_field = responded = status = -1
    unpack_hdr = _UNPACK_HDR
    unpack_h = _UNPACK_H
    while pos + 8 <= end:
        group, element, length = unpack_hdr(buf, pos)
        pos += 8
        if group != 0 or pos + length > end:
            return None
        if length == 2:
            if element == COMMAND_FIELD:
                command_field = unpack_h(buf, pos)[0]
            elif element == MESSAGE_ID_BEING_RESPONDED_TO:
                responded = unpack_h(buf, pos)[0]
            elif element == STATUS:
                status = unpack_h(buf, pos)[0]
        pos += length
    if pos != end or command_field != _C_STORE_RSP or responded < 0 or status < 0:
        return None
    return responded, status


def read_store_rsp_pdu(pdu: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """:func:`read_store_rsp` of a whole P-DATA-TF PDU holding exactly one PDV, the complete
    command (PS3.8 9.3.5, E.2: command and last-fragment bits set); ``None`` for any other
    PDU (fragmented, several PDVs, a data set, another PDU type)."""
    end = len(pdu)
    if end < 12:
        return None
    pdu_type, _r, length, pdv_len, _cid, mch = _PDU_PDV.unpack_from(pdu, 0)
    if pdu_type != _P_DATA_TF or mch != _COMMAND_LAST or length != end - PDU_HEADER_LEN or \
            pdv_len != length - 4:
        return None
    return read_store_rsp(pdu, 12, end)
