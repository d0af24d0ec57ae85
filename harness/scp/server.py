"""The reference Storage SCP: a server, per-association DIMSE processing, faults.

``StorageSCP`` is the application entity (``ae`` of the service class): it owns the profile,
the storage directory, the store handler and the log of what happened. ``SCPAssociation``
runs on each accepted association: it checks every C-STORE-RQ (conformant defaults of PS3.7
9.1.1 and 9.3.1), streams its data set to disk while checking its structure, and hands the
complete request to :class:`StorageServiceClass` in arrival order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.net.acceptor import AcceptorAssociation, AcceptorConfig, AcceptorServer
from harness.net.connection import describe_exception
from harness.scp.negotiation import negotiate
from harness.scp.profile import Profile
from harness.scp.service import (
    STATUS_CANNOT_DECODE,
    STATUS_OUT_OF_RESOURCES,
    CStoreRequest,
    CStoreResponse,
    PresentationContext,
    StorageServiceClass,
    StoreHandler,
)
from harness.scp.storage import IncomingFile, drop_part, open_part, safe_name
from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    ERROR_COMMENT,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    NO_DATA_SET,
    PRIORITY,
    STATUS,
    AbortReason,
    AbortSource,
    CommandField,
    StoreStatus,
)
from harness.wire.dataset_check import DatasetStructureChecker
from harness.wire.dimse import (
    CEchoRSP,
    CStoreRQ,
    DecodedCommand,
    encode_command,
    encode_elements,
    value_us,
)
from harness.wire.findings import Finding
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, AssociateRQ
from harness.wire.status import StatusCategory, classify, describe
from harness.wire.uid import is_valid_uid

LOG = logging.getLogger("harness.scp")
Status = StoreStatus  # the C-STORE statuses the SCP sends, short
# A-ABORT source and reasons (PS3.8 Table 9-26) used here, short.
_PROVIDER = AbortSource.SERVICE_PROVIDER
_UNSPECIFIED = AbortReason.NOT_SPECIFIED
_INVALID_VALUE = AbortReason.INVALID_PDU_PARAMETER_VALUE
_UNEXPECTED_PARAMETER = AbortReason.UNEXPECTED_PDU_PARAMETER
# Store records a long-running ``serve`` keeps (the latest ones); the log has every store.
SERVE_KEEP_RECORDS = 1000

SOP_CLASS_TAG = 0x00080016
SOP_INSTANCE_TAG = 0x00080018
PIXEL_DATA_TAG = 0x7FE00010
IMAGE_PIXEL_TYPE1 = {0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "Bits Allocated"}
# US elements of a C-STORE-RQ besides the Message ID (checked before): 2 bytes each.
_STORE_RQ_US = (COMMAND_FIELD, PRIORITY, COMMAND_DATA_SET_TYPE)
CAPTURED = (SOP_CLASS_TAG, SOP_INSTANCE_TAG, *IMAGE_PIXEL_TYPE1)


@dataclass(slots=True)
class StoreRecord:
    """One C-STORE as the SCP saw it (for logs, tests and the harness's checks)."""

    assoc: int
    message_id: int
    sop_class: str
    sop_instance: str
    status: int
    path: Path | None
    bytes: int
    comment: str | None = None


@dataclass(slots=True)
class _Incoming:
    req: CStoreRequest
    context: PresentationContext
    checker: DatasetStructureChecker | None = None
    fragments: int = 0

    def image_problem(self) -> str | None:
        """Type 1 attributes of the Image Pixel module (PS3.3 C.7.6.3) when Pixel Data is
        present: without them the pixels cannot be interpreted."""
        if self.checker is None:
            return None
        captured = self.checker.captured
        # US, VM 1 (PS3.3 C.7.6.3): exactly 2 bytes whenever present.
        wrong = [name for tag, name in IMAGE_PIXEL_TYPE1.items()
                 if tag in captured and len(captured[tag]) != 2]
        if wrong:
            return f"{', '.join(wrong)} not one US value (PS3.3 C.7.6.3)"
        if not self.checker.pixel_data_seen:
            return None
        missing = [name for tag, name in IMAGE_PIXEL_TYPE1.items() if tag not in captured]
        return f"Pixel Data without {', '.join(missing)} (PS3.3 C.7.6.3)" if missing else None


@dataclass(slots=True)
class _Dimse:
    """The DIMSE provider seen by the service class: cancels in, responses out."""

    assoc: SCPAssociation
    cancel_req: dict[int, Any] = field(default_factory=dict)

    def send_msg(self, rsp: CStoreResponse, context_id: int) -> None:
        self.assoc.send_store_response(rsp, context_id)


class SCPAssociation:
    """The reference SCP's handler for one association."""

    def __init__(self, scp: StorageSCP) -> None:
        self.scp = scp
        self.profile = scp.profile
        self.net: AcceptorAssociation | None = None
        self.dimse = _Dimse(self)
        self.service = StorageServiceClass(self)
        self.outstanding: set[int] = set()
        self.seen_ids: set[int] = set()  # every Message ID used (fault duplicate_check_all)
        # IDs answered while this read is still being parsed: a request that came in the same
        # read arrived while they were outstanding (the answer is written in the same
        # callback), so reusing one is still a duplicate invocation.
        self.answered_now: set[int] = set()
        self.current: _Incoming | None = None
        self.queue: collections.deque[Callable[[], Any]] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._release_pending = False
        # A temporary file opened ahead for the next store (see _respond_now); only while
        # established (Sta6), so none once the peer asked to release.
        self._spare: tuple[int, str] | None = None
        # Every temporary file not yet answered: queued responses are dropped when the
        # association ends, and their files must not outlive it.
        self.files: set[IncomingFile] = set()

    # ServiceAssociation protocol ---------------------------------------------------------
    @property
    def ae(self) -> StorageSCP:
        return self.scp

    @property
    def is_established(self) -> bool:
        return self.net is not None and self.net.ended is None

    # AcceptorHandler ---------------------------------------------------------------------
    def negotiate(self, assoc: AcceptorAssociation, rq: AssociateRQ,
                  findings: list[Finding]) -> AssociateAC | AssociateRJ | Abort | None:
        self.net = assoc
        answer = negotiate(self.profile, rq, findings, assoc.server.active)
        LOG.info("association %d from %s: %s calling=%s called=%s", assoc.assoc_id,
                 assoc.conn.peer, type(answer).__name__.replace("Associate", "A-ASSOCIATE-")
                 .replace("Abort", "A-ABORT"), _loggable(rq.calling_ae_title),
                 _loggable(rq.called_ae_title))
        return answer

    def on_command(self, assoc: AcceptorAssociation, context_id: int, command: DecodedCommand,
                   findings: list[Finding]) -> None:
        self.net = assoc
        cf = command.command_field
        el = command.elements
        if command.explicit_vr and not self.profile.has("silent_on_bad_command"):
            # Command sets are always Implicit VR LE (PS3.7 6.3.1): values cannot be trusted.
            assoc.abort(_PROVIDER, _INVALID_VALUE, how="command set encoded in Explicit VR")
        elif cf == CommandField.C_STORE_RQ:
            self._store_command(context_id, command)
        elif cf == CommandField.C_ECHO_RQ and isinstance(el.get(MESSAGE_ID), int):
            msg_id = int(el[MESSAGE_ID])  # type: ignore[call-overload]
            status = Status.UNRECOGNIZED_OPERATION if self.profile.has("bad_echo_status") \
                else Status.SUCCESS
            self._enqueue(lambda: self._send(context_id, encode_command(
                CEchoRSP(msg_id, status))))
        elif cf == CommandField.C_CANCEL_RQ:
            target = el.get(MESSAGE_ID_BEING_RESPONDED_TO)
            if isinstance(target, int):
                if len(self.dimse.cancel_req) < 64:
                    self.dimse.cancel_req[target] = command.message
                if self.profile.has("answer_cancel"):
                    self._send(context_id, _generic_response(CommandField.C_STORE_RSP, target,
                                                             Status.CANCEL))
        elif isinstance(cf, int) and cf < 0x8000 and isinstance(el.get(MESSAGE_ID), int) and \
                not self.profile.has("silent_on_bad_command"):
            # A request we do not perform: Unrecognized operation (PS3.7 C.5.23).
            msg_id = int(el[MESSAGE_ID])  # type: ignore[call-overload]
            self._enqueue(lambda: self._send(context_id, _generic_response(
                cf | 0x8000, msg_id, Status.UNRECOGNIZED_OPERATION)))
            if el.get(COMMAND_DATA_SET_TYPE, NO_DATA_SET) != NO_DATA_SET:
                self.current = None  # its data set is read and dropped
        elif not self.profile.has("silent_on_bad_command"):
            assoc.abort(_PROVIDER, _INVALID_VALUE,
                        how=f"undecodable or unexpected command ({command.command_name})")

    def _store_command(self, context_id: int, command: DecodedCommand) -> None:
        assert self.net is not None
        el = command.elements
        p = self.profile
        msg_id = el.get(MESSAGE_ID)
        if not isinstance(msg_id, int):
            if not p.has("silent_on_bad_command"):
                self.net.abort(_PROVIDER, _INVALID_VALUE, how="C-STORE-RQ without a Message ID")
            return
        sop_class = str(el.get(AFFECTED_SOP_CLASS_UID) or "")
        sop_instance = str(el.get(AFFECTED_SOP_INSTANCE_UID) or "")
        abstract, ts = self.net.contexts.get(context_id, ("", ""))
        context = PresentationContext(context_id, abstract, ts)
        priority = el.get(PRIORITY, 0)
        req = CStoreRequest(msg_id, sop_class, sop_instance,
                            priority if isinstance(priority, int) else 0, transfer_syntax=ts)
        has_data = el.get(COMMAND_DATA_SET_TYPE, NO_DATA_SET) != NO_DATA_SET
        # An element of the wrong length decodes to its raw bytes: the value cannot be
        # trusted, the request is invalid (PS3.7 9.3.1.1, C.5.13 Cannot understand).
        bad_length = [f"({0:04X},{tag:04X})" for tag in _STORE_RQ_US if tag in el
                      and not isinstance(el[tag], int)]
        if bad_length and not p.has("silent_on_bad_command"):
            req.precheck = (Status.CANNOT_UNDERSTAND, _short(
                "invalid C-STORE-RQ: value length of " + ", ".join(bad_length)))
        elif not isinstance(command.message, CStoreRQ):
            missing = [f.field for f in command.findings if "missing" in f.found.lower()
                       or "missing" in f.expected.lower()]
            if p.has("silent_on_bad_command"):
                return
            req.precheck = (Status.CANNOT_UNDERSTAND, _short(
                "invalid C-STORE-RQ: " + (", ".join(missing) or "bad command set")))
        elif not has_data:
            if p.has("silent_on_bad_command"):
                return
            req.precheck = (Status.CANNOT_UNDERSTAND, "C-STORE-RQ without a data set")
        elif ((msg_id in self.outstanding or msg_id in self.answered_now)
              and not p.has("no_duplicate_check")) or (
                p.has("duplicate_check_all") and msg_id in self.seen_ids):
            req.precheck = (Status.DUPLICATE_INVOCATION, f"Message ID {msg_id} is outstanding")
        elif abstract != sop_class and not p.has("accept_wrong_context") and not \
                p.accept_any_abstract_syntax:
            req.precheck = (Status.NO_SUCH_SOP_CLASS,
                            "SOP class differs from the presentation context")
        elif (not is_valid_uid(sop_instance) and not p.has("accept_invalid_uid")) or (
                p.has("strict_uid_length") and len(sop_instance) >= 60):
            req.precheck = (Status.INVALID_SOP_INSTANCE, "invalid Affected SOP Instance UID")
        self.outstanding.add(msg_id)
        self.seen_ids.add(msg_id)
        if p.has("abort_after_command"):
            self.net.abort(_PROVIDER, _UNSPECIFIED, how="fault abort_after_command")
            return
        if p.has("success_before_data") and has_data:
            self._enqueue(lambda: self._respond(req, context, status=Status.SUCCESS))
            self.current = _Incoming(req, context)  # data still arrives; it is dropped
            req.precheck = (Status.SUCCESS, None)
            return
        if not has_data:
            self._enqueue(lambda: self._respond(req, context))
            return
        incoming = _Incoming(req, context)
        if req.precheck is None:
            spare, self._spare = self._spare, None
            try:
                req.file = IncomingFile(self.scp.storage_dir, sop_class, sop_instance, ts,
                                        self.net.rq.calling_ae_title if self.net.rq else None,
                                        fsync=p.fsync, part=spare)
            except OSError as exc:  # the data set is read and dropped; the peer gets A700H
                _cannot_store(req, exc)
            else:
                self.files.add(req.file)
                incoming.checker = DatasetStructureChecker(ts, capture=CAPTURED)
        self.current = incoming

    def on_data(self, assoc: AcceptorAssociation, context_id: int, fragment: memoryview,
                last: bool) -> None:
        cur = self.current
        if cur is None:
            return  # data set of a request we already answered (e.g. 0x0211)
        cur.fragments += 1
        req = cur.req
        if req.file is not None:
            try:
                req.file.write(fragment)
            except OSError as exc:  # disk full and the like: the rest is read and dropped
                req.file.discard()
                self.files.discard(req.file)
                req.file = None
                cur.checker = None
                _cannot_store(req, exc)
            if cur.checker is not None:
                cur.checker.feed(fragment)
        if last and not len(fragment) and self.profile.has("reject_empty_pdv"):
            assoc.abort(_PROVIDER, _INVALID_VALUE, how="fault reject_empty_pdv")
            return
        if cur.fragments == 1 and not last and self.profile.has("abort_during_data"):
            assoc.abort(_PROVIDER, _UNSPECIFIED, how="fault abort_during_data")
            return
        if not last:
            return
        self.current = None
        if self.profile.has("success_before_data"):
            self.outstanding.discard(req.MessageID)
            return
        if cur.checker is not None and req.file is not None:
            problems = [f for f in cur.checker.finish() if f.severity == "error"]
            req.dataset_sop_class = cur.checker.captured_text(SOP_CLASS_TAG)
            req.dataset_sop_instance = cur.checker.captured_text(SOP_INSTANCE_TAG)
            if problems and not self.profile.has("accept_truncated"):
                req.precheck = (STATUS_CANNOT_DECODE, _short(
                    f"data set not decodable: {problems[0].found}"))
            elif not self.profile.has("accept_uid_mismatch") and (
                    req.dataset_sop_class != req.AffectedSOPClassUID
                    or req.dataset_sop_instance != req.AffectedSOPInstanceUID):
                req.precheck = (Status.DATA_SET_DOES_NOT_MATCH,
                                "data set SOP Class/Instance UID differs from command")
            elif (problem := cur.image_problem()) and not self.profile.has("accept_truncated"):
                req.precheck = (Status.DATA_SET_DOES_NOT_MATCH, _short(problem))
        ctx = cur.context
        self._enqueue(lambda: self._respond(req, ctx))

    def on_release(self, assoc: AcceptorAssociation) -> bool:
        # No store follows: the spare goes before A-RELEASE-RP, so a peer that looks at the
        # directory once released sees only what was stored.
        self._drop_spare()
        if self.profile.has("ignore_release"):
            return False
        if self.profile.has("release_drops_responses"):
            self.queue.clear()
            if self._worker is not None and not self._worker.done():
                self._worker.cancel()
            return True
        if self.queue or (self._worker is not None and not self._worker.done()):
            self._release_pending = True  # answer outstanding requests first (PS3.8 AR-7)
            return False
        return True

    def _drop_spare(self) -> None:
        if self._spare is not None:
            drop_part(self._spare)
            self._spare = None

    def on_end(self, assoc: AcceptorAssociation, how: str) -> None:
        cur, self.current = self.current, None
        if cur is not None and cur.req.file is not None:
            if self.profile.has("keep_partial"):
                cur.req.file.commit(cur.req.AffectedSOPInstanceUID)
            else:
                cur.req.file.discard()
        for pending in self.files:
            if pending.final_path is None:
                pending.discard()  # complete but never answered: its job is dropped below
        self.files.clear()
        self.queue.clear()
        self._drop_spare()
        if assoc.rq is not None:
            LOG.info("association %d ended: %s", assoc.assoc_id, _loggable(how))
        # The association refers to this handler: drop the way back, so that both are freed
        # as soon as the connection closes (work still queued sees no association and stops).
        self.net = None

    # ordered processing ------------------------------------------------------------------
    def _enqueue(self, job: Callable[[], Any]) -> None:
        if not self.queue and (self._worker is None or self._worker.done()):
            # Nothing ahead of it: run it now (still in arrival order), saving a task and a
            # loop turn per store; only a job that has to wait continues in the worker.
            result = job()
            if asyncio.iscoroutine(result):
                # The waiting job is the task itself, so that cancelling it (or the loop
                # ending) closes its coroutine even before it started.
                task = asyncio.get_running_loop().create_task(result)
                task.add_done_callback(self._after_first)
                self._worker = task
            return
        self.queue.append(job)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
            self._worker.add_done_callback(self._check_worker)

    def _check_worker(self, task: asyncio.Task[Any]) -> bool:
        """The last resort for queued work (as PDUConnection's for received PDUs): an
        exception ends the association with A-ABORT (2,0) and one log line. True if so."""
        if task.cancelled() or task.exception() is None:
            return False
        exc = task.exception()
        assert exc is not None
        net = self.net
        LOG.error("association %s: internal error, association aborted: %s",
                  net.assoc_id if net is not None else "?", describe_exception(exc))
        if net is not None:
            net.abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED,
                      how=f"internal error ({type(exc).__name__})")
        return True

    def _after_first(self, task: asyncio.Task[Any]) -> None:
        if self._check_worker(task):
            return
        # Only while that task is still the worker: a job enqueued between its end and this
        # callback may already have started the next one (two would run jobs out of order).
        if self._worker is task and not task.cancelled() and (self.queue or
                                                              self._release_pending):
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while self.queue:
            job = self.queue.popleft()
            result = job()
            if asyncio.iscoroutine(result):
                await result
        if self._release_pending and self.net is not None:
            self._release_pending = False
            self.net.release_rp()

    def _respond(self, req: CStoreRequest, context: PresentationContext,
                 status: int | None = None) -> Coroutine[Any, Any, None] | None:
        if self.profile.delay_before_response:
            return self._respond_later(req, context, status)
        self._respond_now(req, context, status)
        return None

    async def _respond_later(self, req: CStoreRequest, context: PresentationContext,
                             status: int | None) -> None:
        await asyncio.sleep(self.profile.delay_before_response)
        self._respond_now(req, context, status)

    def _respond_now(self, req: CStoreRequest, context: PresentationContext,
                     status: int | None) -> None:
        p = self.profile
        net = self.net
        if net is None or net.ended is not None:
            if req.file is not None:
                req.file.discard()
            return
        if p.has("abort_before_response"):
            net.abort(_PROVIDER, _UNSPECIFIED, how="fault abort_before_response")
            return
        if p.has("close_on_store"):
            net.conn.close()
            return
        if p.has("no_response"):
            if req.file is not None:
                req.file.discard()
            return
        if status is not None:
            req.precheck = (status, None)
        elif req.precheck is None:
            req.precheck = self.scp.rule_status(req)
        if p.has("cancel_status") and self.service.is_cancelled(req.MessageID):
            req.precheck = (Status.CANCEL, None)
        kept = _keep_copy(self.scp.storage_dir, req) if p.has("keep_after_failure") else None
        rsp = self.service.SCP(req, context)
        if kept is not None and rsp is not None and rsp.Status in (0x0000, None):
            kept.unlink(missing_ok=True)  # stored normally: the copy is not needed
        if req.file is not None:
            self.files.discard(req.file)
        self.outstanding.discard(req.MessageID)
        if not self.answered_now:
            asyncio.get_running_loop().call_soon(self.answered_now.clear)
        self.answered_now.add(req.MessageID)
        if rsp is not None:
            self.scp.record(net.assoc_id, req, rsp)
        if self._spare is None and req.file is not None and req.file.final_path is not None \
                and net.state == "Sta6" and net.ended is None:
            # Stored, and the response is on its way: while the peer reads it and sends its
            # next request, open that request's temporary file (off the store's critical
            # path). An association keeps at most this one; on_end removes it.
            with contextlib.suppress(OSError):  # the next store then opens its own (or fails)
                self._spare = open_part(os.fspath(self.scp.storage_dir))

    # sending -----------------------------------------------------------------------------
    def send_store_response(self, rsp: CStoreResponse, context_id: int) -> None:
        p = self.profile
        msg = rsp.to_message()
        misused = _misused_status(p, msg.status)
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
            msg.error_comment = _short(f"failed writing {self.scp.storage_dir}")
        if p.has("response_other_context") and self.net is not None:
            others = [c for c in self.net.contexts if c != context_id]
            context_id = others[0] if others else context_id
        data = encode_command(msg)
        self._send(context_id, data)
        if p.has("double_response"):
            self._send(context_id, data)

    def _send(self, context_id: int, command: bytes) -> None:
        net = self.net
        if net is None or not net.conn.writable:
            return
        if self.profile.has("ignore_peer_max_pdu"):
            net.conn.send_pdu(_single_pdu(context_id, command))
        else:
            net.send_message_nowait(context_id, command)


