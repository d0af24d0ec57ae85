"""Named malformers: each damages an ENCODED data set in one documented way.

``MALFORMERS`` maps a name to a ``Malformer``: what it does, the rule the result violates,
whether ``check_dataset_bytes`` detects it from structure alone, and the function
``(encoded, ts_uid, *, seed) -> bytes``. Malformers work on the top-level elements found by
the structure walk; on a deflated transfer syntax they inflate, damage the Explicit VR LE
bytes and deflate again (except those that are about the encoding itself). A malformer that
cannot apply to its input (``bad-vr`` on implicit VR, ``non-even-pixel-data`` on an SR)
raises ``NotApplicable``. The SOP UID mismatch needs the command side too, which the SCU
owns: ``with_uids`` changes a Dataset, ``with_sop_instance_uid`` changes encoded bytes.
"""

from __future__ import annotations

import copy
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from harness.datasets.encode import decode_dataset, deflate, encode_dataset, inflate
from harness.datasets.factory import derive_uid
from harness.wire.constants import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    MR_IMAGE_STORAGE,
)
from harness.wire.dataset_check import ElementInfo, walk_elements
from harness.wire.dataset_raw import (
    ITEM_DELIMITATION_TAG,
    ITEM_TAG,
    PIXEL_DATA_TAG,
    SEQUENCE_DELIMITATION_TAG,
    UNDEFINED_LENGTH,
    element_header,
    item_header,
    ts_encoding,
)

SOP_CLASS_UID_TAG = 0x00080016
SOP_INSTANCE_UID_TAG = 0x00080018
ROWS_TAG = 0x00280010

# A valid UID of exactly 64 characters (the PS3.5 9.1 maximum) and one of 65.
UID_64 = "2.25." + "9" * 59
UID_65 = UID_64 + "1"

# SOP Instance UID values a receiver must not turn into file paths or accept blindly
# (PS3.5 9.1; scenario J02/J03). Each is at most 64 bytes except the 65-character one.
HOSTILE_UIDS: list[str] = [
    "../../x",
    "../../../../tmp/evil",
    "/etc/passwd",
    "1.2.3/../../evil",
    "..\\..\\x",
    "C:\\evil",
    "1.2.3\x00/../x",
    UID_65,
    "1.02.003",  # components with leading zeros
    "1.2.3 4",  # embedded space
    " 1.2.3",  # leading space
    "1..2",  # empty component
    "1.2.3.",  # trailing dot
    "%s%s%n",
]

# Private block appended by the sequence malformers; odd group above Pixel Data keeps order.
_PRIVATE_GROUP = 0x7FE1
_CREATOR = b"HARNESS MALFORMED "  # even length, space padded (LO)


class NotApplicable(ValueError):
    """The malformer has nothing to damage in this data set or transfer syntax."""


MalformFunc = Callable[..., bytes]


@dataclass(frozen=True, slots=True)
class Malformer:
    """One named way to damage an encoded data set."""

    name: str
    description: str
    violates: str  # the rule the result breaks, e.g. "PS3.5 7.1.1"
    detectable: bool  # check_dataset_bytes reports an error for the result
    func: MalformFunc
    inflate_first: bool = True  # on a deflated syntax, damage the inflated bytes

    def __call__(self, encoded: bytes, ts_uid: str, *, seed: int = 0) -> bytes:
        if self.inflate_first and ts_encoding(ts_uid).deflated:
            damaged = self.func(inflate(encoded), EXPLICIT_VR_LE, seed=seed)
            return deflate(damaged)
        return self.func(bytes(encoded), ts_uid, seed=seed)


# -- helpers on top-level elements ----------------------------------------------------------


def _top(encoded: bytes, ts: str) -> list[ElementInfo]:
    return walk_elements(encoded, ts)


def _end(encoded: bytes, tops: list[ElementInfo], i: int) -> int:
    """Where top-level element ``i`` ends (the next one's start, or the end of data)."""
    return tops[i + 1].offset if i + 1 < len(tops) else len(encoded)


def _middle(rng: random.Random, candidates: list[int]) -> int:
    """A candidate index from the middle third (or any, when there are few)."""
    if len(candidates) < 3:
        return rng.choice(candidates)
    lo, hi = len(candidates) // 3, max(len(candidates) * 2 // 3, len(candidates) // 3 + 1)
    return candidates[rng.randrange(lo, hi)]


def _find(tops: list[ElementInfo], tag: int) -> int | None:
    for i, info in enumerate(tops):
        if info.tag == tag:
            return i
    return None


def _replace_value(encoded: bytes, ts: str, info: ElementInfo, value: bytes) -> bytes:
    """``encoded`` with the value of one defined-length top-level element replaced."""
    enc = ts_encoding(ts)
    header = element_header(info.tag, info.vr or "UN", len(value), implicit=enc.implicit,
                            little=enc.little)
    return encoded[:info.offset] + header + value + encoded[info.value_offset + info.length:]


