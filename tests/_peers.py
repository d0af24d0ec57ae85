"""Starting real peers (DCMTK, pynetdicom, Orthanc, our own serve) on loopback for tests:
a free port to give them, a bounded wait until they listen, and a bounded stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """A loopback port with nothing listening on it (closed right after being found)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Return once ``port`` accepts a connection; raise if ``proc`` exits first or the
    timeout passes (a peer that never listens must not hang the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited early with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"peer did not listen on {port} within {timeout} s")


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """End a peer started with ``start_new_session=True`` and every process it forked (they
    share its process group): SIGTERM, then SIGKILL if it is still there after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
