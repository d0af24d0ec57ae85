"""Fast receivers for measuring the measurer: a DICOM sink and a plain TCP discard sink.

``DicomSink`` accepts every association (every proposed context with its first transfer
syntax, any asynchronous operations window asked for), answers every C-STORE with Success
and stores nothing: the load generator's own cost shows against it. ``discard`` mode reads
length-prefixed byte streams, drops and acknowledges them: the denominator of the loopback
ratio.
``files`` mode (``--dir DIR``) writes each instance-sized record of such a stream to a file of
its own (temporary name, then rename): what a plain socket-to-disk copy costs, a reference
point for any SCP that stores what it receives.

Run as a process (``python -m harness.bench.sink --mode dicom|discard|files``): it prints its
port on the first line and serves until its standard input closes or it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    MCH_COMMAND,
    MCH_LAST,
    MESSAGE_ID,
    PDUType,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _ELEMENT
from harness.wire.constants import PDU_HEADER as _HDR
from harness.wire.constants import PDV_HEADER as _PDV
from harness.wire.decode import decode_pdu
from harness.wire.dimse import CStoreRSP, encode_command
from harness.wire.items import AsyncOpsWindow, PresentationContextAC, SubItem
from harness.wire.pdu import AssociateRQ, ReleaseRP, associate_ac, pdu_header

# PDU types as plain ints: compared once per PDU on the receive path.
_A_ASSOCIATE_RQ = int(PDUType.A_ASSOCIATE_RQ)
_P_DATA_TF = int(PDUType.P_DATA_TF)
_A_RELEASE_RQ = int(PDUType.A_RELEASE_RQ)

# Plain streams start with this header: total length, record (instance) length (0: no files).
STREAM_HEADER = struct.Struct(">QQ")
_RECORD = STREAM_HEADER
SINK_MAX_PDU = 65536


def _command_fields(buf: bytes | bytearray | memoryview) -> tuple[int, str, str, bool]:
    """(Message ID, SOP Class UID, SOP Instance UID, has data set) of a C-STORE-RQ."""
    pos = 0
    msg_id, cls, inst, has_data = 0, "", "", True
    while pos + 8 <= len(buf):
        _g, element, length = _ELEMENT.unpack_from(buf, pos)
        pos += 8
        value = bytes(buf[pos:pos + length])
        if element == MESSAGE_ID:
            msg_id = int.from_bytes(value, "little")
        elif element == AFFECTED_SOP_CLASS_UID:
            cls = value.rstrip(b"\x00 ").decode("ascii", "replace")
        elif element == AFFECTED_SOP_INSTANCE_UID:
            inst = value.rstrip(b"\x00 ").decode("ascii", "replace")
        elif element == COMMAND_DATA_SET_TYPE:
            has_data = int.from_bytes(value, "little") != 0x0101
        pos += length
    return msg_id, cls, inst, has_data


class DicomSink(asyncio.Protocol):
    """One association of the sink."""

    stores = 0  # class-wide count, for the log line at exit

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.command = bytearray()
        self.pending: tuple[int, str, str] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= 6:
            pdu_type, _r, length = _HDR.unpack_from(buf, pos)
            total = 6 + length
            if len(buf) - pos < total:
                break
            self._pdu(pdu_type, memoryview(buf)[pos:pos + total])
            pos += total
        del buf[:pos]

    def _pdu(self, pdu_type: int, pdu: memoryview) -> None:
        transport = self.transport
        assert transport is not None
        if pdu_type == _A_ASSOCIATE_RQ:
            rq, _findings = decode_pdu(bytes(pdu))
            if not isinstance(rq, AssociateRQ):
                transport.close()
                return
            results = [PresentationContextAC(pc.context_id, 0, pc.transfer_syntaxes[0])
                       for pc in rq.presentation_contexts if pc.transfer_syntaxes]
            ui = rq.user_information
            window = ui.async_ops_window if ui is not None else None
            extra: list[SubItem] | None = [AsyncOpsWindow(*window)] if window else None
            transport.write(associate_ac(rq, results, max_pdu=SINK_MAX_PDU,
                                         extra_user_items=extra).encode())
        elif pdu_type == _P_DATA_TF:
            pos, end = 6, len(pdu)
            while pos + 6 <= end:
                item_len, cid, mch = _PDV.unpack_from(pdu, pos)
                value = pdu[pos + 6:pos + 4 + item_len]
                pos += 4 + item_len
                if mch & MCH_COMMAND:
                    self.command += value
                    if mch & MCH_LAST:
                        msg_id, cls, inst, has_data = _command_fields(self.command)
                        self.command.clear()
                        self.pending = (msg_id, cls, inst)
                        if not has_data:
                            self._answer(cid)
                elif mch & MCH_LAST:
                    self._answer(cid)
        elif pdu_type == _A_RELEASE_RQ:
            transport.write(ReleaseRP().encode())
            transport.close()
        else:
            transport.close()

    def _answer(self, context_id: int) -> None:
        if self.pending is None or self.transport is None:
            return
        msg_id, cls, inst = self.pending
        self.pending = None
        command = encode_command(CStoreRSP(msg_id, 0x0000, cls, inst))
        self.transport.write(pdu_header(0x04, len(command) + 6)
                             + _PDV.pack(len(command) + 2, context_id, 0x03) + command)
        DicomSink.stores += 1


# --- plain TCP: length-prefixed streams, dropped or written one file per record ----------

def _receive(conn: socket.socket, directory: str | None) -> None:
    """Read streams of (length, record length, bytes) into one buffer; with ``directory``,
    write each record to a file of its own as an SCP writes an instance (a temporary name,
    then an atomic rename); acknowledge each stream with one byte."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    prefix = os.path.join(directory, f"c{conn.fileno()}-{threading.get_ident()}-") \
        if directory is not None else ""
    index = 0
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            head = _recv_exactly(conn, _RECORD.size)
            if head is None:
                return
            left, record = _RECORD.unpack(head)
            while left > 0:
                todo = min(left, max(1, record)) if directory is not None else left
                part = f"{prefix}{index}.part"
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644) \
                    if directory is not None else -1
                try:
                    while todo > 0:
                        n = conn.recv_into(view, min(todo, len(buf)))
                        if n == 0:
                            return
                        if fd >= 0:
                            os.write(fd, view[:n])
                        todo -= n
                        left -= n
                finally:
                    if fd >= 0:
                        os.close(fd)
                if fd >= 0:
                    os.replace(part, f"{prefix}{index}.dcm")
                    index += 1
            conn.sendall(b"\x01")