def _uid_bytes(uid: str) -> bytes:
    raw = uid.encode("utf-8", errors="surrogateescape")
    return raw + b"\x00" if len(raw) & 1 else raw


def with_top_level_value(encoded: bytes, ts: str, tag: int, value: bytes) -> bytes:
    """Replace the value of top-level element ``tag`` (lengths are rewritten)."""
    tops = _top(encoded, ts)
    i = _find(tops, tag)
    if i is None or tops[i].length == UNDEFINED_LENGTH:
        raise NotApplicable(f"no defined-length top-level element {tag:08X}")
    return _replace_value(encoded, ts, tops[i], value)


def with_sop_instance_uid(encoded: bytes, ts: str, uid: str) -> bytes:
    """The encoded data set with its SOP Instance UID set to ``uid`` (any text, padded)."""
    return with_top_level_value(encoded, ts, SOP_INSTANCE_UID_TAG, _uid_bytes(uid))


def with_sop_class_uid(encoded: bytes, ts: str, uid: str) -> bytes:
    return with_top_level_value(encoded, ts, SOP_CLASS_UID_TAG, _uid_bytes(uid))


def with_uids(ds: Dataset, *, sop_instance_uid: str | None = None,
              sop_class_uid: str | None = None) -> Dataset:
    """A copy of ``ds`` with other SOP UIDs, for a command that claims the original ones."""
    out = copy.deepcopy(ds)
    if sop_instance_uid is not None:
        out.SOPInstanceUID = sop_instance_uid
    if sop_class_uid is not None:
        out.SOPClassUID = sop_class_uid
    return out


def remove_top_level(encoded: bytes, ts: str, tags: set[int]) -> bytes:
    tops = _top(encoded, ts)
    keep: list[bytes] = []
    last = 0
    removed = 0
    for i, info in enumerate(tops):
        if info.tag in tags:
            keep.append(encoded[last:info.offset])
            last = _end(encoded, tops, i)
            removed += 1
    if not removed:
        raise NotApplicable("none of the elements to remove is present")
    keep.append(encoded[last:])
    return b"".join(keep)


# -- the malformers -------------------------------------------------------------------------


