"""What the step modules share: short names for UIDs, the association a step runs on, and the
"not negotiated" outcome (a step that does not apply is skipped, never failed)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from harness.datasets import KINDS
from harness.engine.context import ScenarioRun
from harness.engine.steps.registry import StepFunc
from harness.engine.universal import UniversalChecks
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome
from harness.wire.constants import (
    EXPLICIT_VR_LE,
    SOP_CLASS_SHORT_NAMES,
    TRANSFER_SYNTAX_SHORT_NAMES,
)
from harness.wire.dataset_raw import UNCOMPRESSED_TRANSFER_SYNTAXES

SOP_CLASSES = SOP_CLASS_SHORT_NAMES
TRANSFER_SYNTAXES = TRANSFER_SYNTAX_SHORT_NAMES
NATIVE = frozenset(UNCOMPRESSED_TRANSFER_SYNTAXES)
KIND_FOR_CLASS = {spec.sop_class_uid: name for name, spec in KINDS.items() if name != "tiny"}
KIND_FOR_CLASS[SOP_CLASSES["CT"]] = "tiny"


def tls_server_name(run: ScenarioRun) -> str | None:
    """--tls-server-name: the name the target's certificate is checked against on every
    association (None: the target's host)."""
    tls = run.target.tls
    return tls.options.server_hostname if tls is not None else None


def sop_class(value: Any) -> str:
    text = str(value)
    return SOP_CLASSES.get(text.upper(), text)


def transfer_syntax(value: Any) -> str:
    text = str(value)
    return TRANSFER_SYNTAXES.get(text.upper(), text)


def encoding_for(ts: str) -> str:
    """The transfer syntax a synthetic data set is encoded in for a context of ``ts``: ``ts``
    when native; otherwise Explicit VR Little Endian (the harness does not compress pixels,
    so an encapsulated syntax gets native bytes: a deliberate mismatch)."""
    return ts if ts in NATIVE else EXPLICIT_VR_LE


def universal(run: ScenarioRun) -> UniversalChecks:
    return run.universal


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

    functools.update_wrapper(on_association, func)  # its doc and module are the step's
    return on_association


class NotNegotiated(LookupError):
    """What a step needs was not accepted at association time: the step does not apply."""


def not_negotiated(reason: str) -> Outcome:
    """A step skipped because the SCP did not accept what it needs (never a failure)."""
    return Outcome("skipped", reason, extra={"not_negotiated": True})


def context_result(scu: SimulatedSCU, cid: int) -> str:
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
