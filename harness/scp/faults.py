"""Simulated misbehaviour of the reference SCP: the faults of a profile that make it act.

Each fault named in ``harness/scp/profile.py`` exists so that a scenario is proven able to
fail (tests/_fault_map.py). This module decides when one applies and performs it: wrong
statuses and fields in C-STORE and C-ECHO responses, responses dropped, doubled, delayed,
sent on another context or in PDUs over the peer's maximum, aborts and closes at chosen
moments, release refused or answered early, stored files lost, altered, moved or kept, and
the acceptor's switches for framing and timer faults. ``server.py`` keeps the conformant
serving path and calls in here at each of those points; most calls are skipped when the
profile names no fault at all, so the common path costs nothing more.

Where a fault only loosens or tightens one check of a request (``accept_truncated``,
``accept_wrong_context``, ``silent_on_bad_command``, ``no_duplicate_check``,
``strict_uid_length``, ...) it stays a condition of that check in ``server.py``, next to the
rule it bends. Negotiation faults live in ``negotiation.py``, TLS faults in ``tls_faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.scp.profile import Profile
from harness.scp.service import (
    CStoreRequest,
    CStoreResponse,
    PresentationContext,
    error_comment,
    generic_response,
)
from harness.scp.storage import safe_name
from harness.wire.constants import (
    ERROR_COMMENT,
    AbortReason,
    CommandField,
    StoreStatus,
)
from harness.wire.dimse import CStoreRSP, encode_command
from harness.wire.status import StatusCategory, classify, describe

if TYPE_CHECKING:
    from harness.net.acceptor import AcceptorAssociation
    from harness.scp.server import SCPAssociation

Status = StoreStatus


# --- the acceptor --------------------------------------------------------------------------


def acceptor_switches(p: Profile) -> dict[str, Any]:
    """The :class:`~harness.net.acceptor.AcceptorConfig` fields a profile's faults set."""
    return {"artim_timeout": 86400.0 if p.has("no_artim") else p.artim_timeout,
            "enforce_max_pdu": not p.has("accept_oversized_pdu"),
            "abort_on_bad_pdu": not p.has("hang_on_bad_pdu"),
            "lenient_framing": p.has("lenient_framing"),
            "accept_unaccepted_context": p.has("accept_unaccepted_context"),
            "close_on_eof": not p.has("ignore_fin"),
            "count_idle_connections": p.has("count_idle_connections")}


# --- commands and data sets ----------------------------------------------------------------


def echo_status(p: Profile) -> int:
    """bad_echo_status: C-ECHO answered 0x0211 instead of Success."""
    return Status.UNRECOGNIZED_OPERATION if p.has("bad_echo_status") else Status.SUCCESS


def answer_cancel(assoc: SCPAssociation, context_id: int, msg_id: int) -> None:
    """answer_cancel: a C-CANCEL-RQ answered with a response (PS3.7 9.3.2.3: it has none)."""
    if assoc.profile.has("answer_cancel"):
        assoc.send(context_id, generic_response(CommandField.C_STORE_RSP, msg_id,
                                                Status.CANCEL))


def take_store_command(assoc: SCPAssociation, req: CStoreRequest,
                       context: PresentationContext, has_data: bool) -> bool:
    """abort_after_command, success_before_data, once a C-STORE-RQ's command is read: True
    when a fault took the request over."""
    p = assoc.profile
    if p.has("abort_after_command"):
        assert assoc.net is not None
        assoc.net.abort(how="fault abort_after_command")
        return True
    if p.has("success_before_data") and has_data:
        assoc.enqueue(lambda: assoc.respond(req, context, status=Status.SUCCESS))
        assoc.expect_data(req, context)  # data still arrives; it is dropped
        req.precheck = (Status.SUCCESS, None)
        return True
    return False


def abort_in_data(p: Profile, net: AcceptorAssociation, fragments: int, size: int,
                  last: bool) -> bool:
    """reject_empty_pdv, abort_during_data, on a data set fragment: True when aborted."""
    if last and not size and p.has("reject_empty_pdv"):
        net.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                  how="fault reject_empty_pdv")
        return True
    if fragments == 1 and not last and p.has("abort_during_data"):
        net.abort(how="fault abort_during_data")
        return True
    return False


def answered_before_data(assoc: SCPAssociation, req: CStoreRequest) -> bool:
    """success_before_data, once the data set is complete: it was answered already, so it
    is dropped (True)."""
    if assoc.profile.has("success_before_data"):
        assoc.outstanding.discard(req.MessageID)
        return True
    return False


def end_partial(p: Profile, req: CStoreRequest) -> None:
    """A store cut off by the association's end: its file is removed, or committed as it is
    (keep_partial)."""
    assert req.file is not None
    if p.has("keep_partial"):
        req.file.commit(req.AffectedSOPInstanceUID)
    else:
        req.file.discard()


# --- release -------------------------------------------------------------------------------


def release_answer(assoc: SCPAssociation) -> bool | None:
    """ignore_release (never answer: False), release_drops_responses (answer now, dropping
    unanswered stores: True); None when no fault applies."""
    p = assoc.profile
    if p.has("ignore_release"):
        return False
    if p.has("release_drops_responses"):
        assoc.drop_queued()
        return True
    return None


# --- responses -----------------------------------------------------------------------------


async def after_delay(delay: float, respond: Callable[[], None]) -> None:
    """delay_before_response: the response goes out ``delay`` seconds late."""
    await asyncio.sleep(delay)
    respond()


def instead_of_response(assoc: SCPAssociation, net: AcceptorAssociation,
                        req: CStoreRequest) -> bool:
    """abort_before_response, close_on_store, no_response, when a store is to be answered:
    True when a fault replaced the response."""
    p = assoc.profile
    if p.has("abort_before_response"):
        net.abort(how="fault abort_before_response")
        return True
    if p.has("close_on_store"):
        net.conn.close()
        return True
    if p.has("no_response"):
        if req.file is not None:
            req.file.discard()
        return True
    return False


