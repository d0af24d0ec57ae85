"""Validating PDU decoder: bytes of one PDU in, the PDU object plus every deviation found out.

It never raises on any input and never allocates what a length field claims: values are
sliced from the bytes actually present. A PDU that cannot be decoded at all comes back as a
:class:`~harness.wire.pdu.RawPDU` with findings saying why. Offsets in findings count from
the first byte of the PDU.
"""

from __future__ import annotations

import struct

from harness.wire.constants import (
    ABORT_REASONS,
    APPLICATION_CONTEXT_NAME,
    ASSOCIATE_FIXED_LEN,
    ITEM_HEADER_LEN,
    MCH_RESERVED_MASK,
    PC_RESULTS,
    PDU_HEADER_LEN,
    RJ_REASONS,
    RJ_RESULTS,
    ItemType,
    PDUType,
)
from harness.wire.constants import ITEM_HEADER as _ITEM_HDR
from harness.wire.constants import PDV_HEADER as _PDV_HDR
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
    UserIdentityAC,
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
    pdu_name,
)
from harness.wire.uid import ae_title_problem, uid_findings

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_P_DATA_TF = int(PDUType.P_DATA_TF)

S_FIXED_RQ = "PS3.8 9.3.2"
S_FIXED_AC = "PS3.8 9.3.3"


class _Ctx:
    """Findings collector for one PDU."""

    __slots__ = ("findings",)

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, offset: int | None, field: str, expected: str, found: str, section: str,
            severity: str = "error") -> None:
        self.findings.append(Finding(offset, field, expected, found, section, severity))


def _ascii(raw: bytes | memoryview) -> str:
    return bytes(raw).decode("ascii", errors="replace")


def _uid_value(ctx: _Ctx, raw: memoryview, field: str, offset: int, section: str) -> str:
    text = _ascii(raw)
    if text.endswith("\x00"):
        # PS3.8 9.3.2.1 Note: UIDs in items shall not be padded; trailing NUL is tolerated.
        ctx.add(offset, field, "UID without padding", "trailing NUL padding", section, "warning")
        text = text.rstrip("\x00")
    ctx.findings += uid_findings(text, field, offset, section)
    return text


def decode_pdu(data: bytes | bytearray | memoryview) -> tuple[PDU, list[Finding]]:
    """Decode one whole PDU (6-byte header and body) and validate it."""
    ctx = _Ctx()
    view = memoryview(data)
    if len(view) < PDU_HEADER_LEN:
        ctx.add(0, "PDU header", "6 bytes", f"{len(view)} bytes", "PS3.8 9.3.1")
        return RawPDU(view[0] if len(view) else -1, bytes(view)), ctx.findings
    pdu_type, reserved, length = struct.unpack_from(">BBI", view, 0)
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


def _decode_associate(ctx: _Ctx, body: memoryview, reserved: int, is_rq: bool) -> PDU:
    section = S_FIXED_RQ if is_rq else S_FIXED_AC
    name = "A-ASSOCIATE-RQ" if is_rq else "A-ASSOCIATE-AC"
    if len(body) < ASSOCIATE_FIXED_LEN:
        ctx.add(PDU_HEADER_LEN, name, f"at least {ASSOCIATE_FIXED_LEN} bytes of fixed fields",
                f"{len(body)} bytes", section)
        return RawPDU(PDUType.A_ASSOCIATE_RQ if is_rq else PDUType.A_ASSOCIATE_AC, bytes(body),
                      reserved)
    version, reserved_version = struct.unpack_from(">HH", body, 0)
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
    items = _decode_items(ctx, body, ASSOCIATE_FIXED_LEN, len(body), is_rq)
    pdu: AssociateRQ | AssociateAC
    if is_rq:
        pdu = AssociateRQ(called, calling, items, version, reserved, reserved_version, tail)
    else:
        pdu = AssociateAC(called, calling, items, version, reserved, reserved_version, tail)
    _check_item_structure(ctx, items, is_rq, section)
    return pdu


