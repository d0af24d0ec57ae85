"""Variable items and sub-items of A-ASSOCIATE PDUs (PS3.8 9.3.2-9.3.3, PS3.7 Annex D).

Every field is settable, including to illegal values: ``length`` overrides the computed item
length and ``reserved`` the reserved byte, so scenarios can build any malformed item. Unknown
items are kept as :class:`RawItem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.wire.constants import (
    APPLICATION_CONTEXT_NAME,
    U16_BE,
    U16_PAIR_BE,
    U32_BE,
    ItemType,
)
from harness.wire.constants import ITEM_HEADER as _ITEM_HDR


def _item(item_type: int, payload: bytes, reserved: int, length: int | None) -> bytes:
    size = len(payload) if length is None else length
    return _ITEM_HDR.pack(item_type & 0xFF, reserved & 0xFF, size & 0xFFFF) + payload


def _uid_bytes(uid: str | bytes) -> bytes:
    # PS3.8 9.3.2.1: UIDs in items are not padded; bytes pass through for fault injection.
    return uid if isinstance(uid, bytes) else uid.encode("ascii", errors="replace")


@dataclass(slots=True)
class RawItem:
    """Any item or sub-item given as type and payload bytes (unknown or deliberately broken)."""

    item_type: int
    data: bytes = b""
    reserved: int = 0
    length: int | None = None

    def encode(self) -> bytes:
        return _item(self.item_type, self.data, self.reserved, self.length)


@dataclass(slots=True)
class ApplicationContextItem:
    name: str | bytes = APPLICATION_CONTEXT_NAME
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.APPLICATION_CONTEXT

    def encode(self) -> bytes:
        return _item(self.item_type, _uid_bytes(self.name), self.reserved, self.length)


@dataclass(slots=True)
class SyntaxSubItem:
    """Abstract syntax (30H) or transfer syntax (40H) sub-item."""

    item_type: int
    uid: str | bytes
    reserved: int = 0
    length: int | None = None

    def encode(self) -> bytes:
        return _item(self.item_type, _uid_bytes(self.uid), self.reserved, self.length)


@dataclass(slots=True)
class PresentationContextRQ:
    """Presentation context item of an A-ASSOCIATE-RQ (20H)."""

    context_id: int
    abstract_syntax: str | bytes
    transfer_syntaxes: list[str | bytes] = field(default_factory=list)
    reserved: tuple[int, int, int, int] = (0, 0, 0, 0)
    length: int | None = None
    extra_sub_items: list[RawItem] = field(default_factory=list)
    item_type: int = ItemType.PRESENTATION_CONTEXT_RQ

    def encode(self) -> bytes:
        parts = [
            bytes((self.context_id & 0xFF, self.reserved[1] & 0xFF, self.reserved[2] & 0xFF,
                   self.reserved[3] & 0xFF)),
            SyntaxSubItem(ItemType.ABSTRACT_SYNTAX, self.abstract_syntax).encode(),
        ]
        parts += [SyntaxSubItem(ItemType.TRANSFER_SYNTAX, ts).encode()
                  for ts in self.transfer_syntaxes]
        parts += [raw.encode() for raw in self.extra_sub_items]
        return _item(self.item_type, b"".join(parts), self.reserved[0], self.length)


@dataclass(slots=True)
class PresentationContextAC:
    """Presentation context item of an A-ASSOCIATE-AC (21H) with its result."""

    context_id: int
    result: int
    transfer_syntax: str | bytes | None
    reserved: tuple[int, int, int, int] = (0, 0, 0, 0)
    length: int | None = None
    item_type: int = ItemType.PRESENTATION_CONTEXT_AC

    @property
    def accepted(self) -> bool:
        return self.result == 0

    def encode(self) -> bytes:
        head = bytes((self.context_id & 0xFF, self.reserved[1] & 0xFF, self.result & 0xFF,
                      self.reserved[3] & 0xFF))
        ts = b""
        if self.transfer_syntax is not None:
            ts = SyntaxSubItem(ItemType.TRANSFER_SYNTAX, self.transfer_syntax).encode()
        return _item(self.item_type, head + ts, self.reserved[0], self.length)


@dataclass(slots=True)
class MaximumLength:
    """Maximum Length sub-item (51H), PS3.8 D.1. ``value`` 0 means no maximum."""

    value: int
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.MAXIMUM_LENGTH

    def encode(self) -> bytes:
        return _item(self.item_type, U32_BE.pack(self.value & 0xFFFFFFFF), self.reserved,
                     self.length)


@dataclass(slots=True)
class ImplementationClassUID:
    uid: str | bytes
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.IMPLEMENTATION_CLASS_UID

    def encode(self) -> bytes:
        return _item(self.item_type, _uid_bytes(self.uid), self.reserved, self.length)


@dataclass(slots=True)
class ImplementationVersionName:
    name: str | bytes
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.IMPLEMENTATION_VERSION_NAME

    def encode(self) -> bytes:
        return _item(self.item_type, _uid_bytes(self.name), self.reserved, self.length)


@dataclass(slots=True)
class AsyncOpsWindow:
    """Asynchronous Operations Window sub-item (53H), PS3.7 D.3.3.3. 0 means unlimited."""

    invoked: int
    performed: int
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.ASYNC_OPS_WINDOW

    def encode(self) -> bytes:
        return _item(self.item_type, U16_PAIR_BE.pack(self.invoked & 0xFFFF,
                                                 self.performed & 0xFFFF),
                     self.reserved, self.length)


@dataclass(slots=True)
class RoleSelection:
    """SCP/SCU Role Selection sub-item (54H), PS3.7 D.3.3.4."""

    sop_class_uid: str | bytes
    scu_role: int
    scp_role: int
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.ROLE_SELECTION

    def encode(self) -> bytes:
        uid = _uid_bytes(self.sop_class_uid)
        payload = U16_BE.pack(len(uid)) + uid + bytes((self.scu_role & 0xFF,
                                                            self.scp_role & 0xFF))
        return _item(self.item_type, payload, self.reserved, self.length)


@dataclass(slots=True)
class SOPClassExtended:
    """SOP Class Extended Negotiation sub-item (56H), PS3.7 D.3.3.5."""

    sop_class_uid: str | bytes
    info: bytes = b""
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.SOP_CLASS_EXTENDED

    def encode(self) -> bytes:
        uid = _uid_bytes(self.sop_class_uid)
        return _item(self.item_type, U16_BE.pack(len(uid)) + uid + self.info,
                     self.reserved, self.length)


@dataclass(slots=True)
class SOPClassCommonExtended:
    """SOP Class Common Extended Negotiation sub-item (57H), PS3.7 D.3.3.6."""

    sop_class_uid: str | bytes
    service_class_uid: str | bytes
    related_general_sop_classes: list[str | bytes] = field(default_factory=list)
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.SOP_CLASS_COMMON_EXTENDED

    def encode(self) -> bytes:
        uid = _uid_bytes(self.sop_class_uid)
        svc = _uid_bytes(self.service_class_uid)
        related = b"".join(U16_BE.pack(len(_uid_bytes(r))) + _uid_bytes(r)
                           for r in self.related_general_sop_classes)
        payload = (U16_BE.pack(len(uid)) + uid + U16_BE.pack(len(svc)) + svc
                   + U16_BE.pack(len(related)) + related)
        # The version byte of 57H travels in the reserved header byte (PS3.7 D.3.3.6).
        return _item(self.item_type, payload, self.reserved, self.length)


@dataclass(slots=True)
class UserIdentityRQ:
    """User Identity Negotiation sub-item, RQ form (58H), PS3.7 D.3.3.7.1."""

    identity_type: int
    primary: bytes
    secondary: bytes = b""
    positive_response_requested: int = 0
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.USER_IDENTITY_RQ

    def encode(self) -> bytes:
        payload = (bytes((self.identity_type & 0xFF, self.positive_response_requested & 0xFF))
                   + U16_BE.pack(len(self.primary)) + self.primary
                   + U16_BE.pack(len(self.secondary)) + self.secondary)
        return _item(self.item_type, payload, self.reserved, self.length)


@dataclass(slots=True)
class UserIdentityAC:
    """User Identity Negotiation sub-item, AC form (59H), PS3.7 D.3.3.7.2."""

    server_response: bytes = b""
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.USER_IDENTITY_AC

    def encode(self) -> bytes:
        payload = U16_BE.pack(len(self.server_response)) + self.server_response
        return _item(self.item_type, payload, self.reserved, self.length)


SubItem = (
    MaximumLength | ImplementationClassUID | ImplementationVersionName | AsyncOpsWindow
    | RoleSelection | SOPClassExtended | SOPClassCommonExtended | UserIdentityRQ
    | UserIdentityAC | RawItem
)


@dataclass(slots=True)
class UserInformation:
    """User Information item (50H) holding its sub-items in wire order."""

    sub_items: list[SubItem] = field(default_factory=list)
    reserved: int = 0
    length: int | None = None
    item_type: int = ItemType.USER_INFORMATION

    def encode(self) -> bytes:
        return _item(self.item_type, b"".join(s.encode() for s in self.sub_items),
                     self.reserved, self.length)

    def first(self, kind: type[SubItem]) -> SubItem | None:
        return next((s for s in self.sub_items if isinstance(s, kind)), None)

    @property
    def maximum_length(self) -> int | None:
        item = self.first(MaximumLength)
        return item.value if isinstance(item, MaximumLength) else None

    @property
    def implementation_class_uid(self) -> str | None:
        item = self.first(ImplementationClassUID)
        if isinstance(item, ImplementationClassUID):
            return item.uid if isinstance(item.uid, str) else item.uid.decode("ascii", "replace")
        return None

    @property
    def implementation_version_name(self) -> str | None:
        item = self.first(ImplementationVersionName)
        if isinstance(item, ImplementationVersionName):
            name = item.name
            return name if isinstance(name, str) else name.decode("ascii", "replace")
        return None

    @property
    def async_ops_window(self) -> tuple[int, int] | None:
        item = self.first(AsyncOpsWindow)
        return (item.invoked, item.performed) if isinstance(item, AsyncOpsWindow) else None

    @property
    def role_selections(self) -> list[RoleSelection]:
        return [s for s in self.sub_items if isinstance(s, RoleSelection)]


Item = (
    ApplicationContextItem | PresentationContextRQ | PresentationContextAC | UserInformation
    | RawItem
)
