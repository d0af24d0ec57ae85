"""Association steps: open TCP, propose an A-ASSOCIATE-RQ of any shape, release, abort, reset,
half-close, wait for the SCP's close; and the observed conformance statement fed from the
A-ASSOCIATE-AC (PS3.8 9.3.2-9.3.4)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypedDict

from harness.engine.context import ScenarioRun
from harness.engine.steps.common import (
    TRANSFER_SYNTAXES,
    needs_scu,
    sop_class,
    tls_server_name,
    transfer_syntax,
    universal,
)
from harness.engine.steps.params import param
from harness.engine.steps.registry import NoParams, step
from harness.net.connection import ConnectionClosed, PeerTimeout
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome
from harness.wire.constants import (
    APPLICATION_CONTEXT_NAME,
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
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
from harness.wire.pdu import AssociateAC, AssociateRQ
from harness.wire.uid import ae_title_problem, encode_ae_title

TIMEOUT_DOC = "seconds to wait for the SCP's answer"
TIMEOUT_SHOWN = "--timeout"


class ContextItem(TypedDict, total=False):
    """One proposed presentation context."""

    id: int
    abstract: str
    ts: str | list[str]


class Generate(TypedDict, total=False):
    """``{generate: N}``: N items built over the storage classes pydicom knows."""

    generate: int


class RoleItem(TypedDict, total=False):
    sop_class: str
    scu: int
    scp: int


class RawUserItem(TypedDict, total=False):
    type: int
    data: str


async def connect(run: ScenarioRun, name: str) -> SimulatedSCU | Outcome:
    existing = run.associations.get(name)
    if existing is not None and not existing.conn.is_closed:
        return existing
    try:
        scu = await SimulatedSCU.connect(run.target.host, run.target.port,
                                         timeout=run.timeout, trace=run.trace,
                                         assoc_id=run.next_assoc_id(),
                                         tls=run.target.tls.context if run.target.tls else None,
                                         server_hostname=tls_server_name(run))
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


@dataclass(frozen=True, kw_only=True)
class RQParams:
    """How the A-ASSOCIATE-RQ differs from the std-RQ (also taken by ``tls_associate`` and a
    ``send_pdu`` of type associate-rq)."""

    TYPE_NAME: ClassVar[str] = "associate parameters"

    called_ae: str = param("Called AE title; hex:... gives raw bytes", shown="--called-aet")
    calling_ae: str = param("Calling AE title; hex:... gives raw bytes", shown="--calling-aet")
    contexts: list[ContextItem] | Generate | Literal["std", "standard"] | None = param(
        "proposed contexts (id, abstract short name or UID, ts list); {generate: N} for N "
        "storage classes x 5 syntaxes", "std", shown="std: CT, MR, Verification")
    max_pdu: int = param("Maximum Length sub-item (0: unlimited)", 16384)
    protocol_version: int = param("protocol-version field", 1)
    application_context: str = param("Application Context Name", APPLICATION_CONTEXT_NAME)
    async_window: list[int] = param("[invoked, performed]: adds an Asynchronous Operations "
                                    "Window sub-item", shown="none")
    roles: list[RoleItem] | Generate = param(
        "SCP/SCU Role Selection sub-items (sop_class, scu, scp); {generate: N} for N classes",
        shown="none")
    extra_user_items: list[RawUserItem] = param(
        "raw user-information sub-items (type, data as hex)", shown="none")
    omit_user_items: list[Literal["max_length", "implementation_class_uid"]] = param(
        "mandatory sub-items to leave out", shown="none")
    user_items_order: Literal["forward", "reverse"] = param(
        "order of the user-information sub-items", "forward")
    reserved_nonzero: bool = param("fill every reserved field with non-zero bytes", False)
    items_order: Literal["standard", "user-info-first"] = param(
        "order of the variable items", "standard")


@dataclass(frozen=True, kw_only=True)
class AssociateParams(RQParams):
    timeout: float | None = param(TIMEOUT_DOC, shown=TIMEOUT_SHOWN)
    record: Any = param("accepted and ignored (recording is the step's expect.record)")


@step("associate", AssociateParams)
async def op_associate(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Open TCP and send an A-ASSOCIATE-RQ (std-RQ unless changed); wait for the answer."""
    scu = await connect(run, name)
    if isinstance(scu, Outcome):
        return scu
    return await associate_on(run, scu, params)


async def associate_on(run: ScenarioRun, scu: SimulatedSCU, params: dict[str, Any]) -> Outcome:
    """Send the A-ASSOCIATE-RQ that ``params`` describe on an open connection (plain TCP or
    TLS) and wait for the answer; an A-ASSOCIATE-AC gets the universal checks and feeds the
    observed conformance statement."""
    rq = build_rq(run, params)
    run.our_max[scu.assoc_id] = rq.max_pdu_length or 0
    ids = [pc.context_id for pc in rq.presentation_contexts]
    if any(i % 2 == 0 for i in ids) or len(set(ids)) != len(ids):
        run.echoed.add("Presentation-context-ID")
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


@step("connect", NoParams)
async def op_connect(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Open a TCP connection only (no A-ASSOCIATE-RQ)."""
    scu = await connect(run, name)
    return scu if isinstance(scu, Outcome) else Outcome("sent", "TCP connected")


@dataclass(frozen=True, kw_only=True)
class ExpectCloseParams:
    timeout: float | Literal["artim", "idle"] = param(
        "seconds to wait for the close; artim = the declared ARTIM + 5 s (35 s if "
        "undeclared), idle = the declared idle timeout + 5 s", shown=TIMEOUT_SHOWN)


@step("expect_close", ExpectCloseParams)
@needs_scu
async def op_expect_close(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Wait until the SCP closes the connection."""
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


@dataclass(frozen=True, kw_only=True)
class ReleaseParams:
    timeout: float | None = param("seconds to wait for A-RELEASE-RP", shown=TIMEOUT_SHOWN)
    close: bool = param("close TCP after A-RELEASE-RP (false leaves closing to the SCP)",
                        True)


@step("release", ReleaseParams)
@needs_scu
async def op_release(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """A-RELEASE-RQ; expect A-RELEASE-RP (close: false leaves closing to the SCP)."""
    return await scu.release(params.get("timeout"), close=bool(params.get("close", True)))


@dataclass(frozen=True, kw_only=True)
class AbortParams:
    source: int = param("A-ABORT source field (0: service user)", 0)
    reason: int = param("A-ABORT reason/diag. field", 0)


@step("abort", AbortParams)
@needs_scu
async def op_abort(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send A-ABORT and close."""
    return scu.abort(int(params.get("source", 0)), int(params.get("reason", 0)))


@step("reset", NoParams)
@needs_scu
async def op_reset(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Close the TCP connection with RST."""
    return scu.reset()


@step("fin", NoParams)
@needs_scu
async def op_fin(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Half-close the TCP connection (FIN) and keep reading."""
    return scu.fin()


@dataclass(frozen=True, kw_only=True)
class SleepParams:
    seconds: float = param("how long to wait", 0.1)


@step("sleep", SleepParams)
async def op_sleep(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Wait without doing anything."""
    await asyncio.sleep(float(params.get("seconds", 0.1)))
    return Outcome("sent", "slept")
