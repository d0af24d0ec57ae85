"""Checks applied to everything the SCP sends, in every scenario, without being written there.

- C01 response fields and C02 status legality on every C-STORE-RSP (PS3.7 9.3.1.2, Annex C);
- A-ASSOCIATE-AC fields on every AC (PS3.8 9.3.3, 7.1.1.14; PS3.7 D.3.3);
- the validating decoder's findings on every PDU received, and our maximum PDU length.
Results are collected per scenario and become one check each at the end.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from harness.engine.semantics import StoreSituation, judge_status
from harness.net.requestor import DimseMessage
from harness.net.trace import Trace
from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    ERROR_COMMENT,
    MCH_RESERVED_MASK,
    MESSAGE_ID_BEING_RESPONDED_TO,
    NO_DATA_SET,
    STATUS,
    CommandField,
)
from harness.wire.items import AsyncOpsWindow, RoleSelection
from harness.wire.pdu import AssociateAC, AssociateRQ
from harness.wire.status import c_store_legality, classify, status_label

UNIVERSAL = {
    "C01 response fields": ("must", "PS3.7 9.3.1.2, 9.1.1.1; PS3.8 E.1, E.2",
                            "every C-STORE-RSP field as PS3.7 Table 9.3-2 requires"),
    "C02 status legality": ("must", "PS3.7 Annex C, 9.1.1.1.9; PS3.4 Table B.2-1",
                            "a status of the C-STORE table"),
    "C03 status fits the situation": ("must", "PS3.7 Annex C; PS3.4 B.2.3 (see STATUS_SEMANTICS)",
                                      "a status whose meaning fits what was sent"),
    "S01 nothing kept after a failure": ("must", "PS3.4 B.2.3; PS3.7 Annex C (Failure: the "
                                                 "operation was not performed)",
                                         "no file of a store answered with a Failure"),
    "S02 nothing partial after an abort": ("must", "PS3.8 7.3, 7.4; PS3.4 B.2.3",
                                           "no partial or altered file of a store cut by an "
                                           "A-ABORT or a close"),
    "AC fields": ("must", "PS3.8 9.3.3, 7.1.1.14, D.1; PS3.7 D.3.3.2-D.3.3.4",
                  "A-ASSOCIATE-AC as PS3.8 9.3.3 requires"),
    "PDU conformance": ("must", "PS3.8 9.3",
                        "every PDU from the SCP decodes without deviation"),
    "max PDU honoured": ("must", "PS3.8 D.1",
                         "P-DATA-TF from the SCP no longer than our Maximum Length"),
    "J06 no information leak": ("should", "PS3.15 (security); PS3.7 C.4 Error Comment",
                                "Error Comments without paths, stack traces or SQL"),
}

# What an Error Comment should never reveal (J06): file system paths, stack traces, SQL.
_LEAKS = re.compile(r"(?:^|[\s'\"(=:])(/[\w.-]+/[\w./-]+)|\b[A-Za-z]:\\|(?i:traceback|exception)"
                    r"|\bat [\w.$]+\(|\b(?:SELECT|INSERT|UPDATE|DELETE)\s+[\w*]|(?i:errno)"
                    r"|\w\.(?:py|java|cs|cpp):\d")


class UniversalChecks:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.problems: dict[str, list[tuple[str, str]]] = defaultdict(list)

    def note(self, name: str, severity: str, problem: str) -> None:
        self.problems[name].append((severity, problem))

    def store_response(self, msg: DimseMessage, request_id: int | None, sop_class: str,
                       sop_instance: str, context_id: int) -> None:
        self.seen.update(("C01 response fields", "C02 status legality"))
        cmd = msg.command
        el = cmd.elements
        c01 = "C01 response fields"
        echoes = {AFFECTED_SOP_CLASS_UID: sop_class, AFFECTED_SOP_INSTANCE_UID: sop_instance}
        for f in cmd.findings:
            # Echoing the request's own (invalid) UID is what 9.1.1.1.3/4 require.
            if any(name in f.field and el.get(num) == echoes[num] for num, name in
                   ((AFFECTED_SOP_CLASS_UID, "AffectedSOPClassUID"),
                    (AFFECTED_SOP_INSTANCE_UID, "AffectedSOPInstanceUID"))):
                continue
            if f.severity == "error" and "status" not in f.field.lower():
                self.note(c01, "must", f"{f.field}: expected {f.expected}, found {f.found}")
            elif f.severity == "warning" and "status" not in f.field.lower():
                self.note(c01, "should", f"{f.field}: expected {f.expected}, found {f.found}")
        if cmd.command_field != CommandField.C_STORE_RSP:
            self.note(c01, "must", f"Command Field {cmd.command_name}, not C-STORE-RSP (8001H)")
        answered = el.get(MESSAGE_ID_BEING_RESPONDED_TO)
        if request_id is not None and answered != request_id:
            self.note(c01, "must", f"Message ID Being Responded To {answered}, request had "
                                   f"{request_id}")
        if el.get(COMMAND_DATA_SET_TYPE) != NO_DATA_SET or msg.data is not None:
            self.note(c01, "must", "Command Data Set Type not 0101H or a data set follows")
        if STATUS not in el:
            self.note(c01, "must", "no Status (0000,0900)")
        got_class = el.get(AFFECTED_SOP_CLASS_UID, sop_class)
        if got_class != sop_class:
            self.note(c01, "must", f"Affected SOP Class UID {got_class!s} differs from the "
                                   f"request's {sop_class}")
        got_instance = el.get(AFFECTED_SOP_INSTANCE_UID, sop_instance)
        if got_instance != sop_instance:
            self.note(c01, "must", f"Affected SOP Instance UID {got_instance!s} differs from "
                                   f"the request's {sop_instance}")
        if msg.context_id != context_id:
            self.note(c01, "must", f"response on presentation context {msg.context_id}, "
                                   f"request on {context_id}")
        for received in msg.pdus:
            pdvs = getattr(received.pdu, "pdvs", [])
            if any(p.mch & MCH_RESERVED_MASK for p in pdvs):
                self.note(c01, "must", "Message Control Header bits 2-7 not zero (PS3.8 E.2)")
        comment = el.get(ERROR_COMMENT)
        if isinstance(comment, str) and comment:
            self.seen.add("J06 no information leak")
            leak = _LEAKS.search(comment)
            if leak:
                self.note("J06 no information leak", "should",
                          f"Error Comment {comment!r} reveals {leak.group(0)!r}")
        status = el.get(STATUS)
        if isinstance(status, int):
            legality = c_store_legality(status)
            if legality == "illegal":
                self.note("C02 status legality", "must",
                          f"status {status_label(status)} is not valid in a C-STORE-RSP")
            elif legality == "not-listed":
                self.note("C02 status legality", "should",
                          f"status {status_label(status)} is not listed for C-STORE")

    def status_fits(self, status: int | None, situation: StoreSituation | None) -> None:
        """C03: a status with one precise meaning (STATUS_SEMANTICS) used where it fits."""
        if status is None or situation is None:
            return
        verdict = judge_status(status, situation)
        if verdict is None:
            return
        rule, fits = verdict
        self.seen.add("C03 status fits the situation")
        if fits is False:
            self.note("C03 status fits the situation", rule.severity,
                      f"{status_label(status)} although {rule.unfit} ({rule.reference})")

    def early_response(self, entries: list[Any], assoc: int, status: int | None) -> None:
        """Success or Warning must not come before the whole data set was sent (9.3.1.3)."""
        mine = [e for e in entries if e.assoc == assoc and e.type == "P-DATA-TF"]
        last_sent = max((i for i, e in enumerate(mine) if e.dir == "sent"), default=-1)
        first_recv = next((i for i, e in enumerate(mine) if e.dir == "recv"), None)
        if first_recv is None or first_recv > last_sent or status is None:
            return
        category = str(classify(status))
        if category in ("Success", "Warning"):
            self.note("C01 response fields", "must",
                      f"{category} response before the last data set fragment was sent "
                      "(PS3.7 9.1.1.2, 9.3.1.3)")

    def unexpected_response(self, msg: DimseMessage) -> None:
        self.seen.add("C01 response fields")
        answered = msg.command.elements.get(MESSAGE_ID_BEING_RESPONDED_TO)
        self.note("C01 response fields", "must",
                  f"a response ({msg.command.command_name}, Message ID Being Responded To "
                  f"{answered}) that answers no outstanding request")

    def associate_ac(self, rq: AssociateRQ, ac: AssociateAC) -> None:
        name = "AC fields"
        self.seen.add(name)
        if bytes(_ae(ac.called_ae)) != bytes(_ae(rq.called_ae)) or bytes(
                _ae(ac.calling_ae)) != bytes(_ae(rq.calling_ae)):
            self.note(name, "must", "Called/Calling AE title fields (bytes 11-42) not "
                                    "identical to the A-ASSOCIATE-RQ")
        if bytes(ac.reserved_tail) != bytes(rq.reserved_tail):
            self.note(name, "must", "bytes 43-74 not echoed from the A-ASSOCIATE-RQ")
        proposed = {pc.context_id: [str(t) for t in pc.transfer_syntaxes]
                    for pc in rq.presentation_contexts}
        results = ac.presentation_contexts
        ids = [pc.context_id for pc in results]
        if sorted(ids) != sorted(proposed):
            self.note(name, "must", f"result items for contexts {sorted(ids)}, proposed "
                                    f"{sorted(proposed)}")
        for pc in results:
            if pc.result == 0 and str(pc.transfer_syntax) not in proposed.get(pc.context_id, []):
                self.note(name, "must", f"context {pc.context_id} accepted with transfer "
                                        f"syntax {pc.transfer_syntax!s}, which was not proposed")
        ui = ac.user_information
        rq_ui = rq.user_information
        if ui is not None and rq_ui is not None:
            if rq_ui.async_ops_window is None and ui.async_ops_window is not None:
                self.note(name, "must", "Asynchronous Operations Window in the AC although the "
                                        "RQ had none (PS3.7 D.3.3.3)")
            reply = ui.first(AsyncOpsWindow)
            offered = rq_ui.async_ops_window
            if isinstance(reply, AsyncOpsWindow) and offered is not None:
                for got, want, label in ((reply.invoked, offered[0], "invoked"),
                                         (reply.performed, offered[1], "performed")):
                    if want != 0 and (got == 0 or got > want):
                        self.note(name, "must", f"async window {label} {got} exceeds the "
                                                f"offered {want}")
            asked = {str(r.sop_class_uid): r for r in rq_ui.role_selections}
            for role in ui.role_selections:
                mine = asked.get(str(role.sop_class_uid))
                if mine is None:
                    self.note(name, "must", f"role selection for {role.sop_class_uid!s}, which "
                                            "the RQ did not include")
                elif (role.scu_role and not mine.scu_role) or (role.scp_role and
                                                                not mine.scp_role):
                    self.note(name, "must", f"role selection for {role.sop_class_uid!s} grants "
                                            "a role the RQ did not propose")
            _ = RoleSelection  # documented sub-item type

    def received_findings(self, trace: Trace, our_max: dict[int, int],
                          echoed: set[str] | None = None) -> None:
        """``echoed``: fields the scenario itself broke in its request; an answer that echoes
        them (an AC repeating an even context ID) is not the SCP's deviation."""
        self.seen.add("PDU conformance")
        for entry in trace.entries:
            if entry.dir != "recv":
                continue
            for f in entry.findings:
                if echoed and f.field in echoed:
                    continue
                if f.severity == "error":
                    self.note("PDU conformance", "must", f"{entry.type}: {f}")
                elif f.severity == "warning" and entry.type != "P-DATA-TF":
                    self.note("PDU conformance", "should", f"{entry.type}: {f}")
            limit = our_max.get(entry.assoc, 0)
            if entry.type == "P-DATA-TF":
                self.seen.add("max PDU honoured")
                if limit and entry.length > limit:
                    self.note("max PDU honoured", "must",
                              f"P-DATA-TF of {entry.length} bytes, our maximum is {limit}")

    def emit(self, run: Any) -> None:
        """Record one check per universal rule that applied (``run`` is a ScenarioRun)."""
        for name in UNIVERSAL:
            if name not in self.seen:
                continue
            severity, reference, expected = UNIVERSAL[name]
            problems = self.problems.get(name, [])
            if not problems:
                run.check(name, severity, True, expected, "as required", reference)
                continue
            worst = "must" if any(s == "must" for s, _ in problems) else "should"
            unique = list(dict.fromkeys(text for _, text in problems))
            observed = "; ".join(unique[:5]) + (f" (+{len(unique) - 5} more)"
                                                if len(unique) > 5 else "")
            run.check(name, worst, False, expected, observed, reference)


def _ae(value: str | bytes) -> bytes:
    from harness.wire.uid import encode_ae_title

    return encode_ae_title(value)
