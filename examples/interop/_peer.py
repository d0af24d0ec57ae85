"""Run the conformance suite against a real Storage SCP started for the occasion.

Shared by ``run_against_dcmtk.py`` and ``run_against_pynetdicom.py``: pick a free loopback
port, start the peer with a fresh storage folder, wait until it listens, run
``dicom-harness run`` against it (reports under ``reports/<name>/``), stop the peer (always)
and return the run's exit status. Extra command line arguments go to ``dicom-harness run``
(e.g. ``-k assoc`` or ``--baseline old.json --fail-on regression``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0  # seconds for the peer to start listening


def free_port() -> int:
    """A TCP port nobody listens on right now (the peer binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once something accepts on ``port``; raise if the peer exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the peer exited with status {proc.returncode} before "
                               "listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the peer did not listen on port {port} within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the peer and anything it forked (its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_against(name: str, command: Callable[[int, Path], list[str]], called_aet: str,
                argv: Sequence[str]) -> int:
    """Start ``command(port, storage_dir)``, run the suite against it, stop it."""
    port = free_port()
    storage = Path(tempfile.mkdtemp(prefix=f"dicom-harness-{name}-"))
    report_dir = Path(os.environ.get("REPORT_DIR", ROOT / "reports")) / name
    log_path = report_dir / "peer.log"
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = command(port, storage)
    print(f"starting {name}: {' '.join(cmd)}", flush=True)
    with open(log_path, "wb") as log:
        try:
            # DCMTK leaves Nagle's algorithm on unless TCP_NODELAY=1: small stores would
            # each stall ~40 ms and measure the socket, not the SCP.
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    env={**os.environ, "TCP_NODELAY": "1"})
        except OSError as exc:
            print(f"{name}: cannot start {cmd[0]}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        try:
            wait_listening(port, proc, START_TIMEOUT)
            run = [sys.executable, "-m", "harness.cli", "run",
                   "--target", f"127.0.0.1:{port}", "--called-aet", called_aet,
                   "--storage-dir", str(storage), "--report-dir", str(report_dir),
                   "--junit", str(report_dir / "junit.xml"), *argv]
            print(" ".join(run), flush=True)
            return subprocess.call(run)
        except RuntimeError as exc:
            print(f"{name}: {exc} (log: {log_path})", file=sys.stderr)
            return 2
        finally:
            stop(proc)
            shutil.rmtree(storage, ignore_errors=True)
