"""Raw-PDU steps: send any PDU object or raw bytes, and wait for what the SCP sends back (a PDU,
a close, or nothing). Fault injection below the DIMSE layer (PS3.8 9.3, Annex E)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from harness.engine.context import ScenarioRun
from harness.engine.steps.association import TIMEOUT_SHOWN, RQParams, build_rq
from harness.engine.steps.common import needs_scu
from harness.engine.steps.params import param
from harness.engine.steps.registry import step
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome
from harness.wire.pdu import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    PDataTF,
    RawPDU,
    ReleaseRP,
    ReleaseRQ,
)


class PDVItem(TypedDict, total=False):
    context: int
    mch: int
    data: str


class PDUSpec(TypedDict, total=False):
    """A PDU to send: its ``type`` and the fields that type takes."""

    type: Literal["raw", "associate-rq", "associate-ac", "associate-rj", "release-rq",
                  "release-rp", "abort", "pdata"]
    params: RQParams
    source: int
    reason: int
    pdvs: list[PDVItem]
    pdu_type: int
    body: str
    length: int | None


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


@dataclass(frozen=True, kw_only=True)
class SendPDUParams:
    pdu: PDUSpec = param("the PDU: type (raw, associate-rq with params, associate-ac, "
                         "associate-rj, release-rq, release-rp, abort with source/reason, "
                         "pdata with pdvs [{context, mch, data}]); raw takes pdu_type, body "
                         "(hex) and length", required=True)
    length: int = param("PDU-length field to write instead of the true length",
                        shown="the true length")
    reserved: int = param("value of the reserved byte of the PDU header", 0)


@step("send_pdu", SendPDUParams)
@needs_scu
async def op_send_pdu(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send one PDU object (any type, fields as given)."""
    pdu = build_pdu(params.get("pdu") or {}, run)
    if "length" in params:
        pdu.length = int(params["length"])
    if "reserved" in params:
        pdu.reserved_header = int(params["reserved"])
    return scu.send_pdu(pdu)


@dataclass(frozen=True, kw_only=True)
class SendBytesParams:
    hex: str = param("the bytes, as hex", required=True)
    repeat: int = param("how many times to send them (in one write)", 1)


@step("send_bytes", SendBytesParams)
@needs_scu
async def op_send_bytes(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send raw bytes on the connection."""
    data = bytes.fromhex(str(params.get("hex", ""))) * int(params.get("repeat", 1))
    return scu.send_bytes(data)


@dataclass(frozen=True, kw_only=True)
class ExpectPDUParams:
    timeout: float | None = param("seconds to wait", shown=TIMEOUT_SHOWN)


@step("expect_pdu", ExpectPDUParams)
@needs_scu
async def op_expect_pdu(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Wait for the next thing the SCP sends (PDU, close, nothing)."""
    return await scu.expect_pdu(params.get("timeout"))


@dataclass(frozen=True, kw_only=True)
class ExpectNothingParams:
    seconds: float = param("how long the SCP must stay silent", 0.5)


@step("expect_nothing", ExpectNothingParams)
@needs_scu
async def op_expect_nothing(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Check that the SCP sends nothing (no PDU, no close) for a while."""
    return await scu.expect_pdu(float(params.get("seconds", 0.5)))
