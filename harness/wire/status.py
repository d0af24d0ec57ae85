"""DIMSE status codes: the C-STORE table and the general statuses of PS3.7 Annex C, as data.

Three questions are answered here, all from the tables below and never from the high nibble
alone (PS3.7 Annex C; 0x0107 and 0x0116 are warnings although other 01xx codes are failures):

- :func:`classify` - which status class a code belongs to (Success, Warning, ...);
- :func:`c_store_legality` - whether a code may appear in a C-STORE-RSP: ``"listed"`` (in
  PS3.7 9.1.1.1.9 / PS3.4 Table B.2-1), ``"not-listed"`` (a valid Annex C code that C-STORE does
  not use: a SHOULD finding) or ``"illegal"`` (Cancel, Pending, or outside the Annex C classes:
  a MUST finding);
- :func:`describe` - the meaning, related fields and section for any 16-bit code.

Annex C sub-section numbers (C.5.n) follow the current edition and may shift between editions,
so every row carries the status name as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Legality = Literal["listed", "not-listed", "illegal"]


class StatusCategory(StrEnum):
    """Status class of PS3.7 Annex C; values equal pynetdicom's category strings."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"
    ILLEGAL = "Illegal"  # outside every Annex C class: no conformant peer may send it


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """One row of a status table: a code or an inclusive range ``lo``..``hi``."""

    lo: int
    hi: int
    category: StatusCategory
    meaning: str
    related_fields: tuple[int, ...]  # command element numbers of group 0000 (e.g. 0x0902)
    section: str
    c_store: Legality

    @property
    def is_range(self) -> bool:
        return self.lo != self.hi

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.lo <= code <= self.hi

    def label(self) -> str:
        """``"0xB000"`` or ``"0xA700-0xA7FF"``."""
        return f"0x{self.lo:04X}" if self.lo == self.hi else f"0x{self.lo:04X}-0x{self.hi:04X}"


_S, _W, _F = StatusCategory.SUCCESS, StatusCategory.WARNING, StatusCategory.FAILURE
_C, _P, _I = StatusCategory.CANCEL, StatusCategory.PENDING, StatusCategory.ILLEGAL

_OFFENDING, _COMMENT, _ERROR_ID = 0x0901, 0x0902, 0x0903
_CLASS_UID, _INSTANCE_UID = 0x0002, 0x1000
_EVENT_TYPE, _ATTR_LIST, _ACTION_TYPE = 0x1002, 0x1005, 0x1008


def _row(lo: int, hi: int, cat: StatusCategory, meaning: str, related: tuple[int, ...],
         section: str, c_store: Legality) -> StatusInfo:
    return StatusInfo(lo, hi, cat, meaning, related, section, c_store)


# C-STORE statuses: PS3.7 9.1.1.1.9 and PS3.4 Table B.2-1. Order matters only for display.
C_STORE_TABLE: tuple[StatusInfo, ...] = (
    _row(0x0000, 0x0000, _S, "Success", (), "PS3.4 B.2.3; PS3.7 C.1", "listed"),
    _row(0xB000, 0xB000, _W, "Warning: Coercion of Data Elements", (_OFFENDING, _COMMENT),
         "PS3.4 Table B.2-1; PS3.7 C.4.1", "listed"),
    _row(0xB007, 0xB007, _W, "Warning: Data Set does not match SOP Class",
         (_OFFENDING, _COMMENT), "PS3.4 Table B.2-1; PS3.7 C.4.1", "listed"),
    _row(0xB006, 0xB006, _W, "Warning: Elements Discarded", (_OFFENDING, _COMMENT),
         "PS3.4 Table B.2-1; PS3.7 C.4.1", "listed"),
    _row(0xA700, 0xA7FF, _F, "Refused: Out of Resources", (_COMMENT,),
         "PS3.4 Table B.2-1; PS3.7 C.5.5", "listed"),
    _row(0xA900, 0xA9FF, _F, "Error: Data Set does not match SOP Class", (_OFFENDING, _COMMENT),
         "PS3.4 Table B.2-1; PS3.7 C.5.2", "listed"),
    _row(0xC000, 0xCFFF, _F, "Error: Cannot understand", (_OFFENDING, _COMMENT),
         "PS3.4 Table B.2-1; PS3.7 C.5.1", "listed"),
    _row(0x0122, 0x0122, _F, "Refused: SOP Class not supported", (_COMMENT,),
         "PS3.7 9.1.1.1.9; PS3.7 C.5.6", "listed"),
    _row(0x0124, 0x0124, _F, "Refused: Not authorized", (_COMMENT,),
         "PS3.7 9.1.1.1.9; PS3.7 C.5.25", "listed"),
    _row(0x0117, 0x0117, _F, "Invalid SOP Instance", (_INSTANCE_UID,),
         "PS3.7 9.1.1.1.9; PS3.7 C.5.12", "listed"),
    _row(0x0210, 0x0210, _F, "Duplicate invocation", (), "PS3.7 9.1.1.1.9; PS3.7 C.5.9",
         "listed"),
    _row(0x0211, 0x0211, _F, "Unrecognized operation", (), "PS3.7 9.1.1.1.9; PS3.7 C.5.23",
         "listed"),
    _row(0x0212, 0x0212, _F, "Mistyped argument", (), "PS3.7 9.1.1.1.9; PS3.7 C.5.15",
         "listed"),
)

