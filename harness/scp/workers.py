"""Pre-forked reference SCP processes sharing one listening socket (``serve --workers N``).

One Python process runs one event loop on one core. :class:`WorkerPool` binds the listening
socket once and forks N worker processes (POSIX only), each running a
:class:`~harness.scp.server.StorageSCP` on that socket. A worker accepts one connection at a
time; while it has associations, it waits a little between seeing a pending connection and
accepting it, so an idle worker, which accepts at once, takes it: concurrent associations
spread over the cores, the way DCMTK's ``storescp --fork`` spreads them over one process
per association.

What is per worker, not per pool: the store records and counters (so ``status_rules``
counting stores and ``lose_every`` count per worker), the profile's ``max_associations``
limit and the traces. All workers store into the same directory (temporary names are unique
per process); a duplicate SOP Instance arriving on two workers at once is resolved by the
file system (the later rename wins), not by the duplicate policy. Use one worker (the
default, no fork) whenever a scenario depends on those.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from harness.scp.profile import Profile
from harness.scp.server import SERVE_KEEP_RECORDS, StorageSCP

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerPool:
    """N reference SCP processes on one port. Start and stop it outside any event loop."""

    def __init__(self, profile: Profile, storage_dir: str | Path, *, host: str = "127.0.0.1",
                 port: int = 0, workers: int = 2, trace: bool = False) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if not hasattr(os, "fork"):
            raise RuntimeError("worker processes need os.fork (POSIX)")
        self.profile = profile
        self.storage_dir = Path(storage_dir)
        self.host = host
        self.port = port
        self.workers = workers
        self.trace = trace
        self.pids: list[int] = []
        self.stores = 0  # known after stop(): the sum reported by the workers
        self._sock: socket.socket | None = None
        self._counts: int | None = None  # read end of the pipe the workers report on
        self._lifeline: int | None = None

    def start(self) -> int:
        """Bind, fork the workers; return the port. Raises ``OSError`` if it cannot listen."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop: safe to fork
        else:
            raise RuntimeError("WorkerPool.start() forks: call it outside an event loop")
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        sock = socket.create_server((self.host, self.port), backlog=128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        read_end, write_end = os.pipe()
        # Lifeline: only we hold its write end, so the workers see EOF when we end, however
        # we end (even SIGKILL), and stop instead of serving on as orphans.
        life_read, life_write = os.pipe()
        for _ in range(self.workers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                os.close(read_end)
                os.close(life_write)
                _worker(sock, write_end, life_read, self.profile, self.storage_dir, self.trace)
            self.pids.append(pid)
        os.close(write_end)
        os.close(life_read)
        self._counts = read_end
        self._lifeline = life_write
        return self.port

    def alive(self) -> list[int]:
        """Workers still running (reaps the ones that ended)."""
        running = []
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    running.append(pid)
        return running

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM every worker, wait for them (SIGKILL after ``timeout``); total stores."""
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = []
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._counts is not None:
            with os.fdopen(self._counts, "rb") as reports:
                self.stores = sum(int(line) for line in reports.read().split() if line.isdigit())
            self._counts = None
        return self.stores

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _worker(sock: socket.socket, report_fd: int, lifeline: int, profile: Profile,
            storage_dir: Path, trace: bool) -> None:  # pragma: no cover - in a forked child
    """A worker's whole life: serve on ``sock`` until SIGTERM/SIGINT, report, exit."""
    code = 0
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        stores = asyncio.run(_serve_one(sock, lifeline, profile, storage_dir, trace))
        os.write(report_fd, f"{stores}\n".encode())
    except BaseException:  # a worker must never return into the parent's code
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


async def _serve_one(sock: socket.socket, lifeline: int, profile: Profile, storage_dir: Path,
                     trace: bool) -> int:  # pragma: no cover - runs in a forked child
    scp = StorageSCP(profile, storage_dir, trace=trace, keep_records=SERVE_KEEP_RECORDS)
    await scp.server.start(sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(lifeline, stop.set)  # readable only at EOF: the pool's process ended
    await stop.wait()
    loop.remove_reader(lifeline)
    await scp.stop()
    return scp.records_total


def serve_workers(profile: Profile, storage_dir: Path, *, host: str, port: int,
                  workers: int) -> int:
    """``dicom-harness serve --workers N``: run the pool until SIGINT/SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _s, _f: stop.set()) for sig in STOP_SIGNALS}
    pool = WorkerPool(profile, storage_dir, host=host, port=port, workers=workers)
    try:
        pool.start()
        faults = f" faults: {', '.join(sorted(profile.faults))}" if profile.faults else ""
        print(f"dicom-harness serve: {profile.ae_title} listening on {host}:{pool.port} "
              f"({workers} workers), storing in {storage_dir}{faults}", flush=True)
        while not stop.wait(0.5):
            if not pool.alive():
                print("dicom-harness serve: every worker ended", file=sys.stderr, flush=True)
                return 1
    finally:
        stores = pool.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"dicom-harness serve: stopped after {stores} store(s)", flush=True)
    return 0
