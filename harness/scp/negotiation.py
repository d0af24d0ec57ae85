"""Association negotiation policy of the reference SCP (PS3.8 9.3.3-9.3.4, PS3.7 Annex D)."""

from __future__ import annotations

from functools import lru_cache

from harness.scp.profile import Profile
from harness.wire.constants import (
    APPLICATION_CONTEXT_NAME,
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    HEVC_MP51,
    HTJ2K,
    HTJ2K_LOSSLESS,
    HTJ2K_LOSSLESS_RPCL,
    IMPLICIT_VR_LE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    MPEG2_MPML,
    MPEG4_HP41,
    RLE_LOSSLESS,
    VERIFICATION_SOP_CLASS,
    AbortReason,
    AbortSource,
    RejectReason,
    RejectResult,
    RejectSource,
)
from harness.wire.findings import Finding
from harness.wire.items import (
    AsyncOpsWindow,
    PresentationContextAC,
    RawItem,
    RoleSelection,
    SubItem,
)
from harness.wire.pdu import Abort, AssociateAC, AssociateRJ, AssociateRQ, associate_ac

# Accepted transfer syntaxes in order of preference; encapsulated ones are stored as received.
NATIVE_TRANSFER_SYNTAXES = [EXPLICIT_VR_LE, IMPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE,
                            EXPLICIT_VR_BE]
ENCAPSULATED_TRANSFER_SYNTAXES = [
    JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS, JPEG_2000_LOSSLESS, JPEG_2000, HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL,
    HTJ2K, RLE_LOSSLESS, MPEG2_MPML, MPEG4_HP41, HEVC_MP51,
]
DEFAULT_TRANSFER_SYNTAXES = NATIVE_TRANSFER_SYNTAXES + ENCAPSULATED_TRANSFER_SYNTAXES


@lru_cache(maxsize=1)
def storage_sop_classes() -> frozenset[str]:
    """Every storage SOP class pydicom knows (PS3.4 B.5), from its UID dictionary."""
    from pydicom._uid_dict import UID_dictionary

    out = set()
    for uid, entry in UID_dictionary.items():
        name, kind = entry[0], entry[1]
        if kind == "SOP Class" and "Storage" in name and not any(
                word in name for word in ("Commitment", "Retrieve", "Find", "Move", "Get")):
            out.add(uid)
    return frozenset(out)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("ascii", "replace")


_PERMANENT = RejectResult.PERMANENT


