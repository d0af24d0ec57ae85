"""One measurement point on one or several processes (``--workers K``).

With one worker the associations run on this process's event loop. With K workers the
associations are shared out over K forked processes (the encoded workload is inherited,
not rebuilt); they all warm up, meet at a barrier, measure, and send back plain-data
results that :func:`harness.bench.result.merge` adds up. Progress is a shared array of
per-worker counters that the parent polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

from harness.bench.process import run_process
from harness.bench.sender import Measure, SenderConfig
from harness.bench.workload import Workload

# UID streams: worker w, association a -> w * STREAMS_PER_WORKER + a (< 10**6).
STREAMS_PER_WORKER = 10000

Progress = Callable[[int], None]


def shares(associations: int, workers: int) -> list[int]:
    """Associations per worker, as even as possible, no worker without one."""
    workers = max(1, min(workers, associations))
    base, extra = divmod(associations, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def _uvloop_policy() -> bool:
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def event_loop_name(use_uvloop: bool) -> str:
    if use_uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"
    return "asyncio"


def run_point(cfg: SenderConfig, workload: Workload, *, associations: int, workers: int,
              instances: int | None, duration: float | None, warmup: int, nonce: int,
              progress: Progress | None = None, use_uvloop: bool = False) -> list[dict[str, Any]]:
    """Measure one point; one result mapping per process."""
    split = shares(associations, workers)
    if len(split) == 1:
        if use_uvloop:
            _uvloop_policy()

        def tick(m: Measure) -> None:
            if progress is not None:
                progress(m.completed)

        try:
            result = asyncio.run(run_process(cfg, workload, associations=split[0],
                                             instances=instances, duration=duration,
                                             warmup=warmup, nonce=nonce, progress=tick))
        finally:
            if use_uvloop:
                asyncio.set_event_loop_policy(None)
        return [result.to_dict()]
    return _run_forked(cfg, workload, split, instances, duration, warmup, nonce, progress,
                       use_uvloop)


def _worker(index: int, count: int, cfg: SenderConfig, workload: Workload,
            instances: int | None, duration: float | None, warmup: int, nonce: int,
            barrier: Any, counters: SynchronizedArray[int], results: Any,
            use_uvloop: bool) -> None:
    if use_uvloop:
        _uvloop_policy()

    async def meet() -> None:
        def wait() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(cfg.timeout + 60)

        await asyncio.get_running_loop().run_in_executor(None, wait)

    def tick(m: Measure) -> None:
        counters[index] = m.completed

    try:
        result = asyncio.run(run_process(cfg, workload, associations=count, instances=instances,
                                         duration=duration, warmup=warmup, nonce=nonce,
                                         stream_base=index * STREAMS_PER_WORKER, barrier=meet,
                                         progress=tick))
        results.put((index, result.to_dict()))
    except BaseException as exc:  # reported to the parent as an error of this worker
        results.put((index, {"failed": f"worker {index}: {exc!r}"}))
        with contextlib.suppress(Exception):
            barrier.abort()


def _run_forked(cfg: SenderConfig, workload: Workload, split: list[int], instances: int | None,
                duration: float | None, warmup: int, nonce: int, progress: Progress | None,
                use_uvloop: bool) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(split))
    counters: SynchronizedArray[int] = ctx.Array("q", len(split), lock=False)
    results: Any = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, n, cfg, workload, instances, duration, warmup,
                                               nonce, barrier, counters, results, use_uvloop),
                         daemon=True) for i, n in enumerate(split)]
    for proc in procs:
        proc.start()
    got: dict[int, dict[str, Any]] = {}
    # Stores answered within cfg.timeout keep a run alive; a silent worker does not.
    idle_limit = cfg.timeout + 120 + (duration or 0)
    last_total, last_change = -1, time.monotonic()
    while len(got) < len(split):
        try:
            index, data = results.get(timeout=0.1)
            got[index] = data
        except queue.Empty:
            pass
        total = sum(counters[:])
        if progress is not None:
            progress(total)
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in got]
        if dead and results.empty():
            for i in dead:
                got[i] = {"failed": f"worker {i} exited with {procs[i].exitcode}"}
        if time.monotonic() - last_change > idle_limit:
            for i in range(len(split)):
                got.setdefault(i, {"failed": f"worker {i} made no progress"})
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return [got[i] for i in sorted(got)]
