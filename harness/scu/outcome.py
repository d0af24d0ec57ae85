"""What came back from the SCP after one scripted step, classified.

An :class:`Outcome` is one of: ``accepted``, ``rejected`` (with result, source, reason),
``abort`` (source, reason), ``close`` (TCP closed with no PDU), ``hang`` (nothing within the
step's timeout), ``response`` (a DIMSE response message), ``release`` (A-RELEASE-RP),
``sent`` (nothing was awaited), ``unexpected`` (some other PDU), ``skipped`` (the step does
not apply to this target) or ``error`` (the harness could not do the step). Expectations
in the engine match against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.net.requestor import DimseMessage, PeerEnded
from harness.wire.constants import ERROR_COMMENT, STATUS
from harness.wire.findings import Finding
from harness.wire.pdu import Abort, AssociateRJ, pdu_name
from harness.wire.status import classify, status_label


@dataclass(slots=True)
class Outcome:
    kind: str
    detail: str = ""
    elapsed: float = 0.0
    result: int | None = None  # RJ result
    source: int | None = None  # RJ/abort source
    reason: int | None = None  # RJ/abort reason
    message: DimseMessage | None = None
    responses: list[DimseMessage] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int | None:
        if self.message is None:
            return None
        value = self.message.command.elements.get(STATUS)
        return value if isinstance(value, int) else None

    @property
    def category(self) -> str | None:
        status = self.status
        return None if status is None else str(classify(status))

    def describe(self) -> str:
        if self.kind == "rejected":
            return f"A-ASSOCIATE-RJ ({self.result}, {self.source}, {self.reason})" + (
                f": {self.detail}" if self.detail else "")
        if self.kind == "abort":
            return f"A-ABORT (source {self.source}, reason {self.reason})" + (
                f": {self.detail}" if self.detail else "")
        if self.kind == "response" and self.message is not None:
            status = self.status
            label = status_label(status) if status is not None else "no Status"
            name = self.message.command.command_name
            comment = self.message.command.elements.get(ERROR_COMMENT)
            more = f" ({comment})" if comment else ""
            return f"{name} status {label}{more}"
        if self.kind == "hang":
            return f"no answer ({self.detail})" if self.detail else "no answer"
        if self.kind == "close":
            return "TCP connection closed without a PDU"
        return self.kind + (f": {self.detail}" if self.detail else "")


def from_peer_ended(ended: PeerEnded, elapsed: float = 0.0) -> Outcome:
    if ended.kind == "abort" and isinstance(ended.pdu, Abort):
        return Outcome("abort", ended.pdu.describe(), elapsed, source=ended.pdu.source,
                       reason=ended.pdu.reason)
    if ended.kind == "closed":
        return Outcome("close", ended.detail, elapsed)
    if ended.kind == "timeout":
        return Outcome("hang", ended.detail, elapsed)
    if ended.kind == "release-rp":
        return Outcome("release", "A-RELEASE-RP", elapsed)
    if ended.kind == "release-rq":
        return Outcome("unexpected", "A-RELEASE-RQ from the SCP", elapsed)
    if isinstance(ended.pdu, AssociateRJ):
        return Outcome("rejected", ended.pdu.describe(), elapsed, result=ended.pdu.result,
                       source=ended.pdu.source, reason=ended.pdu.reason)
    name = pdu_name(ended.pdu.pdu_type) if ended.pdu is not None else ended.kind
    return Outcome("unexpected", f"{name} {ended.detail}".strip(), elapsed)
