"""One process's share of a bench run: open its associations, warm up, wait at the barrier,
measure, release; the result as plain data a worker process can pickle back
(:class:`ProcessResult`). The associations themselves are :mod:`harness.bench.sender`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from harness.bench.sender import (
    BenchAssociation,
    BenchError,
    Measure,
    Negotiated,
    SenderConfig,
)
from harness.bench.stats import ThroughputSeries
from harness.bench.workload import PlanCache, UidSource, Workload


@dataclass(slots=True)
class ProcessResult:
    """What one process measured; plain data so worker processes can pickle it back."""

    measure: Measure
    start: float  # monotonic time the measured phase started
    end: float  # monotonic time the last measured answer arrived
    session_start: float
    session_end: float
    setup_s: list[float]
    negotiated: Negotiated | None
    associations_ok: int
    sent_total: int  # warm-up included
    releases_failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        m = self.measure
        return {
            "histogram": m.histogram.to_dict(), "series": m.series.to_dict(),
            "statuses": m.statuses, "instances": m.instances, "nbytes": m.nbytes,
            "completed": m.completed, "errors": m.errors, "error_messages": m.error_messages,
            "start": self.start, "end": self.end, "session_start": self.session_start,
            "session_end": self.session_end, "setup_s": self.setup_s,
            "negotiated": None if self.negotiated is None else self.negotiated.to_dict(),
            "associations_ok": self.associations_ok, "sent_total": self.sent_total,
            "releases_failed": self.releases_failed,
        }


async def run_process(cfg: SenderConfig, workload: Workload, *, associations: int,
                      instances: int | None, duration: float | None, warmup: int,
                      nonce: int, stream_base: int = 0,
                      barrier: Callable[[], Awaitable[None]] | None = None,
                      progress: Callable[[Measure], None] | None = None) -> ProcessResult:
    """Open ``associations``, warm up, wait at ``barrier``, measure, release.

    ``instances`` stores per association (or for ``duration`` seconds). Association
    failures are counted as errors; the run goes on with the associations that work.
    """
    measure = Measure()
    shared = PlanCache()
    assocs = [BenchAssociation(cfg, workload, UidSource(nonce, stream_base + i), measure,
                               shared) for i in range(associations)]
    ticker: asyncio.Task[None] | None = None
    if progress is not None:
        ticker = asyncio.get_running_loop().create_task(_tick(progress, measure))
    session_start = time.monotonic()
    setup: list[float] = []
    negotiated: Negotiated | None = None
    sent_total = 0

    async def prepare(a: BenchAssociation) -> BenchAssociation | None:
        nonlocal negotiated, sent_total
        try:
            neg = await a.open()
            setup.append(neg.setup_s)
            negotiated = negotiated or neg
            if warmup:
                n = await a.store(warmup, None)
                sent_total += n  # not "+= await": that would read the total before waiting
            return a
        except BenchError as exc:
            measure.error(str(exc))
            a.close()
            return None

    live = [a for a in await asyncio.gather(*(prepare(a) for a in assocs)) if a is not None]
    if barrier is not None:
        await barrier()
    measure.series = ThroughputSeries(time.monotonic())
    measure.recording = True
    start = time.monotonic()
    deadline = start + duration if duration is not None else None

    async def measured(a: BenchAssociation) -> BenchAssociation | None:
        nonlocal sent_total
        try:
            n = await a.store(instances, deadline)
            sent_total += n
            return a
        except BenchError as exc:
            measure.error(str(exc))
            a.abort()
            return None

    done = [a for a in await asyncio.gather(*(measured(a) for a in live)) if a is not None]
    end = time.monotonic()
    measure.recording = False
    released = await asyncio.gather(*(a.release() for a in done))
    session_end = time.monotonic()
    for a in assocs:
        a.close()
    shared.close()
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        progress(measure)  # type: ignore[misc]
    failed_releases = sum(1 for ok in released if not ok)
    for _ in range(failed_releases):
        measure.error("the peer did not answer A-RELEASE-RQ")
    return ProcessResult(measure, start, end, session_start, session_end, setup, negotiated,
                         len(live), sent_total, failed_releases)


async def _tick(progress: Callable[[Measure], None], measure: Measure) -> None:
    while True:
        progress(measure)
        await asyncio.sleep(0.1)