# General statuses of PS3.7 Annex C that C-STORE does not list (meanings fixed by the standard).
GENERAL_TABLE: tuple[StatusInfo, ...] = (
    _row(0x0001, 0x0001, _W, "Warning (general; not used by C-STORE)", (_OFFENDING, _COMMENT),
         "PS3.7 C.4.1", "not-listed"),
    _row(0x0105, 0x0105, _F, "No such attribute", (_CLASS_UID, _ATTR_LIST), "PS3.7 C.5.17",
         "not-listed"),
    _row(0x0106, 0x0106, _F, "Invalid attribute value", (_CLASS_UID, _INSTANCE_UID),
         "PS3.7 C.5.11", "not-listed"),
    _row(0x0107, 0x0107, _W, "Attribute list error", (_CLASS_UID, _INSTANCE_UID, _ATTR_LIST),
         "PS3.7 C.4.2", "not-listed"),
    _row(0x0110, 0x0110, _F, "Processing failure",
         (_CLASS_UID, _INSTANCE_UID, _COMMENT, _ERROR_ID, _EVENT_TYPE, _ACTION_TYPE),
         "PS3.7 C.5.21", "not-listed"),
    _row(0x0111, 0x0111, _F, "Duplicate SOP Instance", (_INSTANCE_UID,), "PS3.7 C.5.8",
         "not-listed"),
    _row(0x0112, 0x0112, _F, "No such SOP Instance", (_INSTANCE_UID,), "PS3.7 C.5.19",
         "not-listed"),
    _row(0x0113, 0x0113, _F, "No such event type", (_CLASS_UID, _EVENT_TYPE), "PS3.7 C.5.18",
         "not-listed"),
    _row(0x0114, 0x0114, _F, "No such argument", (_CLASS_UID, _EVENT_TYPE, _ACTION_TYPE),
         "PS3.7 C.5.16", "not-listed"),
    _row(0x0115, 0x0115, _F, "Invalid argument value",
         (_CLASS_UID, _INSTANCE_UID, _EVENT_TYPE, _ACTION_TYPE), "PS3.7 C.5.10", "not-listed"),
    _row(0x0116, 0x0116, _W, "Attribute value out of range", (), "PS3.7 C.4.3", "not-listed"),
    _row(0x0118, 0x0118, _F, "No such SOP Class", (_CLASS_UID,), "PS3.7 C.5.20", "not-listed"),
    _row(0x0119, 0x0119, _F, "Class-Instance conflict", (_CLASS_UID, _INSTANCE_UID),
         "PS3.7 C.5.7", "not-listed"),
    _row(0x0120, 0x0120, _F, "Missing attribute", (_CLASS_UID, _INSTANCE_UID), "PS3.7 C.5.13",
         "not-listed"),
    _row(0x0121, 0x0121, _F, "Missing attribute value", (_CLASS_UID, _INSTANCE_UID, _ATTR_LIST),
         "PS3.7 C.5.14", "not-listed"),
    _row(0x0123, 0x0123, _F, "No such action", (_CLASS_UID, _ACTION_TYPE), "PS3.7 C.5.24",
         "not-listed"),
    _row(0x0213, 0x0213, _F, "Resource limitation", (), "PS3.7 C.5.22", "not-listed"),
    _row(0xA801, 0xA801, _F, "Refused: Move Destination unknown (C-MOVE only)", (_COMMENT,),
         "PS3.7 C.5.4", "not-listed"),
    _row(0xFE00, 0xFE00, _C, "Cancel (C-FIND/C-GET/C-MOVE only; C-STORE cannot be cancelled)",
         (), "PS3.7 C.3; PS3.7 9.1.2.1.6", "illegal"),
    _row(0xFF00, 0xFF00, _P, "Pending (C-FIND/C-GET/C-MOVE only)", (), "PS3.7 C.2", "illegal"),
    _row(0xFF01, 0xFF01, _P, "Pending, with warning (C-FIND only)", (), "PS3.7 C.2", "illegal"),
)

# Codes pynetdicom assigns inside the Cxxx "Cannot understand" range (standard-legal).
PYNETDICOM_STATUSES: dict[int, str] = {
    0xC001: "Cannot understand (pynetdicom: handler returned a status Dataset without Status)",
    0xC002: "Cannot understand (pynetdicom: handler returned neither a Dataset nor an int)",
    0xC210: "Cannot understand (pynetdicom: failed to decode the data set from the peer)",
    0xC211: "Cannot understand (pynetdicom: unhandled exception in the EVT_C_STORE handler)",
}