def _keep_copy(storage_dir: Path, req: CStoreRequest) -> Path | None:
    """Fault keep_after_failure: a copy of the received file, kept whatever the status."""
    if req.file is None:
        return None
    req.file.close()
    target = storage_dir / ("kept-" + safe_name(req.AffectedSOPInstanceUID or "none"))
    try:
        shutil.copyfile(req.file.path, target)
    except OSError:
        return None
    return target


def _misused_status(p: Profile, status: int) -> int:
    """Faults misuse_*: a Failure (or Success) reported with a code whose meaning does not
    fit (what STATUS_SEMANTICS catches)."""
    if status == STATUS_CANNOT_DECODE and p.has("misuse_0210"):
        return 0x0210
    if status == 0x0000 and p.has("warning_without_coercion"):
        return 0xB000
    if classify(status) == StatusCategory.FAILURE:
        for code in (0x0211, 0x0122, 0x0117):
            if p.has(f"misuse_{code:04x}") and status != code:
                return code
    return status


def _cannot_store(req: CStoreRequest, exc: OSError) -> None:
    """The storage directory failed us: Refused, Out of Resources (PS3.4 B.2.3)."""
    LOG.error("cannot store %s: %s", _loggable(req.AffectedSOPInstanceUID), exc)
    req.precheck = (STATUS_OUT_OF_RESOURCES, _short(f"cannot store: {exc.strerror or exc}"))


