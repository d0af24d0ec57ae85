"""Findings: one deviation from the standard seen while decoding what a peer sent."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """A single deviation: where it is, which field, what the standard wants, what was there.

    ``offset`` is the byte offset from the start of the decoded unit (the PDU, or the command
    set) or ``None`` when the deviation is not tied to one byte. ``severity`` is ``"error"``
    for a violation of a "shall" and ``"warning"`` for a recommendation or an oddity.
    """

    offset: int | None
    field: str
    expected: str
    found: str
    section: str
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"@{self.offset}" if self.offset is not None else ""
        return (
            f"{self.severity}{where} {self.field}: expected {self.expected}, "
            f"found {self.found} ({self.section})"
        )


class DecodeError(ValueError):
    """Raised by strict helpers when input cannot be decoded at all; carries the findings."""

    def __init__(self, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []
