"""Status semantics: beyond legality (C02), a C-STORE status must fit the situation.

PS3.7 Annex C gives several failure and warning codes one precise meaning. A code used for
something else misleads the SCU (a 0x0210 "Duplicate invocation" makes it believe it reused a
Message ID; a Warning "Coercion" makes it believe the stored object differs from its own).
``STATUS_SEMANTICS`` is the one table of these rules: status, the condition under which it
fits, severity and citation. README's "Status semantics" table is written from it
(``markdown_table()``), and the universal check "C03 status fits the situation" applies it to
every C-STORE-RSP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.wire.status import status_label
from harness.wire.uid import is_valid_uid

C_STORE_RQ = 0x0001


@dataclass(slots=True)
class StoreSituation:
    """What the harness knows about the request a status answers."""

    command_field: int = C_STORE_RQ
    context_abstract: str = ""  # abstract syntax of the context the request went on
    context_accepted: bool = True
    storage_context: bool = True  # the context's abstract syntax is a Storage SOP class
    command_sop_class: str = ""
    command_sop_instance: str = ""
    dataset_sop_instance: str | None = None  # None: no data set or not known
    dataset_sop_class: str | None = None  # set when the data set's class was changed
    dataset_altered: bool = False  # the data set was malformed or changed on purpose
    duplicate_id: bool = False  # another request with this Message ID was outstanding
    stored_differs: bool | None = None  # stored copy differs from what was sent (None: unknown)


Fits = Callable[[StoreSituation], bool | None]


@dataclass(frozen=True, slots=True)
class SemanticRule:
    status: int
    name: str
    condition: str  # when the status fits (for README and the check's "expected")
    severity: str  # must | should
    reference: str
    fits: Fits  # True fits, False does not, None cannot be judged here
    unfit: str  # why it does not fit, in words (C03's observed text: "... although UNFIT")


def _class_mismatch(s: StoreSituation) -> bool:
    return (not s.context_accepted or not s.storage_context
            or s.command_sop_class != s.context_abstract
            or (s.dataset_sop_class is not None and s.dataset_sop_class != s.context_abstract))


def _invalid_uid(s: StoreSituation) -> bool:
    return not is_valid_uid(s.command_sop_instance) or (
        s.dataset_sop_instance is not None and not is_valid_uid(s.dataset_sop_instance))


def _unrecognised(s: StoreSituation) -> bool:
    return s.command_field != C_STORE_RQ or not s.storage_context or not s.context_accepted


def _coerced(s: StoreSituation) -> bool | None:
    return s.stored_differs


def _not_matching(s: StoreSituation) -> bool | None:
    # The harness's synthetic instances are complete for their IOD; only a data set changed on
    # purpose (or one stored differently) can justify "does not match SOP Class".
    if s.dataset_altered or s.stored_differs:
        return True
    return None if s.stored_differs is None else False


STATUS_SEMANTICS: tuple[SemanticRule, ...] = (
    SemanticRule(0x0210, "Duplicate invocation",
                 "another request with the same Message ID was outstanding on the association",
                 "must", "PS3.7 C.5.9; PS3.7 9.1.1.1.1", lambda s: s.duplicate_id,
                 "no other request with that Message ID was outstanding"),
    SemanticRule(0x0211, "Unrecognized operation",
                 "the operation is not one of the context's SOP class (not a C-STORE-RQ, or a "
                 "context that is not a Storage SOP class or was not accepted)",
                 "must", "PS3.7 C.5.23; PS3.4 B.2.3", _unrecognised,
                 "the request was a C-STORE-RQ on an accepted Storage context"),
    SemanticRule(0x0122, "Refused: SOP Class not supported",
                 "the command's (or the data set's) SOP class is not the abstract syntax "
                 "negotiated for the context, or the context was not accepted",
                 "must", "PS3.7 C.5.6; PS3.7 9.1.1.1.9; PS3.8 7.1.1.13", _class_mismatch,
                 "the SOP class sent was the one negotiated for that context"),
    SemanticRule(0x0117, "Invalid SOP Instance",
                 "the SOP Instance UID sent (command or data set) is not a valid UID "
                 "(PS3.5 9.1: digits and dots, no leading zero, at most 64 characters)",
                 "must", "PS3.7 C.5.12; PS3.5 9.1", _invalid_uid,
                 "the SOP Instance UIDs sent were valid"),
    SemanticRule(0xB000, "Warning: Coercion of Data Elements",
                 "the stored object differs from what was sent (judged with --storage-dir)",
                 "should", "PS3.4 B.2.3, Table B.2-1; PS3.4 B.4.1.3", _coerced,
                 "the stored object equals what was sent (nothing coerced)"),
    SemanticRule(0xB006, "Warning: Elements Discarded",
                 "the stored object lacks elements that were sent (judged with --storage-dir)",
                 "should", "PS3.4 B.2.3, Table B.2-1", _coerced,
                 "the stored object equals what was sent (nothing discarded)"),
    SemanticRule(0xB007, "Warning: Data Set does not match SOP Class",
                 "the data set sent was altered on purpose or was stored differently",
                 "should", "PS3.4 B.2.3, Table B.2-1", _not_matching,
                 "the data set sent was a complete, unaltered instance of its class, stored "
                 "as sent"),
)

_BY_STATUS = {rule.status: rule for rule in STATUS_SEMANTICS}


def rule_for(status: int) -> SemanticRule | None:
    return _BY_STATUS.get(status)


def judge_status(status: int, situation: StoreSituation) -> tuple[SemanticRule, bool | None] | None:
    """(rule, fits) for a status with a semantic rule, else None."""
    rule = rule_for(status)
    if rule is None:
        return None
    return rule, rule.fits(situation)


def needs_stored_copy(status: int) -> bool:
    """Warnings are judged against what was stored."""
    rule = rule_for(status)
    return rule is not None and rule.fits in (_coerced, _not_matching)


def markdown_table() -> str:
    """README's status-semantics table, from ``STATUS_SEMANTICS``."""
    lines = ["| Status | Meaning | Fits only when | Severity | Rule |",
             "|---|---|---|---|---|"]
    for rule in STATUS_SEMANTICS:
        lines.append(f"| {status_label(rule.status).split()[0]} | {rule.name} | "
                     f"{rule.condition} | {rule.severity.upper()} | {rule.reference} |")
    return "\n".join(lines)
