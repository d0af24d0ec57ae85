"""Behaviour profiles of the reference Storage SCP: conformant settings plus named faults.

A profile is a YAML mapping (``dicom-harness serve --profile FILE``) or the same as Python
objects. Everything defaults to the conformant behaviour; faults are off unless named. The
faults exist so the harness's own tests can prove that each scenario fails when it should.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.wire.constants import DEFAULT_CALLED_AE


class ProfileError(ValueError):
    """A profile file or mapping is invalid; the message names the file and the field."""


@dataclass(slots=True)
class StatusRule:
    """Return ``status`` for stores matching every given condition."""

    status: int
    sop_class: str | None = None  # SOP Class UID of the request
    nth: int | None = None  # the Nth store on the server (1-based)
    every: int | None = None  # every Nth store
    attribute: str | None = None  # pydicom keyword in the data set ...
    value: str | None = None  # ... equal to this value (as a string)
    error_comment: str | None = None

    def matches(self, sop_class: str, count: int, read_attr: Any) -> bool:
        if self.sop_class is not None and self.sop_class != sop_class:
            return False
        if self.nth is not None and self.nth != count:
            return False
        if self.every is not None and count % self.every:
            return False
        if self.attribute is not None:
            return str(read_attr(self.attribute)) == str(self.value)
        return True


# Faults: name -> what it does. Kept as data so `serve --list-faults` and docs agree.
FAULTS: dict[str, str] = {
    "no_response": "never answer a C-STORE-RQ (the association stays up)",
    "double_response": "answer every C-STORE-RQ twice",
    "wrong_message_id": "Message ID Being Responded To = request's Message ID + 1",
    "wrong_sop_instance": "echo a different Affected SOP Instance UID",
    "response_other_context": "send the C-STORE-RSP on another accepted presentation context",
    "ignore_peer_max_pdu": "send PDUs larger than the requestor's Maximum Length",
    "illegal_status": "answer Success as status 0xFFFF (outside PS3.7 Annex C)",
    "pending_status": "answer with 0xFF00 Pending, illegal for C-STORE",
    "cancel_status": "answer a C-STORE followed by a C-CANCEL with 0xFE00",
    "abort_after_command": "A-ABORT right after the C-STORE-RQ command",
    "abort_during_data": "A-ABORT after the first data set fragment",
    "abort_before_response": "A-ABORT after the data set, before the response",
    "close_on_store": "close TCP without any PDU when a data set completes",
    "accept_truncated": "answer Success for truncated or undecodable data sets",
    "accept_uid_mismatch": "do not compare data set UIDs with the command's",
    "accept_invalid_uid": "do not check UID syntax of the Affected SOP Instance UID",
    "accept_wrong_context": "store even when the SOP class differs from the context's",
    "no_duplicate_check": "process a duplicate outstanding Message ID like any other",
    "lose_every_nth": "answer Success but do not store every Nth instance (lose_every)",
    "alter_stored": "change PatientName in what is stored, answer Success",
    "keep_partial": "keep partial files of aborted or failed stores",
    "success_before_data": "answer Success right after the command, before the data set",
    "answer_cancel": "answer a C-CANCEL-RQ with a response message",
    "reject_all": "reject every association (A-ASSOCIATE-RJ 1,1,1)",
    "abort_on_unknown_subitem": "A-ABORT when a user information sub-item is unknown",
    "reject_version_bits": "reject protocol versions other than exactly 0001H",
    "accept_bad_app_context": "accept any application context name",
    "accept_even_context_id": "accept even or duplicate presentation context IDs",
    "wrong_ae_echo": "do not echo the called/calling AE titles in the A-ASSOCIATE-AC",
    "async_window_reply": "always reply an asynchronous operations window of (5, 5)",
    "ignore_release": "never answer A-RELEASE-RQ",
    "no_artim": "never time out a connection that sends nothing",
    "silent_on_bad_command": "send nothing for a C-STORE-RQ missing mandatory elements",
    "hang_on_bad_pdu": "ignore undecodable or unexpected PDUs instead of aborting",
    "accept_oversized_pdu": "accept P-DATA-TF PDUs over our advertised maximum",
    "error_comment_leak": "put a file system path in every Error Comment",
    "accept_any_transfer_syntax": "accept a context with its first proposed transfer syntax, "
                                  "supported or not",
    "accept_any_version": "accept any protocol version, bit 0 clear included",
    "async_window_unlimited": "reply an asynchronous operations window of (0, 0) (unlimited)",
    "grant_scp_role": "grant the SCP role in role selection replies, even when not proposed",
    "no_reserved_echo": "send zeros in A-ASSOCIATE-AC bytes 43-74 instead of echoing them",
    "truncate_results": "answer at most 100 presentation contexts of an A-ASSOCIATE-RQ",
    "accept_bad_ae": "accept Calling AE titles that break the AE VR",
    "bad_echo_status": "answer C-ECHO with 0x0211",
    "duplicate_check_all": "answer 0x0210 to any reuse of a Message ID on the association",
    "reject_empty_pdv": "A-ABORT on a zero-length last data fragment",
    "release_drops_responses": "answer A-RELEASE-RQ at once, dropping unanswered stores",
    "unsafe_paths": "name files after the SOP Instance UID as given (path traversal)",
    "strict_uid_length": "treat UIDs of 60 characters or more as invalid (0x0117)",
    "lenient_framing": "ignore misframed PDVs (interleaving, context changes, data first)",
    "ignore_fin": "keep the connection open after the peer's FIN",
    "accept_unaccepted_context": "process PDVs on presentation contexts never accepted",
    "count_idle_connections": "count idle TCP connections against the association limit",
    "refuse_tcp_when_full": "close TCP instead of A-ASSOCIATE-RJ when the limit is reached",
    # Over TLS only (harness/scp/tls_faults.py); the certificate faults need the certificates
    # the harness makes (run --tls without --target).
    "tls_old_versions": "TLS: accept TLS 1.0 and 1.1",
    "tls_weak_ciphers": "TLS: accept NULL, anonymous and static-RSA CBC-SHA1 suites (and "
                        "so no client certificate)",
    "tls_no_tls13": "TLS: accept TLS 1.2 only",
    "tls_only_tls13": "TLS: accept TLS 1.3 only",
    "tls_no_client_verify": "TLS: accept any client certificate, or none",
    "tls_expired_cert": "TLS: serve an expired certificate",
    "tls_self_signed_cert": "TLS: serve a self-signed certificate",
    "tls_plaintext_fallback": "TLS: serve plain DICOM on the TLS port to a non-TLS client",
}
# Verdict faults (issue 13): a failure that still keeps the file, and statuses whose meaning
# does not fit the situation (PS3.7 Annex C; the harness's STATUS_SEMANTICS table).
FAULTS.update({
    "keep_after_failure": "keep the received file even when the store is answered with a "
                          "Failure",
    "misuse_0210": "answer 0x0210 (Duplicate invocation) to data sets it cannot decode",
    "misuse_0211": "answer 0x0211 (Unrecognized operation) instead of any other Failure",
    "misuse_0122": "answer 0x0122 (SOP Class not supported) instead of any other Failure",
    "misuse_0117": "answer 0x0117 (Invalid SOP Instance) instead of any other Failure",
    "warning_without_coercion": "answer 0xB000 (Coercion) to stores kept unchanged",
})


@dataclass(slots=True)
class Profile:
    """Everything that shapes the reference SCP's behaviour."""

    ae_title: str = DEFAULT_CALLED_AE
    require_called_aet: bool = False
    calling_aet_allow: list[str] = field(default_factory=list)
    max_associations: int = 32
    max_pdu: int = 65536
    # TCP connections that have not sent an A-ASSOCIATE-RQ yet, at once; when one more comes
    # the oldest waiting one is closed (0 = no limit). Bounds what a connection flood costs.
    max_pending_connections: int = 64
    artim_timeout: float = 30.0
    idle_timeout: float | None = 600.0
    async_window: tuple[int, int] = (1, 1)
    sop_classes: list[str] | None = None  # None: every storage SOP class + Verification
    transfer_syntaxes: list[str] | None = None  # None: every supported one, preferred order
    accept_any_abstract_syntax: bool = False
    accept_any_ae: bool = True
    duplicate_sop_instance: str = "overwrite"  # overwrite | keep-first | reject
    fsync: bool = False
    status_rules: list[StatusRule] = field(default_factory=list)
    delay_before_response: float = 0.0
    delay_between_pdus: float = 0.0
    lose_every: int = 0
    faults: set[str] = field(default_factory=set)

    def has(self, fault: str) -> bool:
        return fault in self.faults

    @classmethod
    def conformant(cls, **overrides: Any) -> Profile:
        return cls(**overrides)

    @classmethod
    def with_faults(cls, *names: str, **overrides: Any) -> Profile:
        unknown = [n for n in names if n not in FAULTS]
        if unknown:
            raise ProfileError(f"unknown fault(s): {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(FAULTS))}")
        return cls(faults=set(names), **overrides)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<profile>") -> Profile:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ProfileError(f"{source}: a profile must be a mapping, got "
                               f"{type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ProfileError(f"{source}: unknown field '{key}'; known fields: "
                                   f"{', '.join(sorted(known))}")
            kwargs[name] = _convert(name, value, source)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ProfileError(f"{source}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{p}: cannot read profile: {exc.strerror or exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ProfileError(f"{p}:{where} invalid YAML: {exc}") from exc
        return cls.from_mapping(data, str(p))

    def to_mapping(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["faults"] = sorted(self.faults)
        return out


_BOOL_FIELDS = frozenset({"require_called_aet", "accept_any_abstract_syntax", "accept_any_ae",
                          "fsync"})
_STR_LIST_FIELDS = frozenset({"calling_aet_allow", "sop_classes", "transfer_syntaxes"})


def _int(value: Any, name: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProfileError(f"{source}: field '{name}' must be an integer, got {value!r}")
    try:
        return int(value, 0) if isinstance(value, str) else value
    except ValueError as exc:
        raise ProfileError(f"{source}: field '{name}' must be an integer, got {value!r}") from exc


def _convert(name: str, value: Any, source: str) -> Any:
    if name == "faults":
        items = [value] if isinstance(value, str) else list(value or [])
        unknown = [v for v in items if v not in FAULTS]
        if unknown:
            raise ProfileError(f"{source}: field 'faults': unknown fault(s) "
                               f"{', '.join(map(str, unknown))}; "
                               f"known: {', '.join(sorted(FAULTS))}")
        return set(items)
    if name == "status_rules":
        rules = []
        for i, raw in enumerate(value or []):
            if not isinstance(raw, dict) or "status" not in raw:
                raise ProfileError(f"{source}: status_rules[{i}] needs a 'status'")
            try:
                rule = StatusRule(**{k.replace("-", "_"): v for k, v in raw.items()})
            except TypeError as exc:
                raise ProfileError(f"{source}: status_rules[{i}]: {exc}") from exc
            rule.status = _int(rule.status, f"status_rules[{i}].status", source)
            rules.append(rule)
        return rules
    if name == "async_window":
        if not (isinstance(value, list | tuple) and len(value) == 2):
            raise ProfileError(f"{source}: field 'async_window' must be [invoked, performed]")
        return (_int(value[0], name, source), _int(value[1], name, source))
    if name in ("max_associations", "max_pdu", "lose_every", "max_pending_connections"):
        number = _int(value, name, source)
        if number < 0:
            raise ProfileError(f"{source}: field '{name}' must be >= 0, got {value!r}")
        return number
    if name == "idle_timeout" and value is None:
        return None  # no idle timeout
    if name in ("artim_timeout", "idle_timeout", "delay_before_response", "delay_between_pdus"):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ProfileError(f"{source}: field '{name}' must be a number >= 0, got {value!r}")
        return float(value)
    if name in _BOOL_FIELDS and not isinstance(value, bool):
        raise ProfileError(f"{source}: field '{name}' must be true or false, got {value!r}")
    if name in _STR_LIST_FIELDS:
        if value is None and name != "calling_aet_allow":
            return None  # the default: every supported one
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProfileError(f"{source}: field '{name}' must be a list of strings, "
                               f"got {value!r}")
        return list(value)
    if name in ("ae_title", "duplicate_sop_instance") and not isinstance(value, str):
        raise ProfileError(f"{source}: field '{name}' must be a string, got {value!r}")
    if name == "duplicate_sop_instance" and value not in ("overwrite", "keep-first", "reject"):
        raise ProfileError(f"{source}: field 'duplicate_sop_instance' must be overwrite, "
                           f"keep-first or reject, got {value!r}")
    return value
