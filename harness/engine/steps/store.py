"""Scenario operations: what each ``- op: {...}`` of a scenario file does.

Each operation drives a :class:`~harness.scu.client.SimulatedSCU` and returns an
:class:`~harness.scu.outcome.Outcome`; the runner then judges the step's ``expect``. The
registry ``STEPS`` (name -> parameters, doc, function) is what the loader validates against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from harness.datasets import (
    KINDS,
    NotApplicable,
    encode_dataset,
    frames_for_pixel_bytes,
    make_instance,
    malform,
    with_sop_class_uid,
    with_sop_instance_uid,
)
from harness.engine.context import ScenarioRun, SentInstance
from harness.engine.semantics import StoreSituation
from harness.engine.universal import UniversalChecks
from harness.net.connection import ConnectionClosed, PeerTimeout
from harness.scu.client import Framing, SimulatedSCU, StoreRequest
from harness.scu.outcome import Outcome
from harness.wire.constants import (
    APPLICATION_CONTEXT_NAME,
    COMMAND_FIELD,
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    SOP_CLASS_SHORT_NAMES,
    TRANSFER_SYNTAX_SHORT_NAMES,
    VERIFICATION_SOP_CLASS,
)
from harness.wire.items import (
    AsyncOpsWindow,
    ImplementationClassUID,
    MaximumLength,
    PresentationContextRQ,
    RawItem,
    RoleSelection,
    SubItem,
    UserInformation,
)
from harness.wire.pdu import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    RawPDU,
    ReleaseRP,
    ReleaseRQ,
)

SOP_CLASSES = SOP_CLASS_SHORT_NAMES
TRANSFER_SYNTAXES = TRANSFER_SYNTAX_SHORT_NAMES
NATIVE = {IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE}
# What the bytes of an encoding malformer really are, by the context's transfer syntax: the
# stored object is compared with their true meaning (F06).
REAL_ENCODING = {
    "wrong-transfer-syntax": {IMPLICIT_VR_LE: EXPLICIT_VR_LE, EXPLICIT_VR_LE: IMPLICIT_VR_LE},
    "big-endian-mismatch": {IMPLICIT_VR_LE: EXPLICIT_VR_BE, EXPLICIT_VR_LE: EXPLICIT_VR_BE,
                            EXPLICIT_VR_BE: EXPLICIT_VR_LE},
}
KIND_FOR_CLASS = {spec.sop_class_uid: name for name, spec in KINDS.items() if name != "tiny"}
KIND_FOR_CLASS[SOP_CLASSES["CT"]] = "tiny"


def sop_class(value: Any) -> str:
    text = str(value)
    return SOP_CLASSES.get(text.upper(), text)


def transfer_syntax(value: Any) -> str:
    text = str(value)
    return TRANSFER_SYNTAXES.get(text.upper(), text)


StepFunc = Callable[[ScenarioRun, dict[str, Any], str], Awaitable[Outcome]]


@dataclass(slots=True)
class StepSpec:
    params: set[str]
    doc: str
    func: StepFunc


STEPS: dict[str, StepSpec] = {}


def step(name: str, params: str, doc: str) -> Callable[[StepFunc], StepFunc]:
    def register(func: StepFunc) -> StepFunc:
        STEPS[name] = StepSpec(set(params.split()), doc, func)
        return func
    return register


def universal(run: ScenarioRun) -> UniversalChecks:
    return run.universal


# --- association ------------------------------------------------------------------------------


async def connect(run: ScenarioRun, name: str) -> SimulatedSCU | Outcome:
    existing = run.associations.get(name)
    if existing is not None and not existing.conn.is_closed:
        return existing
    try:
        scu = await SimulatedSCU.connect(run.target.host, run.target.port,
                                         timeout=run.timeout, trace=run.trace,
                                         assoc_id=run.next_assoc_id(),
                                         tls=run.target.tls.context if run.target.tls else None)
    except (ConnectionClosed, PeerTimeout) as exc:
        return Outcome("error", f"cannot connect: {exc}")
    run.associations[name] = scu
    return scu


def _contexts(spec: Any) -> list[PresentationContextRQ]:
    if spec in (None, "std", "standard"):
        from harness.scu.client import standard_contexts

        return standard_contexts()
    if isinstance(spec, dict) and "generate" in spec:
        # K05: many contexts over the storage classes pydicom knows, 5 syntaxes each.
        from harness.scp.negotiation import storage_sop_classes

        classes = sorted(storage_sop_classes())
        syntaxes = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE,
                    TRANSFER_SYNTAXES["JPEG_BASELINE"]]
        count = min(int(spec["generate"]), 128)
        return [PresentationContextRQ(2 * i + 1, classes[i % len(classes)], list(syntaxes))
                for i in range(count)]
    out = []
    for i, item in enumerate(spec):
        cid = int(item.get("id", 2 * i + 1))
        ts = item.get("ts", ["IVRLE"])
        out.append(PresentationContextRQ(cid, sop_class(item.get("abstract", "CT")),
                                         [transfer_syntax(t) for t in
                                          ([ts] if isinstance(ts, str) else ts)]))
    return out


def _user_items(params: dict[str, Any]) -> list[SubItem]:
    extra: list[SubItem] = []
    if "async_window" in params:
        invoked, performed = params["async_window"]
        extra.append(AsyncOpsWindow(int(invoked), int(performed)))
    roles = params.get("roles") or []
    if isinstance(roles, dict) and "generate" in roles:
        from harness.scp.negotiation import storage_sop_classes

        roles = [{"sop_class": c, "scu": 1, "scp": 0}
                 for c in sorted(storage_sop_classes())[: int(roles["generate"])]]
    for role in roles:
        extra.append(RoleSelection(sop_class(role.get("sop_class", "CT")),
                                   int(role.get("scu", 1)), int(role.get("scp", 0))))
    for raw in params.get("extra_user_items") or []:
        extra.append(RawItem(int(raw["type"]), bytes.fromhex(str(raw.get("data", "")))))
    return extra


def build_rq(run: ScenarioRun, params: dict[str, Any]) -> AssociateRQ:
    called = params.get("called_ae", run.target.called_aet)
    calling = params.get("calling_ae", run.target.calling_aet)
    if isinstance(called, str) and called.startswith("hex:"):
        called = bytes.fromhex(called[4:])
    if isinstance(calling, str) and calling.startswith("hex:"):
        calling = bytes.fromhex(calling[4:])
    from harness.wire.pdu import associate_rq

    rq = associate_rq(called, calling, _contexts(params.get("contexts")),
                      max_pdu=int(params.get("max_pdu", 16384)),
                      extra_user_items=_user_items(params),
                      application_context=str(params.get("application_context",
                                                         APPLICATION_CONTEXT_NAME)))
    if "protocol_version" in params:
        rq.protocol_version = int(params["protocol_version"])
    ui = rq.user_information
    assert ui is not None
    for omit in params.get("omit_user_items") or []:
        kind = {"max_length": MaximumLength, "implementation_class_uid":
                ImplementationClassUID}[omit]
        ui.sub_items = [s for s in ui.sub_items if not isinstance(s, kind)]
    if params.get("user_items_order") == "reverse":
        ui.sub_items.reverse()
    if params.get("reserved_nonzero"):
        rq.reserved_header = 0xFF
        rq.reserved_version = 0xFFFF
        rq.reserved_tail = bytes([0xA5]) * 32
        for item in rq.items:
            if isinstance(item, PresentationContextRQ):
                item.reserved = (0xFF, 0xFF, 0xFF, 0xFF)
            else:
                item.reserved = 0xFF
    if params.get("items_order") == "user-info-first":
        rq.items = [i for i in rq.items if isinstance(i, UserInformation)] + [
            i for i in rq.items if not isinstance(i, UserInformation)]
    return rq


@step("associate", "called_ae calling_ae contexts max_pdu protocol_version application_context "
      "async_window roles extra_user_items omit_user_items user_items_order reserved_nonzero "
      "items_order timeout record",
      "Open TCP and send an A-ASSOCIATE-RQ (std-RQ unless changed); wait for the answer.")
async def op_associate(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    scu = await connect(run, name)
    if isinstance(scu, Outcome):
        return scu
    rq = build_rq(run, params)
    run.our_max[scu.assoc_id] = rq.max_pdu_length or 0
    ids = [pc.context_id for pc in rq.presentation_contexts]
    if any(i % 2 == 0 for i in ids) or len(set(ids)) != len(ids):
        run.echoed.add("Presentation-context-ID")
    from harness.wire.uid import ae_title_problem, encode_ae_title

    for field, value in (("Calling-AE-title", rq.calling_ae), ("Called-AE-title", rq.called_ae)):
        if ae_title_problem(encode_ae_title(value)):
            run.echoed.add(field)  # an AC must echo these fields, invalid or not
    out = await scu.associate(rq, params.get("timeout"))
    ac = scu.ac
    if out.kind == "accepted" and ac is not None:
        universal(run).associate_ac(rq, ac)
        observe_ac(run, rq, ac)
        out.extra["ac"] = ac
    out.extra["rq"] = rq
    return out


def observe_ac(run: ScenarioRun, rq: AssociateRQ, ac: AssociateAC) -> None:
    """Feed the observed conformance statement from an A-ASSOCIATE-AC."""
    obs = run.observed
    proposed = {pc.context_id: str(pc.abstract_syntax) for pc in rq.presentation_contexts}
    accepted = obs.setdefault("accepted", {})
    rejected = obs.setdefault("rejected", {})
    offered = {pc.context_id: [str(t) for t in pc.transfer_syntaxes]
               for pc in rq.presentation_contexts}
    rejected_ts = obs.setdefault("rejected_ts", {})
    for pc in ac.presentation_contexts:
        abstract = proposed.get(pc.context_id, "?")
        if pc.result == 0:
            accepted.setdefault(abstract, set()).add(str(pc.transfer_syntax))
        else:
            rejected.setdefault(abstract, pc.result)
            if pc.result == 4 and len(offered.get(pc.context_id, [])) == 1:
                # One syntax offered and refused: that syntax is not supported for the class.
                rejected_ts.setdefault((abstract, offered[pc.context_id][0]), pc.result)
    ui = ac.user_information
    if ui is not None:
        obs.setdefault("max_pdu", ui.maximum_length)
        obs.setdefault("implementation_class_uid", ui.implementation_class_uid)
        obs.setdefault("implementation_version_name", ui.implementation_version_name)
        if ui.async_ops_window is not None:
            obs["async_window"] = list(ui.async_ops_window)


@step("connect", "", "Open a TCP connection only (no A-ASSOCIATE-RQ).")
async def op_connect(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    scu = await connect(run, name)
    return scu if isinstance(scu, Outcome) else Outcome("sent", "TCP connected")


def _scu(run: ScenarioRun, name: str) -> SimulatedSCU | Outcome:
    scu = run.associations.get(name)
    if scu is None:
        return Outcome("error", f"association '{name}' was never opened in this scenario")
    return scu


ScuStep = Callable[[ScenarioRun, dict[str, Any], SimulatedSCU], Awaitable[Outcome]]


def needs_scu(func: ScuStep) -> StepFunc:
    """Run a step on the scenario's association called ``name`` (an error if never opened)."""

    async def on_association(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
        scu = _scu(run, name)
        return scu if isinstance(scu, Outcome) else await func(run, params, scu)

    on_association.__doc__ = func.__doc__
    return on_association


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
    from harness.datasets import build_instance

    ds = build_instance(kind, seed=seed, index=index, with_pixels=False)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def _interleaved(run: ScenarioRun, spec: dict[str, Any],
                 request: StoreRequest) -> tuple[bytes, bytes | None]:
    """The message injected in the middle of a data set: a C-CANCEL or a whole C-STORE."""
    from harness.wire.dimse import CCancelRQ, encode_command

    if spec.get("message", "cancel") == "cancel":
        target = int(spec.get("message_id", request.message_id))
        return encode_command(CCancelRQ(target)), None
    index = 1000 * run.index + 500
    klass, uid = instance_uids("tiny", 0, index)
    other = StoreRequest(int(spec.get("message_id", request.message_id + 1)), klass, uid)
    return other.encode(), _encoded("tiny", 0, index, IMPLICIT_VR_LE, None)


async def _store_stream(run: ScenarioRun, scu: SimulatedSCU, params: dict[str, Any], kind: str,
                        seed: int, index: int, context_id: int, ts: str) -> Outcome:
    from harness.datasets import iter_encoded

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


class NotNegotiated(LookupError):
    """What a step needs was not accepted at association time: the step does not apply."""


def not_negotiated(reason: str) -> Outcome:
    """A step skipped because the SCP did not accept what it needs (never a failure)."""
    return Outcome("skipped", reason, extra={"not_negotiated": True})


def _choose_context(scu: SimulatedSCU, params: dict[str, Any], klass: str) -> tuple[int, str]:
    """The context a store goes on. A context the SCP rejected (or never saw) is used only
    when the step says ``unaccepted: true`` (the scenario is about exactly that); otherwise
    the step does not apply (:class:`NotNegotiated`)."""
    from harness.wire.uid import uid_name

    ctx = params.get("context")
    accepted = scu.requestor.accepted_contexts
    if isinstance(ctx, int):
        _abstract, ts = accepted.get(ctx, ("", ""))
        if not ts and not params.get("unaccepted"):
            raise NotNegotiated(f"presentation context {ctx} was not accepted "
                                f"({_context_result(scu, ctx)}): nothing sent on it")
        return ctx, ts or transfer_syntax(params.get("transfer_syntax", "IVRLE"))
    wanted = sop_class(ctx) if ctx else klass
    found = scu.context_for(wanted)
    if found is None:
        raise NotNegotiated(f"no presentation context for {uid_name(wanted)} was accepted")
    return found


def _context_result(scu: SimulatedSCU, cid: int) -> str:
    """How the SCP answered a context (PS3.8 Table 9-18), for the skip reason."""
    from harness.wire.uid import uid_name

    ac, rq = scu.ac, scu.requestor.rq
    proposed = {pc.context_id: pc for pc in rq.presentation_contexts} if rq else {}
    got = {pc.context_id: pc.result for pc in ac.presentation_contexts} if ac else {}
    if cid not in proposed:
        return "never proposed"
    meaning = {1: "user-rejection", 2: "no-reason", 3: "abstract syntax not supported",
               4: "transfer syntaxes not supported"}
    result = got.get(cid)
    syntaxes = ", ".join(uid_name(str(t)) for t in proposed[cid].transfer_syntaxes)
    return (f"result {result}, {meaning.get(result or 0, 'unknown')}, for "
            f"{uid_name(str(proposed[cid].abstract_syntax))} in {syntaxes}"
            if result is not None else "no result item in the A-ASSOCIATE-AC")


def resolve_uid(run: ScenarioRun, value: Any) -> str:
    """``unique:NAME`` is a fresh UID, the same for NAME throughout one scenario run."""
    text = str(value)
    if text.startswith("unique:"):
        if text not in run.uids:
            from harness.datasets import derive_uid

            run.uids[text] = derive_uid("scenario", run.scenario.id, text, run.started)
        return run.uids[text]
    return text.replace("\\0", "\x00")


@step("store", "kind seed index context transfer_syntax message_id priority "
      "move_originator_aet move_originator_message_id sop_class sop_instance "
      "command_sop_class command_sop_instance dataset_sop_instance dataset_sop_class command "
      "group_length explicit_vr_command data_set_type malform data_hex no_data framing wait "
      "timeout pixel_bytes interleave stream unaccepted",
      "Send a C-STORE-RQ with a synthetic data set (faults optional); wait for the response. "
      "A store on a context the SCP did not accept is skipped unless unaccepted: true.")
@needs_scu
async def op_store(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
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
        from harness.wire.uid import uid_name

        return Outcome("skipped", f"the accepted transfer syntax {uid_name(ts)} needs "
                       "encapsulated (compressed) Pixel Data, which the harness does not "
                       "encode")
    # An explicitly requested encapsulated syntax gets native bytes (a deliberate mismatch).
    ts_encode = ts if ts in NATIVE else EXPLICIT_VR_LE
    real_ts: str | None = None
    if params.get("stream"):
        return await _store_stream(run, scu, params, kind, seed, index, context_id, ts_encode)
    if "data_hex" in params:
        data: bytes | None = bytes.fromhex(str(params["data_hex"]))
        sent_class, sent_uid = instance_uids(kind, seed, index)
    else:
        data = _encoded(kind, seed, index, ts_encode, params.get("pixel_bytes"))
        sent_class, sent_uid = instance_uids(kind, seed, index)
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
    from harness.datasets import uid_offsets

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
    from harness.engine.semantics import needs_stored_copy
    from harness.engine.storage import compare
    from harness.wire.status import classify, status_label

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
        note = (f"answered {label}, yet the storage directory gained {where}"
                + (" after the response" if final else ""))
        if note.replace(" after the response", "") not in [
                t.replace(" after the response", "")
                for _s, t in universal(run).problems.get(name, [])]:
            universal(run).note(name, "must", note)


async def _nothing_partial(run: ScenarioRun, watch: KeptWatch, how: str) -> None:
    """S02: a store cut by an A-ABORT or a close leaves nothing, or the complete object."""
    from harness.engine.storage import compare

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


@step("wait_response", "count timeout",
      "Wait for responses to requests sent with wait: false (count, default 1).")
@needs_scu
async def op_wait_response(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
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


@step("expect_nothing", "seconds",
      "Check that the SCP sends nothing (no PDU, no close) for a while.")
@needs_scu
async def op_expect_nothing(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return await scu.expect_pdu(float(params.get("seconds", 0.5)))


@step("echo", "message_id context timeout", "C-ECHO on the Verification context.")
@needs_scu
async def op_echo(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    cid = params.get("context")
    if cid is None and scu.context_for(VERIFICATION_SOP_CLASS) is None:
        return not_negotiated("no Verification presentation context was accepted")
    if cid is not None and int(cid) not in scu.requestor.accepted_contexts:
        return not_negotiated(f"presentation context {cid} was not accepted "
                              f"({_context_result(scu, int(cid))})")
    return await scu.echo(int(params.get("message_id", next(run.message_ids))),
                          context_id=params.get("context"), timeout=params.get("timeout"))


@step("cancel", "message_id context count", "Send C-CANCEL-RQ(s) (unconfirmed: no wait).")
@needs_scu
async def op_cancel(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    cid = params.get("context")
    if cid is None:
        found = scu.context_for(SOP_CLASSES["CT"]) or next(iter(
            (k, v[1]) for k, v in scu.requestor.accepted_contexts.items()), None)
        if found is None:
            return not_negotiated("no presentation context was accepted to send C-CANCEL on")
        cid = found[0]
    out = Outcome("sent")
    for _ in range(int(params.get("count", 1))):
        out = await scu.cancel(int(params.get("message_id", 1)), int(cid))
    return out


@step("command", "elements context group_length explicit_vr data_hex wait timeout",
      "Send any command set (element number -> value) and optionally wait for an answer.")
@needs_scu
async def op_command(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    from harness.wire.dimse import encode_elements, encode_value

    elements = []
    for key, value in (params.get("elements") or {}).items():
        element = int(str(key), 16)
        elements.append((element, bytes.fromhex(value[4:]) if isinstance(value, str) and
                         value.startswith("hex:") else encode_value(element, value)))
    command = encode_elements(sorted(elements), group_length=params.get("group_length", "auto"),
                              explicit_vr=bool(params.get("explicit_vr", False)))
    cid = params.get("context")
    if cid is None:
        found = scu.context_for(SOP_CLASSES["CT"])
        accepted = sorted(scu.requestor.accepted_contexts)
        if found is None and not accepted:
            return not_negotiated("no presentation context was accepted to send the "
                                  "command on")
        cid = found[0] if found else accepted[0]
    data = bytes.fromhex(str(params["data_hex"])) if params.get("data_hex") else None
    return await scu.send_command(int(cid), command, data, wait=bool(params.get("wait", True)),
                                  timeout=params.get("timeout"))


# --- raw PDUs and bytes ------------------------------------------------------------------------


def build_pdu(spec: dict[str, Any], run: ScenarioRun) -> Any:
    kind = str(spec.get("type", "raw"))
    if kind == "associate-rq":
        return build_rq(run, spec.get("params") or {})
    if kind == "associate-ac":
        return AssociateAC(items=[])
    if kind == "associate-rj":
        return AssociateRJ(1, 1, 1)
    if kind == "release-rq":
        return ReleaseRQ()
    if kind == "release-rp":
        return ReleaseRP()
    if kind == "abort":
        return Abort(int(spec.get("source", 0)), int(spec.get("reason", 0)))
    if kind == "pdata":
        return PDataTF([PDV(int(p.get("context", 1)), int(p.get("mch", 3)),
                            bytes.fromhex(str(p.get("data", "")))) for p in spec.get("pdvs", [])])
    return RawPDU(int(spec.get("pdu_type", 0x99)), bytes.fromhex(str(spec.get("body", ""))),
                  length=spec.get("length"))


@step("send_pdu", "pdu length reserved", "Send one PDU object (any type, fields as given).")
@needs_scu
async def op_send_pdu(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    pdu = build_pdu(params.get("pdu") or {}, run)
    if "length" in params:
        pdu.length = int(params["length"])
    if "reserved" in params:
        pdu.reserved_header = int(params["reserved"])
    return scu.send_pdu(pdu)


@step("send_bytes", "hex repeat", "Send raw bytes on the connection.")
@needs_scu
async def op_send_bytes(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    data = bytes.fromhex(str(params.get("hex", ""))) * int(params.get("repeat", 1))
    return scu.send_bytes(data)


@step("expect_pdu", "timeout", "Wait for the next thing the SCP sends (PDU, close, nothing).")
@needs_scu
async def op_expect_pdu(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return await scu.expect_pdu(params.get("timeout"))


@step("expect_close", "timeout", "Wait until the SCP closes the connection.")
@needs_scu
async def op_expect_close(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return await scu.expect_close(close_timeout(run, params.get("timeout", run.timeout)))


def close_timeout(run: ScenarioRun, value: Any) -> float:
    """Seconds to wait for the SCP to close; ``artim`` = its declared ARTIM + 5 s (35 s if
    undeclared), ``idle`` = its declared idle timeout + 5 s."""
    if value == "artim":
        return float(run.declared("artim_timeout") or 30.0) + 5.0
    if value == "idle":
        declared = run.declared("idle_timeout")
        return float(declared) + 5.0 if declared else 5.0
    return float(value)


@step("release", "timeout close",
      "A-RELEASE-RQ; expect A-RELEASE-RP (close: false leaves closing to the SCP).")
@needs_scu
async def op_release(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return await scu.release(params.get("timeout"), close=bool(params.get("close", True)))


@step("abort", "source reason", "Send A-ABORT and close.")
@needs_scu
async def op_abort(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return scu.abort(int(params.get("source", 0)), int(params.get("reason", 0)))


@step("reset", "", "Close the TCP connection with RST.")
@needs_scu
async def op_reset(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return scu.reset()


@step("fin", "", "Half-close the TCP connection (FIN) and keep reading.")
@needs_scu
async def op_fin(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    return scu.fin()


@step("sleep", "seconds", "Wait without doing anything.")
async def op_sleep(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    await asyncio.sleep(float(params.get("seconds", 0.1)))
    return Outcome("sent", "slept")


# --- many at once ------------------------------------------------------------------------------


class UniqueCopies:
    """Pre-encoded instance whose SOP Instance UID is patched in place per copy (no pydicom
    per store): what many-store scenarios need to stay fast."""

    def __init__(self, kind: str, ts: str) -> None:
        from harness.datasets import uid_offsets

        self.template = _encoded(kind, 0, 0, ts, None)
        self.klass = KINDS[kind].sop_class_uid
        self.offset, self.length = uid_offsets(self.template, ts)["SOPInstanceUID"]
        self.base = int(time.time() * 1000) % 10**9 * 10**6

    def copy(self, n: int) -> tuple[bytes, str]:
        from harness.datasets import patch_uid, uid_of_length

        buf = bytearray(self.template)
        uid = uid_of_length(self.base + n, self.length)
        patch_uid(buf, self.offset, self.length, uid)
        return bytes(buf), uid


@step("store_many", "count associations kind transfer_syntax timeout",
      "Several associations in parallel, each storing count instances sequentially.")
async def op_store_many(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
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


@step("pipeline", "count window_only timeout",
      "Send count stores without waiting, then collect the responses (D04 uses the "
      "negotiated asynchronous window; with window_only the step is skipped on a "
      "synchronous association).")
async def op_pipeline(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
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


@step("association_flood", "max hold_store",
      "Open associations one after another (holding them) until the SCP refuses one or max "
      "is reached; then check that the held associations still work and close them.")
async def op_association_flood(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
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


@step("connection_flood", "count",
      "Open count TCP connections that send nothing, then try a normal association while "
      "they are open; close them afterwards.")
async def op_connection_flood(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
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


@step("store_batch", "stores timeout",
      "Send several stores in one TCP write without waiting (each entry: message_id, kind, "
      "seed, sop_instance), then collect one response per store.")
async def op_store_batch(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
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
        data = _encoded(kind, seed, index, ts if ts in NATIVE else EXPLICIT_VR_LE, None)
        klass, uid = instance_uids(kind, seed, index)
        if "sop_instance" in entry:
            uid = resolve_uid(run, entry["sop_instance"])
            data = with_sop_instance_uid(data, ts, uid)
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


# The TLS group's operations live in their own module (a table, so no import cycle).
from harness.engine.tls_steps import TLS_OPERATIONS  # noqa: E402

for _name, (_params, _doc, _func) in TLS_OPERATIONS.items():
    step(_name, _params, _doc)(_func)
