"""A blocking-socket C-STORE association for Locust users (gevent-friendly, no asyncio).

Locust runs every simulated user in a greenlet and monkey-patches ``socket`` and ``select``
at import, so a plain blocking client built on :mod:`socket` yields to the other users
whenever it waits. This module is that client: association set-up and release with the
wire codec (``associate_rq``, the validating ``decode_pdu``), C-STOREs from the bench's
pre-framed :class:`~harness.bench.workload.MessagePlan` with the Message ID and SOP Instance
UID patched per store, responses framed by :class:`~harness.wire.framing.ReceiveBuffer` and
decoded by :func:`~harness.wire.dimse.decode_command`.

Large file-backed data sets go out with ``os.sendfile`` on the socket's non-blocking
descriptor, waiting for writability with ``select.select`` looked up at call time (gevent's
cooperative one under Locust): gevent's own ``socket.sendfile`` would copy the file through
user space. Nothing here imports Locust; it also works with plain threads.

Every way an association can fail raises :class:`StoreFailure` with a ``kind`` (connect,
rejected, aborted, closed, timeout, protocol, no-context) and a one-line reason.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from harness.bench.sender import (
    IOV_MAX,
    BenchError,
    Negotiated,
    SenderConfig,
    accept,
    propose,
    unsent,
)
from harness.bench.workload import (
    MessagePlan,
    PlanCache,
    StoreHead,
    UidSource,
    Workload,
)
from harness.wire.constants import CommandField, PDUType
from harness.wire.decode import decode_pdata_clean, decode_pdu
from harness.wire.dimse import CStoreRSP, decode_command, read_store_rsp_pdu
from harness.wire.framing import Oversized, ReceiveBuffer
from harness.wire.items import PresentationContextRQ
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, ReleaseRP, ReleaseRQ

MAX_RESPONSE_PDU = 1 << 20  # a C-STORE-RSP is tiny; anything this large is a broken peer
FAILURE_KINDS = ("connect", "rejected", "aborted", "closed", "timeout", "protocol",
                 "no-context")


class StoreFailure(Exception):
    """The association cannot go on: ``kind`` (one of ``FAILURE_KINDS``) and the reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(slots=True)
class StoreAnswer:
    """One answered C-STORE: its status, data set bytes and the template's SOP class."""

    status: int
    nbytes: int
    sop_class: str
    latency_s: float




