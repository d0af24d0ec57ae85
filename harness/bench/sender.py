"""The lean C-STORE load generator: many associations on one asyncio loop, no copies.

Each :class:`BenchAssociation` owns a non-blocking socket registered once with the loop.
Association set-up and release use the wire codec (``associate_rq``, the validating
``decode_pdu``); the store phase stays off every general-purpose path: per store it patches
the Message ID and SOP Instance UID into a pre-framed head, hands head and shared tail to one
``sendmsg`` (``os.sendfile`` for file ranges), and reads responses with ``struct``.

Why not :class:`harness.net.connection.PDUConnection`: on Python 3.11 an asyncio transport
joins ``writelines`` parts and copies whatever the socket does not take at once into its
own buffer, which costs a copy of every large instance; the generator must be faster than
DCMTK's ``storescu``, so it talks to the socket itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.stats import LatencyHistogram, ThroughputSeries
from harness.bench.workload import (
    MessagePlan,
    PlanCache,
    StoreHead,
    UidSource,
    Workload,
)
from harness.wire.constants import (
    BENCH_CALLING_AE,
    DEFAULT_CALLED_AE,
    MCH_COMMAND,
    MCH_LAST,
    PDUType,
)
from harness.wire.constants import PDU_HEADER as _HDR
from harness.wire.constants import PDV_HEADER as _PDV
from harness.wire.decode import decode_pdu
from harness.wire.dimse import decode_command, read_store_rsp
from harness.wire.items import AsyncOpsWindow, PresentationContextRQ, SubItem
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, ReleaseRP, ReleaseRQ, associate_rq

# PDU types as plain ints: compared once per PDU on the receive path.
_P_DATA_TF = int(PDUType.P_DATA_TF)
_A_ABORT = int(PDUType.A_ABORT)
_A_RELEASE_RQ = int(PDUType.A_RELEASE_RQ)

ADVERTISED_MAX_PDU = 16384  # what we accept: responses are tiny (DCMTK's default too)
IOV_MAX = 1024  # buffers per sendmsg (Linux's UIO_MAXIOV)
UNLIMITED_WINDOW = 4096  # what "no limit" (0) means in practice: outstanding stores at most


def unsent(parts: list[memoryview], n: int) -> list[memoryview]:
    """What is left of ``parts`` (one gathered send) after the kernel took ``n`` bytes."""
    while n and parts:
        first = parts[0]
        if n >= len(first):
            n -= len(first)
            parts = parts[1:]
        else:
            return [first[n:], *parts[1:]]
    return parts


class BenchError(Exception):
    """An association failed (refused, rejected, aborted, timed out, closed)."""


# A non-blocking socket (or TLS over one, which can want either direction) cannot go on now.
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(slots=True)
class SenderConfig:
    host: str
    port: int
    called_aet: str = DEFAULT_CALLED_AE
    calling_aet: str = BENCH_CALLING_AE
    max_pdu: int = 0  # cap on the PDUs we send; 0: the peer's maximum
    window: int = 1  # asynchronous operations window we ask for
    nodelay: bool = True
    timeout: float = 30.0
    sendfile: bool = True
    # harness.net.tls.TLSOptions (picklable, for worker processes): DICOM over TLS. The
    # socket is then an ssl.SSLSocket: no sendmsg / sendfile, one send per part instead.
    tls: Any = None


@dataclass(slots=True)
class Measure:
    """What every association of one process adds to (single thread: no locks)."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    series: ThroughputSeries = field(default_factory=lambda: ThroughputSeries(0.0))
    statuses: dict[int, int] = field(default_factory=dict)
    instances: int = 0  # measured stores answered
    nbytes: int = 0  # data set bytes of measured stores
    completed: int = 0  # every answered store, warm-up included (progress)
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    recording: bool = False

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_messages) < 20:
            self.error_messages.append(message)


@dataclass(slots=True)
class Negotiated:
    setup_s: float
    peer_max_pdu: int
    send_pdu: int
    window: int
    transfer_syntaxes: list[str]
    implementation_class_uid: str | None
    implementation_version_name: str | None

    def to_dict(self) -> dict[str, Any]:
        """The Bench JSON's ``negotiated`` (fields in declaration order)."""
        return {"setup_s": self.setup_s, "peer_max_pdu": self.peer_max_pdu,
                "send_pdu": self.send_pdu, "window": self.window,
                "transfer_syntaxes": self.transfer_syntaxes,
                "implementation_class_uid": self.implementation_class_uid,
                "implementation_version_name": self.implementation_version_name}


