"""The variable items of A-ASSOCIATE-RQ/AC and their sub-items, decoded with findings
(PS3.8 9.3.2-9.3.3, user information sub-items PS3.8 D and PS3.7 D.3.3): presentation
contexts, application context, maximum length, implementation UID and version, asynchronous
operations window, role selection, extended negotiation, user identity; then the item counts
and order a PDU must have. :class:`Ctx` collects the findings of one PDU (the PDU decoder,
:mod:`harness.wire.decode`, hands it in). Offsets count from the first byte of the PDU.
"""

from __future__ import annotations

from harness.wire.constants import (
    APPLICATION_CONTEXT_NAME,
    ITEM_HEADER_LEN,
    PC_RESULTS,
    PDU_HEADER_LEN,
    U16_BE,
    U16_PAIR_BE,
    U32_BE,
    ItemType,
)
from harness.wire.constants import ITEM_HEADER as _ITEM_HDR
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
from harness.wire.uid import uid_findings


class Ctx:
    """Findings collector for one PDU."""

    __slots__ = ("findings",)

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, offset: int | None, field: str, expected: str, found: str, section: str,
            severity: str = "error") -> None:
        self.findings.append(Finding(offset, field, expected, found, section, severity))


def _ascii(raw: bytes | memoryview) -> str:
    return bytes(raw).decode("ascii", errors="replace")


def uid_value(ctx: Ctx, raw: memoryview, field: str, offset: int, section: str) -> str:
    text = _ascii(raw)
    if text.endswith("\x00"):
        # PS3.8 9.3.2.1 Note: UIDs in items shall not be padded; trailing NUL is tolerated.
        ctx.add(offset, field, "UID without padding", "trailing NUL padding", section, "warning")
        text = text.rstrip("\x00")
    ctx.findings += uid_findings(text, field, offset, section)
    return text


def decode_items(ctx: Ctx, body: memoryview, start: int, end: int, is_rq: bool) -> list[Item]:
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


def _decode_item(ctx: Ctx, item_type: int, reserved: int, value: memoryview, base: int,
                 is_rq: bool) -> Item:
    vbase = base + ITEM_HEADER_LEN
    if item_type == ItemType.APPLICATION_CONTEXT:
        name = uid_value(ctx, value, "Application-context-name", vbase, "PS3.8 9.3.2.1")
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


def _sub_items(ctx: Ctx, value: memoryview, vbase: int, section: str) -> list[
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


def _decode_pc_rq(ctx: Ctx, value: memoryview, reserved: int, vbase: int) -> Item:
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
            abstract = uid_value(ctx, sub, "Abstract-syntax-name", offset, "PS3.8 9.3.2.2.1")
            if syntaxes:
                ctx.add(offset - 4, "sub-item order", "abstract syntax before transfer syntaxes",
                        "abstract syntax after a transfer syntax", section)
        elif sub_type == ItemType.TRANSFER_SYNTAX:
            syntaxes.append(uid_value(ctx, sub, "Transfer-syntax-name", offset,
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


def _decode_pc_ac(ctx: Ctx, value: memoryview, reserved: int, vbase: int) -> Item:
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
                syntaxes.append(uid_value(ctx, sub, "Transfer-syntax-name", offset,
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


def _decode_user_information(ctx: Ctx, value: memoryview, reserved: int, vbase: int,
                             is_rq: bool) -> Item:
    section = "PS3.8 9.3.2.3" if is_rq else "PS3.8 9.3.3.3"
    subs: list[SubItem] = []
    for sub_type, sub_reserved, sub, offset in _sub_items(ctx, value, vbase, section):
        subs.append(_decode_sub_item(ctx, sub_type, sub_reserved, sub, offset, is_rq))
    return UserInformation(subs, reserved)


def _decode_sub_item(ctx: Ctx, sub_type: int, reserved: int, sub: memoryview, offset: int,
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
            return MaximumLength(U32_BE.unpack_from(sub, 0)[0], reserved)
    elif sub_type == ItemType.IMPLEMENTATION_CLASS_UID:
        uid = uid_value(ctx, sub, "Implementation-class-uid", offset, "PS3.7 D.3.3.2")
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
            invoked, performed = U16_PAIR_BE.unpack_from(sub, 0)
            return AsyncOpsWindow(invoked, performed, reserved)
    elif sub_type == ItemType.ROLE_SELECTION:
        if need(2, "PS3.7 D.3.3.4"):
            n = U16_BE.unpack_from(sub, 0)[0]
            if len(sub) != n + 4:
                ctx.add(offset, "SCP/SCU Role Selection UID-length",
                        f"{len(sub) - 4} (sub-item length - 4)", str(n), "PS3.7 D.3.3.4")
            if need(n + 4, "PS3.7 D.3.3.4"):
                uid = uid_value(ctx, sub[2: 2 + n], "SOP-class-uid", offset + 2, "PS3.7 D.3.3.4")
                scu, scp = sub[2 + n], sub[3 + n]
                for pos, name, role in ((2 + n, "SCU-role", scu), (3 + n, "SCP-role", scp)):
                    if role not in (0, 1):
                        ctx.add(offset + pos, name, "0 or 1", str(role), "PS3.7 D.3.3.4")
                return RoleSelection(uid, scu, scp, reserved)
    elif sub_type == ItemType.SOP_CLASS_EXTENDED:
        if need(2, "PS3.7 D.3.3.5"):
            n = U16_BE.unpack_from(sub, 0)[0]
            if need(n + 2, "PS3.7 D.3.3.5"):
                uid = uid_value(ctx, sub[2: 2 + n], "SOP-class-uid", offset + 2, "PS3.7 D.3.3.5")
                return SOPClassExtended(uid, bytes(sub[2 + n:]), reserved)
    elif sub_type == ItemType.SOP_CLASS_COMMON_EXTENDED:
        parsed = _decode_common_extended(sub)
        if parsed is not None:
            names = ["SOP-class-uid", "Service-class-uid"]
            names += ["Related-general-sop-class-uid"] * (len(parsed) - 2)
            uids: list[str | bytes] = [
                uid_value(ctx, raw, name, offset + rel, "PS3.7 D.3.3.6")
                for (rel, raw), name in zip(parsed, names, strict=True)]
            return SOPClassCommonExtended(uids[0], uids[1], uids[2:], reserved)
        ctx.add(offset - 4, "SOP Class Common Extended Negotiation", "consistent lengths",
                "lengths that do not add up", "PS3.7 D.3.3.6")
    elif sub_type == ItemType.USER_IDENTITY_RQ and is_rq:
        if need(6, "PS3.7 D.3.3.7.1"):
            id_type, positive = sub[0], sub[1]
            n = U16_BE.unpack_from(sub, 2)[0]
            if need(4 + n + 2, "PS3.7 D.3.3.7.1"):
                primary = bytes(sub[4: 4 + n])
                m = U16_BE.unpack_from(sub, 4 + n)[0]
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
            n = U16_BE.unpack_from(sub, 0)[0]
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
        n: int = U16_BE.unpack_from(sub, pos)[0]
        if pos + 2 + n > end:
            return None
        out.append((pos + 2, sub[pos + 2: pos + 2 + n]))
        return pos + 2 + n

    pos: int | None = field(0)
    pos = field(pos) if pos is not None else None
    if pos is None or pos + 2 > end or pos + 2 + U16_BE.unpack_from(sub, pos)[0] != end:
        return None
    pos += 2
    while pos is not None and pos < end:
        pos = field(pos)
    return out if pos == end else None


def check_item_structure(ctx: Ctx, items: list[Item], is_rq: bool, section: str) -> None:
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
