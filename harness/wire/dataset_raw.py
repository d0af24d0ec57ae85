"""Byte-level building blocks of the data set encoding (PS3.5 7.1, 7.5, Annex A), kept as data.

Which transfer syntax means which encoding, which VRs take a 4-byte length, and how to pack
an element or item header by hand. Used where pydicom is bypassed on purpose: streaming a
huge Pixel Data value, patching bytes in place, building malformed structures.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)

# JPIP Referenced Deflate: the other transfer syntax whose data set is deflated (PS3.5 A.5).
JPIP_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.95"

ITEM_TAG = 0xFFFEE000
ITEM_DELIMITATION_TAG = 0xFFFEE00D
SEQUENCE_DELIMITATION_TAG = 0xFFFEE0DD
PIXEL_DATA_TAG = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF

# Every VR of PS3.5 6.2 Table 6.2-1.
VALID_VRS: frozenset[bytes] = frozenset(
    v.encode("ascii")
    for v in [
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD",
        "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
        "UL", "UN", "UR", "US", "UT", "UV",
    ]
)
# VRs whose explicit header is VR + 2 reserved bytes + 4-byte length (PS3.5 7.1.2, Table 7.1-1).
LONG_LENGTH_VRS: frozenset[bytes] = frozenset(
    v.encode("ascii")
    for v in ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]
)
# Bytes per word of the "other" VRs that are byte-swapped in big endian (PS3.5 7.3).
SWAPPED_WORD_SIZE: dict[str, int] = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a transfer syntax encodes a data set: VR explicit or not, byte order, deflated."""

    implicit: bool
    little: bool
    deflated: bool


# Transfer syntaxes whose data set encoding differs from Explicit VR Little Endian; every
# other (compressed) transfer syntax uses Explicit VR LE with encapsulated Pixel Data.
_ENCODINGS: dict[str, Encoding] = {
    IMPLICIT_VR_LE: Encoding(implicit=True, little=True, deflated=False),
    EXPLICIT_VR_LE: Encoding(implicit=False, little=True, deflated=False),
    EXPLICIT_VR_BE: Encoding(implicit=False, little=False, deflated=False),
    DEFLATED_EXPLICIT_VR_LE: Encoding(implicit=False, little=True, deflated=True),
    JPIP_REFERENCED_DEFLATE: Encoding(implicit=False, little=True, deflated=True),
}
UNCOMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    DEFLATED_EXPLICIT_VR_LE,
)


def ts_encoding(transfer_syntax_uid: str) -> Encoding:
    """The data set encoding of a transfer syntax (unknown ones: Explicit VR Little Endian)."""
    return _ENCODINGS.get(transfer_syntax_uid, _ENCODINGS[EXPLICIT_VR_LE])


def pack_tag(tag: int, little: bool) -> bytes:
    return struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF)


def element_header(tag: int, vr: str, length: int, *, implicit: bool, little: bool) -> bytes:
    """The header of one data element; ``length`` may be ``UNDEFINED_LENGTH``.

    Raises ``ValueError`` when an explicit short-length VR cannot carry ``length``.
    """
    head = pack_tag(tag, little)
    if implicit:
        return head + struct.pack("<I" if little else ">I", length)
    vr_bytes = vr.encode("ascii")
    if vr_bytes in LONG_LENGTH_VRS:
        return head + vr_bytes + struct.pack("<HI" if little else ">HI", 0, length)
    if length > 0xFFFF:
        raise ValueError(f"length {length} does not fit the 2-byte length field of VR {vr}")
    return head + vr_bytes + struct.pack("<H" if little else ">H", length)


def item_header(tag: int, length: int, *, little: bool) -> bytes:
    """Item, Item Delimitation or Sequence Delimitation header: tag + 4-byte length, no VR."""
    return pack_tag(tag, little) + struct.pack("<I" if little else ">I", length)


def tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