def _decode_items(ctx: _Ctx, body: memoryview, start: int, end: int, is_rq: bool) -> list[Item]:
    items: list[Item] = []
    pos = start
    while pos < end:
        base = PDU_HEADER_LEN + pos
        if end - pos < ITEM_HEADER_LEN:
            ctx.add(base, "item header", "4 bytes", f"{end - pos} trailing bytes", "PS3.8 9.3.2")
            break
        item_type, item_reserved, length = _ITEM_HDR.unpack_from(body, pos)
        value_start = pos + ITEM_HEADER_LEN
        if value_start + length > end:
            ctx.add(base + 2, f"item {item_type:02X}H length",
                    f"<= {end - value_start} (bytes left in the PDU)", str(length), "PS3.8 9.3.2")
            length = end - value_start
        value = body[value_start: value_start + length]
        if item_reserved:
            ctx.add(base + 1, f"item {item_type:02X}H reserved byte", "00H (not tested)",
                    f"{item_reserved:02X}H", "PS3.8 9.3.2", "warning")
        items.append(_decode_item(ctx, item_type, item_reserved, value, base, is_rq))
        pos = value_start + length
    return items


def _decode_item(ctx: _Ctx, item_type: int, reserved: int, value: memoryview, base: int,
                 is_rq: bool) -> Item:
    vbase = base + ITEM_HEADER_LEN
    if item_type == ItemType.APPLICATION_CONTEXT:
        name = _uid_value(ctx, value, "Application-context-name", vbase, "PS3.8 9.3.2.1")
        if name != APPLICATION_CONTEXT_NAME:
            ctx.add(vbase, "Application-context-name", APPLICATION_CONTEXT_NAME, name,
                    "PS3.7 A.2.1", "warning")
        return ApplicationContextItem(name, reserved)
    if item_type == ItemType.PRESENTATION_CONTEXT_RQ and is_rq:
        return _decode_pc_rq(ctx, value, reserved, vbase)
    if item_type == ItemType.PRESENTATION_CONTEXT_AC and not is_rq:
        return _decode_pc_ac(ctx, value, reserved, vbase)
    if item_type == ItemType.USER_INFORMATION:
        return _decode_user_information(ctx, value, reserved, vbase, is_rq)
    expected = "10H, 20H, 50H" if is_rq else "10H, 21H, 50H"
    ctx.add(base, "item-type", expected, f"{item_type:02X}H", "PS3.8 9.3.2" if is_rq
            else "PS3.8 9.3.3")
    return RawItem(item_type, bytes(value), reserved)


def _sub_items(ctx: _Ctx, value: memoryview, vbase: int, section: str) -> list[
        tuple[int, int, memoryview, int]]:
    out: list[tuple[int, int, memoryview, int]] = []
    pos = 0
    while pos < len(value):
        if len(value) - pos < ITEM_HEADER_LEN:
            ctx.add(vbase + pos, "sub-item header", "4 bytes", f"{len(value) - pos} bytes", section)
            break
        sub_type, sub_reserved, length = _ITEM_HDR.unpack_from(value, pos)
        start = pos + ITEM_HEADER_LEN
        if start + length > len(value):
            ctx.add(vbase + pos + 2, f"sub-item {sub_type:02X}H length",
                    f"<= {len(value) - start}", str(length), section)
            length = len(value) - start
        if sub_reserved and sub_type != ItemType.SOP_CLASS_COMMON_EXTENDED:
            ctx.add(vbase + pos + 1, f"sub-item {sub_type:02X}H reserved byte",
                    "00H (not tested)", f"{sub_reserved:02X}H", section, "warning")
        out.append((sub_type, sub_reserved, value[start: start + length], vbase + start))
        pos = start + length
    return out


def _decode_pc_rq(ctx: _Ctx, value: memoryview, reserved: int, vbase: int) -> Item:
    section = "PS3.8 9.3.2.2"
    if len(value) < 4:
        ctx.add(vbase, "Presentation Context item", "at least 4 bytes", f"{len(value)}", section)
        return RawItem(ItemType.PRESENTATION_CONTEXT_RQ, bytes(value), reserved)
    context_id = value[0]
    abstract: str | None = None
    syntaxes: list[str | bytes] = []
    extras: list[RawItem] = []
    for sub_type, sub_reserved, sub, offset in _sub_items(ctx, value[4:], vbase + 4, section):
        if sub_type == ItemType.ABSTRACT_SYNTAX:
            if abstract is not None:
                ctx.add(offset - 4, "Abstract Syntax sub-item", "exactly one per context",
                        "a second one", section)
            abstract = _uid_value(ctx, sub, "Abstract-syntax-name", offset, "PS3.8 9.3.2.2.1")
            if syntaxes:
                ctx.add(offset - 4, "sub-item order", "abstract syntax before transfer syntaxes",
                        "abstract syntax after a transfer syntax", section)
        elif sub_type == ItemType.TRANSFER_SYNTAX:
            syntaxes.append(_uid_value(ctx, sub, "Transfer-syntax-name", offset,
                                       "PS3.8 9.3.2.2.2"))
        else:
            ctx.add(offset - 4, "sub-item-type", "30H or 40H", f"{sub_type:02X}H", section)
            extras.append(RawItem(sub_type, bytes(sub), sub_reserved))
    if abstract is None:
        ctx.add(vbase, f"Presentation Context {context_id}", "one Abstract Syntax sub-item",
                "none", section)
    if not syntaxes:
        ctx.add(vbase, f"Presentation Context {context_id}",
                "one or more Transfer Syntax sub-items", "none", section)
    for idx in (1, 2, 3):
        if value[idx]:
            ctx.add(vbase + idx, f"Presentation Context {context_id} reserved byte",
                    "00H (not tested)", f"{value[idx]:02X}H", section, "warning")
    return PresentationContextRQ(context_id, abstract or "", syntaxes,
                                 (reserved, value[1], value[2], value[3]), None, extras)