def negotiate(profile: Profile, rq: AssociateRQ, findings: list[Finding],
              active_associations: int) -> AssociateAC | AssociateRJ | Abort | None:
    """Decide A-ASSOCIATE-AC, -RJ or A-ABORT for ``rq`` under ``profile``;
    ``active_associations`` counts the established ones, not this one."""
    if profile.has("reject_all"):
        return AssociateRJ(_PERMANENT, RejectSource.SERVICE_USER, RejectReason.NO_REASON_GIVEN)
    if active_associations >= profile.max_associations:
        if profile.has("refuse_tcp_when_full"):
            return None  # close without a PDU: what PS3.8 9.1.4 Note 1 advises against
        return AssociateRJ(RejectResult.TRANSIENT, RejectSource.PROVIDER_PRESENTATION,
                           RejectReason.LOCAL_LIMIT_EXCEEDED)  # PS3.8 9.3.4
    version = rq.protocol_version
    if (not version & 1 and not profile.has("accept_any_version")) or (
            profile.has("reject_version_bits") and version != 1):
        return AssociateRJ(_PERMANENT, RejectSource.PROVIDER_ACSE,
                           RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED)
    if rq.application_context != APPLICATION_CONTEXT_NAME and not profile.has(
            "accept_bad_app_context"):
        return AssociateRJ(_PERMANENT, RejectSource.SERVICE_USER,
                           RejectReason.APPLICATION_CONTEXT_NOT_SUPPORTED)
    user = rq.user_information
    if profile.has("abort_on_unknown_subitem") and user is not None and any(
            isinstance(s, RawItem) for s in user.sub_items):
        return Abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNRECOGNIZED_PDU_PARAMETER)
    bad_ids = [f for f in findings if f.field == "Presentation-context-ID"]
    if bad_ids and not profile.has("accept_even_context_id"):
        return Abort(AbortSource.SERVICE_PROVIDER,
                     AbortReason.INVALID_PDU_PARAMETER_VALUE)  # PS3.8 9.3.2.2, 9.3.8
    lax_ae = profile.has("accept_bad_ae")
    if (any(f.field == "Calling-AE-title" for f in findings) and not lax_ae) or (
            profile.calling_aet_allow and rq.calling_ae_title not in profile.calling_aet_allow):
        return AssociateRJ(_PERMANENT, RejectSource.SERVICE_USER,
                           RejectReason.CALLING_AE_NOT_RECOGNIZED)
    if (any(f.field == "Called-AE-title" for f in findings) and not lax_ae) or (
            profile.require_called_aet and rq.called_ae_title != profile.ae_title):
        return AssociateRJ(_PERMANENT, RejectSource.SERVICE_USER,
                           RejectReason.CALLED_AE_NOT_RECOGNIZED)
    results, roles = _contexts(profile, rq)
    extra: list[SubItem] = list(roles)
    window = user.async_ops_window if user is not None else None
    if profile.has("async_window_reply"):
        extra.append(AsyncOpsWindow(5, 5))
    elif profile.has("async_window_unlimited") and window is not None:
        extra.append(AsyncOpsWindow(0, 0))
    elif window is not None and profile.async_window != (1, 1):
        extra.append(AsyncOpsWindow(*(_min_window(ours, theirs) for ours, theirs in
                                      zip(profile.async_window, window, strict=True))))
    ac = associate_ac(rq, results, max_pdu=profile.max_pdu, extra_user_items=extra)
    if profile.has("wrong_ae_echo"):
        ac.called_ae = "SOMEONE-ELSE"
        ac.calling_ae = "NOT-YOU"
    if profile.has("no_reserved_echo"):
        ac.reserved_tail = bytes(32)
    return ac


def _min_window(ours: int, theirs: int) -> int:
    # 0 means unlimited on both sides (PS3.7 D.3.3.3).
    if ours == 0:
        return theirs
    if theirs == 0:
        return ours
    return min(ours, theirs)


def _contexts(profile: Profile, rq: AssociateRQ) -> tuple[list[PresentationContextAC],
                                                          list[RoleSelection]]:
    supported = set(profile.sop_classes) if profile.sop_classes is not None else (
        storage_sop_classes() | {VERIFICATION_SOP_CLASS})
    preference = profile.transfer_syntaxes or DEFAULT_TRANSFER_SYNTAXES
    user = rq.user_information
    proposed_roles = {_text(r.sop_class_uid): r for r in (user.role_selections if user else [])}
    results: list[PresentationContextAC] = []
    replies: dict[str, RoleSelection] = {}
    for pc in rq.presentation_contexts:
        abstract = _text(pc.abstract_syntax)
        offered = [_text(t) for t in pc.transfer_syntaxes]
        first_offered = offered[0] if offered else IMPLICIT_VR_LE
        if abstract not in supported and not profile.accept_any_abstract_syntax:
            results.append(PresentationContextAC(pc.context_id, 3, first_offered))
            continue
        chosen = next((ts for ts in preference if ts in offered), None)
        if chosen is None and profile.has("accept_any_transfer_syntax") and offered:
            chosen = offered[0]
        if chosen is None:
            results.append(PresentationContextAC(pc.context_id, 4, first_offered))
            continue
        role = proposed_roles.get(abstract)
        if role is not None:
            # We act as the SCP of storage; grant the requestor the SCU role if it asked.
            if not role.scu_role:
                results.append(PresentationContextAC(pc.context_id, 1, chosen))
                continue
            replies[abstract] = RoleSelection(abstract, 1, 1 if profile.has("grant_scp_role")
                                              else 0)
        results.append(PresentationContextAC(pc.context_id, 0, chosen))
    if profile.has("truncate_results"):
        results = results[:100]
    return results, list(replies.values())
