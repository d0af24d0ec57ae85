"""Validating PDU decoder: bytes of one PDU in, the PDU object plus every deviation found out.

It never raises on any input and never allocates what a length field claims: values are
sliced from the bytes actually present. A PDU that cannot be decoded at all comes back as a
:class:`~harness.wire.pdu.RawPDU` with findings saying why. Offsets in findings count from
the first byte of the PDU. The variable items of A-ASSOCIATE-RQ/AC and their sub-items are
:mod:`harness.wire.decode_items`; this module has the PDU headers, the fixed fields, the
small PDUs and P-DATA-TF.
"""

from __future__ import annotations

import struct

from harness.wire.constants import (
    ABORT_REASONS,
    ASSOCIATE_FIXED_LEN,
    MCH_RESERVED_MASK,
    PC_RESULTS,
    PDU_HEADER_LEN,
    RJ_REASONS,
    RJ_RESULTS,
    U16_PAIR_BE,
    U32_BE,
    PDUType,
)
from harness.wire.constants import PDU_HEADER as _PDU_HDR
from harness.wire.constants import PDV_HEADER as _PDV_HDR
from harness.wire.decode_items import Ctx, check_item_structure, decode_items
from harness.wire.findings import Finding
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
    pdu_name,
)
from harness.wire.uid import ae_title_problem

_P_DATA_TF = int(PDUType.P_DATA_TF)

S_FIXED_RQ = "PS3.8 9.3.2"
S_FIXED_AC = "PS3.8 9.3.3"


def decode_pdu(data: bytes | bytearray | memoryview) -> tuple[PDU, list[Finding]]:
    """Decode one whole PDU (6-byte header and body) and validate it."""
    ctx = Ctx()
    view = memoryview(data)
    if len(view) < PDU_HEADER_LEN:
        ctx.add(0, "PDU header", "6 bytes", f"{len(view)} bytes", "PS3.8 9.3.1")
        return RawPDU(view[0] if len(view) else -1, bytes(view)), ctx.findings
    pdu_type, reserved, length = _PDU_HDR.unpack_from(view, 0)
    body = view[PDU_HEADER_LEN:]
    if reserved:
        ctx.add(1, "PDU reserved byte", "00H (not tested)", f"{reserved:02X}H", "PS3.8 9.3.1",
                "warning")
    if length != len(body):
        ctx.add(2, "PDU-length", f"{len(body)} (bytes that follow)", str(length), "PS3.8 9.3.1")
        body = body[: min(length, len(body))]
    decoder = _DECODERS.get(pdu_type)
    pdu: PDU
    if decoder is None:
        ctx.add(0, "PDU-type", "01H-07H", f"{pdu_type:02X}H", "PS3.8 9.3.1")
        pdu = RawPDU(pdu_type, bytes(body), reserved)
    else:
        try:
            pdu = decoder(ctx, body, reserved)
        except (struct.error, IndexError, ValueError) as exc:  # defensive: report, never raise
            ctx.add(None, pdu_name(pdu_type), "a decodable PDU", f"decoder stopped: {exc}",
                    "PS3.8 9.3")
            pdu = RawPDU(pdu_type, bytes(body), reserved)
    if length != len(view) - PDU_HEADER_LEN:
        pdu.length = length  # keep the lie so re-encoding reproduces it
    return pdu, ctx.findings


# --- A-ASSOCIATE-RQ / AC -------------------------------------------------------------------


def _decode_associate(ctx: Ctx, body: memoryview, reserved: int, is_rq: bool) -> PDU:
    section = S_FIXED_RQ if is_rq else S_FIXED_AC
    name = "A-ASSOCIATE-RQ" if is_rq else "A-ASSOCIATE-AC"
    if len(body) < ASSOCIATE_FIXED_LEN:
        ctx.add(PDU_HEADER_LEN, name, f"at least {ASSOCIATE_FIXED_LEN} bytes of fixed fields",
                f"{len(body)} bytes", section)
        return RawPDU(PDUType.A_ASSOCIATE_RQ if is_rq else PDUType.A_ASSOCIATE_AC, bytes(body),
                      reserved)
    version, reserved_version = U16_PAIR_BE.unpack_from(body, 0)
    if not version & 1:
        ctx.add(6, "Protocol-version", "bit 0 set", f"{version:04X}H", section)
    elif version != 1:
        ctx.add(6, "Protocol-version", "0001H (other bits are not tested)", f"{version:04X}H",
                section, "warning")
    if reserved_version:
        ctx.add(8, "reserved (bytes 9-10)", "0000H (not tested)", f"{reserved_version:04X}H",
                section, "warning")
    called = bytes(body[4:20])
    calling = bytes(body[20:36])
    for offset, field, raw in ((10, "Called-AE-title", called), (26, "Calling-AE-title", calling)):
        problem = ae_title_problem(raw)
        if problem:
            ctx.add(offset, field, "1-16 characters of the AE VR, not all spaces",
                    f"{raw!r}: {problem}", "PS3.5 6.2; " + section)
    tail = bytes(body[36:68])
    if is_rq and any(tail):
        ctx.add(42, "reserved (bytes 43-74)", "00H (not tested)", "non-zero bytes", section,
                "warning")
    items = decode_items(ctx, body, ASSOCIATE_FIXED_LEN, len(body), is_rq)
    pdu: AssociateRQ | AssociateAC
    if is_rq:
        pdu = AssociateRQ(called, calling, items, version, reserved, reserved_version, tail)
    else:
        pdu = AssociateAC(called, calling, items, version, reserved, reserved_version, tail)
    check_item_structure(ctx, items, is_rq, section)
    return pdu


