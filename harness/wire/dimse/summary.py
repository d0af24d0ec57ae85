"""One line per DIMSE command set for logs and reports, e.g.
``C-STORE-RQ id=5 CT Image Storage 1.2.3... prio=MEDIUM``."""

from __future__ import annotations

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    ERROR_COMMENT,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    PRIORITIES,
    PRIORITY,
    STATUS,
)
from harness.wire.dimse.messages import DecodedCommand
from harness.wire.status import classify
from harness.wire.uid import uid_name


def _short(uid: str, keep: int = 24) -> str:
    return uid if len(uid) <= keep else uid[:keep] + "..."


def summarize(decoded: DecodedCommand) -> str:
    """One line, e.g. ``C-STORE-RQ id=5 CT Image Storage 1.2.3... prio=MEDIUM``."""
    el = decoded.elements
    parts = [decoded.command_name]
    mid, to = el.get(MESSAGE_ID), el.get(MESSAGE_ID_BEING_RESPONDED_TO)
    if isinstance(to, int):
        parts.append(f"to={to}")
    if isinstance(mid, int):
        parts.append(f"id={mid}")
    cuid = el.get(AFFECTED_SOP_CLASS_UID)
    if isinstance(cuid, str) and cuid:
        parts.append(uid_name(cuid))
    iuid = el.get(AFFECTED_SOP_INSTANCE_UID)
    if isinstance(iuid, str) and iuid:
        parts.append(_short(iuid))
    prio = el.get(PRIORITY)
    if isinstance(prio, int):
        parts.append(f"prio={PRIORITIES.get(prio, f'0x{prio:04X}')}")
    status = el.get(STATUS)
    if isinstance(status, int):
        parts.append(f"status=0x{status:04X} {classify(status).value}")
    comment = el.get(ERROR_COMMENT)
    if isinstance(comment, str) and comment:
        parts.append(f"comment={_short(comment, 40)!r}")
    if decoded.explicit_vr:
        parts.append("(explicit VR)")
    if decoded.findings:
        errors = sum(1 for f in decoded.findings if f.severity == "error")
        parts.append(f"[{len(decoded.findings)} findings, {errors} errors]")
    return " ".join(parts)