# Fallbacks for codes in a valid class but in no table: service-class specific meanings.
_CLASS_FALLBACK: tuple[StatusInfo, ...] = (
    _row(0xA000, 0xAFFF, _F, "Failure (service-class specific Axxx)", (_OFFENDING, _COMMENT),
         "PS3.7 C.5.3", "not-listed"),
    _row(0xB000, 0xBFFF, _W, "Warning (service-class specific Bxxx)", (_OFFENDING, _COMMENT),
         "PS3.7 C.4.1", "not-listed"),
    _row(0x0100, 0x02FF, _F, "Failure (01xx/02xx code not defined by PS3.7 Annex C)", (),
         "PS3.7 Annex C", "not-listed"),
)


def classify(code: int) -> StatusCategory:
    """Status class of ``code`` by the Annex C convention; ``ILLEGAL`` outside every class.

    ``bool`` and values outside 0..0xFFFF are ILLEGAL: US cannot carry them.
    """
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        return _I
    if code == 0x0000:
        return _S
    if code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF:
        return _W
    if 0xA000 <= code <= 0xAFFF or 0xC000 <= code <= 0xCFFF or 0x0100 <= code <= 0x02FF:
        return _F
    if code == 0xFE00:
        return _C
    if code in (0xFF00, 0xFF01):
        return _P
    return _I


def is_c_store_status(code: int) -> bool:
    """True if ``code`` is listed for C-STORE (PS3.7 9.1.1.1.9, PS3.4 Table B.2-1)."""
    if isinstance(code, bool) or not isinstance(code, int):
        return False
    return any(row.lo <= code <= row.hi for row in C_STORE_TABLE)


def c_store_legality(code: int) -> Legality:
    """``"listed"``, ``"not-listed"`` (SHOULD finding) or ``"illegal"`` (MUST finding)."""
    if is_c_store_status(code):
        return "listed"
    if classify(code) in (_S, _W, _F):
        return "not-listed"
    return "illegal"


def _find(code: int, table: tuple[StatusInfo, ...]) -> StatusInfo | None:
    for row in table:
        if row.lo <= code <= row.hi:
            return row
    return None


def describe(code: int) -> StatusInfo:
    """Meaning of any code: a C-STORE row, a general Annex C row, a class fallback, or illegal.

    Codes inside a range are reported with ``lo == hi == code`` so the caller sees the code.
    """
    category = classify(code)
    if category is _I:
        shown = code if isinstance(code, int) else -1
        return StatusInfo(shown, shown, _I, "not a valid status code (outside the Annex C "
                          "classes)", (), "PS3.7 Annex C", "illegal")
    row = _find(code, C_STORE_TABLE) or _find(code, GENERAL_TABLE) or _find(code, _CLASS_FALLBACK)
    if row is None:  # unreachable: every classified code falls in a fallback range
        return StatusInfo(code, code, category, category.value, (), "PS3.7 Annex C",
                          c_store_legality(code))
    meaning = PYNETDICOM_STATUSES.get(code, row.meaning)
    return StatusInfo(code, code, row.category, meaning, row.related_fields, row.section,
                      row.c_store)


def status_label(code: int) -> str:
    """Short text for reports: ``"0xB000 Warning: Coercion of Data Elements"``."""
    info = describe(code)
    shown = f"0x{code:04X}" if isinstance(code, int) and 0 <= code <= 0xFFFF else repr(code)
    if info.meaning.startswith(info.category.value):
        return f"{shown} {info.meaning}"
    return f"{shown} {info.category.value}: {info.meaning}"


class StatusTable(Mapping[int, tuple[StatusCategory, str]]):
    """Read-only mapping code -> (category, meaning) over explicit codes and ranges.

    Usable wherever pynetdicom expects a service class's ``statuses``: ``code in table`` is a
    range test (no 4,000-entry dict), ``table[code][0]`` is the category string.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: tuple[StatusInfo, ...]) -> None:
        self._rows = rows

    def __getitem__(self, code: int) -> tuple[StatusCategory, str]:
        if not isinstance(code, bool) and isinstance(code, int):
            row = _find(code, self._rows)
            if row is not None:
                return row.category, PYNETDICOM_STATUSES.get(code, row.meaning)
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        if isinstance(code, bool) or not isinstance(code, int):
            return False
        return _find(code, self._rows) is not None

    def __iter__(self) -> Iterator[int]:
        seen: set[int] = set()
        for row in self._rows:
            for code in range(row.lo, row.hi + 1):
                if code not in seen:
                    seen.add(code)
                    yield code

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def rows(self) -> tuple[StatusInfo, ...]:
        return self._rows


C_STORE_STATUSES = StatusTable(C_STORE_TABLE)
GENERAL_STATUSES = StatusTable(tuple(r for r in C_STORE_TABLE if r.hi - r.lo == 0
                                     and r.lo < 0x0300) + GENERAL_TABLE)