# --- other PDUs --------------------------------------------------------------------------


def _four_byte(ctx: Ctx, body: memoryview, name: str, section: str) -> bool:
    if len(body) != 4:
        ctx.add(PDU_HEADER_LEN, f"{name} body", "4 bytes", f"{len(body)} bytes", section)
    return len(body) >= 4


def _decode_rj(ctx: Ctx, body: memoryview, reserved: int) -> PDU:
    section = "PS3.8 9.3.4"
    if not _four_byte(ctx, body, "A-ASSOCIATE-RJ", section):
        return RawPDU(PDUType.A_ASSOCIATE_RJ, bytes(body), reserved)
    rsv, result, source, reason = body[0], body[1], body[2], body[3]
    if rsv:
        ctx.add(6, "reserved", "00H (not tested)", f"{rsv:02X}H", section, "warning")
    if result not in RJ_RESULTS:
        ctx.add(7, "Result", "1 or 2", str(result), section)
    if reason not in RJ_REASONS.get(source, {}):
        ctx.add(8, "Source/Reason", "a combination of PS3.8 Table 9-21",
                f"source {source}, reason {reason}", section)
    return AssociateRJ(result, source, reason, reserved, rsv)


def _decode_abort(ctx: Ctx, body: memoryview, reserved: int) -> PDU:
    section = "PS3.8 9.3.8"
    if not _four_byte(ctx, body, "A-ABORT", section):
        return RawPDU(PDUType.A_ABORT, bytes(body), reserved)
    source, reason = body[2], body[3]
    if body[0] or body[1]:
        ctx.add(6, "reserved", "0000H (not tested)", bytes(body[:2]).hex(), section, "warning")
    if source not in (0, 2):
        ctx.add(8, "Source", "0 (service-user) or 2 (service-provider)", str(source), section)
    elif source == 0 and reason != 0:
        # Not significant for source 0: "sent with a value 00H but not tested" (Table 9-26).
        ctx.add(9, "Reason/Diag.", "00H when source is 0 (not tested)", f"{reason:02X}H", section,
                "warning")
    elif source == 2 and reason not in ABORT_REASONS:
        ctx.add(9, "Reason/Diag.", "0, 1, 2, 4, 5 or 6", str(reason), section)
    return Abort(source, reason, reserved, (body[0], body[1]))


def _decode_release(ctx: Ctx, body: memoryview, reserved: int, is_rq: bool) -> PDU:
    section = "PS3.8 9.3.6" if is_rq else "PS3.8 9.3.7"
    name = "A-RELEASE-RQ" if is_rq else "A-RELEASE-RP"
    _four_byte(ctx, body, name, section)
    if any(body):
        ctx.add(6, "reserved", "00000000H (not tested)", bytes(body).hex(), section, "warning")
    cls = ReleaseRQ if is_rq else ReleaseRP
    return cls(reserved, bytes(body))


def decode_pdvs(body: memoryview, findings: list[Finding] | None = None) -> list[PDV]:
    """Split a P-DATA-TF body into PDVs (fragments are views into ``body``, not copies)."""
    pdvs: list[PDV] = []
    pos = 0
    end = len(body)
    while pos < end:
        if end - pos < 6:
            if findings is not None:
                findings.append(Finding(PDU_HEADER_LEN + pos, "PDV item", "at least 6 bytes",
                                        f"{end - pos} trailing bytes", "PS3.8 9.3.5.1"))
            break
        length, context_id, mch = _PDV_HDR.unpack_from(body, pos)
        if length < 2 or pos + 4 + length > end:
            if findings is not None:
                findings.append(Finding(PDU_HEADER_LEN + pos, "PDV Item-length",
                                        f"2..{end - pos - 4}", str(length), "PS3.8 9.3.5.1"))
            length = max(2, min(length, end - pos - 4))
        pdvs.append(PDV(context_id, mch, body[pos + 6: pos + 4 + length]))
        pos += 4 + length
    if findings is not None:
        _check_pdvs(pdvs, findings)
    return pdvs


