"""Store steps: C-STORE with a synthetic data set and any fault (command overrides, malformed
data sets, framing, interleaving, streaming), collecting responses, and the checks that need
the storage directory: C03 status semantics, S01 nothing kept after a failure, S02 nothing
partial after an abort (PS3.4 B.2.3, PS3.7 9.1.1, 9.3.1).

The largest step module: ``store`` is the harness's main instrument and its parameters are
many on purpose (each one a fault the suite injects).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypedDict

from harness.datasets import (
    KINDS,
    MALFORMERS,
    NotApplicable,
    build_instance,
    derive_uid,
    encode_dataset,
    frames_for_pixel_bytes,
    iter_encoded,
    make_instance,
    malform,
    uid_offsets,
    with_sop_class_uid,
    with_sop_instance_uid,
)
from harness.engine.context import ScenarioRun, SentInstance
from harness.engine.semantics import StoreSituation, needs_stored_copy
from harness.engine.steps.association import TIMEOUT_SHOWN
from harness.engine.steps.common import (
    NATIVE,
    NotNegotiated,
    context_result,
    encoding_for,
    needs_scu,
    not_negotiated,
    sop_class,
    transfer_syntax,
    universal,
)
from harness.engine.steps.params import param
from harness.engine.steps.registry import step
from harness.engine.storage import compare
from harness.scu.client import Framing, SimulatedSCU, StoreRequest
from harness.scu.outcome import Outcome
from harness.wire.constants import (
    COMMAND_FIELD,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    VERIFICATION_SOP_CLASS,
)
from harness.wire.dimse import CCancelRQ, encode_command
from harness.wire.status import classify, status_label
from harness.wire.uid import uid_name

# What the bytes of an encoding malformer really are, by the context's transfer syntax: the
# stored object is compared with their true meaning (F06).
REAL_ENCODING = {
    "wrong-transfer-syntax": {IMPLICIT_VR_LE: EXPLICIT_VR_LE, EXPLICIT_VR_LE: IMPLICIT_VR_LE},
    "big-endian-mismatch": {IMPLICIT_VR_LE: EXPLICIT_VR_BE, EXPLICIT_VR_LE: EXPLICIT_VR_BE,
                            EXPLICIT_VR_BE: EXPLICIT_VR_LE},
}


class FramingSpec(TypedDict, total=False):
    """How the message is cut into PDVs and PDUs (:class:`harness.scu.client.Framing`)."""

    max_pdu: int | None
    packing: Literal["separate", "together"]
    command_splits: list[int]
    data_splits: list[int]
    mch_command_bits: int
    mch_data_bits: int
    empty_final_pdv: bool
    data_context_id: int | None
    trickle_bytes: int
    trickle_delay: float
    abort_at: Literal["before-command", "inside-command", "inside-data", "after-data"] | None
    abort_after_bytes: int
    abort_kind: Literal["abort", "rst", "fin", "release"]
    last_bit_early: bool
    pdu_reserved: int
    max_pdu_factor: float
    interleave_after_bytes: int


class InterleaveSpec(TypedDict, total=False):
    """A message injected in the middle of the data set (PS3.8 E.1 forbids it)."""

    message: Literal["cancel", "store"]
    message_id: int
    after_bytes: int


UID_DOC = "; unique:NAME is a fresh UID, the same for NAME throughout the scenario"


@dataclass(frozen=True, kw_only=True)
class StoreParams:
    kind: str = param("synthetic data set kind (" + ", ".join(sorted(KINDS)) + ")", "tiny")
    seed: int = param("seed of the synthetic data set", 0)
    index: int = param("instance number (UIDs derive from kind, seed and index)",
                       shown="unique per store of the run")
    context: int | str = param("presentation context ID, or the SOP class (short name or UID) "
                               "whose accepted context to use",
                               shown="the accepted context of the class")
    transfer_syntax: str = param("transfer syntax of the data set (short name or UID)",
                                 shown="the context's")
    message_id: int = param("Message ID", shown="the next one")
    priority: int = param("Priority (0 medium, 1 high, 2 low)", 0)
    move_originator_aet: str | None = param("Move Originator AE Title, added to the command", None)
    move_originator_message_id: int | None = param("Move Originator Message ID, added to the "
                                                   "command", None)
    sop_class: str = param("SOP class in the command and for choosing the context",
                           shown="the kind's")
    sop_instance: str = param("SOP Instance UID in the command and the data set" + UID_DOC,
                              shown="the instance's")
    command_sop_class: str = param("Affected SOP Class UID of the command only",
                                   shown="sop_class")
    command_sop_instance: str = param("Affected SOP Instance UID of the command only" + UID_DOC,
                                      shown="sop_instance")
    dataset_sop_class: str = param("SOP Class UID written into the data set only",
                                   shown="the kind's")
    dataset_sop_instance: str = param("SOP Instance UID written into the data set only"
                                      + UID_DOC, shown="sop_instance")
    command: dict[str | int, Any] = param("command elements to override: element (hex, "
                                          "e.g. \"0700\") -> value; null leaves it out",
                                          shown="none")
    group_length: int | Literal["auto", "omit"] | None = param(
        "Command Group Length: auto (true value), omit, or a value to write", "auto")
    explicit_vr_command: bool = param("encode the command set in explicit VR (PS3.7 6.3.1 "
                                      "requires implicit)", False)
    data_set_type: int = param("Command Data Set Type", shown="0x0000 with data, 0x0101 "
                                                             "without")
    malform: str = param("damage the data set in a named way", shown="none",
                         choices=sorted(MALFORMERS))
    data_hex: str | None = param("send these data set bytes (hex) instead of a synthetic "
                                 "instance", shown="none")
    no_data: bool = param("send the command without a data set", False)
    framing: FramingSpec = param("PDV/PDU cutting, MCH bits, trickling and aborts at a point "
                                 "(harness.scu.client.Framing)", shown="std-store")
    wait: bool = param("wait for the C-STORE-RSP (false: collect it with wait_response)", True)
    timeout: float | None = param("seconds to wait for the response", shown=TIMEOUT_SHOWN)
    pixel_bytes: int | None = param("Pixel Data size in bytes (frames added to reach it; "
                                    "with stream, the size streamed)", None)
    interleave: InterleaveSpec = param("inject a C-CANCEL (message: cancel) or a whole "
                                       "C-STORE (message: store) after after_bytes of data",
                                       shown="none")
    stream: bool = param("stream a huge object piece by piece (never held in memory)", False)
    unaccepted: bool = param("send even on a context the SCP did not accept (otherwise the "
                             "step is skipped)", False)


@dataclass(frozen=True, kw_only=True)
class WaitResponseParams:
    count: int = param("how many responses to collect", 1)
    timeout: float | None = param("seconds to wait for each", shown=TIMEOUT_SHOWN)


# --- data sets --------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _encoded(kind: str, seed: int, index: int, ts: str, pixel_bytes: int | None) -> bytes:
    if pixel_bytes:
        ds = make_instance(kind, seed=seed, index=index,
                           frames=frames_for_pixel_bytes(kind, pixel_bytes))
    else:
        ds = make_instance(kind, seed=seed, index=index)
    return encode_dataset(ds, ts)


@lru_cache(maxsize=256)
def instance_uids(kind: str, seed: int, index: int) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a synthetic instance, without its pixels."""
    ds = build_instance(kind, seed=seed, index=index, with_pixels=False)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def _interleaved(run: ScenarioRun, spec: dict[str, Any],
                 request: StoreRequest) -> tuple[bytes, bytes | None]:
    """The message injected in the middle of a data set: a C-CANCEL or a whole C-STORE."""
    if spec.get("message", "cancel") == "cancel":
        target = int(spec.get("message_id", request.message_id))
        return encode_command(CCancelRQ(target)), None
    index = 1000 * run.index + 500
    klass, uid = instance_uids("tiny", 0, index)
    other = StoreRequest(int(spec.get("message_id", request.message_id + 1)), klass, uid)
    return other.encode(), _encoded("tiny", 0, index, IMPLICIT_VR_LE, None)


