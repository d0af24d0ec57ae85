"""``WorkerPool`` (``serve --workers N``): pre-forked SCP processes sharing one port."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _scp_support import association, encode_dataset, make_ct, status_of, store, stored_files

from harness.scp import Profile
from harness.scp.storage import leftover_parts
from harness.scp.workers import WorkerPool

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need os.fork")


async def _store_many(port: int, associations: int, per_association: int) -> list[int]:
    async def one(a: int) -> list[int]:
        statuses = []
        async with association(port) as req:
            for i in range(per_association):
                uid = f"1.2.826.0.1.3680043.8.498.88.{a}.{i + 1}"
                data = encode_dataset(make_ct(uid, rows=4, columns=4))
                statuses.append(status_of(await store(req, data, uid, msg_id=i + 1)))
            await req.release(5)
        return statuses

    results = await asyncio.wait_for(asyncio.gather(*(one(a) for a in range(associations))), 30)
    return [s for r in results for s in r]


def test_workers_store_everything_and_report_counts(tmp_path: Path) -> None:
    pool = WorkerPool(Profile(max_associations=16), tmp_path, workers=2)
    port = pool.start()
    try:
        assert len(pool.pids) == 2 and len(pool.alive()) == 2
        statuses = asyncio.run(_store_many(port, 4, 5))
    finally:
        total = pool.stop()
    assert statuses == [0] * 20
    assert total == 20
    assert len(stored_files(tmp_path)) == 20
    assert leftover_parts(tmp_path) == []
    assert pool.alive() == [] and pool.pids == []


def test_start_inside_an_event_loop_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="outside an event loop"):
            WorkerPool(Profile(), tmp_path, workers=2).start()

    asyncio.run(main())


def test_bad_worker_count() -> None:
    with pytest.raises(ValueError):
        WorkerPool(Profile(), ".", workers=0)


def test_workers_end_with_their_owner(tmp_path: Path) -> None:
    """Killing the owning process (even with SIGKILL) ends the workers: no orphans."""
    code = ("import sys, time\n"
            "from harness.scp import Profile\n"
            "from harness.scp.workers import WorkerPool\n"
            f"pool = WorkerPool(Profile(), {str(tmp_path)!r}, workers=2)\n"
            "pool.start()\n"
            "print(*pool.pids, flush=True)\n"
            "time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.05)
        assert not any(_running(p) for p in pids)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(5)
        if owner.stdout is not None:
            owner.stdout.close()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited worker whose parent died is reaped by init; until then it is a zombie.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("backoff", "settle", "connections"), [
    (30.0, 0.0, 1),  # the busy one is still backing off when the connection comes
    (0.05, 0.2, 6),  # it is back waiting on the socket: both wake, the idle one must win
])
def test_shared_socket_new_connections_go_to_an_idle_process(
        tmp_path: Path, backoff: float, settle: float, connections: int) -> None:
    """Two SCPs on one listening socket (as pre-forked workers are): while the first holds
    an association, the second takes every next connection (before, when both were waiting,
    each wake-up was a coin toss)."""
    import socket as socketlib

    from harness.scp import StorageSCP

    async def main() -> tuple[int, int]:
        listener = socketlib.create_server(("127.0.0.1", 0), backlog=16)
        shared = listener.dup()
        busy = StorageSCP(Profile(), tmp_path / "busy")
        idle = StorageSCP(Profile(), tmp_path / "idle")
        busy.server.config.shared_accept_backoff = backoff
        try:
            port = await busy.server.start(sock=listener)
            async with association(port) as first:
                await idle.server.start(sock=shared)
                await asyncio.sleep(settle)
                for n in range(connections):
                    async with association(port) as other:
                        uid = f"1.2.826.0.1.3680043.8.498.88.99.{n + 1}"
                        data = encode_dataset(make_ct(uid, rows=4, columns=4))
                        assert status_of(await store(other, data, uid, msg_id=1)) == 0
                        await other.release(5)
                    await asyncio.sleep(0.1)  # the idle one is idle again
                await first.release(5)
            return len(busy.records), len(idle.records)
        finally:
            await busy.stop()
            await idle.stop()
            listener.close()
            shared.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (0, connections)
    assert len(stored_files(tmp_path / "idle")) == connections
