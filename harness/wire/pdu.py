"""PS3.8 9.3 PDUs as plain objects, and their encoders.

Encoders emit exactly what the object says: the header's reserved byte and length can be
overridden, AE titles can be raw bytes of any size, items can be raw. That is how scenarios
build malformed PDUs. Decoding lives in :mod:`harness.wire.decode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.wire.constants import (
    ABORT_REASONS,
    ABORT_SOURCES,
    APPLICATION_CONTEXT_NAME,
    DEFAULT_CALLED_AE,
    DEFAULT_CALLING_AE,
    MCH_COMMAND,
    MCH_LAST,
    RJ_REASONS,
    RJ_RESULTS,
    U16_PAIR_BE,
    PDUType,
)
from harness.wire.constants import PDU_HEADER as _PDU_HDR
from harness.wire.constants import PDV_HEADER as _PDV_HDR
from harness.wire.items import (
    ApplicationContextItem,
    ImplementationClassUID,
    ImplementationVersionName,
    Item,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RawItem,
    SubItem,
    UserInformation,
)
from harness.wire.uid import decode_ae_title, encode_ae_title

HARNESS_IMPLEMENTATION_CLASS_UID = "2.25.190687191683951191091272491297782189648"
HARNESS_IMPLEMENTATION_VERSION = "DICOMHARNESS01"


def pdu_header(pdu_type: int, length: int, reserved: int = 0) -> bytes:
    return _PDU_HDR.pack(pdu_type & 0xFF, reserved & 0xFF, length & 0xFFFFFFFF)


def _frame(pdu_type: int, body: bytes, reserved: int, length: int | None) -> bytes:
    return pdu_header(pdu_type, len(body) if length is None else length, reserved) + body


@dataclass(slots=True)
class _Associate:
    called_ae: str | bytes = DEFAULT_CALLED_AE
    calling_ae: str | bytes = DEFAULT_CALLING_AE
    items: list[Item] = field(default_factory=list)
    protocol_version: int = 1
    reserved_header: int = 0
    reserved_version: int = 0  # bytes 9-10
    reserved_tail: bytes = bytes(32)  # bytes 43-74
    length: int | None = None

    pdu_type: int = 0

    def encode(self) -> bytes:
        fixed = (U16_PAIR_BE.pack(self.protocol_version & 0xFFFF, self.reserved_version & 0xFFFF)
                 + encode_ae_title(self.called_ae) + encode_ae_title(self.calling_ae)
                 + self.reserved_tail)
        body = fixed + b"".join(item.encode() for item in self.items)
        return _frame(self.pdu_type, body, self.reserved_header, self.length)

    # Convenience views over ``items`` (the wire order stays in ``items``).
    @property
    def called_ae_title(self) -> str:
        raw = self.called_ae
        return decode_ae_title(raw) if isinstance(raw, bytes) else raw.strip()

    @property
    def calling_ae_title(self) -> str:
        raw = self.calling_ae
        return decode_ae_title(raw) if isinstance(raw, bytes) else raw.strip()

    @property
    def application_context(self) -> str | None:
        for item in self.items:
            if isinstance(item, ApplicationContextItem):
                name = item.name
                return name if isinstance(name, str) else name.decode("ascii", "replace")
        return None

    @property
    def user_information(self) -> UserInformation | None:
        return next((i for i in self.items if isinstance(i, UserInformation)), None)

    @property
    def max_pdu_length(self) -> int | None:
        ui = self.user_information
        return ui.maximum_length if ui is not None else None


@dataclass(slots=True)
class AssociateRQ(_Associate):
    pdu_type: int = PDUType.A_ASSOCIATE_RQ

    @property
    def presentation_contexts(self) -> list[PresentationContextRQ]:
        return [i for i in self.items if isinstance(i, PresentationContextRQ)]


@dataclass(slots=True)
class AssociateAC(_Associate):
    pdu_type: int = PDUType.A_ASSOCIATE_AC

    @property
    def presentation_contexts(self) -> list[PresentationContextAC]:
        return [i for i in self.items if isinstance(i, PresentationContextAC)]


@dataclass(slots=True)
class AssociateRJ:
    result: int = 1
    source: int = 1
    reason: int = 1
    reserved_header: int = 0
    reserved_body: int = 0  # byte 7
    reserved_tail: int = 0  # (unused) kept for symmetry with the other 4-byte bodies
    length: int | None = None
    pdu_type: int = PDUType.A_ASSOCIATE_RJ

    def encode(self) -> bytes:
        body = bytes((self.reserved_body & 0xFF, self.result & 0xFF, self.source & 0xFF,
                      self.reason & 0xFF))
        return _frame(self.pdu_type, body, self.reserved_header, self.length)

    def describe(self) -> str:
        result = RJ_RESULTS.get(self.result, f"unknown result {self.result}")
        reason = RJ_REASONS.get(self.source, {}).get(self.reason, f"reason {self.reason}")
        return f"{result}, source {self.source}, {reason}"


@dataclass(slots=True)
class PDV:
    """One presentation data value item: context ID, message control header, fragment."""

    context_id: int
    mch: int
    data: bytes | memoryview = b""
    length: int | None = None  # overrides the item length (4 + ... excluded: covers ID+MCH+data)

    @property
    def is_command(self) -> bool:
        return bool(self.mch & MCH_COMMAND)

    @property
    def is_last(self) -> bool:
        return bool(self.mch & MCH_LAST)

    def header(self) -> bytes:
        size = len(self.data) + 2 if self.length is None else self.length
        return _PDV_HDR.pack(size & 0xFFFFFFFF, self.context_id & 0xFF, self.mch & 0xFF)

    @property
    def item_size(self) -> int:
        return 6 + len(self.data)


@dataclass(slots=True)
class PDataTF:
    pdvs: list[PDV] = field(default_factory=list)
    reserved_header: int = 0
    length: int | None = None
    pdu_type: int = PDUType.P_DATA_TF

    def encode_parts(self) -> list[bytes | memoryview]:
        """Header and payload pieces ready for ``writelines``: fragments are not copied."""
        size = sum(p.item_size for p in self.pdvs) if self.length is None else self.length
        parts: list[bytes | memoryview] = [pdu_header(self.pdu_type, size, self.reserved_header)]
        for pdv in self.pdvs:
            parts.append(pdv.header())
            if len(pdv.data):
                parts.append(pdv.data)
        return parts

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


@dataclass(slots=True)
class _FourByteBody:
    reserved_header: int = 0
    body: bytes = bytes(4)
    length: int | None = None
    pdu_type: int = 0

    def encode(self) -> bytes:
        return _frame(self.pdu_type, self.body, self.reserved_header, self.length)


@dataclass(slots=True)
class ReleaseRQ(_FourByteBody):
    pdu_type: int = PDUType.A_RELEASE_RQ


@dataclass(slots=True)
class ReleaseRP(_FourByteBody):
    pdu_type: int = PDUType.A_RELEASE_RP


@dataclass(slots=True)
class Abort:
    source: int = 0
    reason: int = 0
    reserved_header: int = 0
    reserved_body: tuple[int, int] = (0, 0)
    length: int | None = None
    pdu_type: int = PDUType.A_ABORT

    def encode(self) -> bytes:
        body = bytes((self.reserved_body[0] & 0xFF, self.reserved_body[1] & 0xFF,
                      self.source & 0xFF, self.reason & 0xFF))
        return _frame(self.pdu_type, body, self.reserved_header, self.length)

    def describe(self) -> str:
        source = ABORT_SOURCES.get(self.source, f"source {self.source}")
        reason = ABORT_REASONS.get(self.reason, f"reason {self.reason}")
        return f"{source}, {reason}" if self.source == 2 else f"{source} (reason {self.reason})"


@dataclass(slots=True)
class RawPDU:
    """Any PDU as type plus body bytes: unknown types, or bytes that did not decode."""

    pdu_type: int
    body: bytes = b""
    reserved_header: int = 0
    length: int | None = None

    def encode(self) -> bytes:
        return _frame(self.pdu_type, self.body, self.reserved_header, self.length)


PDU = (
    AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort | RawPDU
)

PDU_NAMES = {
    PDUType.A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    PDUType.A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    PDUType.A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    PDUType.P_DATA_TF: "P-DATA-TF",
    PDUType.A_RELEASE_RQ: "A-RELEASE-RQ",
    PDUType.A_RELEASE_RP: "A-RELEASE-RP",
    PDUType.A_ABORT: "A-ABORT",
}


_KNOWN_TYPES = frozenset(int(t) for t in PDUType)


def pdu_name(pdu_type: int) -> str:
    name = PDU_NAMES.get(PDUType(pdu_type)) if pdu_type in _KNOWN_TYPES else None
    return name or f"PDU-0x{pdu_type:02X}"


def standard_user_information(
    max_pdu: int = 16384,
    implementation_class_uid: str = HARNESS_IMPLEMENTATION_CLASS_UID,
    implementation_version: str | None = HARNESS_IMPLEMENTATION_VERSION,
    extra: list[SubItem] | None = None,
) -> UserInformation:
    subs: list[SubItem] = [MaximumLength(max_pdu), ImplementationClassUID(implementation_class_uid)]
    if implementation_version:
        subs.append(ImplementationVersionName(implementation_version))
    subs += extra or []
    return UserInformation(subs)


def associate_rq(
    called_ae: str | bytes,
    calling_ae: str | bytes,
    contexts: list[PresentationContextRQ],
    *,
    max_pdu: int = 16384,
    extra_user_items: list[SubItem] | None = None,
    application_context: str = APPLICATION_CONTEXT_NAME,
) -> AssociateRQ:
    """A well-formed A-ASSOCIATE-RQ; change its fields afterwards to break it on purpose."""
    return AssociateRQ(
        called_ae=called_ae,
        calling_ae=calling_ae,
        items=[ApplicationContextItem(application_context), *contexts,
               standard_user_information(max_pdu, extra=extra_user_items)],
    )


def associate_ac(
    rq: AssociateRQ,
    results: list[PresentationContextAC],
    *,
    max_pdu: int = 16384,
    extra_user_items: list[SubItem] | None = None,
) -> AssociateAC:
    """An A-ASSOCIATE-AC answering ``rq``: AE titles and reserved bytes echoed (PS3.8 9.3.3)."""
    return AssociateAC(
        called_ae=encode_ae_title(rq.called_ae),
        calling_ae=encode_ae_title(rq.calling_ae),
        reserved_tail=rq.reserved_tail,
        items=[ApplicationContextItem(rq.application_context or APPLICATION_CONTEXT_NAME),
               *results, standard_user_information(max_pdu, extra=extra_user_items)],
    )


__all__ = [
    "PDU",
    "PDV",
    "Abort",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "PDataTF",
    "RawItem",
    "RawPDU",
    "ReleaseRP",
    "ReleaseRQ",
    "associate_ac",
    "associate_rq",
    "pdu_header",
    "pdu_name",
]