def _check_pdvs(pdvs: list[PDV], findings: list[Finding]) -> None:
    if not pdvs:
        findings.append(Finding(PDU_HEADER_LEN, "P-DATA-TF", "one or more PDV items", "none",
                                "PS3.8 9.3.5"))
    for i, pdv in enumerate(pdvs):
        if pdv.context_id % 2 == 0:
            findings.append(Finding(None, f"PDV {i} Presentation-context-ID", "odd",
                                    str(pdv.context_id), "PS3.8 9.3.5.1"))
        if pdv.mch & MCH_RESERVED_MASK:
            findings.append(Finding(None, f"PDV {i} Message Control Header",
                                    "bits 2-7 zero (never checked by the receiver)",
                                    f"{pdv.mch:02X}H", "PS3.8 E.2", "warning"))
        if not len(pdv.data):
            findings.append(Finding(None, f"PDV {i} fragment", "not empty", "empty fragment",
                                    "PS3.8 E.1", "warning"))
        elif len(pdv.data) % 2:
            findings.append(Finding(None, f"PDV {i} fragment length", "even",
                                    str(len(pdv.data)), "PS3.8 E.1", "warning"))


def _decode_pdata(ctx: Ctx, body: memoryview, reserved: int) -> PDU:
    return PDataTF(decode_pdvs(body, ctx.findings), reserved)


def decode_pdata_clean(pdu: memoryview) -> PDataTF | None:
    """The receive fast path: a whole P-DATA-TF (header included) that :func:`decode_pdu`
    would decode without any finding, decoded with struct checks only; ``None`` for anything
    else (then use :func:`decode_pdu`, which says what is wrong).

    Clean means: reserved byte zero, PDU-length equal to the bytes present, one or more PDVs
    whose lengths tile the body exactly, each with an odd context ID, an MCH without reserved
    bits and a non-empty even fragment. Fragments are views into ``pdu``, as with
    :func:`decode_pdu`.
    """
    end = len(pdu)
    if end < 12 or pdu[0] != _P_DATA_TF or pdu[1] or U32_BE.unpack_from(pdu, 2)[0] != \
            end - PDU_HEADER_LEN:
        return None
    unpack = _PDV_HDR.unpack_from
    pdvs: list[PDV] = []
    pos = PDU_HEADER_LEN
    while pos < end:
        if end - pos < 6:
            return None
        length, context_id, mch = unpack(pdu, pos)
        stop = pos + 4 + length
        # length - 2 is the fragment: more than 0 bytes and even, i.e. length even and > 2
        if length <= 2 or length & 1 or stop > end or not context_id & 1 or \
                mch & MCH_RESERVED_MASK:
            return None
        pdvs.append(PDV(context_id, mch, pdu[pos + 6:stop]))
        pos = stop
    return PDataTF(pdvs)


_DECODERS = {
    PDUType.A_ASSOCIATE_RQ: lambda c, b, r: _decode_associate(c, b, r, True),
    PDUType.A_ASSOCIATE_AC: lambda c, b, r: _decode_associate(c, b, r, False),
    PDUType.A_ASSOCIATE_RJ: _decode_rj,
    PDUType.P_DATA_TF: _decode_pdata,
    PDUType.A_RELEASE_RQ: lambda c, b, r: _decode_release(c, b, r, True),
    PDUType.A_RELEASE_RP: lambda c, b, r: _decode_release(c, b, r, False),
    PDUType.A_ABORT: _decode_abort,
}


def summarize(pdu: PDU) -> str:
    """A one-line human summary of a PDU's key fields, for traces."""
    if type(pdu) is PDataTF and len(pdu.pdvs) == 1:  # the common case, first and cheap
        p = pdu.pdvs[0]
        return f"pc={p.context_id} mch={p.mch:02X}H len={len(p.data)}"
    if isinstance(pdu, AssociateRQ):
        ctxs = ", ".join(f"{pc.context_id}:{pc.abstract_syntax!s}" for pc in
                         pdu.presentation_contexts)
        return (f"called={pdu.called_ae_title} calling={pdu.calling_ae_title} "
                f"max_pdu={pdu.max_pdu_length} contexts=[{ctxs}]")
    if isinstance(pdu, AssociateAC):
        ctxs = ", ".join(f"{pc.context_id}:{PC_RESULTS.get(pc.result, pc.result)!s}"
                         + (f" {pc.transfer_syntax!s}" if pc.result == 0 else "")
                         for pc in pdu.presentation_contexts)
        ui = pdu.user_information
        impl = ui.implementation_class_uid if ui else None
        return f"max_pdu={pdu.max_pdu_length} impl={impl} results=[{ctxs}]"
    if isinstance(pdu, AssociateRJ | Abort):
        return pdu.describe()
    if isinstance(pdu, PDataTF):
        parts = [f"pc={p.context_id} mch={p.mch:02X}H len={len(p.data)}" for p in pdu.pdvs[:4]]
        more = f" (+{len(pdu.pdvs) - 4} more)" if len(pdu.pdvs) > 4 else ""
        return "; ".join(parts) + more
    if isinstance(pdu, RawPDU):
        return f"type={pdu.pdu_type:02X}H body={len(pdu.body)} bytes"
    return ""