# --- negotiation, shared with the Locust client (harness.bench.locust_client) -------------------

def propose(cfg: SenderConfig, workload: Workload) -> tuple[list[PresentationContextRQ], bytes]:
    """One presentation context per (SOP class, transfer syntax) pair of the workload and the
    encoded A-ASSOCIATE-RQ proposing them; BenchError beyond 128 pairs (odd IDs 1-255,
    PS3.8 9.3.2.2)."""
    contexts = [PresentationContextRQ(2 * i + 1, sop_class, [ts])
                for i, (sop_class, ts) in enumerate(workload.contexts)]
    if len(contexts) > 128:
        raise BenchError("more than 128 (SOP class, transfer syntax) pairs in the workload")
    # Window 1 is the default (PS3.7 D.3.3.3): ask only when the user wants more.
    extra: list[SubItem] | None = [AsyncOpsWindow(cfg.window, 1)] if cfg.window != 1 \
        else None
    rq = associate_rq(cfg.called_aet, cfg.calling_aet, contexts, max_pdu=ADVERTISED_MAX_PDU,
                      extra_user_items=extra)
    return contexts, rq.encode()


def accept(cfg: SenderConfig, workload: Workload, cache: PlanCache,
           contexts: list[PresentationContextRQ], ac: AssociateAC,
           setup_s: float) -> tuple[Negotiated, list[tuple[MessagePlan, str]]]:
    """What the A-ASSOCIATE-AC grants: the negotiated figures and a framed plan (with its SOP
    class) for every template whose context was accepted; BenchError if none was."""
    accepted = {pc.context_id: str(pc.transfer_syntax).rstrip("\x00 ")
                for pc in ac.presentation_contexts if pc.result == 0}
    peer_max = ac.max_pdu_length or 0  # 0: no limit (PS3.8 D.1)
    send_pdu = peer_max if cfg.max_pdu == 0 else (
        cfg.max_pdu if peer_max == 0 else min(cfg.max_pdu, peer_max))
    by_pair: dict[tuple[str, str], int] = {}
    for pc in contexts:
        ts = str(pc.transfer_syntaxes[0])
        if accepted.get(pc.context_id) == ts:
            by_pair[(str(pc.abstract_syntax), ts)] = pc.context_id
    plans: list[tuple[MessagePlan, str]] = []
    for template in workload.templates:
        cid = by_pair.get((template.sop_class, template.transfer_syntax))
        if cid is None:
            continue  # the peer refused this SOP class / transfer syntax
        plans.append((cache.plan(template, cid, send_pdu, cfg.sendfile), template.sop_class))
    if not plans:
        raise BenchError("the peer accepted no presentation context of the workload "
                         f"({', '.join(s for s, _ in workload.contexts)})")
    ui = ac.user_information
    window = 1
    granted = ui.async_ops_window if ui is not None else None
    if cfg.window != 1 and granted is not None:
        wanted = cfg.window or UNLIMITED_WINDOW  # 0 asks for no limit
        invoked = granted[0]
        window = wanted if invoked == 0 else min(wanted, invoked)
    negotiated = Negotiated(
        setup_s, peer_max, send_pdu, window, sorted(set(accepted.values())),
        ui.implementation_class_uid if ui is not None else None,
        ui.implementation_version_name if ui is not None else None)
    return negotiated, plans