def _recv_exactly(conn: socket.socket, n: int) -> bytes | None:
    out = bytearray()
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return bytes(out)


def serve_discard(listener: socket.socket, stop: threading.Event,
                  directory: str | None = None) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _addr = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        conn.settimeout(None)
        threading.Thread(target=_receive, args=(conn, directory), daemon=True).start()


async def serve_dicom(host: str, port: int, ready: asyncio.Future[int]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(DicomSink, host, port)
    ready.set_result(server.sockets[0].getsockname()[1])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.run_in_executor(None, _wait_stdin, loop, stop)
    async with server:
        await stop.wait()


def _wait_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    _stdin_then(lambda: loop.call_soon_threadsafe(stop.set))


def _stdin_then(action: Callable[[], object]) -> None:
    """Run ``action`` once standard input closes (the parent ended or let go of us)."""
    with contextlib.suppress(Exception):
        sys.stdin.read()
    action()


class SinkProcess:
    """A sink in a subprocess: ``with SinkProcess("dicom") as sink: sink.port``."""

    def __init__(self, mode: str = "dicom", host: str = "127.0.0.1",
                 directory: str | None = None) -> None:
        self.mode = mode
        self.host = host
        self.directory = directory
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> SinkProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.bench.sink", "--mode", self.mode, "--host",
             self.host, *(["--dir", self.directory] if self.directory else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(
            self.proc.stdout.readline() if self.proc and self.proc.stdout else ""),
            daemon=True)
        reader.start()
        reader.join(timeout)
        if not out or not out[0].strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {self.mode} sink did not start")
        self.port = int(out[0])
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SinkProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.sink")
    parser.add_argument("--mode", choices=("dicom", "discard", "files"), default="dicom")
    parser.add_argument("--dir", help="where files mode writes (required for it)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mode == "files" and not args.dir:
        parser.error("--mode files needs --dir")
    if args.mode in ("discard", "files"):
        listener = socket.create_server((args.host, args.port), backlog=64)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        thread = threading.Thread(target=serve_discard,
                                  args=(listener, stop, args.dir if args.mode == "files" else None),
                                  daemon=True)
        thread.start()
        print(listener.getsockname()[1], flush=True)
        threading.Thread(target=_stdin_then, args=(stop.set,), daemon=True).start()
        while not stop.wait(0.5):
            pass
        listener.close()
        return 0

    async def run() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_dicom(args.host, args.port, ready))
        print(await ready, flush=True)
        await task

    asyncio.run(run())
    print(f"stores {DicomSink.stores}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