def truncate_between_elements(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    if len(tops) < 2:
        raise NotApplicable("fewer than two elements")
    cut = tops[_middle(random.Random(seed), list(range(1, len(tops))))].offset
    return encoded[:cut]


def truncate_after_header(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    candidates = [i for i, t in enumerate(tops) if 0 < t.length != UNDEFINED_LENGTH]
    if not candidates:
        raise NotApplicable("no element with a value")
    return encoded[:tops[_middle(random.Random(seed), candidates)].value_offset]


def truncate_inside_value(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    candidates = [i for i, t in enumerate(tops) if 2 <= t.length != UNDEFINED_LENGTH]
    if not candidates:
        raise NotApplicable("no element with a value of 2 bytes or more")
    rng = random.Random(seed)
    info = tops[_middle(rng, candidates)]
    return encoded[:info.value_offset + rng.randrange(1, info.length)]


def lying_length(encoded: bytes, ts: str, *, seed: int = 0, length: int = 0xFFFFFFF0,
                 follow: int = 100) -> bytes:
    """The largest element with a 4-byte length field now declares ``length``; ``follow``
    bytes of its value remain and the data ends (PS3.5 7.1.1; scenarios F07c, K04)."""
    enc = ts_encoding(ts)
    tops = _top(encoded, ts)
    candidates = [t for t in tops if enc.implicit or t.header_length == 12]
    if not candidates:
        raise NotApplicable("no element with a 4-byte length field")
    # Prefer the largest real value; an undefined-length sequence only when nothing else.
    info = max(candidates, key=lambda t: -1 if t.length == UNDEFINED_LENGTH else t.length)
    length_at = info.value_offset - 4
    packed = struct.pack("<I" if enc.little else ">I", length)
    return encoded[:length_at] + packed + encoded[info.value_offset:info.value_offset + follow]


def odd_length(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    """A padded text/UID value loses its pad byte and keeps an odd length."""
    tops = _top(encoded, ts)
    candidates = [
        i for i, t in enumerate(tops)
        if 2 <= t.length != UNDEFINED_LENGTH and t.tag != PIXEL_DATA_TAG
        and t.length <= 0xFFFF and encoded[t.value_offset + t.length - 1] in (0x00, 0x20)
    ]
    if not candidates:
        raise NotApplicable("no padded value to shorten")
    info = tops[_middle(random.Random(seed), candidates)]
    value = encoded[info.value_offset:info.value_offset + info.length - 1]
    return _replace_value(encoded, ts, info, value)


def bad_vr(encoded: bytes, ts: str, *, seed: int = 0, vr: bytes = b"ZZ") -> bytes:
    if ts_encoding(ts).implicit:
        raise NotApplicable("implicit VR has no VR bytes to damage")
    tops = _top(encoded, ts)
    if not tops:
        raise NotApplicable("empty data set")
    info = tops[_middle(random.Random(seed), list(range(len(tops))))]
    return encoded[:info.offset + 4] + vr + encoded[info.offset + 6:]


def _private_nesting(depth: int, *, implicit: bool, little: bool, terminate: bool) -> bytes:
    """``depth`` nested undefined-length private sequences, appended after Pixel Data.

    Each level holds its own private creator; with ``terminate=False`` the outermost
    sequence has no Sequence Delimitation Item.
    """
    creator = element_header(_PRIVATE_GROUP << 16 | 0x0010, "LO", len(_CREATOR),
                             implicit=implicit, little=little) + _CREATOR
    sq = element_header(_PRIVATE_GROUP << 16 | 0x1000, "SQ", UNDEFINED_LENGTH,
                        implicit=implicit, little=little)
    open_item = item_header(ITEM_TAG, UNDEFINED_LENGTH, little=little)
    close_item = item_header(ITEM_DELIMITATION_TAG, 0, little=little)
    close_seq = item_header(SEQUENCE_DELIMITATION_TAG, 0, little=little)
    leaf = element_header(_PRIVATE_GROUP << 16 | 0x1001, "LO", 4, implicit=implicit,
                          little=little) + b"leaf"
    closing = [close_item + close_seq] * depth
    if not terminate:
        closing[-1] = close_item
    return b"".join([(creator + sq + open_item) * depth, creator, leaf, *closing])


def unterminated_sequence(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    enc = ts_encoding(ts)
    return encoded + _private_nesting(1, implicit=enc.implicit, little=enc.little,
                                      terminate=False)


def deep_nesting(encoded: bytes, ts: str, *, seed: int = 0, depth: int = 200) -> bytes:
    enc = ts_encoding(ts)
    return encoded + _private_nesting(depth, implicit=enc.implicit, little=enc.little,
                                      terminate=True)


def wrong_transfer_syntax(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    """Implicit VR LE context: Explicit VR LE bytes; any other context: Implicit VR LE."""
    ds = decode_dataset(encoded, ts)
    return encode_dataset(ds, EXPLICIT_VR_LE if ts_encoding(ts).implicit else IMPLICIT_VR_LE)


def big_endian_mismatch(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    """Little endian context: Explicit VR BE bytes; big endian context: Explicit VR LE."""
    ds = decode_dataset(encoded, ts)
    return encode_dataset(ds, EXPLICIT_VR_LE if ts == EXPLICIT_VR_BE else EXPLICIT_VR_BE)


def garbage(encoded: bytes, ts: str, *, seed: int = 0, length: int = 256) -> bytes:
    return random.Random(seed).randbytes(length + (length & 1))


def uid_mismatch(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    """SOP Instance UID replaced, so it differs from what the command (built first) claims."""
    return with_sop_instance_uid(encoded, ts, derive_uid("uid-mismatch", seed, len(encoded)))


def class_mismatch(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    """SOP Class UID replaced by MR Image Storage (CT when it already is MR)."""
    tops = _top(encoded, ts)
    i = _find(tops, SOP_CLASS_UID_TAG)
    if i is None:
        raise NotApplicable("no SOP Class UID")
    info = tops[i]
    current = encoded[info.value_offset:info.value_offset + info.length].rstrip(b"\x00 ")
    other = CT_IMAGE_STORAGE if current == MR_IMAGE_STORAGE.encode() else MR_IMAGE_STORAGE
    return _replace_value(encoded, ts, info, _uid_bytes(other))


def missing_type1(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    return remove_top_level(encoded, ts, {SOP_CLASS_UID_TAG, SOP_INSTANCE_UID_TAG})


def missing_rows(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    return remove_top_level(encoded, ts, {ROWS_TAG})


def hostile_uid(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    uid = HOSTILE_UIDS[random.Random(seed).randrange(len(HOSTILE_UIDS))]
    return with_sop_instance_uid(encoded, ts, uid)


def non_even_pixel_data(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    i = _find(tops, PIXEL_DATA_TAG)
    if i is None or not 2 <= tops[i].length != UNDEFINED_LENGTH:
        raise NotApplicable("no native Pixel Data")
    info = tops[i]
    value = encoded[info.value_offset:info.value_offset + info.length - 1]
    return _replace_value(encoded, ts, info, value)


def duplicate_tag(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    if not tops:
        raise NotApplicable("empty data set")
    i = _middle(random.Random(seed), list(range(len(tops))))
    end = _end(encoded, tops, i)
    return encoded[:end] + encoded[tops[i].offset:end] + encoded[end:]


def tags_out_of_order(encoded: bytes, ts: str, *, seed: int = 0) -> bytes:
    tops = _top(encoded, ts)
    if len(tops) < 2:
        raise NotApplicable("fewer than two elements")
    i = _middle(random.Random(seed), list(range(len(tops) - 1)))
    a, b, c = tops[i].offset, tops[i + 1].offset, _end(encoded, tops, i + 1)
    return encoded[:a] + encoded[b:c] + encoded[a:b] + encoded[c:]


MALFORMERS: dict[str, Malformer] = {
    m.name: m
    for m in (
        Malformer("truncate-between-elements",
                  "data set cut exactly at an element boundary in its middle",
                  "PS3.7 9.3.1.3; PS3.4 B.2.2", False, truncate_between_elements),
        Malformer("truncate-after-header",
                  "data set cut right after an element header, value missing",
                  "PS3.5 7.1.1; PS3.7 9.3.1.3", True, truncate_after_header),
        Malformer("truncate-inside-value",
                  "data set cut inside a value: declared length not satisfied",
                  "PS3.5 7.1.1; PS3.7 9.3.1.3", True, truncate_inside_value),
        Malformer("lying-length",
                  "largest element declares length 0xFFFFFFF0, 100 bytes follow, data ends",
                  "PS3.5 7.1.1", True, lying_length),
        Malformer("odd-length", "a padded text or UID value shortened to an odd length",
                  "PS3.5 7.1.1", True, odd_length),
        Malformer("bad-vr", "explicit VR of an element replaced by 'ZZ'",
                  "PS3.5 6.2, 7.1.2", True, bad_vr),
        Malformer("unterminated-sequence",
                  "undefined-length private sequence appended without its Sequence "
                  "Delimitation Item", "PS3.5 7.5.1", True, unterminated_sequence),
        Malformer("deep-nesting",
                  "200 nested undefined-length sequences appended (well formed; flagged by "
                  "the checker's depth limit)", "robustness limit (PS3.5 7.5)", True,
                  deep_nesting),
        Malformer("wrong-transfer-syntax",
                  "Explicit VR LE bytes in an Implicit VR LE context and vice versa",
                  "PS3.8 7.6.1; PS3.5 A.1, A.2", True, wrong_transfer_syntax,
                  inflate_first=False),
        Malformer("big-endian-mismatch",
                  "Explicit VR BE bytes in a little endian context and vice versa",
                  "PS3.8 7.6.1; PS3.5 A.2, A.3", True, big_endian_mismatch,
                  inflate_first=False),
        Malformer("garbage", "256 random bytes instead of a data set", "PS3.5 7.1", True,
                  garbage, inflate_first=False),
        Malformer("uid-mismatch",
                  "SOP Instance UID of the data set differs from the one the command claims",
                  "PS3.7 9.1.1.1.4; PS3.4 B.2.3", False, uid_mismatch),
        Malformer("class-mismatch",
                  "SOP Class UID of the data set differs from the one the command claims",
                  "PS3.7 9.1.1.1.2; PS3.4 B.2.3", False, class_mismatch),
        Malformer("missing-type1", "SOP Class UID and SOP Instance UID removed",
                  "PS3.3 C.12.1; PS3.4 B.2.3", False, missing_type1),
        Malformer("missing-rows", "Rows (Type 1 in the Image Pixel module) removed",
                  "PS3.3 C.7.6.3; PS3.4 B.2.3", False, missing_rows),
        Malformer("hostile-uid",
                  "SOP Instance UID replaced by a path-like or invalid value from HOSTILE_UIDS",
                  "PS3.5 9.1", False, hostile_uid),
        Malformer("non-even-pixel-data", "native Pixel Data value one byte short: odd length",
                  "PS3.5 7.1.1, 8.1.1", True, non_even_pixel_data),
        Malformer("duplicate-tag", "one top-level element repeated right after itself",
                  "PS3.5 7.1", True, duplicate_tag),
        Malformer("tags-out-of-order", "two adjacent top-level elements swapped",
                  "PS3.5 7.1", True, tags_out_of_order),
    )
}


def malform(name: str, encoded: bytes, ts: str, seed: int = 0) -> bytes:
    """Apply the malformer ``name`` (a key of ``MALFORMERS``)."""
    try:
        malformer = MALFORMERS[name]
    except KeyError:
        raise ValueError(f"unknown malformer {name!r}; known: {', '.join(MALFORMERS)}") from None
    return malformer(encoded, ts, seed=seed)
