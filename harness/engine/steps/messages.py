"""DIMSE message steps other than C-STORE: C-ECHO, C-CANCEL, and any command set built
element by element (PS3.7 9.1.5, 9.3.2.3, 6.3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.engine.context import ScenarioRun
from harness.engine.steps.association import TIMEOUT_SHOWN
from harness.engine.steps.common import SOP_CLASSES, context_result, needs_scu, not_negotiated
from harness.engine.steps.params import param
from harness.engine.steps.registry import step
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome
from harness.wire.constants import VERIFICATION_SOP_CLASS


@dataclass(frozen=True, kw_only=True)
class EchoParams:
    message_id: int = param("Message ID", shown="the next one")
    context: int | None = param("presentation context ID",
                                shown="the accepted Verification context")
    timeout: float | None = param("seconds to wait for the response", shown=TIMEOUT_SHOWN)


@dataclass(frozen=True, kw_only=True)
class CancelParams:
    message_id: int = param("Message ID Being Responded To of the C-CANCEL-RQ", 1)
    context: int | None = param("presentation context ID",
                                shown="the accepted CT context, else any accepted")
    count: int = param("how many C-CANCEL-RQs to send", 1)


@dataclass(frozen=True, kw_only=True)
class CommandParams:
    elements: dict[str | int, Any] = param(
        "the command set: element number (hex, e.g. \"0800\") -> value, or \"hex:...\" for "
        "raw value bytes", required=True)
    context: int | None = param("presentation context ID",
                                shown="the accepted CT context, else any accepted")
    group_length: int | Literal["auto", "omit"] | None = param(
        "Command Group Length: auto (true value), omit, or a value to write", "auto")
    explicit_vr: bool = param("encode in explicit VR (PS3.7 6.3.1 requires implicit)", False)
    data_hex: str | None = param("a data set (hex) to send after the command", None)
    wait: bool = param("wait for an answer", True)
    timeout: float | None = param("seconds to wait for it", shown=TIMEOUT_SHOWN)


@step("echo", EchoParams)
@needs_scu
async def op_echo(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """C-ECHO on the Verification context."""
    cid = params.get("context")
    if cid is None and scu.context_for(VERIFICATION_SOP_CLASS) is None:
        return not_negotiated("no Verification presentation context was accepted")
    if cid is not None and int(cid) not in scu.requestor.accepted_contexts:
        return not_negotiated(f"presentation context {cid} was not accepted "
                              f"({context_result(scu, int(cid))})")
    return await scu.echo(int(params.get("message_id", next(run.message_ids))),
                          context_id=params.get("context"), timeout=params.get("timeout"))


@step("cancel", CancelParams)
@needs_scu
async def op_cancel(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send C-CANCEL-RQ(s) (unconfirmed: no wait)."""
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


@step("command", CommandParams)
@needs_scu
async def op_command(run: ScenarioRun, params: dict[str, Any], scu: SimulatedSCU) -> Outcome:
    """Send any command set (element number -> value) and optionally wait for an answer."""
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
