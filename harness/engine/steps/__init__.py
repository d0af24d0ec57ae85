"""Scenario operations: what each ``- op: {...}`` of a scenario file does.

Each operation drives a :class:`~harness.scu.client.SimulatedSCU` and returns an
:class:`~harness.scu.outcome.Outcome`; the runner then judges the step's ``expect``. The
modules, by job:

- :mod:`.registry`: the YAML step vocabulary, ``STEPS`` (name -> declaration, doc, function);
- :mod:`.params`: typed parameter declarations and the check the loader runs on them;
- :mod:`.common`: what the step modules share (UID short names, the association lookup);
- :mod:`.association`: associate, connect, release, abort, reset, fin, expect_close, sleep;
- :mod:`.store`: store and wait_response, with the storage-directory checks (S01, S02, C03);
- :mod:`.messages`: echo, cancel, command (any command set);
- :mod:`.raw_pdu`: send_pdu, send_bytes, expect_pdu, expect_nothing;
- :mod:`.load`: store_many, pipeline, store_batch, association and connection floods;
- :mod:`.tls`: the TLS group's handshake probes.

Importing this package registers every step. The names below are re-exported so that
``from harness.engine.steps import STEPS, op_store, build_rq, ...`` keeps working.
"""

from __future__ import annotations

from harness.engine.steps import association, load, messages, raw_pdu, store, tls
from harness.engine.steps.association import (
    AssociateParams,
    RQParams,
    build_rq,
    close_timeout,
    connect,
    observe_ac,
    op_abort,
    op_associate,
    op_connect,
    op_expect_close,
    op_fin,
    op_release,
    op_reset,
    op_sleep,
)
from harness.engine.steps.common import (
    KIND_FOR_CLASS,
    NATIVE,
    SOP_CLASSES,
    TRANSFER_SYNTAXES,
    NotNegotiated,
    ScuStep,
    needs_scu,
    not_negotiated,
    sop_class,
    transfer_syntax,
    universal,
)
from harness.engine.steps.load import (
    UniqueCopies,
    op_association_flood,
    op_connection_flood,
    op_pipeline,
    op_store_batch,
    op_store_many,
)
from harness.engine.steps.messages import op_cancel, op_command, op_echo
from harness.engine.steps.params import Param, param
from harness.engine.steps.raw_pdu import (
    build_pdu,
    op_expect_nothing,
    op_expect_pdu,
    op_send_bytes,
    op_send_pdu,
)
from harness.engine.steps.registry import STEPS, NoParams, StepFunc, StepSpec, step
from harness.engine.steps.store import (
    REAL_ENCODING,
    KeptWatch,
    after_response,
    instance_uids,
    op_store,
    op_wait_response,
    resolve_uid,
)
from harness.engine.steps.tls import TLS_REQUIREMENTS

__all__ = [
    "KIND_FOR_CLASS", "NATIVE", "REAL_ENCODING", "SOP_CLASSES", "STEPS", "TLS_REQUIREMENTS",
    "TRANSFER_SYNTAXES", "AssociateParams", "KeptWatch", "NoParams", "NotNegotiated", "Param",
    "RQParams", "ScuStep", "StepFunc", "StepSpec", "UniqueCopies", "after_response",
    "association", "build_pdu", "build_rq", "close_timeout", "connect", "instance_uids",
    "load", "messages", "needs_scu", "not_negotiated", "observe_ac", "op_abort",
    "op_associate", "op_association_flood", "op_cancel", "op_command", "op_connect",
    "op_connection_flood", "op_echo", "op_expect_close", "op_expect_nothing", "op_expect_pdu",
    "op_fin", "op_pipeline", "op_release", "op_reset", "op_send_bytes", "op_send_pdu",
    "op_sleep", "op_store", "op_store_batch", "op_store_many", "op_wait_response", "param",
    "raw_pdu", "resolve_uid", "sop_class", "step", "store", "tls", "transfer_syntax",
    "universal",
]
