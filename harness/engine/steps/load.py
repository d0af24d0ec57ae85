"""Load steps: many stores and associations at once (parallel associations, pipelining within
the negotiated asynchronous window, batches in one write, association and connection floods;
PS3.7 D.3.3.3, PS3.8 9.1.4)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypedDict

from harness.datasets import KINDS, patch_uid, uid_of_length, uid_offsets, with_sop_instance_uid
from harness.engine.context import ScenarioRun
from harness.engine.steps.association import TIMEOUT_SHOWN, op_associate, op_release
from harness.engine.steps.common import (
    _scu,
    encoding_for,
    not_negotiated,
    transfer_syntax,
    universal,
)
from harness.engine.steps.params import param
from harness.engine.steps.registry import step
from harness.engine.steps.store import (
    _encoded,
    _situation,
    instance_uids,
    op_store,
    op_wait_response,
    resolve_uid,
)
from harness.scu.client import StoreRequest
from harness.scu.outcome import Outcome


class BatchEntry(TypedDict, total=False):
    """One store of a ``store_batch``."""

    message_id: int
    kind: str
    seed: int
    sop_instance: str


@dataclass(frozen=True, kw_only=True)
class StoreManyParams:
    count: int = param("stores per association", 10)
    associations: int = param("associations in parallel", 1)
    kind: str = param("synthetic data set kind (" + ", ".join(sorted(KINDS)) + ")", "tiny")
    transfer_syntax: str = param("transfer syntax of the data sets", shown="the context's")
    timeout: float | None = param("seconds to wait for each response", shown=TIMEOUT_SHOWN)


@dataclass(frozen=True, kw_only=True)
class PipelineParams:
    count: int = param("stores to send before collecting", shown="the negotiated window, "
                                                                 "else 5")
    window_only: bool = param("skip on a synchronous association (no window negotiated)",
                              False)
    timeout: float | None = param("seconds to wait for each response", shown=TIMEOUT_SHOWN)


@dataclass(frozen=True, kw_only=True)
class AssociationFloodParams:
    max: int = param("stop after this many associations", 64)
    hold_store: bool = param("check with a store that the held associations still work",
                             True)


@dataclass(frozen=True, kw_only=True)
class ConnectionFloodParams:
    count: int = param("idle TCP connections to open", 200)


@dataclass(frozen=True, kw_only=True)
class StoreBatchParams:
    stores: list[BatchEntry] = param("the stores (message_id, kind, seed, sop_instance "
                                     "each; unique:NAME for a fresh UID)",
                                     shown="two default stores")
    timeout: float | None = param("seconds to wait for each response", shown=TIMEOUT_SHOWN)


class UniqueCopies:
    """Pre-encoded instance whose SOP Instance UID is patched in place per copy (no pydicom
    per store): what many-store scenarios need to stay fast."""

    def __init__(self, kind: str, ts: str) -> None:
        self.template = _encoded(kind, 0, 0, ts, None)
        self.klass = KINDS[kind].sop_class_uid
        self.offset, self.length = uid_offsets(self.template, ts)["SOPInstanceUID"]
        self.base = int(time.time() * 1000) % 10**9 * 10**6

    def copy(self, n: int) -> tuple[bytes, str]:
        buf = bytearray(self.template)
        uid = uid_of_length(self.base + n, self.length)
        patch_uid(buf, self.offset, self.length, uid)
        return bytes(buf), uid


@step("store_many", StoreManyParams)
async def op_store_many(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Several associations in parallel, each storing count instances sequentially."""
    count = int(params.get("count", 10))
    n_assoc = int(params.get("associations", 1))
    kind = str(params.get("kind", "tiny"))

    async def one(a: int) -> tuple[list[Outcome], Outcome | None]:
        label = f"{name}-{a}"
        setup = await op_associate(run, {}, label)
        if setup.kind != "accepted":
            return [], setup
        scu = run.associations[label]
        found = scu.context_for(KINDS[kind].sop_class_uid)
        if found is None:
            return [], not_negotiated(f"no presentation context for {kind} was accepted")
        cid, ts = found
        copies = UniqueCopies(kind, transfer_syntax(params.get("transfer_syntax", ts)))
        outs = []
        for i in range(count):
            data, uid = copies.copy(a * count + i)
            request = StoreRequest(i + 1, copies.klass, uid)
            out = await scu.store(request, data, cid, timeout=params.get("timeout"))
            outs.append(out)
            if out.kind != "response" or out.message is None:
                break
            universal(run).store_response(out.message, i + 1, copies.klass, uid, cid)
        await scu.release(run.timeout)
        return outs, None
    start = time.monotonic()
    results = await asyncio.gather(*(one(a) for a in range(n_assoc)))
    elapsed = time.monotonic() - start
    all_outs = [o for outs, _ in results for o in outs]
    setup_failures = [s for _, s in results if s is not None]
    bad = [o for o in all_outs if o.kind != "response" or (o.category or "") != "Success"]
    latencies = sorted(o.elapsed for o in all_outs)
    out = Outcome("response" if not bad and not setup_failures else (
        bad[0].kind if bad else setup_failures[0].kind), elapsed=elapsed)
    if all_outs and not bad and not setup_failures:
        out.message = all_outs[-1].message
    elif bad and bad[0].message is not None:
        out.message = bad[0].message
    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if \
            latencies else 0.0

    out.detail = (f"{len(all_outs)}/{count * n_assoc} stores on {n_assoc} association(s), "
                  f"{len(bad)} not Success, {len(setup_failures)} association(s) refused; "
                  f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, {elapsed:.2f} s")
    out.extra["stores"] = len(all_outs)
    return out


@step("pipeline", PipelineParams)
async def op_pipeline(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Send count stores without waiting, then collect the responses (D04 uses the
    negotiated asynchronous window; with window_only the step is skipped on a synchronous
    association)."""
    scu = _scu(run, name)
    if isinstance(scu, Outcome):
        return scu
    ac = scu.ac
    window = ac.user_information.async_ops_window if ac and ac.user_information else None
    invoked = window[0] if window else 1
    count = int(params.get("count", invoked if invoked else 5))
    if params.get("window_only") and invoked == 1:
        out = Outcome("sent", "the SCP negotiated no asynchronous window (synchronous only)")
        out.extra["skipped"] = True
        return out
    for _ in range(count):
        sent = await op_store(run, {"wait": False}, name)
        if sent.kind != "sent":
            return sent
        # Known as outstanding, so that wait_response matches its answer to it (C01, S01).
        run.step_outcomes.append(sent)
    return await op_wait_response(run, {"count": count, "timeout": params.get("timeout")}, name)


@step("association_flood", AssociationFloodParams)
async def op_association_flood(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Open associations one after another (holding them) until the SCP refuses one or max
    is reached; then check that the held associations still work and close them."""
    limit = int(params.get("max", 64))
    opened: list[str] = []
    refusal: Outcome | None = None
    for i in range(limit):
        label = f"{name}-{i}"
        out = await op_associate(run, {}, label)
        if out.kind != "accepted":
            refusal = out
            break
        opened.append(label)
    still_ok = True
    if opened and params.get("hold_store", True):
        check = await op_store(run, {}, opened[0])
        # Skipped: no CT context was accepted, so there is nothing to store with.
        still_ok = check.kind == "skipped" or (
            check.kind == "response" and (check.category or "") in ("Success", "Warning"))
    for label in opened:
        await run.associations[label].release(run.timeout)
    run.observed["max_associations_seen"] = len(opened)
    if opened:
        run.check("held associations keep working", "must", still_ok,
                  "a store on an association opened before the refusal succeeds",
                  "it did" if still_ok else "it failed", "PS3.8 9.1.4 Note 1")
    result = refusal or Outcome("accepted", f"all {limit} associations accepted")
    result.detail = (f"{len(opened)} association(s) accepted before "
                     f"{'the refusal' if refusal else 'stopping'}; held associations "
                     f"{'still worked' if still_ok else 'FAILED to store'}. {result.detail}")
    result.extra["held_ok"] = still_ok
    return result


@step("connection_flood", ConnectionFloodParams)
async def op_connection_flood(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Open count TCP connections that send nothing, then try a normal association while
    they are open; close them afterwards."""
    count = int(params.get("count", 200))
    writers = []
    for _ in range(count):
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection(run.target.host,
                                                                   run.target.port), 5.0)
        except (OSError, TimeoutError):
            break
        writers.append(w)
    try:
        out = await op_associate(run, {}, name)
        if out.kind == "accepted":
            await op_release(run, {}, name)
        elif out.kind == "error" and out.detail.startswith("cannot connect"):
            # The flood itself made the target stop accepting TCP: that is the finding.
            out = Outcome("hang" if "timed out" in out.detail else "close", out.detail,
                          out.elapsed)
        out.detail = f"{len(writers)} idle connections open; {out.detail}"
        return out
    finally:
        for w in writers:
            w.close()


@step("store_batch", StoreBatchParams)
async def op_store_batch(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Send several stores in one TCP write without waiting (each entry: message_id, kind,
    seed, sop_instance), then collect one response per store."""
    scu = _scu(run, name)
    if isinstance(scu, Outcome):
        return scu
    entries = params.get("stores") or [{}, {}]
    batch: list[tuple[StoreRequest, bytes | None]] = []
    context_id = 0
    for i, entry in enumerate(entries):
        kind = str(entry.get("kind", "tiny"))
        seed = int(entry.get("seed", 0))
        index = 1000 * run.index + 100 + i
        found = scu.context_for(KINDS[kind].sop_class_uid)
        if found is None:
            return not_negotiated(f"no presentation context for {kind} was accepted")
        context_id, ts = found
        encoding = encoding_for(ts)
        data = _encoded(kind, seed, index, encoding, None)
        klass, uid = instance_uids(kind, seed, index)
        if "sop_instance" in entry:
            uid = resolve_uid(run, entry["sop_instance"])
            data = with_sop_instance_uid(data, encoding, uid)
        request = StoreRequest(int(entry.get("message_id", next(run.message_ids))), klass, uid)
        situation = _situation(scu, request, context_id, uid, False)
        # Sent in one write: an earlier request of the batch is outstanding too.
        situation.duplicate_id |= any(r.message_id == request.message_id for r, _ in batch)
        batch.append((request, data))
        run.step_outcomes.append(Outcome("sent", extra={"request": request,
                                                        "context_id": context_id,
                                                        "situation": situation}))
    sent = await scu.store_batch(batch, context_id)
    if sent.kind != "sent":
        return sent
    return await op_wait_response(run, {"count": len(batch), "timeout": params.get("timeout")},
                                  name)