def _decode_pc_ac(ctx: _Ctx, value: memoryview, reserved: int, vbase: int) -> Item:
    section = "PS3.8 9.3.3.2"
    if len(value) < 4:
        ctx.add(vbase, "Presentation Context item", "at least 4 bytes", f"{len(value)}", section)
        return RawItem(ItemType.PRESENTATION_CONTEXT_AC, bytes(value), reserved)
    context_id, result = value[0], value[2]
    if result not in PC_RESULTS:
        ctx.add(vbase + 2, f"Presentation Context {context_id} Result/Reason", "0-4", str(result),
                section)
    syntaxes: list[str] = []
    for sub_type, _sub_reserved, sub, offset in _sub_items(ctx, value[4:], vbase + 4, section):
        if sub_type == ItemType.TRANSFER_SYNTAX:
            if result == 0:
                syntaxes.append(_uid_value(ctx, sub, "Transfer-syntax-name", offset,
                                           "PS3.8 9.3.3.2.1"))
            else:
                # Not significant for a rejected context and not to be tested (PS3.8 9.3.3.2).
                syntaxes.append(_ascii(sub).rstrip("\x00"))
        else:
            ctx.add(offset - 4, "sub-item-type", "40H", f"{sub_type:02X}H", section)
    if result == 0 and len(syntaxes) != 1:
        ctx.add(vbase, f"Presentation Context {context_id}",
                "exactly one Transfer Syntax sub-item for an accepted context",
                f"{len(syntaxes)}", "PS3.8 7.1.1.14, 9.3.3.2")
    for idx in (1, 3):
        if value[idx]:
            ctx.add(vbase + idx, f"Presentation Context {context_id} reserved byte",
                    "00H (not tested)", f"{value[idx]:02X}H", section, "warning")
    return PresentationContextAC(context_id, result, syntaxes[0] if syntaxes else None,
                                 (reserved, value[1], 0, value[3]))  # byte 3 is the result


def _decode_user_information(ctx: _Ctx, value: memoryview, reserved: int, vbase: int,
                             is_rq: bool) -> Item:
    section = "PS3.8 9.3.2.3" if is_rq else "PS3.8 9.3.3.3"
    subs: list[SubItem] = []
    for sub_type, sub_reserved, sub, offset in _sub_items(ctx, value, vbase, section):
        subs.append(_decode_sub_item(ctx, sub_type, sub_reserved, sub, offset, is_rq))
    return UserInformation(subs, reserved)