def _single_pdu(context_id: int, command: bytes) -> Any:
    from harness.wire.pdu import PDV, PDataTF

    return PDataTF([PDV(context_id, 0x03, command)])


def _generic_response(command_field: int, msg_id: int, status: int) -> bytes:
    return encode_elements([
        (COMMAND_FIELD, value_us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, value_us(msg_id)),
        (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET)),
        (STATUS, value_us(status)),
    ])


def _loggable(text: object) -> str:
    """A value the peer chose, safe on one log line: control characters (a newline would
    forge a log line) and the like escaped."""
    value = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


def _short(text: str) -> str:
    return text.replace("\\", "/")[:64]


class StorageSCP:
    """The reference Storage SCP application entity."""

    def __init__(self, profile: Profile | None = None, storage_dir: str | Path | None = None,
                 *, host: str = "127.0.0.1", port: int = 0,
                 store_handler: StoreHandler | None = None, trace: bool = True,
                 keep_records: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.profile = profile or Profile()
        self._own_dir = storage_dir is None
        self.storage_dir = Path(storage_dir) if storage_dir is not None else Path(
            tempfile.mkdtemp(prefix="dicom-harness-scp-"))
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.store_handler = store_handler
        self.host = host
        # At least the latest ``keep_records`` stores, at most twice as many (all when None):
        # a long-running ``serve`` must not grow with every store. ``records_total`` counts all.
        self.records: list[StoreRecord] = []
        self.keep_records = keep_records
        self.records_total = 0
        self.on_store: Callable[[StoreRecord], None] | None = None
        self.store_count = 0
        p = self.profile
        config = AcceptorConfig(max_pdu=p.max_pdu,
                                artim_timeout=86400.0 if p.has("no_artim") else p.artim_timeout,
                                idle_timeout=p.idle_timeout,
                                enforce_max_pdu=not p.has("accept_oversized_pdu"),
                                abort_on_bad_pdu=not p.has("hang_on_bad_pdu"),
                                lenient_framing=p.has("lenient_framing"),
                                accept_unaccepted_context=p.has("accept_unaccepted_context"),
                                close_on_eof=not p.has("ignore_fin"),
                                count_idle_connections=p.has("count_idle_connections"),
                                max_pending=p.max_pending_connections,
                                trace=trace)
        self.server = AcceptorServer(lambda: SCPAssociation(self), host, port, config)
        if tls is not None:  # serve DICOM over TLS (PS3.15 Annex B)
            from harness.scp.tls_faults import apply_context_faults

            self.server.tls = apply_context_faults(tls, self.profile)

    # what the service class reads from its ``ae`` ----------------------------------------
    @property
    def ae_title(self) -> str:
        return self.profile.ae_title

    @property
    def duplicate_policy(self) -> str:
        return self.profile.duplicate_sop_instance

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.server.port

    async def start(self) -> int:
        if self.server.tls is not None and self.profile.has("tls_plaintext_fallback"):
            from harness.scp.tls_faults import start_sniffing

            return start_sniffing(self.server, self.host)
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.close()
        if self._own_dir:
            shutil.rmtree(self.storage_dir, ignore_errors=True)

    def rule_status(self, req: CStoreRequest) -> tuple[int, str | None] | None:
        """The status a profile rule imposes on this store, if any."""
        self.store_count += 1
        rules = self.profile.status_rules
        if not rules:
            return None

        def read_attr(keyword: str) -> Any:
            if req.file is None:
                return None
            from pydicom import dcmread

            req.file.close()
            with contextlib.suppress(Exception):
                return dcmread(req.file.path, force=True, stop_before_pixels=True).get(keyword)
            return None

        for rule in rules:
            if rule.matches(req.AffectedSOPClassUID, self.store_count, read_attr):
                return (rule.status, rule.error_comment)
        return None

    def after_commit(self, req: CStoreRequest) -> None:
        """Storage faults, applied after the file got its name and before the response goes
        out (so a harness reading the storage directory on the response sees them)."""
        assert req.file is not None
        path = req.file.final_path
        p = self.profile
        if path is None:
            return
        if p.lose_every and p.has("lose_every_nth") and self.store_count % p.lose_every == 0:
            path.unlink(missing_ok=True)
            req.file.final_path = None
        elif p.has("alter_stored"):
            _alter(path)
        elif p.has("unsafe_paths") and any(c in req.AffectedSOPInstanceUID for c in "/\\"):
            # Emulates a path traversal one level up (kept next to the storage directory
            # rather than at the literal path, so the harness's own tests stay contained).
            tail = req.AffectedSOPInstanceUID.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            moved = self.storage_dir.parent / tail.replace("\x00", "")
            path.replace(moved)
            req.file.final_path = moved

    def record(self, assoc_id: int, req: CStoreRequest, rsp: CStoreResponse) -> None:
        path = req.file.final_path if req.file is not None else None
        rec = StoreRecord(assoc_id, req.MessageID, req.AffectedSOPClassUID,
                          req.AffectedSOPInstanceUID, rsp.Status or 0, path,
                          req.file.received if req.file is not None else 0, rsp.ErrorComment)
        self.records.append(rec)
        self.records_total += 1
        keep = self.keep_records
        if keep is not None and len(self.records) >= 2 * keep + 1:
            del self.records[:len(self.records) - keep]  # trimmed now and then: amortised O(1)
        LOG.info("store assoc=%d id=%d %s status=0x%04X %s", assoc_id, req.MessageID,
                 _loggable(req.AffectedSOPInstanceUID), rec.status,
                 path.name if path else "(not stored)")
        if self.on_store is not None:
            self.on_store(rec)

    def stored_path(self, sop_instance_uid: str) -> Path:
        return self.storage_dir / safe_name(sop_instance_uid)


def _alter(path: Path) -> None:
    from pydicom import dcmread

    with contextlib.suppress(Exception):
        ds = dcmread(path)
        ds.PatientName = "ALTERED^BY^FAULT"
        ds.save_as(path)