async def _store_stream(run: ScenarioRun, scu: SimulatedSCU, params: dict[str, Any], kind: str,
                        seed: int, index: int, context_id: int, ts: str) -> Outcome:
    total, chunks = iter_encoded(kind, seed=seed, transfer_syntax_uid=ts, index=index,
                                 pixel_bytes=int(params.get("pixel_bytes", 1 << 30)))
    klass, uid = instance_uids(kind, seed, index)
    request = StoreRequest(int(params.get("message_id", next(run.message_ids))), klass, uid)
    out = await scu.store_stream(request, chunks, context_id, timeout=params.get("timeout"))
    out.extra.update(request=request, context_id=context_id, bytes=total)
    out.detail = f"{total / (1 << 20):.0f} MiB streamed; {out.detail}".rstrip("; ")
    if out.kind == "response" and out.message is not None:
        universal(run).store_response(out.message, request.message_id, klass, uid, context_id)
    return out


def _choose_context(scu: SimulatedSCU, params: dict[str, Any], klass: str) -> tuple[int, str]:
    """The context a store goes on. A context the SCP rejected (or never saw) is used only
    when the step says ``unaccepted: true`` (the scenario is about exactly that); otherwise
    the step does not apply (:class:`NotNegotiated`)."""
    ctx = params.get("context")
    accepted = scu.requestor.accepted_contexts
    if isinstance(ctx, int):
        _abstract, ts = accepted.get(ctx, ("", ""))
        if not ts and not params.get("unaccepted"):
            raise NotNegotiated(f"presentation context {ctx} was not accepted "
                                f"({context_result(scu, ctx)}): nothing sent on it")
        return ctx, ts or transfer_syntax(params.get("transfer_syntax", "IVRLE"))
    wanted = sop_class(ctx) if ctx else klass
    found = scu.context_for(wanted)
    if found is None:
        raise NotNegotiated(f"no presentation context for {uid_name(wanted)} was accepted")
    return found