def _decode_sub_item(ctx: _Ctx, sub_type: int, reserved: int, sub: memoryview, offset: int,
                     is_rq: bool) -> SubItem:
    def need(n: int, section: str) -> bool:
        if len(sub) < n:
            ctx.add(offset - 4, f"sub-item {sub_type:02X}H", f"at least {n} bytes", str(len(sub)),
                    section)
            return False
        return True

    if sub_type == ItemType.MAXIMUM_LENGTH:
        if len(sub) != 4:
            ctx.add(offset - 2, "Maximum Length sub-item length", "4", str(len(sub)), "PS3.8 D.1")
        if need(4, "PS3.8 D.1"):
            return MaximumLength(_U32.unpack_from(sub, 0)[0], reserved)
    elif sub_type == ItemType.IMPLEMENTATION_CLASS_UID:
        uid = _uid_value(ctx, sub, "Implementation-class-uid", offset, "PS3.7 D.3.3.2")
        return ImplementationClassUID(uid, reserved)
    elif sub_type == ItemType.IMPLEMENTATION_VERSION_NAME:
        if not 1 <= len(sub) <= 16:
            ctx.add(offset - 2, "Implementation-version-name length", "1-16", str(len(sub)),
                    "PS3.7 D.3.3.2")
        raw = bytes(sub)
        if not raw.isascii():
            # Kept as bytes so that re-encoding sends back exactly what came.
            ctx.add(offset, "Implementation-version-name", "ISO 646 (ASCII) characters",
                    repr(raw), "PS3.7 D.3.3.2")
            return ImplementationVersionName(raw, reserved)
        return ImplementationVersionName(raw.decode("ascii"), reserved)
    elif sub_type == ItemType.ASYNC_OPS_WINDOW:
        if len(sub) != 4:
            ctx.add(offset - 2, "Asynchronous Operations Window length", "4", str(len(sub)),
                    "PS3.7 D.3.3.3")
        if need(4, "PS3.7 D.3.3.3"):
            invoked, performed = struct.unpack_from(">HH", sub, 0)
            return AsyncOpsWindow(invoked, performed, reserved)
    elif sub_type == ItemType.ROLE_SELECTION:
        if need(2, "PS3.7 D.3.3.4"):
            n = _U16.unpack_from(sub, 0)[0]
            if len(sub) != n + 4:
                ctx.add(offset, "SCP/SCU Role Selection UID-length",
                        f"{len(sub) - 4} (sub-item length - 4)", str(n), "PS3.7 D.3.3.4")
            if need(n + 4, "PS3.7 D.3.3.4"):
                uid = _uid_value(ctx, sub[2: 2 + n], "SOP-class-uid", offset + 2, "PS3.7 D.3.3.4")
                scu, scp = sub[2 + n], sub[3 + n]
                for pos, name, role in ((2 + n, "SCU-role", scu), (3 + n, "SCP-role", scp)):
                    if role not in (0, 1):
                        ctx.add(offset + pos, name, "0 or 1", str(role), "PS3.7 D.3.3.4")
                return RoleSelection(uid, scu, scp, reserved)
    elif sub_type == ItemType.SOP_CLASS_EXTENDED:
        if need(2, "PS3.7 D.3.3.5"):
            n = _U16.unpack_from(sub, 0)[0]
            if need(n + 2, "PS3.7 D.3.3.5"):
                uid = _uid_value(ctx, sub[2: 2 + n], "SOP-class-uid", offset + 2, "PS3.7 D.3.3.5")
                return SOPClassExtended(uid, bytes(sub[2 + n:]), reserved)
    elif sub_type == ItemType.SOP_CLASS_COMMON_EXTENDED:
        parsed = _decode_common_extended(sub)
        if parsed is not None:
            names = ["SOP-class-uid", "Service-class-uid"]
            names += ["Related-general-sop-class-uid"] * (len(parsed) - 2)
            uids: list[str | bytes] = [
                _uid_value(ctx, raw, name, offset + rel, "PS3.7 D.3.3.6")
                for (rel, raw), name in zip(parsed, names, strict=True)]
            return SOPClassCommonExtended(uids[0], uids[1], uids[2:], reserved)
        ctx.add(offset - 4, "SOP Class Common Extended Negotiation", "consistent lengths",
                "lengths that do not add up", "PS3.7 D.3.3.6")
    elif sub_type == ItemType.USER_IDENTITY_RQ and is_rq:
        if need(6, "PS3.7 D.3.3.7.1"):
            id_type, positive = sub[0], sub[1]
            n = _U16.unpack_from(sub, 2)[0]
            if need(4 + n + 2, "PS3.7 D.3.3.7.1"):
                primary = bytes(sub[4: 4 + n])
                m = _U16.unpack_from(sub, 4 + n)[0]
                secondary = bytes(sub[6 + n: 6 + n + m])
                if len(sub) != 6 + n + m:
                    ctx.add(offset + 4 + n, "Secondary-field-length",
                            f"{len(sub) - 6 - n} (what the sub-item length leaves)", str(m),
                            "PS3.7 D.3.3.7.1")
                if id_type not in (1, 2, 3, 4, 5):
                    ctx.add(offset, "User-Identity-Type", "1-5", str(id_type), "PS3.7 D.3.3.7.1")
                return UserIdentityRQ(id_type, primary, secondary, positive, reserved)
    elif sub_type == ItemType.USER_IDENTITY_AC and not is_rq:
        if need(2, "PS3.7 D.3.3.7.2"):
            n = _U16.unpack_from(sub, 0)[0]
            if len(sub) != 2 + n:
                ctx.add(offset, "Server-response-length", f"{len(sub) - 2} (sub-item length - 2)",
                        str(n), "PS3.7 D.3.3.7.2")
            return UserIdentityAC(bytes(sub[2: 2 + n]), reserved)
    else:
        # PS3.8 D.2 Note 2: acceptors ignore unknown sub-items; recorded, not an error.
        ctx.add(offset - 4, "user information sub-item", "a known sub-item type (51H-59H)",
                f"{sub_type:02X}H", "PS3.8 D.2", "info")
    return RawItem(sub_type, bytes(sub), reserved)


