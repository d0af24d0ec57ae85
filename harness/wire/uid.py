"""UIDs and AE titles: syntax checks (PS3.5 9.1, PS3.5 6.2, PS3.8 9.3.2) and registered names."""

from __future__ import annotations

import functools
import re

from harness.wire.findings import Finding

# PS3.5 9.1 UID syntax, for ``fullmatch`` (``$`` would let a trailing newline through). The
# DIMSE decoders' quick test too; uid_problem explains a failure.
UID_SYNTAX = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_AE_FORBIDDEN = re.compile(r"[\\\x00-\x1f\x7f]")


def uid_problem(uid: str) -> str | None:
    """Return why ``uid`` breaks the UID rules of PS3.5 9.1, or ``None`` if it is valid."""
    if not uid:
        return "empty UID"
    if len(uid) > 64:
        return f"{len(uid)} characters (more than 64)"
    if UID_SYNTAX.fullmatch(uid) is None:
        if any(c not in "0123456789." for c in uid):
            return "characters other than digits and '.'"
        if ".." in uid or uid.startswith(".") or uid.endswith("."):
            return "empty component"
        return "component with a leading zero"
    return None


@functools.lru_cache(maxsize=1024)
def uid_name(uid: str) -> str:
    """Name of a registered UID (SOP class, transfer syntax) from pydicom's dictionary, else the
    UID itself. pydicom is imported lazily: the codec itself does not need it."""
    try:
        from pydicom._uid_dict import UID_dictionary
    except Exception:  # pydicom missing or its layout changed: the UID is still informative
        return uid
    entry = UID_dictionary.get(uid)
    return str(entry[0]) if entry else uid


def is_valid_uid(uid: str) -> bool:
    return uid_problem(uid) is None


def uid_findings(uid: str, field: str, offset: int | None, section: str = "PS3.5 9.1") -> list[
    Finding
]:
    problem = uid_problem(uid)
    if problem is None:
        return []
    expected = "a valid UID (digits and '.', <= 64 chars)"
    return [Finding(offset, field, expected, f"{uid!r}: {problem}", section)]


def ae_title_problem(raw: bytes) -> str | None:
    """Return why a 16-byte AE title field is invalid, or ``None``. Spaces are not significant."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return "non-ASCII bytes"
    if not text.strip(" "):
        return "all spaces"
    if _AE_FORBIDDEN.search(text.rstrip("\x00")):
        return "backslash or control character"
    return None


def decode_ae_title(raw: bytes) -> str:
    """Decode an AE title field leniently: leading and trailing spaces (and NULs) are dropped."""
    return raw.decode("ascii", errors="replace").strip(" \x00")


def encode_ae_title(title: str | bytes) -> bytes:
    """Encode an AE title as 16 bytes, space padded; bytes are used as given (fault injection)."""
    if isinstance(title, bytes):
        return title
    return title.encode("ascii", errors="replace")[:16].ljust(16, b" ")
