"""The event trace of an association: every PDU sent and received, as plain data.

Reports render it; scenarios assert on it. Entries carry monotonic time relative to the
trace's start, the association number, the direction, the PDU type, its length, a one-line
summary and the findings of the validating decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harness.wire.findings import Finding


@dataclass(slots=True)
class TraceEntry:
    t: float
    assoc: int
    dir: str  # "sent" | "recv" | "event"
    type: str
    length: int
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 6),
            "assoc": self.assoc,
            "dir": self.dir,
            "type": self.type,
            "length": self.length,
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
        }


class Trace:
    """An append-only list of :class:`TraceEntry`, shared by the associations of a scenario."""

    __slots__ = ("entries", "limit", "start")

    def __init__(self, limit: int = 5000) -> None:
        self.start = time.monotonic()
        self.entries: list[TraceEntry] = []
        self.limit = limit  # long stores produce thousands of P-DATA-TF: keep the trace bounded

    def record(self, assoc: int, direction: str, kind: str, length: int, summary: str = "",
               findings: list[Finding] | None = None) -> None:
        if len(self.entries) >= self.limit and not findings:
            return
        self.entries.append(TraceEntry(time.monotonic() - self.start, assoc, direction, kind,
                                       length, summary, list(findings or [])))

    def event(self, assoc: int, kind: str, summary: str = "") -> None:
        self.record(assoc, "event", kind, 0, summary)

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    def findings(self) -> list[Finding]:
        return [f for e in self.entries for f in e.findings]