def _decode_common_extended(sub: memoryview) -> list[tuple[int, memoryview]] | None:
    """(offset in ``sub``, value) of the SOP class, service class and related class UIDs, or
    ``None`` unless the length fields exactly tile the sub-item (PS3.7 D.3.3.6)."""
    out: list[tuple[int, memoryview]] = []
    end = len(sub)

    def field(pos: int) -> int | None:
        if pos + 2 > end:
            return None
        n: int = _U16.unpack_from(sub, pos)[0]
        if pos + 2 + n > end:
            return None
        out.append((pos + 2, sub[pos + 2: pos + 2 + n]))
        return pos + 2 + n

    pos: int | None = field(0)
    pos = field(pos) if pos is not None else None
    if pos is None or pos + 2 > end or pos + 2 + _U16.unpack_from(sub, pos)[0] != end:
        return None
    pos += 2
    while pos is not None and pos < end:
        pos = field(pos)
    return out if pos == end else None


def _check_item_structure(ctx: _Ctx, items: list[Item], is_rq: bool, section: str) -> None:
    """Counts and order of items: one application context, then contexts, then user info."""
    order_kind = []
    for item in items:
        if isinstance(item, ApplicationContextItem):
            order_kind.append(0)
        elif isinstance(item, PresentationContextRQ | PresentationContextAC):
            order_kind.append(1)
        elif isinstance(item, UserInformation):
            order_kind.append(2)
    if order_kind.count(0) != 1:
        ctx.add(None, "Application Context item", "exactly one", str(order_kind.count(0)), section)
    if order_kind.count(1) == 0:
        ctx.add(None, "Presentation Context items", "one or more", "none", section)
    if order_kind.count(2) != 1:
        ctx.add(None, "User Information item", "exactly one", str(order_kind.count(2)), section)
    if order_kind != sorted(order_kind):
        ctx.add(None, "item order",
                "Application Context, then Presentation Contexts, then User Information",
                "another order", section, "warning")
    ids: dict[int, int] = {}
    for item in items:
        if isinstance(item, PresentationContextRQ | PresentationContextAC):
            cid = item.context_id
            if cid % 2 == 0:
                ctx.add(None, "Presentation-context-ID", "an odd integer 1-255", str(cid),
                        "PS3.8 9.3.2.2" if is_rq else "PS3.8 9.3.3.2")
            ids[cid] = ids.get(cid, 0) + 1
    for cid, count in ids.items():
        if count > 1:
            ctx.add(None, "Presentation-context-ID", "unique within the PDU",
                    f"{cid} used {count} times", "PS3.8 7.1.1.13")
    user = next((i for i in items if isinstance(i, UserInformation)), None)
    if user is not None:
        sub_section = "PS3.8 D.1; PS3.7 D.3.3.2"
        kinds = [type(s) for s in user.sub_items]
        if kinds.count(MaximumLength) != 1:
            ctx.add(None, "Maximum Length sub-item", "exactly one", str(kinds.count(MaximumLength)),
                    sub_section)
        if kinds.count(ImplementationClassUID) != 1:
            ctx.add(None, "Implementation Class UID sub-item", "exactly one",
                    str(kinds.count(ImplementationClassUID)), sub_section)


# --- other PDUs --------------------------------------------------------------------------


def _four_byte(ctx: _Ctx, body: memoryview, name: str, section: str) -> bool:
    if len(body) != 4:
        ctx.add(PDU_HEADER_LEN, f"{name} body", "4 bytes", f"{len(body)} bytes", section)
    return len(body) >= 4


def _decode_rj(ctx: _Ctx, body: memoryview, reserved: int) -> PDU:
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


def _decode_abort(ctx: _Ctx, body: memoryview, reserved: int) -> PDU:
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


def _decode_release(ctx: _Ctx, body: memoryview, reserved: int, is_rq: bool) -> PDU:
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


def _decode_pdata(ctx: _Ctx, body: memoryview, reserved: int) -> PDU:
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
    if end < 12 or pdu[0] != _P_DATA_TF or pdu[1] or _U32.unpack_from(pdu, 2)[0] != \
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