def resolve_uid(run: ScenarioRun, value: Any) -> str:
    """``unique:NAME`` is a fresh UID, the same for NAME throughout one scenario run."""
    text = str(value)
    if text.startswith("unique:"):
        if text not in run.uids:
            run.uids[text] = derive_uid("scenario", run.scenario.id, text, run.started)
        return run.uids[text]
    return text.replace("\\0", "\x00")


@step("store", StoreParams)
@needs_scu
async def op_store(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send a C-STORE-RQ with a synthetic data set (faults optional); wait for the response.
    A store on a context the SCP did not accept is skipped unless unaccepted: true."""
    params = {k: resolve_uid(run, v) if k.endswith("sop_instance") else v
              for k, v in params.items()}
    kind = str(params.get("kind", "tiny"))
    seed = int(params.get("seed", 0))
    index = int(params.get("index", 1000 * run.index + len(run.sent)))
    klass = KINDS[kind].sop_class_uid
    try:
        context_id, context_ts = _choose_context(scu, params, sop_class(params.get(
            "command_sop_class", params.get("sop_class", klass))))
    except NotNegotiated as exc:
        return not_negotiated(str(exc))
    ts = transfer_syntax(params.get("transfer_syntax", context_ts))
    if ts not in NATIVE and "transfer_syntax" not in params and "data_hex" not in params:
        return Outcome("skipped", f"the accepted transfer syntax {uid_name(ts)} needs "
                       "encapsulated (compressed) Pixel Data, which the harness does not "
                       "encode")
    ts_encode = encoding_for(ts)  # an encapsulated syntax asked for gets native bytes
    real_ts: str | None = None
    if params.get("stream"):
        return await _store_stream(run, scu, params, kind, seed, index, context_id, ts_encode)
    sent_class, sent_uid = instance_uids(kind, seed, index)
    if "data_hex" in params:
        data: bytes | None = bytes.fromhex(str(params["data_hex"]))
    else:
        data = _encoded(kind, seed, index, ts_encode, params.get("pixel_bytes"))
        try:
            if "sop_instance" in params or "dataset_sop_instance" in params:
                data = with_sop_instance_uid(data, ts_encode, str(params.get(
                    "dataset_sop_instance", params.get("sop_instance"))))
                sent_uid = str(params.get("dataset_sop_instance", params.get("sop_instance")))
            if "dataset_sop_class" in params:
                data = with_sop_class_uid(data, ts_encode, sop_class(params["dataset_sop_class"]))
            if "malform" in params:
                data = malform(str(params["malform"]), data, ts_encode, seed)
                real_ts = REAL_ENCODING.get(str(params["malform"]), {}).get(ts_encode)
        except NotApplicable as exc:
            return Outcome("error", f"malformer does not apply: {exc}")
    if params.get("no_data"):
        data = None
    msg_id = int(params.get("message_id", next(run.message_ids)))
    real_ts = real_ts or ts_encode
    request = StoreRequest(
        message_id=msg_id,
        sop_class_uid=sop_class(params.get("command_sop_class", params.get("sop_class",
                                                                          sent_class))),
        sop_instance_uid=str(params.get("command_sop_instance", params.get("sop_instance",
                                                                          sent_uid))),
        priority=int(params.get("priority", 0)),
        command_data_set_type=int(params.get("data_set_type", 0x0000 if data is not None
                                             else 0x0101)),
        move_originator_aet=params.get("move_originator_aet"),
        move_originator_message_id=params.get("move_originator_message_id"),
        overrides={int(str(k), 16): v for k, v in (params.get("command") or {}).items()},
        group_length=params.get("group_length", "auto"),
        explicit_vr=bool(params.get("explicit_vr_command", False)),
    )
    framing = Framing(**(params.get("framing") or {}))
    inter = params.get("interleave")
    if inter:
        framing.interleave_after_bytes = int(inter.get("after_bytes", 512))
        framing.interleave = [_interleaved(run, inter, request)]
    altered = any(k in params for k in ("malform", "data_hex", "dataset_sop_class",
                                        "dataset_sop_instance", "no_data"))
    situation = _situation(scu, request, context_id, sent_uid if data is not None else None,
                           altered)
    if "dataset_sop_class" in params:
        situation.dataset_sop_class = sop_class(params["dataset_sop_class"])
    uids = {u.rstrip("\x00") for u in (request.sop_instance_uid, sent_uid)}
    if data is not None and ("malform" in params or "data_hex" in params):
        # A malformer may have changed the data set's own UIDs: look for that one too, and
        # judge 0x0122 against the class the data set really holds.
        in_data = _dataset_uid(data, real_ts)
        if in_data:
            uids.add(in_data)
            situation.dataset_sop_instance = in_data
        situation.dataset_sop_class = _dataset_uid(data, real_ts, "SOPClassUID") or \
            situation.dataset_sop_class
    before = run.inspector.snapshot(uids) if run.inspector is not None and \
        data is not None else None
    mark = len(run.trace.entries)
    out = await scu.store(request, data, context_id, framing=framing,
                          wait=bool(params.get("wait", True)), timeout=params.get("timeout"))
    if out.kind == "response":
        universal(run).early_response(run.trace.entries[mark:], scu.assoc_id, out.status)
    out.extra.update(request=request, context_id=context_id, situation=situation)
    if data is not None:
        run.sent.append(SentInstance(sent_uid, sent_class, real_ts, bytes(data), out.kind))
        out.extra["sent"] = run.sent[-1]
        if before is not None:
            out.extra["kept"] = KeptWatch(uids, before, run.sent[-1], len(run.sent) - 1)
    if out.kind == "response" and out.message is not None:
        # Without (0000,0110) in the request the SCP cannot echo it (G01): not checked.
        answered = None if request.overrides.get(MESSAGE_ID, 0) is None else msg_id
        universal(run).store_response(out.message, answered, request.sop_class_uid,
                                      request.sop_instance_uid, context_id)
        after_response(run, out.status, out.extra)
    elif out.kind in ("abort", "close") and "kept" in out.extra:
        watch: KeptWatch = out.extra["kept"]
        run.deferred.append(lambda: _nothing_partial(run, watch, out.describe()))
    return out


def _dataset_uid(data: bytes | bytearray, ts: str,
                 keyword: str = "SOPInstanceUID") -> str | None:
    """A top-level UID (SOP Instance or Class) inside encoded data set bytes, if they can be
    walked."""
    try:
        offset, length = uid_offsets(data, ts)[keyword]
    except Exception:  # a damaged data set: the walk may fail in many ways
        return None
    return bytes(data[offset:offset + length]).decode("ascii", "replace").rstrip("\x00 ")


@dataclass(slots=True)
class KeptWatch:
    """What one store may leave in the storage directory: its UIDs (command and data set)
    and the files holding them before it began."""

    uids: set[str]
    before: dict[Any, tuple[int, int, int]]
    sent: SentInstance
    position: int  # index in run.sent


def _situation(scu: SimulatedSCU, request: StoreRequest, context_id: int,
               dataset_uid: str | None, altered: bool) -> StoreSituation:
    accepted = scu.requestor.accepted_contexts
    abstract = accepted.get(context_id, ("", ""))[0]
    duplicate = request.message_id in scu.pending
    command_field = request.overrides.get(COMMAND_FIELD, 0x0001)
    return StoreSituation(
        command_field=command_field if isinstance(command_field, int) else 0x0001,
        context_abstract=abstract, context_accepted=context_id in accepted,
        storage_context=abstract != VERIFICATION_SOP_CLASS,
        command_sop_class=str(request.sop_class_uid).rstrip("\x00"),
        command_sop_instance=str(request.sop_instance_uid).rstrip("\x00"),
        dataset_sop_instance=dataset_uid.rstrip("\x00") if dataset_uid is not None else None,
        dataset_altered=altered, duplicate_id=duplicate)


def after_response(run: ScenarioRun, status: int | None, extra: dict[str, Any]) -> None:
    """Universal checks that need the request's situation and the storage directory: C03
    (status semantics) and S01 (nothing kept after a failure)."""
    situation: StoreSituation | None = extra.get("situation")
    watch: KeptWatch | None = extra.get("kept")
    if status is None:
        return
    category = str(classify(status))
    if situation is not None and watch is not None and needs_stored_copy(status):
        found = run.inspector.written_since(watch.before, {watch.sent.sop_instance_uid})
        if found:
            problems = compare(found[-1].path, watch.sent.data, watch.sent.transfer_syntax)
            situation.stored_differs = None if problems is None else bool(problems)
    universal(run).status_fits(status, situation)
    if watch is None or category != "Failure":
        return
    label = status_label(status)
    _kept_after_failure(run, watch, label)

    async def again() -> None:
        # The SCP may write after it answered: look once more at the end of the scenario,
        # unless a later store of the scenario reused one of these UIDs.
        if any(s.sop_instance_uid in watch.uids for s in run.sent[watch.position + 1:]):
            return
        await asyncio.sleep(0.3)
        _kept_after_failure(run, watch, label, final=True)
    run.deferred.append(again)


def _kept_after_failure(run: ScenarioRun, watch: KeptWatch, label: str,
                        final: bool = False) -> None:
    name = "S01 nothing kept after a failure"
    universal(run).seen.add(name)
    found = run.inspector.written_since(watch.before, watch.uids)
    if found:
        where = ", ".join(f"{f.path.name} (SOP Instance UID {f.sop_instance_uid})"
                          for f in found[:3])
        note = f"answered {label}, yet the storage directory gained {where}"
        late = " after the response"  # the second look (final); one note per finding
        if note not in {t.removesuffix(late) for _s, t in universal(run).problems.get(name, [])}:
            universal(run).note(name, "must", note + (late if final else ""))


async def _nothing_partial(run: ScenarioRun, watch: KeptWatch, how: str) -> None:
    """S02: a store cut by an A-ABORT or a close leaves nothing, or the complete object."""
    await asyncio.sleep(0.3)
    name = "S02 nothing partial after an abort"
    universal(run).seen.add(name)
    for f in run.inspector.written_since(watch.before, watch.uids):
        problems = compare(f.path, watch.sent.data, watch.sent.transfer_syntax)
        if problems or (problems is None and f.size < len(watch.sent.data)):
            detail = "; ".join(problems[:2]) if problems else f"{f.size} bytes"
            universal(run).note(name, "must", f"the store ended by {how}, yet "
                                              f"{f.path.name} was kept and differs from what "
                                              f"was sent ({detail})")


@step("wait_response", WaitResponseParams)
@needs_scu
async def op_wait_response(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Wait for responses to requests sent with wait: false (count, default 1)."""
    count = int(params.get("count", 1))
    responses = []
    out = Outcome("hang")
    for _ in range(count):
        out = await scu.wait_response(params.get("timeout"))
        if out.kind != "response" or out.message is None:
            break
        responses.append(out.message)
        answered = out.message.command.elements.get(MESSAGE_ID_BEING_RESPONDED_TO)
        req = _request_for(run, answered)
        if req is None:
            universal(run).unexpected_response(out.message)
        else:
            universal(run).store_response(out.message, req[0], req[1], req[2], req[3])
            after_response(run, out.status, req[4])
    out.responses = responses
    return out


def _request_for(run: ScenarioRun, msg_id: Any) -> tuple[int, str, str, int,
                                                         dict[str, Any]] | None:
    """The oldest unanswered request with this Message ID (duplicates answer in order)."""
    for entry in run.step_outcomes:
        request = entry.extra.get("request")
        if request is not None and request.message_id == msg_id and not entry.extra.get(
                "answered"):
            entry.extra["answered"] = True
            return (request.message_id, request.sop_class_uid, request.sop_instance_uid,
                    entry.extra.get("context_id", 0), entry.extra)
    return None
