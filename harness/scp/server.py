"""The reference Storage SCP: a server and per-association DIMSE processing.

``StorageSCP`` is the application entity (``ae`` of the service class): it owns the profile,
the storage directory, the store handler and the log of what happened. ``SCPAssociation``
runs on each accepted association: it checks every C-STORE-RQ (conformant defaults of PS3.7
9.1.1 and 9.3.1), streams its data set to disk while checking its structure, and hands the
complete request to :class:`StorageServiceClass` in arrival order. This is the conformant
serving path; the profile's faults that make the SCP misbehave are decided and performed in
``faults.py`` (and ``negotiation.py``, ``tls_faults.py``), called at the points they bend.
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

from harness.net.acceptor import AcceptorAssociation, AcceptorConfig
from harness.net.acceptor_server import AcceptorServer
from harness.net.connection import describe_exception
from harness.scp import faults
from harness.scp.negotiation import negotiate
from harness.scp.profile import Profile
from harness.scp.service import (
    CStoreRequest,
    CStoreResponse,
    PresentationContext,
    StorageServiceClass,
    StoreHandler,
    error_comment,
    generic_response,
)
from harness.scp.storage import IncomingFile, drop_part, open_part, safe_name
from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    NO_DATA_SET,
    PRIORITY,
    AbortReason,
    CommandField,
    StoreStatus,
)
from harness.wire.dataset_check import DatasetStructureChecker
from harness.wire.dimse import CEchoRSP, CStoreRQ, DecodedCommand, encode_command
from harness.wire.findings import Finding
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, AssociateRQ
from harness.wire.uid import is_valid_uid

LOG = logging.getLogger("harness.scp")
Status = StoreStatus  # the C-STORE statuses the SCP sends, short
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
            assoc.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                        how="command set encoded in Explicit VR")
        elif cf == CommandField.C_STORE_RQ:
            self._store_command(context_id, command)
        elif cf == CommandField.C_ECHO_RQ and isinstance(el.get(MESSAGE_ID), int):
            msg_id = int(el[MESSAGE_ID])  # type: ignore[call-overload]
            status = faults.echo_status(self.profile)
            self.enqueue(lambda: self.send(context_id, encode_command(
                CEchoRSP(msg_id, status))))
        elif cf == CommandField.C_CANCEL_RQ:
            target = el.get(MESSAGE_ID_BEING_RESPONDED_TO)
            if isinstance(target, int):
                if len(self.dimse.cancel_req) < 64:
                    self.dimse.cancel_req[target] = command.message
                faults.answer_cancel(self, context_id, target)
        elif isinstance(cf, int) and cf < 0x8000 and isinstance(el.get(MESSAGE_ID), int) and \
                not self.profile.has("silent_on_bad_command"):
            # A request we do not perform: Unrecognized operation (PS3.7 C.5.23).
            msg_id = int(el[MESSAGE_ID])  # type: ignore[call-overload]
            self.enqueue(lambda: self.send(context_id, generic_response(
                cf | 0x8000, msg_id, Status.UNRECOGNIZED_OPERATION)))
            if el.get(COMMAND_DATA_SET_TYPE, NO_DATA_SET) != NO_DATA_SET:
                self.current = None  # its data set is read and dropped
        elif not self.profile.has("silent_on_bad_command"):
            assoc.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                        how=f"undecodable or unexpected command ({command.command_name})")

    def _store_command(self, context_id: int, command: DecodedCommand) -> None:
        assert self.net is not None
        el = command.elements
        p = self.profile
        msg_id = el.get(MESSAGE_ID)
        if not isinstance(msg_id, int):
            if not p.has("silent_on_bad_command"):
                self.net.abort(reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                               how="C-STORE-RQ without a Message ID")
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
            req.precheck = (Status.CANNOT_UNDERSTAND, error_comment(
                "invalid C-STORE-RQ: value length of " + ", ".join(bad_length)))
        elif not isinstance(command.message, CStoreRQ):
            missing = [f.field for f in command.findings if "missing" in f.found.lower()
                       or "missing" in f.expected.lower()]
            if p.has("silent_on_bad_command"):
                return
            req.precheck = (Status.CANNOT_UNDERSTAND, error_comment(
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
        if p.faults and faults.take_store_command(self, req, context, has_data):
            return
        if not has_data:
            self.enqueue(lambda: self.respond(req, context))
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
        if self.profile.faults and faults.abort_in_data(self.profile, assoc, cur.fragments,
                                                        len(fragment), last):
            return
        if not last:
            return
        self.current = None
        if self.profile.faults and faults.answered_before_data(self, req):
            return
        if cur.checker is not None and req.file is not None:
            problems = [f for f in cur.checker.finish() if f.severity == "error"]
            req.dataset_sop_class = cur.checker.captured_text(SOP_CLASS_TAG)
            req.dataset_sop_instance = cur.checker.captured_text(SOP_INSTANCE_TAG)
            if problems and not self.profile.has("accept_truncated"):
                req.precheck = (Status.CANNOT_DECODE, error_comment(
                    f"data set not decodable: {problems[0].found}"))
            elif not self.profile.has("accept_uid_mismatch") and (
                    req.dataset_sop_class != req.AffectedSOPClassUID
                    or req.dataset_sop_instance != req.AffectedSOPInstanceUID):
                req.precheck = (Status.DATA_SET_DOES_NOT_MATCH,
                                "data set SOP Class/Instance UID differs from command")
            elif (problem := cur.image_problem()) and not self.profile.has("accept_truncated"):
                req.precheck = (Status.DATA_SET_DOES_NOT_MATCH, error_comment(problem))
        ctx = cur.context
        self.enqueue(lambda: self.respond(req, ctx))

    def on_release(self, assoc: AcceptorAssociation) -> bool:
        # No store follows: the spare goes before A-RELEASE-RP, so a peer that looks at the
        # directory once released sees only what was stored.
        self._drop_spare()
        if self.profile.faults and (answer := faults.release_answer(self)) is not None:
            return answer
        if self.queue or (self._worker is not None and not self._worker.done()):
            self._release_pending = True  # answer outstanding requests first (PS3.8 AR-7)
            return False
        return True

    def drop_queued(self) -> None:
        """Drop every response not sent yet (fault release_drops_responses)."""
        self.queue.clear()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()

    def expect_data(self, req: CStoreRequest, context: PresentationContext) -> None:
        """The next data set fragments belong to ``req`` (read, written only if it has a
        file)."""
        self.current = _Incoming(req, context)

    def _drop_spare(self) -> None:
        if self._spare is not None:
            drop_part(self._spare)
            self._spare = None

    def on_end(self, assoc: AcceptorAssociation, how: str) -> None:
        cur, self.current = self.current, None
        if cur is not None and cur.req.file is not None:
            faults.end_partial(self.profile, cur.req)
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
    def enqueue(self, job: Callable[[], Any]) -> None:
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
            net.abort(how=f"internal error ({type(exc).__name__})")
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

    def respond(self, req: CStoreRequest, context: PresentationContext,
                status: int | None = None) -> Coroutine[Any, Any, None] | None:
        if self.profile.delay_before_response:
            return faults.after_delay(self.profile.delay_before_response,
                                      lambda: self._respond_now(req, context, status))
        self._respond_now(req, context, status)
        return None

    def _respond_now(self, req: CStoreRequest, context: PresentationContext,
                     status: int | None) -> None:
        p = self.profile
        net = self.net
        if net is None or net.ended is not None:
            if req.file is not None:
                req.file.discard()
            return
        if p.faults and faults.instead_of_response(self, net, req):
            return
        if status is not None:
            req.precheck = (status, None)
        elif req.precheck is None:
            req.precheck = self.scp.rule_status(req)
        if not p.faults:
            rsp = self.service.SCP(req, context)
        else:
            faults.cancel_status(self, req)
            kept = faults.keep_copy(p, self.scp.storage_dir, req)
            rsp = self.service.SCP(req, context)
            faults.drop_copy_if_stored(kept, rsp)
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
        msg = rsp.to_message()
        if self.profile.faults:
            faults.send_store_response(self, msg, context_id)
        else:
            self.send(context_id, encode_command(msg))

    def send(self, context_id: int, command: bytes) -> None:
        net = self.net
        if net is None or not net.conn.writable:
            return
        if not (self.profile.faults and faults.send_whole(self.profile, net, context_id,
                                                          command)):
            net.send_message_nowait(context_id, command)


def _cannot_store(req: CStoreRequest, exc: OSError) -> None:
    """The storage directory failed us: Refused, Out of Resources (PS3.4 B.2.3)."""
    LOG.error("cannot store %s: %s", _loggable(req.AffectedSOPInstanceUID), exc)
    req.precheck = (Status.OUT_OF_RESOURCES, error_comment(f"cannot store: {exc.strerror or exc}"))


def _loggable(text: object) -> str:
    """A value the peer chose, safe on one log line: control characters (a newline would
    forge a log line) and the like escaped."""
    value = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


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
        config = AcceptorConfig(max_pdu=p.max_pdu, idle_timeout=p.idle_timeout,
                                max_pending=p.max_pending_connections, trace=trace,
                                **faults.acceptor_switches(p))
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
        return faults.rule_status(self.profile, self.store_count, req)

    def after_commit(self, req: CStoreRequest) -> None:
        """The service class's hook once a store's file has its name: the storage faults."""
        if self.profile.faults:
            faults.after_commit(self.profile, self.storage_dir, self.store_count, req)

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
