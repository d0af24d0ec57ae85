"""The system under measurement: the reference SCP as a process, /proc figures.

(Reachability of a ``--target`` is :func:`harness.engine.target_options.check_reachable`.)

With no ``--target`` the bench starts ``dicom-harness serve`` as a subprocess (its own
interpreter and core, as a real SCP would have), on a free loopback port with a temporary
storage folder, and stops it afterwards. ``ProcessProbe`` reads a process's CPU time and
peak resident memory from ``/proc`` (``--target-pid``, or the SCP we started).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

_LISTENING = re.compile(r"listening on (\S+):(\d+)")


class TargetError(Exception):
    """The reference SCP cannot be started (or, as raised by the Locust launcher, the
    target cannot be reached)."""


class ReferenceSCP:
    """``dicom-harness serve`` in a subprocess: ``with ReferenceSCP() as scp: scp.port``."""

    def __init__(self, storage_dir: Path | None = None, profile: Path | None = None,
                 host: str = "127.0.0.1", env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.host = host
        self.extra_args = extra_args or []  # e.g. the --tls-* options of serve
        self.profile = profile
        self._own_dir = storage_dir is None
        self.storage_dir = storage_dir or Path(tempfile.mkdtemp(prefix="dicom-harness-bench-"))
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.env = env

    @property
    def pid(self) -> int:
        assert self.proc is not None, "reference SCP not started"
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> ReferenceSCP:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "harness.cli", "serve", "--host", self.host, "--port", "0",
               "--storage-dir", str(self.storage_dir), "-q"]
        if self.profile is not None:
            cmd += ["--profile", str(self.profile)]
        cmd += self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     env=self.env or os.environ.copy())
        line = _readline(self.proc, timeout)
        found = _LISTENING.search(line or "")
        if found is None:
            err = ""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                with contextlib.suppress(Exception):
                    err = self.proc.stderr.read()[-300:].strip()
            self.stop()
            raise TargetError(f"the reference SCP did not start: {err or line or 'no output'}")
        self.port = int(found.group(2))
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # serve stops cleanly on SIGTERM
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        if self._own_dir:
            shutil.rmtree(self.storage_dir, ignore_errors=True)

    def __enter__(self) -> ReferenceSCP:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The first stdout line of ``proc`` within ``timeout`` seconds (None if none)."""
    out: list[str] = []

    def read() -> None:
        if proc.stdout is not None:
            out.append(proc.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0] if out else None


@dataclass(slots=True)
class ProcessSample:
    cpu_s: float
    peak_rss: int


def sample_process(pid: int) -> ProcessSample | None:
    """CPU seconds (user + system) and peak RSS (VmHWM, bytes) of ``pid``; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return ProcessSample(cpu, peak)


class ProcessProbe:
    """CPU time a process used between ``begin`` and ``end``, and its peak RSS at the end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.first: ProcessSample | None = None
        self.last: ProcessSample | None = None

    def begin(self) -> None:
        self.first = sample_process(self.pid)

    def end(self) -> None:
        self.last = sample_process(self.pid)

    def result(self, wall_s: float) -> dict[str, Any]:
        if self.first is None or self.last is None:
            return {"pid": self.pid, "available": False}
        cpu = self.last.cpu_s - self.first.cpu_s
        return {"pid": self.pid, "available": True, "cpu_s": round(cpu, 3),
                "cpu_percent": round(100 * cpu / wall_s, 1) if wall_s > 0 else None,
                "peak_rss_mib": round(self.last.peak_rss / (1 << 20), 1)}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 1,
            "platform": platform.platform(), "python": platform.python_version()}