def cancel_status(assoc: SCPAssociation, req: CStoreRequest) -> None:
    """cancel_status: a store followed by a C-CANCEL-RQ is answered 0xFE00 Cancel."""
    if assoc.profile.has("cancel_status") and assoc.service.is_cancelled(req.MessageID):
        req.precheck = (Status.CANCEL, None)


def keep_copy(p: Profile, storage_dir: Path, req: CStoreRequest) -> Path | None:
    """keep_after_failure: a copy of the received file, kept whatever the status (removed by
    :func:`drop_copy_if_stored` when the store succeeds)."""
    if not p.has("keep_after_failure") or req.file is None:
        return None
    req.file.close()
    target = storage_dir / ("kept-" + safe_name(req.AffectedSOPInstanceUID or "none"))
    try:
        shutil.copyfile(req.file.path, target)
    except OSError:
        return None
    return target


def drop_copy_if_stored(kept: Path | None, rsp: CStoreResponse | None) -> None:
    if kept is not None and rsp is not None and rsp.Status in (0x0000, None):
        kept.unlink(missing_ok=True)  # stored normally: the copy is not needed


def send_store_response(assoc: SCPAssociation, msg: CStoreRSP, context_id: int) -> None:
    """A C-STORE-RSP changed by the profile's faults, then sent (twice: double_response)."""
    p = assoc.profile
    misused = misused_status(p, msg.status)
    if misused != msg.status:
        # Only the meaning is wrong: fields stay those PS3.7 Annex C relates to the code.
        msg.status = misused
        if ERROR_COMMENT not in describe(misused).related_fields:
            msg.error_comment = None
    if p.has("wrong_message_id"):
        msg.message_id_being_responded_to = (msg.message_id_being_responded_to + 1) & 0xFFFF
    if p.has("wrong_sop_instance") and msg.affected_sop_instance_uid:
        msg.affected_sop_instance_uid = msg.affected_sop_instance_uid + ".9"
    if msg.status == 0x0000 and p.has("illegal_status"):
        msg.status = 0xFFFF
    if msg.status == 0x0000 and p.has("pending_status"):
        msg.status = 0xFF00
    if p.has("error_comment_leak") and msg.status:
        msg.error_comment = error_comment(f"failed writing {assoc.scp.storage_dir}")
    if p.has("response_other_context") and assoc.net is not None:
        others = [c for c in assoc.net.contexts if c != context_id]
        context_id = others[0] if others else context_id
    data = encode_command(msg)
    assoc.send(context_id, data)
    if p.has("double_response"):
        assoc.send(context_id, data)


def misused_status(p: Profile, status: int) -> int:
    """Faults misuse_*: a Failure (or Success) reported with a code whose meaning does not
    fit (what STATUS_SEMANTICS catches)."""
    if status == Status.CANNOT_DECODE and p.has("misuse_0210"):
        return 0x0210
    if status == 0x0000 and p.has("warning_without_coercion"):
        return 0xB000
    if classify(status) == StatusCategory.FAILURE:
        for code in (0x0211, 0x0122, 0x0117):
            if p.has(f"misuse_{code:04x}") and status != code:
                return code
    return status


def send_whole(p: Profile, net: AcceptorAssociation, context_id: int, command: bytes) -> bool:
    """ignore_peer_max_pdu: a message in one PDU whatever the peer's Maximum Length (True
    when sent so)."""
    if not p.has("ignore_peer_max_pdu"):
        return False
    from harness.wire.pdu import PDV, PDataTF

    net.conn.send_pdu(PDataTF([PDV(context_id, 0x03, command)]))
    return True


# --- what is stored ------------------------------------------------------------------------


def rule_status(p: Profile, count: int, req: CStoreRequest) -> tuple[int, str | None] | None:
    """The status a profile's ``status_rules`` impose on the ``count``-th store, if any."""
    if not p.status_rules:
        return None

    def read_attr(keyword: str) -> Any:
        if req.file is None:
            return None
        from pydicom import dcmread

        req.file.close()
        with contextlib.suppress(Exception):
            return dcmread(req.file.path, force=True, stop_before_pixels=True).get(keyword)
        return None

    for rule in p.status_rules:
        if rule.matches(req.AffectedSOPClassUID, count, read_attr):
            return (rule.status, rule.error_comment)
    return None


def after_commit(p: Profile, storage_dir: Path, count: int, req: CStoreRequest) -> None:
    """Storage faults (lose_every_nth, alter_stored, unsafe_paths), applied after the file got
    its name and before the response goes out (so a harness reading the storage directory
    on the response sees them)."""
    assert req.file is not None
    path = req.file.final_path
    if path is None:
        return
    if p.lose_every and p.has("lose_every_nth") and count % p.lose_every == 0:
        path.unlink(missing_ok=True)
        req.file.final_path = None
    elif p.has("alter_stored"):
        _alter(path)
    elif p.has("unsafe_paths") and any(c in req.AffectedSOPInstanceUID for c in "/\\"):
        # Emulates a path traversal one level up (kept next to the storage directory
        # rather than at the literal path, so the harness's own tests stay contained).
        tail = req.AffectedSOPInstanceUID.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        moved = storage_dir.parent / tail.replace("\x00", "")
        path.replace(moved)
        req.file.final_path = moved


def _alter(path: Path) -> None:
    from pydicom import dcmread

    with contextlib.suppress(Exception):
        ds = dcmread(path)
        ds.PatientName = "ALTERED^BY^FAULT"
        ds.save_as(path)
