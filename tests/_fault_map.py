"""The fault map: which reference SCP faults each MUST / SHOULD scenario must catch.

Shared by tests/test_suite_conformance.py (runs the scenarios against each fault) and
tests/test_scp_faults.py (every fault is proven somewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.scp.profile import StatusRule


@dataclass(frozen=True)
class Case:
    """Scenarios (exact ids, or base ids covering every parametrised case) that must fail or
    warn when the reference SCP runs with ``faults`` (and profile ``overrides``)."""

    ids: tuple[str, ...]
    faults: tuple[str, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()
    declared: tuple[tuple[str, Any], ...] = ()
    note: str = ""

    @property
    def key(self) -> str:
        """Cases with the same SCP set-up run against one embedded SCP."""
        return repr((self.faults, self.overrides, self.declared))

    @property
    def label(self) -> str:
        return "+".join(self.faults or tuple(n for n, _ in self.overrides + self.declared))


def C(*ids: str, faults: tuple[str, ...] | str = (), **kw: Any) -> Case:
    if isinstance(faults, str):
        faults = (faults,)
    overrides = tuple(sorted(kw.pop("overrides", {}).items()))
    declared = tuple(sorted(kw.pop("declared", {}).items()))
    return Case(tuple(ids), tuple(faults), overrides, declared, **kw)


FAIL_ALL = {"status_rules": [StatusRule(status=0xC000)]}

FAULT_MAP: list[Case] = [
    # A: association negotiation
    C("assoc.baseline", "assoc.transfer-syntax-choice", "assoc.role-selection-scu",
      faults="wrong_ae_echo"),
    C("assoc.unsupported-abstract-syntax", overrides={"accept_any_abstract_syntax": True}),
    C("assoc.unsupported-transfer-syntax", faults="accept_any_transfer_syntax"),
    C("assoc.same-abstract-syntax-several-contexts", "response.same-context",
      faults="response_other_context"),
    C("assoc.unknown-application-context", faults="accept_bad_app_context"),
    C("assoc.protocol-version-bit0-clear", faults="accept_any_version"),
    C("assoc.protocol-version-other-bits", faults="reject_version_bits"),
    C("assoc.calling-ae-not-authorised", declared={"calling_aet_allow": ["HARNESS"]}),
    C("assoc.unknown-user-subitem", faults="abort_on_unknown_subitem"),
    C("assoc.async-window-offered[5-5]", faults="async_window_unlimited"),
    C("assoc.async-window-offered[1-1]", faults="async_window_reply"),
    C("assoc.role-selection-scu", faults="grant_scp_role"),
    C("assoc.even-context-id", "assoc.duplicate-context-id", "assoc.context-id-zero",
      faults="accept_even_context_id"),
    # B: stores and framing
    C("store.transfer-syntax", "store.sop-class", "store.pdv-packing", "store.move-originator",
      "command.uid-nul-padding", faults="alter_stored"),
    C("store.large-object", "resource.huge-object", overrides=FAIL_ALL),
    C("store.many-sequential", "store.concurrent-associations", "store.field-boundaries",
      "response.fields-success", faults="wrong_message_id"),
    C("store.empty-final-pdv", faults="reject_empty_pdv"),
    C("store.reserved-bits[pdu]", faults="no_reserved_echo"),
    C("store.small-max-pdu[64]", faults="ignore_peer_max_pdu"),
    C("store.echo", "response.echo-fields", faults="bad_echo_status"),
    C("store.release", faults="ignore_release"),
    # C: responses
    C("response.status-legal", faults="illegal_status"),
    C("response.wrong-context", "response.store-on-verification-context",
      faults="accept_wrong_context"),
    C("response.no-success-before-last-fragment", faults="success_before_data"),
    # D: duplicates
    C("dup.sequential-message-id", faults="duplicate_check_all"),
    C("dup.pipelined-same-id", faults="no_duplicate_check"),
    C("dup.negotiated-window", faults="wrong_message_id", overrides={"async_window": (5, 5)}),
    # E: cancel
    C("cancel.after-data-set", "cancel.unknown-message-id", "cancel.many-in-a-row",
      faults="answer_cancel"),
    C("cancel.inside-data-set", "pdu.context-change-within-message", "pdu.data-before-command",
      "pdu.interleaved-messages", faults="lenient_framing"),
    C("cancel.scu-abort[inside-data,abort]", "cancel.scu-abort[inside-data,rst]",
      "release.inside-data-set", faults="keep_partial"),
    # F: data sets
    C("dataset.truncated", "dataset.bad-vr", "dataset.missing-type1[missing-rows]",
      faults="accept_truncated"),
    C("dataset.garbage", "dataset.wrong-encoding",
      faults=("accept_truncated", "accept_uid_mismatch")),
    C("dataset.pathological", faults="no_response"),
    C("dataset.sop-instance-mismatch", "dataset.sop-class-mismatch",
      "dataset.missing-type1[missing-type1]", faults="accept_uid_mismatch"),
    # Universal verdict checks (issue 13): S01 nothing kept after a failure, C03 status
    # semantics (harness/engine/semantics.py), proven on the scenarios that provoke them.
    C("dataset.sop-instance-mismatch", "dataset.truncated[truncate-inside-value]",
      faults="keep_after_failure"),
    C("dataset.pathological[unterminated-sequence]", "dataset.pathological[deep-nesting]",
      faults="misuse_0210"),
    C("dataset.sop-instance-mismatch", faults="misuse_0211"),
    C("dataset.sop-instance-mismatch", faults="misuse_0122"),
    C("dataset.sop-instance-mismatch", faults="misuse_0117"),
    C("store.sop-class", faults="warning_without_coercion"),
    # G: commands
    C("command.missing-element", "command.no-data-set", "command.unknown-command-field",
      "command.explicit-vr", faults="silent_on_bad_command"),
    C("command.invalid-uid", faults="accept_invalid_uid"),
    C("command.unaccepted-context", faults="accept_unaccepted_context"),
    # H: PDUs
    C("pdu.unrecognized-type", "pdu.unexpected-in-sta6", "pdu.inconsistent-lengths",
      "resource.lying-pdu-length", faults="hang_on_bad_pdu"),
    C("pdu.non-dicom-bytes", faults=("hang_on_bad_pdu", "no_artim"),
      declared={"artim_timeout": 1.0}),
    C("pdu.over-max-length", faults="accept_oversized_pdu"),
    C("pdu.truncated-then-fin", faults="ignore_fin"),
    # I: release and timers
    C("release.normal", "timeout.artim-no-request", "timeout.artim-partial-request",
      faults="no_artim", declared={"artim_timeout": 1.0}),
    C("release.right-after-request", faults="release_drops_responses",
      overrides={"delay_before_response": 0.3}),
    # J: security
    C("security.calling-ae-syntax", faults="accept_bad_ae"),
    C("security.hostile-uid[..-..-x]", "security.hostile-uid[etc-passwd]",
      faults=("accept_invalid_uid", "unsafe_paths")),
    C("security.uid-length-64", faults="strict_uid_length"),
    # K: resources
    C("resource.association-limit", faults="refuse_tcp_when_full",
      overrides={"max_associations": 4}),
    C("resource.connection-flood", faults="count_idle_connections",
      overrides={"max_associations": 8}),
    C("resource.large-associate-rq", faults="truncate_results"),
    # L: DICOM over TLS (the embedded SCP serves TLS for these, as with run --tls)
    C("tls.version.1-2-accepted", faults="tls_only_tls13"),
    C("tls.version.1-3-accepted", faults="tls_no_tls13"),
    C("tls.version.old-refused", faults="tls_old_versions"),
    C("tls.cipher.weak-refused[null-encryption]", "tls.cipher.weak-refused[anonymous]",
      "tls.cipher.no-forward-secrecy", faults="tls_weak_ciphers"),
    C("tls.server-certificate", faults="tls_expired_cert"),
    C("tls.server-certificate", faults="tls_self_signed_cert"),
    C("tls.client-cert.missing-refused", "tls.client-cert.bad-refused",
      faults="tls_no_client_verify"),
    C("tls.plaintext-refused", faults="tls_plaintext_fallback"),
    C("tls.handshake-stall", faults="no_artim", declared={"artim_timeout": 1.0}),
]


def faults_in_map() -> set[str]:
    return {f for case in FAULT_MAP for f in case.faults}