class BlockingAssociation:
    """One association over a blocking socket: ``open``, ``store`` (one at a time),
    ``release`` or ``abort``. Not thread-safe: one user (greenlet) owns it."""

    def __init__(self, cfg: SenderConfig, workload: Workload, uids: UidSource,
                 cache: PlanCache | None = None, first_seq: int = 0) -> None:
        self.cfg = cfg
        self.workload = workload
        self.uids = uids
        self.cache = cache or PlanCache()
        self.sock: socket.socket | None = None
        self.negotiated: Negotiated | None = None
        self.stores = 0  # stores answered on this association
        self.current_sop_class = ""  # SOP class of the store in progress (or the last one)
        self._plans: list[tuple[MessagePlan, str]] = []  # (plan, SOP class)
        self._head: StoreHead | None = None  # the patchable head, once plans are known
        self._rx = ReceiveBuffer(MAX_RESPONSE_PDU, size=1 << 16)
        self._seq = first_seq  # UIDs go on from here: a user's next association continues
        self._msg_id = 0

    @property
    def next_seq(self) -> int:
        """The sequence number of the next UID (hand it to the user's next association)."""
        return self._seq

    # --- set-up ---------------------------------------------------------------------------
    def open(self) -> Negotiated:
        cfg = self.cfg
        started = time.perf_counter()
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout)
        except TimeoutError:
            raise StoreFailure("connect", f"TCP connect to {cfg.host}:{cfg.port} timed out") \
                from None
        except OSError as exc:
            raise StoreFailure("connect", f"cannot connect to {cfg.host}:{cfg.port}: "
                               f"{exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if cfg.nodelay else 0)
        self.sock = sock
        try:
            contexts, rq = propose(cfg, self.workload)
        except BenchError as exc:
            self.close()
            raise StoreFailure("no-context", str(exc)) from None
        self._sendall(rq)
        pdu, _findings = decode_pdu(self._read_pdu())
        if isinstance(pdu, AssociateRJ):
            self.close()
            raise StoreFailure("rejected", f"association rejected: {pdu.describe()}")
        if isinstance(pdu, Abort):
            self.close()
            raise StoreFailure("aborted", f"association aborted by the peer: {pdu.describe()}")
        if not isinstance(pdu, AssociateAC):
            self.abort()
            raise StoreFailure("protocol", "unexpected answer to A-ASSOCIATE-RQ: "
                               f"{type(pdu).__name__}")
        return self._accept(pdu, contexts, time.perf_counter() - started)

    def _accept(self, ac: AssociateAC, contexts: list[PresentationContextRQ],
                setup_s: float) -> Negotiated:
        try:
            self.negotiated, self._plans = accept(self.cfg, self.workload, self.cache,
                                                  contexts, ac, setup_s)
        except BenchError as exc:
            self.abort()
            raise StoreFailure("no-context", str(exc)) from None
        self._head = StoreHead(p for p, _c in self._plans)
        return self.negotiated

    # --- one store ------------------------------------------------------------------------
    def store(self) -> StoreAnswer:
        """Send the next instance of the workload (fresh SOP Instance UID) and wait for its
        C-STORE-RSP. Latency: first byte handed to the socket to response decoded."""
        plan, sop_class = self._plans[self._seq % len(self._plans)]
        self.current_sop_class = sop_class
        assert self._head is not None
        self._msg_id = msg_id = self._msg_id % 0xFFFF + 1
        head = self._head.fill(plan, self.uids.uid(self._seq), msg_id)
        self._seq += 1
        started = time.perf_counter()
        self._send_parts([head, *plan.tail])
        if plan.sendfile is not None:
            self._sendfile(*plan.sendfile)
        responded, status = self._read_response()
        latency = time.perf_counter() - started
        if responded != msg_id:
            self.abort()
            raise StoreFailure("protocol", "C-STORE-RSP answers Message ID "
                               f"{responded}, sent {msg_id}")
        self.stores += 1
        return StoreAnswer(status, plan.nbytes, sop_class, latency)

    def _read_response(self) -> tuple[int, int]:
        """(Message ID Being Responded To, Status) of the next C-STORE-RSP."""
        raw = self._read_pdu()
        got = read_store_rsp_pdu(raw)
        if got is not None:
            return got
        rsp = self._decode_response(raw)
        return rsp.message_id_being_responded_to, rsp.status

    def _decode_response(self, raw: bytes) -> CStoreRSP:
        """The general path: PDVs by the wire decoder, the command by ``decode_command``;
        a response split over several PDVs or PDUs is reassembled."""
        parts: list[bytes] = []
        first = True
        while True:
            if not first:
                raw = self._read_pdu()
            first = False
            if raw[0] != PDUType.P_DATA_TF:
                self._fail_on(raw)
            pdata = decode_pdata_clean(memoryview(raw))
            if pdata is None:
                self.abort()
                raise StoreFailure("protocol", "malformed P-DATA-TF from the peer")
            for pdv in pdata.pdvs:
                if not pdv.is_command:
                    continue  # a C-STORE-RSP has no data set; ignore stray fragments
                parts.append(bytes(pdv.data))
                if pdv.is_last:
                    decoded = decode_command(b"".join(parts))
                    msg = decoded.message
                    if not isinstance(msg, CStoreRSP) or \
                            decoded.command_field != CommandField.C_STORE_RSP:
                        self.abort()
                        raise StoreFailure("protocol", "expected C-STORE-RSP, got "
                                           f"{decoded.command_name}")
                    return msg

    def _fail_on(self, raw: bytes) -> None:
        """A non-P-DATA PDU while a store is outstanding: always the end of the association."""
        pdu, _f = decode_pdu(raw)
        if isinstance(pdu, Abort):
            self.close()
            raise StoreFailure("aborted", f"association aborted by the peer: {pdu.describe()}")
        if isinstance(pdu, ReleaseRQ):
            self.abort()
            raise StoreFailure("protocol", "the peer asked to release the association "
                               "while a store was outstanding")
        self.abort()
        raise StoreFailure("protocol", f"unexpected {type(pdu).__name__} during a store")

    # --- release --------------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE-RQ and wait for A-RELEASE-RP (PS3.8 7.2); StoreFailure if it fails."""
        if self.sock is None:
            return
        try:
            self._sendall(ReleaseRQ().encode())
            pdu, _f = decode_pdu(self._read_pdu())
            if not isinstance(pdu, ReleaseRP):
                raise StoreFailure("protocol", f"answer to A-RELEASE-RQ: {type(pdu).__name__}")
        finally:
            self.close()

    def abort(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.send(Abort(0, 0).encode())
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    # --- socket I/O -----------------------------------------------------------------------
    def _live(self) -> socket.socket:
        if self.sock is None:
            raise StoreFailure("closed", "association closed")
        return self.sock

    def _io_error(self, exc: OSError, doing: str) -> StoreFailure:
        self.close()
        if isinstance(exc, TimeoutError):
            return StoreFailure("timeout", f"no progress for {self.cfg.timeout:g} s while "
                                f"{doing}")
        return StoreFailure("closed", f"connection lost while {doing}: {exc.strerror or exc}")

    def _sendall(self, data: bytes) -> None:
        try:
            self._live().sendall(data)
        except OSError as exc:
            raise self._io_error(exc, "sending") from None

    def _send_parts(self, parts: list[memoryview]) -> None:
        sock = self._live()
        try:
            while parts:
                parts = unsent(parts, sock.sendmsg(parts[:IOV_MAX]))
        except OSError as exc:
            raise self._io_error(exc, "sending a C-STORE-RQ") from None

    def _sendfile(self, path: Path, offset: int, length: int) -> None:
        """``os.sendfile`` on the socket's (internally non-blocking) descriptor; on EAGAIN
        wait with ``select.select`` (cooperative once gevent has patched it)."""
        sock = self._live()
        in_fd = self.cache.fd(path)
        out_fd = sock.fileno()
        try:
            while length > 0:
                try:
                    n = os.sendfile(out_fd, in_fd, offset, length)
                except (BlockingIOError, InterruptedError):
                    _r, writable, _x = select.select([], [out_fd], [], self.cfg.timeout)
                    if not writable:
                        raise TimeoutError from None
                    continue
                offset += n
                length -= n
        except OSError as exc:
            raise self._io_error(exc, "sending a data set (sendfile)") from None

    def _read_pdu(self) -> bytes:
        """The next whole PDU (a copy: the receive buffer is reused)."""
        rx = self._rx
        sock = self._live()
        while True:
            got = rx.take()
            if isinstance(got, Oversized):
                self.abort()
                raise StoreFailure("protocol", f"the peer announced a PDU of {got.length} "
                                   "bytes")
            if got is not None:
                return bytes(got[2])
            try:
                n = sock.recv_into(rx.get_buffer())
            except OSError as exc:
                raise self._io_error(exc, "waiting for the peer") from None
            if n == 0:
                self.close()
                raise StoreFailure("closed", "the peer closed the connection")
            rx.updated(n)