class BenchAssociation:
    """One association of the load generator."""

    def __init__(self, cfg: SenderConfig, workload: Workload, uids: UidSource,
                 measure: Measure, shared: PlanCache | None = None) -> None:
        self.cfg = cfg
        self.workload = workload
        self.uids = uids
        self.m = measure
        self.shared = shared or PlanCache()
        self.loop = asyncio.get_running_loop()
        self.sock: socket.socket | None = None
        self.fd = -1
        self.negotiated: Negotiated | None = None
        self.plans: list[MessagePlan] = []
        self._head: StoreHead | None = None  # the patchable head, once plans are known
        self._rbuf = bytearray(1 << 16)
        self._rview = memoryview(self._rbuf)
        self._rstart = 0
        self._rend = 0
        self._outstanding: dict[int, tuple[float, int]] = {}  # msg id -> (sent at, bytes)
        self._slot_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._pdu_waiter: asyncio.Future[bytes] | None = None
        self._failure: BaseException | None = None
        self._command_parts: list[bytes] = []
        self._next_id = 0
        self._seq = 0
        self._last_activity = 0.0
        self._watchdog: asyncio.TimerHandle | None = None

    # --- connection and negotiation -----------------------------------------------------
    async def open(self) -> Negotiated:
        cfg = self.cfg
        started = time.monotonic()
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setblocking(False)
        self.sock = sock
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, (cfg.host, cfg.port)),
                                   cfg.timeout)
        except TimeoutError:
            self.close()
            raise BenchError(f"TCP connect to {cfg.host}:{cfg.port} timed out") from None
        except OSError as exc:
            self.close()
            raise BenchError(f"cannot connect to {cfg.host}:{cfg.port}: "
                             f"{exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if cfg.nodelay else 0)
        self.fd = sock.fileno()
        if cfg.tls is not None:
            self.sock = sock = await self._tls_handshake(sock)
        self.loop.add_reader(self.fd, self._on_readable)
        self._last_activity = time.monotonic()
        self._arm_watchdog()
        contexts, rq = propose(cfg, self.workload)
        raw = await self._exchange(rq)
        pdu, _findings = decode_pdu(raw)
        if isinstance(pdu, AssociateRJ):
            raise BenchError(f"association rejected: {pdu.describe()}")
        if isinstance(pdu, Abort):
            raise BenchError(f"association aborted by the peer: {pdu.describe()}")
        if not isinstance(pdu, AssociateAC):
            raise BenchError(f"unexpected answer to A-ASSOCIATE-RQ: {type(pdu).__name__}")
        return self._accept(pdu, contexts, time.monotonic() - started)

    async def _tls_handshake(self, sock: socket.socket) -> ssl.SSLSocket:
        cfg = self.cfg
        wrapped: ssl.SSLSocket = cfg.tls.client_context().wrap_socket(
            sock, server_hostname=cfg.tls.server_hostname or cfg.host,
            do_handshake_on_connect=False)
        deadline = time.monotonic() + cfg.timeout
        while True:
            try:
                wrapped.do_handshake()
                return wrapped
            except ssl.SSLWantReadError:
                wait: Callable[..., Any] = self.loop.add_reader
                stop: Callable[[int], Any] = self.loop.remove_reader
            except ssl.SSLWantWriteError:
                wait, stop = self.loop.add_writer, self.loop.remove_writer
            except (ssl.SSLError, OSError) as exc:
                self.close()
                from harness.net.tls import handshake_error_text

                raise BenchError(f"{cfg.host}:{cfg.port}: {handshake_error_text(exc)}") \
                    from None
            fut: asyncio.Future[None] = self.loop.create_future()
            wait(self.fd, lambda f=fut: f.done() or f.set_result(None))
            try:
                await asyncio.wait_for(fut, max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.close()
                raise BenchError(f"TLS handshake with {cfg.host}:{cfg.port} timed out") \
                    from None
            finally:
                stop(self.fd)

    def _accept(self, ac: AssociateAC, contexts: list[PresentationContextRQ],
                setup_s: float) -> Negotiated:
        self.negotiated, plans = accept(self.cfg, self.workload, self.shared, contexts, ac,
                                        setup_s)
        self.plans = [plan for plan, _sop_class in plans]
        self._head = StoreHead(self.plans)
        return self.negotiated

    async def _exchange(self, data: bytes) -> bytes:
        """Send one PDU and wait for one non-P-DATA PDU in answer."""
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self._pdu_waiter = fut
        try:
            await self._send_parts([memoryview(data)])
            return await fut
        finally:
            self._pdu_waiter = None

    # --- the store loop -------------------------------------------------------------------
    async def store(self, count: int | None, deadline: float | None) -> int:
        """Send stores until ``count`` are sent or ``deadline`` (monotonic) passes; wait for
        every answer. Returns how many were sent."""
        assert self.negotiated is not None
        window = self.negotiated.window
        assert self._head is not None
        fill = self._head.fill
        plans = self.plans
        nplans = len(plans)
        outstanding = self._outstanding
        sent = 0
        monotonic = time.monotonic
        while count is None or sent < count:
            if self._failure is not None:
                raise self._failure
            if deadline is not None and monotonic() >= deadline:
                break
            while len(outstanding) >= window:
                await self._wait_slot()
            self._next_id = msg_id = self._next_id % 0xFFFF + 1
            while msg_id in outstanding:  # 65535 in flight cannot happen with window < 65535
                self._next_id = msg_id = self._next_id % 0xFFFF + 1
            plan = plans[self._seq % nplans]
            first = fill(plan, self.uids.uid(self._seq), msg_id)
            self._seq += 1
            outstanding[msg_id] = (monotonic(), plan.nbytes)
            sock = self.sock
            assert sock is not None
            if not plan.tail and plan.sendfile is None:
                try:
                    n = sock.send(first)
                except _WOULD_BLOCK:
                    n = 0
                except OSError as exc:
                    raise self._fail(BenchError(f"send failed: {exc.strerror or exc}")) from None
                if n < len(first):
                    await self._send_parts([first[n:]])
            else:
                await self._send_parts([first, *plan.tail])
                if plan.sendfile is not None:
                    await self._sendfile(*plan.sendfile)
            sent += 1
        while outstanding:
            await self._wait_slot()
        return sent

    async def _wait_slot(self) -> None:
        if self._failure is not None:
            raise self._failure
        fut: asyncio.Future[None] = self.loop.create_future()
        self._slot_waiter = fut
        try:
            await fut
        finally:
            self._slot_waiter = None

    async def _send_parts(self, parts: list[memoryview]) -> None:
        sock = self.sock
        assert sock is not None
        tls = isinstance(sock, ssl.SSLSocket)
        while parts:
            try:
                n = sock.send(parts[0]) if tls else sock.sendmsg(parts[:IOV_MAX])
            except _WOULD_BLOCK:
                n = 0
            except OSError as exc:
                raise self._fail(BenchError(f"send failed: {exc.strerror or exc}")) from None
            if n:
                self._last_activity = time.monotonic()
            parts = unsent(parts, n)
            if parts:
                await self._writable()

    async def _sendfile(self, path: Path, offset: int, length: int) -> None:
        in_fd = self.shared.fd(path)
        while length > 0:
            try:
                n = os.sendfile(self.fd, in_fd, offset, length)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                raise self._fail(BenchError(f"sendfile failed: {exc.strerror or exc}")) \
                    from None
            if n:
                self._last_activity = time.monotonic()
            offset += n
            length -= n
            if length > 0:
                await self._writable()

    async def _writable(self) -> None:
        if self._failure is not None:
            raise self._failure
        fut: asyncio.Future[None] = self.loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        self.loop.add_writer(self.fd, ready)
        self._write_waiter = fut  # a failure wakes it too
        try:
            await fut
        finally:
            self._write_waiter = None
            if self.fd >= 0:
                self.loop.remove_writer(self.fd)
        if self._failure is not None:
            raise self._failure

    # --- receiving ------------------------------------------------------------------------
    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        if self._rend == len(self._rbuf):
            self._compact()
        try:
            n = sock.recv_into(self._rview[self._rend:])
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            self._fail(BenchError(f"connection error: {exc.strerror or exc}"))
            return
        if n == 0:
            self._fail(BenchError("the peer closed the connection"))
            return
        self._last_activity = time.monotonic()
        self._rend += n
        self._parse()
        if isinstance(sock, ssl.SSLSocket) and sock.pending() and self.sock is sock:
            # Decrypted bytes already inside OpenSSL: the socket will not wake us for them.
            self.loop.call_soon(self._on_readable)

    def _compact(self) -> None:
        pending = self._rend - self._rstart
        if self._rstart:
            self._rbuf[:pending] = self._rbuf[self._rstart:self._rend]
            self._rstart, self._rend = 0, pending
        if self._rend == len(self._rbuf):
            self._rbuf.extend(bytes(len(self._rbuf)))
            self._rview.release()
            self._rview = memoryview(self._rbuf)

    def _parse(self) -> None:
        buf = self._rbuf
        pos = self._rstart
        end = self._rend
        while end - pos >= 6:
            pdu_type, _r, length = _HDR.unpack_from(buf, pos)
            total = 6 + length
            if end - pos < total:
                if total > len(buf):
                    self._rstart = pos
                    self._compact()
                    self._grow(total)
                    return
                break
            if pdu_type == _P_DATA_TF:
                self._pdata(pos + 6, pos + total)
            elif self._pdu_waiter is not None and not self._pdu_waiter.done():
                self._pdu_waiter.set_result(bytes(buf[pos:pos + total]))
            elif pdu_type == _A_ABORT:
                pdu, _f = decode_pdu(bytes(buf[pos:pos + total]))
                how = pdu.describe() if isinstance(pdu, Abort) else "A-ABORT"
                self._fail(BenchError(f"association aborted by the peer: {how}"))
                return
            elif pdu_type == _A_RELEASE_RQ:
                self._fail(BenchError("the peer asked to release the association mid-run"))
                return
            else:
                self._fail(BenchError(f"unexpected PDU type {pdu_type:02X}H during the run"))
                return
            pos += total
        if pos == end:
            self._rstart = self._rend = 0
        else:
            self._rstart = pos

    def _grow(self, size: int) -> None:
        if size > 64 << 20:
            self._fail(BenchError(f"the peer sent a PDU of {size} bytes"))
            return
        self._rbuf.extend(bytes(size - len(self._rbuf)))
        self._rview.release()
        self._rview = memoryview(self._rbuf)

    def _pdata(self, pos: int, end: int) -> None:
        buf = self._rbuf
        while pos + 6 <= end:
            item_len, _cid, mch = _PDV.unpack_from(buf, pos)
            start = pos + 6
            stop = pos + 4 + item_len
            pos = stop
            if not mch & MCH_COMMAND:
                continue  # a data set on a response: C-STORE-RSP has none; ignore it
            if not mch & MCH_LAST or self._command_parts:
                self._command_parts.append(bytes(buf[start:stop]))
                if not mch & MCH_LAST:
                    continue
                command = b"".join(self._command_parts)
                self._command_parts.clear()
                self._response(command, 0, len(command))
            else:
                self._response(buf, start, stop)

    def _response(self, buf: bytes | bytearray, pos: int, end: int) -> None:
        got = read_store_rsp(buf, pos, end)
        if got is None:
            decoded = decode_command(bytes(buf[pos:end]))
            self.m.error(f"unexpected or undecodable response ({decoded.command_name})")
            return
        responded, status = got
        sent = self._outstanding.pop(responded, None)
        if sent is None:
            self.m.error(f"response to Message ID {responded}, which is not outstanding")
            return
        now = time.monotonic()
        m = self.m
        m.completed += 1
        if m.recording:
            m.histogram.add(now - sent[0])
            m.series.add(now, sent[1])
            m.statuses[status] = m.statuses.get(status, 0) + 1
            m.instances += 1
            m.nbytes += sent[1]
        waiter = self._slot_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- failure, timeout, release --------------------------------------------------------
    def _fail(self, exc: BaseException) -> BaseException:
        if self._failure is None:
            self._failure = exc
        for fut in (self._slot_waiter, self._write_waiter, self._pdu_waiter):
            if fut is not None and not fut.done():
                fut.set_exception(self._failure)
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            self.loop.remove_writer(self.fd)
        return self._failure

    def _arm_watchdog(self) -> None:
        self._watchdog = self.loop.call_later(min(1.0, self.cfg.timeout), self._check)

    def _check(self) -> None:
        if self._failure is not None or self.sock is None:
            return
        idle = time.monotonic() - self._last_activity
        busy = (self._outstanding or self._pdu_waiter is not None
                or self._write_waiter is not None)
        if busy and idle > self.cfg.timeout:
            self._fail(BenchError(f"no answer from the peer for {self.cfg.timeout:g} s"))
            return
        self._arm_watchdog()

    async def release(self) -> bool:
        """A-RELEASE-RQ, wait for A-RELEASE-RP; close. False if the peer did not answer."""
        ok = False
        if self._failure is None and self.sock is not None:
            try:
                raw = await self._exchange(ReleaseRQ().encode())
                ok = isinstance(decode_pdu(raw)[0], ReleaseRP)
            except BenchError:
                ok = False
        self.close()
        return ok

    def abort(self) -> None:
        if self.sock is not None and self._failure is None:
            with contextlib.suppress(OSError):
                self.sock.send(Abort(0, 0).encode())
        self.close()

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.sock is not None:
            if self.fd >= 0:
                self.loop.remove_reader(self.fd)
                self.loop.remove_writer(self.fd)
            self.sock.close()
            self.sock = None
            self.fd = -1
        if self._failure is None:
            self._failure = BenchError("association closed")
