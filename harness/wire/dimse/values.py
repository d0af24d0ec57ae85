"""Command element values as bytes (PS3.5 6.2, Implicit VR Little Endian): US, UL, UI, AE,
LO, AT, and :func:`encode_value` choosing by the element's VR. Values are written as given
(an invalid UID stays invalid): these serve the typed encoder and fault injection alike."""

from __future__ import annotations

from collections.abc import Iterable

from harness.wire.constants import TAG_LE, UL_LE, US_LE
from harness.wire.dimse.elements import vr_of

_P_H = US_LE.pack
_P_I = UL_LE.pack
_P_HH = TAG_LE.pack


def value_us(value: int) -> bytes:
    """US value (2 bytes LE). Raises ``struct.error`` outside 0..65535."""
    return _P_H(value)


def value_ul(value: int) -> bytes:
    return _P_I(value)


def _text(value: str | bytes, pad: bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    return raw + pad if len(raw) & 1 else raw


def value_ui(uid: str | bytes) -> bytes:
    """UI value padded to even length with one NUL (PS3.5 6.2); bytes are padded as given."""
    return _text(uid, b"\x00")


def value_ae(title: str | bytes) -> bytes:
    """AE value padded to even length with a space (not to 16: that is the PDU field's rule)."""
    return _text(title, b" ")


def value_lo(text: str | bytes) -> bytes:
    return _text(text, b" ")


def value_str(text: str | bytes, pad: bytes = b" ") -> bytes:
    """Any string VR, padded to even length with ``pad``."""
    return _text(text, pad)


def value_at(tags: Iterable[int]) -> bytes:
    """AT value: each 32-bit tag as group (US) then element (US), little endian."""
    return b"".join(_P_HH(t >> 16, t & 0xFFFF) for t in tags)


def encode_value(element: int, value: int | str | bytes | Iterable[int]) -> bytes:
    """Encode a Python value by the VR the dictionary gives ``element``; bytes pass through."""
    if isinstance(value, bytes):
        return value
    vr = vr_of(element)
    if vr == "US" and isinstance(value, int):
        return value_us(value)
    if vr == "UL" and isinstance(value, int):
        return value_ul(value)
    if vr == "UI" and isinstance(value, str):
        return value_ui(value)
    if vr == "AT" and not isinstance(value, str):
        return value_at([value] if isinstance(value, int) else value)
    if isinstance(value, str):
        return value_str(value)
    raise TypeError(f"cannot encode {value!r} for element 0x{element:04X} ({vr})")
