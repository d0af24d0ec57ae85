"""What each DIMSE command must and may hold (PS3.7 9.3, Annex C, E.1) and the value rules
the validating decoder applies once a command set is read: mandatory and allowed elements,
Command Data Set Type, Priority, UID syntax, LO and AE text, and Status legality per command
(PS3.4 Table B.2-1 for C-STORE). Each rule adds a finding; none raises."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    COMMAND_GROUP_LENGTH,
    ERROR_COMMENT,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_DESTINATION,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    NO_DATA_SET,
    OFFENDING_ELEMENT,
    PRIORITIES,
    PRIORITY,
    STATUS,
    CommandField,
)
from harness.wire.dimse.elements import COMMAND_ELEMENTS, field_name
from harness.wire.dimse.messages import DecodedCommand
from harness.wire.findings import Finding
from harness.wire.status import StatusCategory, c_store_legality, classify, describe
from harness.wire.uid import UID_SYNTAX, uid_problem

_BAD_TEXT = re.compile(r"[\\\x00-\x1f\x7f-\xff]")


@dataclass(frozen=True, slots=True)
class Spec:
    """Per command type: mandatory elements, all allowed elements, and the section to cite."""

    name: str
    mandatory: tuple[int, ...]
    allowed: frozenset[int]
    section: str
    data_set: Literal["required", "none"]
    is_rsp: bool = False
    mandatory_set: frozenset[int] = frozenset()


def _spec(name: str, mandatory: tuple[int, ...], allowed: Iterable[int], section: str,
          data_set: Literal["required", "none"]) -> Spec:
    return Spec(name, mandatory, frozenset(allowed), section, data_set, name.endswith("RSP"),
                 frozenset(mandatory))

_CF = COMMAND_FIELD
_TO = MESSAGE_ID_BEING_RESPONDED_TO
_DST = COMMAND_DATA_SET_TYPE
_CLS = AFFECTED_SOP_CLASS_UID
_INST = AFFECTED_SOP_INSTANCE_UID
_GL = COMMAND_GROUP_LENGTH
# (0000,0901) Offending Element and (0000,0902) Error Comment: the Annex C related fields.
_RELATED = (OFFENDING_ELEMENT, ERROR_COMMENT)

SPECS: dict[int, Spec] = {
    CommandField.C_STORE_RQ: _spec(
        "C-STORE-RQ", (_CLS, _CF, MESSAGE_ID, PRIORITY, _DST, _INST),
        (_GL, _CLS, _CF, MESSAGE_ID, PRIORITY, _DST, _INST, MOVE_ORIGINATOR_AET,
         MOVE_ORIGINATOR_MESSAGE_ID), "PS3.7 9.3.1.1", "required"),
    # (0000,0110) Message ID in a response is retired usage, not a deviation (9.1.1.1.1);
    # the related fields are those of the C-STORE statuses.
    CommandField.C_STORE_RSP: _spec(
        "C-STORE-RSP", (_CF, _TO, _DST, STATUS),
        (_GL, _CLS, _CF, MESSAGE_ID, _TO, _DST, STATUS, _INST, *_RELATED),
        "PS3.7 9.3.1.2", "none"),
    CommandField.C_ECHO_RQ: _spec(
        "C-ECHO-RQ", (_CLS, _CF, MESSAGE_ID, _DST), (_GL, _CLS, _CF, MESSAGE_ID, _DST),
        "PS3.7 9.3.5.1", "none"),
    CommandField.C_ECHO_RSP: _spec(
        "C-ECHO-RSP", (_CF, _TO, _DST, STATUS),
        (_GL, _CLS, _CF, MESSAGE_ID, _TO, _DST, STATUS, *_RELATED), "PS3.7 9.3.5.2", "none"),
    CommandField.C_CANCEL_RQ: _spec(
        "C-CANCEL-RQ", (_CF, _TO, _DST), (_GL, _CF, _TO, _DST), "PS3.7 9.3.2.3", "none"),
}


_UI_ELEMENTS = tuple(el for el, (_, vr) in COMMAND_ELEMENTS.items() if vr == "UI")


def check_common(out: DecodedCommand, spec: Spec) -> None:
    """Mandatory elements, allowed elements, and the value rules of the known commands."""
    el = out.elements
    findings = out.findings
    offsets = out.offsets
    if not el.keys() >= spec.mandatory_set:
        for element in spec.mandatory:
            if element not in el:
                findings.append(Finding(None, field_name(element), f"present in a {spec.name}",
                                        "missing", spec.section))
    if not spec.allowed >= el.keys():
        for element in out.order:
            if element not in spec.allowed and element in COMMAND_ELEMENTS:
                findings.append(Finding(offsets[element], field_name(element),
                                        f"only the fields of {spec.name} (and Annex C "
                                        "related)", "element not defined for this command",
                                        spec.section, "warning"))
    dst = el.get(COMMAND_DATA_SET_TYPE)
    if isinstance(dst, int):
        if spec.data_set == "required" and dst == NO_DATA_SET:
            findings.append(Finding(offsets[COMMAND_DATA_SET_TYPE],
                                    field_name(COMMAND_DATA_SET_TYPE),
                                    "any value other than 0101H (a data set follows)",
                                    "0x0101 (no data set)", spec.section))
        elif spec.data_set == "none" and dst != NO_DATA_SET:
            findings.append(Finding(offsets[COMMAND_DATA_SET_TYPE],
                                    field_name(COMMAND_DATA_SET_TYPE), "0x0101 (no data set)",
                                    f"0x{dst:04X}", spec.section))
    prio = el.get(PRIORITY)
    if isinstance(prio, int) and prio not in PRIORITIES:
        findings.append(Finding(offsets[PRIORITY], field_name(PRIORITY),
                                "0000H MEDIUM, 0001H HIGH or 0002H LOW", f"0x{prio:04X}",
                                spec.section))
    for element in _UI_ELEMENTS:
        uid = el.get(element)
        # The fast full match accepts exactly what uid_problem accepts; it explains failures.
        if isinstance(uid, str) and (len(uid) > 64 or UID_SYNTAX.fullmatch(uid) is None):
            problem = uid_problem(uid)
            if problem is not None:
                findings.append(Finding(offsets[element], field_name(element),
                                        "a valid UID (digits and '.', <= 64 chars)",
                                        f"{uid!r}: {problem}", "PS3.5 9.1"))
    if ERROR_COMMENT in el or MOVE_ORIGINATOR_AET in el or MOVE_DESTINATION in el:
        _check_text_fields(out)
    status = el.get(STATUS)
    if spec.is_rsp and isinstance(status, int):
        _check_status(out, spec, status)


def _check_text_fields(out: DecodedCommand) -> None:
    el, raw, findings, offsets = out.elements, out.raw, out.findings, out.offsets
    comment = el.get(ERROR_COMMENT)
    if isinstance(comment, str):
        where = offsets[ERROR_COMMENT]
        text = raw[ERROR_COMMENT].decode("latin-1").rstrip(" ")
        if len(text) > 64:
            findings.append(Finding(where, field_name(ERROR_COMMENT), "at most 64 characters (LO)",
                                    f"{len(text)} characters", "PS3.5 6.2; PS3.7 C.4"))
        bad = _BAD_TEXT.search(text)
        if bad is not None:
            findings.append(Finding(where, field_name(ERROR_COMMENT),
                                    "LO in the default repertoire, no "
                                    "backslash or control characters",
                                    f"character {bad.group()!r} at {bad.start()}",
                                    "PS3.5 6.2; PS3.5 6.1"))
    for element in (MOVE_DESTINATION, MOVE_ORIGINATOR_AET):
        title = el.get(element)
        if isinstance(title, str):
            problem = None
            if len(title) > 16:
                problem = f"{len(title)} characters (more than 16)"
            elif not title:
                problem = "all spaces"
            elif _BAD_TEXT.search(title):
                problem = "backslash, control or non-ASCII character"
            if problem is not None:
                findings.append(Finding(offsets[element], field_name(element),
                                        "an AE title (1-16 characters, no backslash or control "
                                        "characters)", f"{title!r}: {problem}", "PS3.5 6.2"))


def _check_status(out: DecodedCommand, spec: Spec, status: int) -> None:
    el, findings, offsets = out.elements, out.findings, out.offsets
    where = offsets[STATUS]
    if spec.name == "C-STORE-RSP":
        legality = c_store_legality(status)
        if legality == "illegal":
            findings.append(Finding(where, field_name(STATUS), "a C-STORE status (PS3.4 Table "
                                    "B.2-1)", f"0x{status:04X} ({classify(status).value}, not "
                                    "valid in a C-STORE-RSP)", "PS3.7 Annex C; PS3.7 9.1.1.1.9"))
        elif legality == "not-listed":
            findings.append(Finding(where, field_name(STATUS), "a C-STORE status (PS3.4 Table "
                                    "B.2-1)", f"0x{status:04X} ({describe(status).meaning}; "
                                    "not listed for C-STORE)", "PS3.7 9.1.1.1.9; PS3.4 B.2.3",
                                    "warning"))
    elif classify(status) is StatusCategory.ILLEGAL:
        findings.append(Finding(where, field_name(STATUS), "a status of the Annex C classes",
                                f"0x{status:04X}", "PS3.7 Annex C"))
    related = describe(status).related_fields
    for element in (OFFENDING_ELEMENT, ERROR_COMMENT):
        if element in el and element not in related:
            findings.append(Finding(offsets[element], field_name(element),
                                    f"only with statuses whose related fields include it "
                                    f"(not 0x{status:04X})", "present", "PS3.7 Annex C",
                                    "warning"))
