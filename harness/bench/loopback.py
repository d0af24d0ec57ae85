"""The machine's loopback TCP rate for a plain copy of the same bytes, in the same run.

A discard sink runs in its own process (as an SCP would); one thread per connection sends
a header (stream length, record length) and then the payload with ``sendall`` of large
``memoryview`` slices, and waits for the sink's one-byte acknowledgement. No framing, no
responses per instance: the best a plain socket copy does here, so a DICOM store rate can be
stated as a share of it.

With ``record`` set, the sink writes every record (one instance's bytes) to a file of its own,
temporary name then rename, as an SCP stores: a plain socket-to-disk copy, what storing costs
on this machine (disk and page cache included), measured in the same run.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from typing import Any

from harness.bench.sink import STREAM_HEADER as _RECORD
from harness.bench.sink import SinkProcess

CHUNK = 1 << 20
MAX_BYTES_PER_CONNECTION = 4 << 30


def _send(port: int, payload: memoryview, nbytes: int, start: threading.Barrier,
          done: list[float], errors: list[str], host: str, record: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=60) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start.wait(30)
            sock.sendall(_RECORD.pack(nbytes, record))
            left = nbytes
            size = len(payload)
            while left > 0:
                n = min(left, size)
                sock.sendall(payload[:n])
                left -= n
            if sock.recv(1) != b"\x01":
                errors.append("the discard sink closed before acknowledging")
            done.append(time.monotonic())
    except (OSError, threading.BrokenBarrierError) as exc:
        errors.append(str(exc))


def measure_loopback(total_bytes: int, connections: int, payload: bytes | memoryview,
                     host: str = "127.0.0.1", record: int = 0,
                     directory: str | None = None) -> dict[str, Any]:
    """Copy ``total_bytes`` (split over ``connections``) to a discard sink process; with
    ``record``, to a sink writing one file per ``record`` bytes in a temporary folder made
    under ``directory`` (default: the system's) and removed afterwards."""
    connections = max(1, connections)
    per = min(MAX_BYTES_PER_CONNECTION, max(1, total_bytes // connections))
    view = memoryview(payload)
    if len(view) > CHUNK:
        view = view[:CHUNK]
    if not len(view):
        view = memoryview(bytes(CHUNK))
    folder = tempfile.mkdtemp(prefix="dicom-harness-loopback-", dir=directory) \
        if record else None
    try:
        got = _copy(per, connections, view, host, record, folder)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    if record:
        got.update(record_bytes=record, mode="one file per record")
    return got


def _copy(per: int, connections: int, view: memoryview, host: str, record: int,
          folder: str | None) -> dict[str, Any]:
    mode = "files" if record else "discard"
    with SinkProcess(mode, host, folder) as sink:
        released: list[float] = []
        # Timed from the barrier's release (its action runs before any party goes on), so a
        # short copy cannot finish before the clock starts.
        start = threading.Barrier(connections + 1,
                                  action=lambda: released.append(time.monotonic()))
        done: list[float] = []
        errors: list[str] = []
        threads = [threading.Thread(target=_send, args=(sink.port, view, per, start, done,
                                                        errors, host, record), daemon=True)
                   for _ in range(connections)]
        for t in threads:
            t.start()
        start.wait(30)
        for t in threads:
            t.join(600)
    elapsed = (max(done) - released[0]) if done and released and not errors else 0.0
    moved = per * connections
    return {"connections": connections, "bytes": moved, "chunk_bytes": len(view),
            "duration_s": round(elapsed, 4),
            "mb_per_s": round(moved / elapsed / 1e6, 1) if elapsed > 0 else 0.0,
            "errors": errors[:5]}
