"""Streaming structural validator of an encoded data set (PS3.5 7.1, 7.5, A.4, A.5).

``DatasetStructureChecker`` walks element headers as bytes arrive (``feed``) and jumps over
values by their length without copying them, so a receiver can validate a multi-GB data
set while writing its fragments to disk; its state is a header buffer of at most 12 bytes
and one small frame per open sequence or item. It reports truncation (inside a header or a
value, open sequences and items), bad VRs, odd lengths, misplaced delimiters, tag order,
and nesting beyond a limit, as ``Finding`` objects with a parallel list of problem codes.
It never raises on bad input. It also captures a few short top-level values (SOP Class and
Instance UIDs by default) so a receiver can compare them with the command without pydicom,
and notes whether top-level Pixel Data was seen (``pixel_data_seen``).

Speed: most of a received data set is top-level elements of defined, even length (and one
large Pixel Data value). For Little Endian those are walked by an inline loop (one
``struct.unpack_from`` per element, values jumped over); anything that could give a finding
or change state beyond "next element" (sequences, items, delimiters, undefined or odd
lengths, tag order, special groups, bad VRs, reserved bytes) is left to the general walk,
so the findings are the same whichever path ran.

Size (about 700 lines): one job, one streaming state machine. The inline fast loops and the
general walk share the checker's state (header buffer, frames, skip counts) byte for byte;
split across modules they would have to expose that state to each other, and the rule that
both paths give the same findings would no longer be checkable in one reading.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydicom._dicom_dict import DicomDictionary

from harness.wire.constants import EXPLICIT_LE_ELEMENT_HEADER, UL_LE
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _IMPLICIT_LE_HDR
from harness.wire.dataset_raw import (
    ITEM_DELIMITATION_TAG,
    ITEM_TAG,
    LONG_LENGTH_VRS,
    PIXEL_DATA_TAG,
    SEQUENCE_DELIMITATION_TAG,
    UNDEFINED_LENGTH,
    VALID_VRS,
    tag_str,
    ts_encoding,
)
from harness.wire.findings import Finding


@dataclass(frozen=True, slots=True)
class Problem:
    """One kind of structural problem: what the rule wants, where it is, how bad it is."""

    title: str
    expected: str  # goes into Finding.expected
    section: str
    severity: str  # "error" or "warning"
    fatal: bool  # the walk cannot continue reliably after it


_P = Problem
# Every problem the checker can report, keyed by the code it puts in ``codes``.
PROBLEMS: dict[str, Problem] = {
    "truncated-header": _P("truncated inside an element header", "a complete element header",
                           "PS3.5 7.1; PS3.7 9.3.1.3", "error", True),
    "truncated-value": _P("truncated inside a value", "as many value bytes as declared",
                          "PS3.5 7.1.1; PS3.7 9.3.1.3", "error", True),
    "unterminated-sequence": _P("unterminated sequence",
                                "a Sequence Delimitation Item closing the sequence",
                                "PS3.5 7.5.1", "error", True),
    "unterminated-item": _P("unterminated item", "an Item Delimitation Item closing the item",
                            "PS3.5 7.5.1", "error", True),
    "unterminated-fragments": _P("unterminated pixel data fragments",
                                 "a Sequence Delimitation Item after the last fragment",
                                 "PS3.5 A.4", "error", True),
    "truncated-container": _P("truncated inside a defined-length sequence or item",
                              "the declared length of the sequence or item",
                              "PS3.5 7.5.1", "error", True),
    "bad-vr": _P("invalid VR", "a VR of PS3.5 Table 6.2-1", "PS3.5 6.2, 7.1.2", "error", True),
    "odd-length": _P("odd value length", "an even value length", "PS3.5 7.1.1", "error",
                     False),
    "vr-length": _P("value length not a multiple of the VR's value size",
                    "a value length that is a multiple of the size of one value of the VR "
                    "(AT, FL, OF, OL, SL, UL: 4; FD, OD, OV, SV, UV: 8)",
                    "PS3.5 6.2, Table 6.2-1", "error", False),
    "bad-undefined-length": _P("undefined length not allowed",
                               "a defined length (only SQ, items, UN and encapsulated Pixel "
                               "Data may be undefined)", "PS3.5 7.1.2, 7.1.3, A.4", "error",
                               True),
    "overrun": _P("element crosses the end of its enclosing item or sequence",
                  "elements inside the declared length of their item or sequence",
                  "PS3.5 7.5.1", "error", True),
    "expected-item": _P("non-item inside a sequence",
                        "an Item or Sequence Delimitation Item", "PS3.5 7.5.1, A.4",
                        "error", True),
    "unexpected-delimiter": _P("misplaced Item or delimitation tag",
                               "a data element (group FFFE only as items and delimiters)",
                               "PS3.5 7.5.2", "error", True),
    "stray-item-delimiter": _P("Item Delimitation Item outside an undefined-length item",
                               "no Item Delimitation Item here", "PS3.5 7.5.2", "error",
                               False),
    "bad-delimiter-length": _P("delimitation item with a non-zero length", "length 00000000H",
                               "PS3.5 7.5.2", "error", False),
    "too-deep": _P("sequences nested beyond the limit", "nesting within the checker's limit",
                   "robustness limit (PS3.5 7.5 sets none)", "error", True),
    "tag-order": _P("tags out of order", "ascending tag order", "PS3.5 7.1", "error", False),
    "duplicate-tag": _P("duplicate tag", "each tag once per data set", "PS3.5 7.1", "error",
                        False),
    "reserved-not-zero": _P("reserved bytes not zero", "reserved bytes 0000H",
                            "PS3.5 7.1.2", "warning", False),
    "command-or-meta-group": _P("group 0000 or 0002 element in a data set",
                                "no command or File Meta elements in a data set",
                                "PS3.5 7.1; PS3.7 6.3.1", "warning", False),
    "illegal-group": _P("element of a group that shall not be used",
                        "no group 0001, 0003, 0005, 0007 or FFFF", "PS3.5 7.1, 7.8.1",
                        "warning", False),
    "deflate-error": _P("corrupt deflate bitstream", "a raw deflate bitstream", "PS3.5 A.5",
                        "error", True),
    "deflate-truncated": _P("truncated deflate bitstream",
                            "a deflate bitstream ending with its final block", "PS3.5 A.5",
                            "error", True),
    "deflate-trailing": _P("bytes after the deflate bitstream",
                           "at most one pad byte after the final block", "PS3.5 A.5",
                           "warning", False),
    "too-many-findings": _P("too many findings", "fewer findings", "harness limit",
                            "warning", False),
}

# Tags whose dictionary VR is SQ: in implicit VR a defined-length sequence is only known by
# its tag, and descending into it lets the checker validate nested items too.
_SQ_TAGS: frozenset[int] = frozenset(t for t, entry in DicomDictionary.items() if entry[0] == "SQ")
_ILLEGAL_GROUPS = frozenset({0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF})
_OB_OW = frozenset({b"OB", b"OW"})
# Fast path: groups whose elements always go to the general walk (they give findings or
# are items/delimiters), and the explicit VRs it handles with a 2- or 4-byte length.
_SLOW_GROUPS = _ILLEGAL_GROUPS | {0x0000, 0x0002, 0xFFFE}
_FAST_SHORT_VRS = VALID_VRS - LONG_LENGTH_VRS
_FAST_LONG_VRS = LONG_LENGTH_VRS - {b"SQ"}
# Fixed-size VRs (PS3.5 Table 6.2-1): a value length must be a multiple of one value's
# size, a power of two, so ``length & mask`` is 0 when it is. Every other VR: 1 (even).
_SIZE_MASKS = {b"AT": 3, b"FL": 3, b"OF": 3, b"OL": 3, b"SL": 3, b"UL": 3,
               b"FD": 7, b"OD": 7, b"OV": 7, b"SV": 7, b"UV": 7}
_VR_MASK: dict[bytes, int] = {vr: _SIZE_MASKS.get(vr, 1) for vr in VALID_VRS}
# The same in implicit VR, where the VR is the dictionary's: tags of a 4- or 8-byte VR.
_TAG_MASK: dict[int, int] = {tag: _SIZE_MASKS[entry[0].encode()]
                             for tag, entry in DicomDictionary.items()
                             if entry[0].encode() in _SIZE_MASKS}



DEFAULT_MAX_DEPTH = 64
DEFAULT_CAPTURE: tuple[int, ...] = (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)
_CAPTURE_LIMIT = 1024  # longest value captured; UIDs are at most 64 bytes
_INFLATE_CHUNK = 1 << 20  # bounded inflate output per step

# Frame kinds.
_DATASET, _SEQUENCE, _ITEM, _FRAGMENTS = 0, 1, 2, 3
_FRAME_NAMES = {_SEQUENCE: "sequence", _ITEM: "item", _FRAGMENTS: "pixel data fragments"}


@dataclass(frozen=True, slots=True)
class ElementInfo:
    """One element header seen by the walk; offsets are from the start of the data set."""

    tag: int
    vr: str | None  # None in implicit VR and for items / delimiters
    offset: int
    header_length: int
    length: int  # as declared; UNDEFINED_LENGTH for undefined
    depth: int  # 0 = top-level data set

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_length


class _Frame:
    """An open container: the top-level data set, a sequence, an item or pixel fragments."""

    __slots__ = ("end", "implicit", "kind", "last_tag", "limit", "little", "offset", "tag")

    def __init__(self, kind: int, tag: int, offset: int, end: int | None, limit: int | None,
                 implicit: bool, little: bool) -> None:
        self.kind = kind
        self.tag = tag
        self.offset = offset
        self.end = end  # None: undefined length
        self.limit = limit  # tightest enclosing defined end, None: unbounded
        self.implicit = implicit
        self.little = little
        self.last_tag = -1


class DatasetStructureChecker:
    """Incremental structural validator; ``feed`` chunks of any size, then ``finish``."""

    def __init__(
        self,
        transfer_syntax_uid: str,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_findings: int = 50,
        capture: Iterable[int] = DEFAULT_CAPTURE,
        on_element: Callable[[ElementInfo], None] | None = None,
        fast: bool = True,
    ) -> None:
        enc = ts_encoding(transfer_syntax_uid)
        self.transfer_syntax_uid = transfer_syntax_uid
        self.max_depth = max_depth
        self.max_findings = max_findings
        self.findings: list[Finding] = []
        self.codes: list[str] = []
        self.captured: dict[int, bytes] = {}
        self.elements = 0
        self.pixel_data_seen = False  # a top-level (7FE0,0010) header was walked
        self._capture_tags = frozenset(capture)
        self._on_element = on_element
        self._stack = [_Frame(_DATASET, 0, 0, None, None, enc.implicit, enc.little)]
        self._depth = 0  # open sequences
        self._hdr = bytearray()
        self._skip = 0
        self._value = (0, 0, 0)  # (tag, header offset, declared length) of the pending value
        self._cap: bytearray | None = None
        self._cap_tag = 0
        self._pos = 0
        self._dead = False
        self._finished = False
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if enc.deflated else None
        self._raw_fed = 0
        self._after_eof = 0
        # The inline walk reports nothing per element, so it cannot serve a callback.
        self._fast = fast and on_element is None and enc.little

    # -- public API ---------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes of (inflated) data set consumed so far."""
        return self._pos

    @property
    def fatal(self) -> bool:
        """True once a problem stopped the walk; later bytes are only counted."""
        return self._dead

    @property
    def ok(self) -> bool:
        """No error-severity finding so far (call after ``finish`` for the final answer)."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def depth(self) -> int:
        return self._depth

    def captured_text(self, tag: int) -> str | None:
        """A captured value as text with UI/CS padding removed, or None if not seen."""
        raw = self.captured.get(tag)
        if raw is None:
            return None
        return raw.decode("ascii", errors="replace").rstrip("\x00 ")

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._finished:
            return
        d = self._inflater
        if d is None:
            n = chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
            if self._skip > n and self._fast and self._cap is None:
                # Inside a long value (Pixel Data): nothing to look at in this chunk.
                self._skip -= n
                self._pos += n
                return
            self._feed_plain(chunk)
            return
        if self._dead:  # nothing more to learn; do not spend time inflating
            return
        self._raw_fed += len(chunk)
        if d.eof:
            self._trailing(len(chunk))
            return
        try:
            self._feed_plain(d.decompress(chunk, _INFLATE_CHUNK))
            while d.unconsumed_tail and not d.eof and not self._dead:
                self._feed_plain(d.decompress(d.unconsumed_tail, _INFLATE_CHUNK))
        except zlib.error as exc:
            self._report("deflate-error", None, "deflate bitstream", f"zlib: {exc}")
            return
        if d.eof and d.unused_data:
            self._trailing(len(d.unused_data))

    def finish(self) -> list[Finding]:
        """End of data: report whatever is still open. Idempotent."""
        if self._finished:
            return self.findings
        d = self._inflater
        if d is not None and not self._dead:
            try:
                self._feed_plain(d.flush())
            except zlib.error as exc:
                self._report("deflate-error", None, "deflate bitstream", f"zlib: {exc}")
            if not d.eof and not self._dead:
                self._report("deflate-truncated", None, "deflate bitstream",
                             f"{self._raw_fed} bytes without the final block")
        self._finished = True
        if self._dead:
            return self.findings
        if self._hdr:
            start = self._pos - len(self._hdr)
            self._report("truncated-header", start, "element header",
                         f"{len(self._hdr)} header bytes at the end of the data")
        elif self._skip:
            tag, offset, length = self._value
            self._report("truncated-value", offset, f"{tag_str(tag)} value",
                         f"{length - self._skip} of {length} value bytes")
        for frame in reversed(self._stack[1:]):
            if frame.end is not None:
                self._report("truncated-container", frame.offset,
                              f"{tag_str(frame.tag)} {_FRAME_NAMES[frame.kind]}",
                              f"data ends at {self._pos}, declared end {frame.end}")
            elif frame.kind == _SEQUENCE:
                self._report("unterminated-sequence", frame.offset,
                             f"{tag_str(frame.tag)} sequence", "end of data before (FFFE,E0DD)")
            elif frame.kind == _ITEM:
                self._report("unterminated-item", frame.offset, "item",
                             "end of data before (FFFE,E00D)")
            else:
                self._report("unterminated-fragments", frame.offset, "(7FE0,0010) fragments",
                             "end of data before (FFFE,E0DD)")
        return self.findings

    # -- internals ----------------------------------------------------------------------------

    def _trailing(self, count: int) -> None:
        self._after_eof += count
        if self._after_eof > 1 and "deflate-trailing" not in self.codes:
            self._report("deflate-trailing", None, "deflate bitstream",
                         "more than one byte after the final block")

    def _report(self, code: str, offset: int | None, field: str, found: str) -> None:
        problem = PROBLEMS[code]
        if problem.fatal:
            self._dead = True
        if len(self.findings) >= self.max_findings:
            if not self.codes or self.codes[-1] != "too-many-findings":
                self.codes.append("too-many-findings")
                self.findings.append(Finding(offset, "findings", "fewer findings",
                                             f"more than {self.max_findings}; rest suppressed",
                                             "harness limit", "warning"))
            return
        self.codes.append(code)
        self.findings.append(
            Finding(offset, field, problem.expected, f"{problem.title}: {found}",
                    problem.section, problem.severity)
        )

    def _feed_plain(self, chunk: bytes | bytearray | memoryview) -> None:
        mv = memoryview(chunk)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = len(mv)
        i = 0
        hdr = self._hdr
        fast = self._fast
        stack = self._stack
        while i < n:
            if self._dead:
                self._pos += n - i
                return
            if fast and not self._skip and not hdr and len(stack) == 1:
                i = self._fast_top(mv, i, n)
                if i >= n:
                    return
                if self._skip:
                    continue
            if self._skip:
                take = min(self._skip, n - i)
                if self._cap is not None:
                    self._cap += mv[i:i + take]
                i += take
                self._pos += take
                self._skip -= take
                if not self._skip:
                    self._settle()
                continue
            if hdr:
                need = self._header_size(hdr, 0, len(hdr))
                while len(hdr) < need and i < n:
                    take = min(need - len(hdr), n - i)
                    hdr += mv[i:i + take]
                    i += take
                    self._pos += take
                    need = self._header_size(hdr, 0, len(hdr))
                if len(hdr) < need:
                    return
                self._header(hdr, 0, self._pos - need, need)
                hdr.clear()
                self._settle()
                continue
            avail = n - i
            need = self._header_size(mv, i, avail)
            if avail < need:
                hdr += mv[i:]
                self._pos += avail
                return
            self._header(mv, i, self._pos, need)
            i += need
            self._pos += need
            self._settle()

    def _fast_top(self, mv: memoryview, i: int, n: int) -> int:
        """Walk plain top-level elements from ``i``; return where the general walk resumes.

        Stops before anything the general walk must judge (see the module docstring) or a
        header cut by the end of the chunk; a value running past the chunk becomes the
        pending skip (and capture) exactly as the general walk would leave it.
        """
        frame = self._stack[0]
        last = frame.last_tag
        base = self._pos - i
        caps = self._capture_tags
        count = 0
        tag = -1
        pixel = False
        # One loop per VR encoding on purpose: this runs per element of every store, and a
        # branch on the encoding inside one shared loop costs more than the repetition.
        if frame.implicit:
            unpack = _IMPLICIT_LE_HDR.unpack_from
            while n - i >= 8:
                group, elem, length = unpack(mv, i)
                tag = group << 16 | elem
                # An undefined length (FFFFFFFFH) is odd too.
                if tag <= last or group in _SLOW_GROUPS or length & 1 or tag in _SQ_TAGS \
                        or (tag in _TAG_MASK and length & _TAG_MASK[tag]):
                    break
                vstart = i + 8
                last = tag
                count += 1
                if tag == PIXEL_DATA_TAG:
                    pixel = True
                vend = vstart + length
                if tag in caps and length <= _CAPTURE_LIMIT:
                    self._capture(mv, tag, vstart, vend, n)
                if vend > n:
                    self._skip = vend - n
                    self._value = (tag, base + i, length)
                    i = n
                    break
                i = vend
        else:
            unpack_x = EXPLICIT_LE_ELEMENT_HEADER.unpack_from
            unpack_len = UL_LE.unpack_from
            vr_mask = _VR_MASK
            while n - i >= 8:
                group, elem, vr, short = unpack_x(mv, i)
                tag = group << 16 | elem
                if tag <= last or group in _SLOW_GROUPS:
                    break
                if vr in _FAST_SHORT_VRS:
                    length = short
                    vstart = i + 8
                elif vr in _FAST_LONG_VRS and not short and n - i >= 12:
                    (length,) = unpack_len(mv, i + 8)
                    vstart = i + 12
                else:  # bad VR, SQ, reserved bytes set, or a header cut by the chunk end
                    break
                if length & vr_mask[vr]:  # odd, or not a multiple of a fixed-size VR's size
                    break
                last = tag
                count += 1
                if tag == PIXEL_DATA_TAG:
                    pixel = True
                vend = vstart + length
                if tag in caps and length <= _CAPTURE_LIMIT:
                    self._capture(mv, tag, vstart, vend, n)
                if vend > n:
                    self._skip = vend - n
                    self._value = (tag, base + i, length)
                    i = n
                    break
                i = vend
        if count:
            frame.last_tag = last
            self.elements += count
            if pixel:
                self.pixel_data_seen = True
        self._pos = base + i
        return i

    def _capture(self, mv: memoryview, tag: int, vstart: int, vend: int, n: int) -> None:
        if vend <= n:
            self.captured[tag] = bytes(mv[vstart:vend])
        else:  # the rest arrives with the skipped bytes of later chunks
            self._cap = bytearray(mv[vstart:n])
            self._cap_tag = tag

    def _header_size(self, buf: bytearray | memoryview, off: int, avail: int) -> int:
        """Bytes the header at ``off`` occupies, as far as ``avail`` bytes can tell."""
        if avail < 8:
            return 8
        frame = self._stack[-1]
        if frame.implicit:
            return 8
        group = buf[off] | (buf[off + 1] << 8) if frame.little else (buf[off] << 8) | buf[off + 1]
        if group == 0xFFFE:
            return 8
        return 12 if bytes(buf[off + 4:off + 6]) in LONG_LENGTH_VRS else 8

    def _settle(self) -> None:
        """After a header or value: store a finished capture, close completed containers."""
        if self._skip:
            return
        if self._cap is not None:
            self.captured[self._cap_tag] = bytes(self._cap)
            self._cap = None
        stack = self._stack
        while len(stack) > 1:
            end = stack[-1].end
            if end is None or self._pos < end:
                break
            if stack.pop().kind == _SEQUENCE:
                self._depth -= 1

    def _push(self, kind: int, tag: int, offset: int, end: int | None, *, implicit: bool,
              little: bool) -> None:
        parent = self._stack[-1]
        limit = parent.limit
        if end is not None and (limit is None or end < limit):
            limit = end
        self._stack.append(_Frame(kind, tag, offset, end, limit, implicit, little))
        if kind == _SEQUENCE:
            self._depth += 1
            if self._depth > self.max_depth:
                self._report("too-deep", offset, f"{tag_str(tag)} sequence",
                             f"nesting depth {self._depth} > {self.max_depth}")

    def _header(self, buf: bytearray | memoryview, off: int, start: int, size: int) -> None:
        frame = self._stack[-1]
        little = frame.little
        group, elem = struct.unpack_from("<HH" if little else ">HH", buf, off)
        tag = (group << 16) | elem
        vr: bytes | None = None
        if group == 0xFFFE or frame.implicit:
            (length,) = struct.unpack_from("<I" if little else ">I", buf, off + 4)
        else:
            vr = bytes(buf[off + 4:off + 6])
            if vr not in VALID_VRS:
                self._report("bad-vr", start, f"{tag_str(tag)} VR", repr(vr))
                return
            if size == 12:
                reserved, length = struct.unpack_from("<HI" if little else ">HI", buf, off + 6)
                if reserved:
                    self._report("reserved-not-zero", start, f"{tag_str(tag)} reserved",
                                 f"{reserved:04X}H")
            else:
                (length,) = struct.unpack_from("<H" if little else ">H", buf, off + 6)
        self.elements += 1
        end_of_header = start + size
        if frame.limit is not None and end_of_header > frame.limit:
            self._report("overrun", start, f"{tag_str(tag)} header",
                         f"header ends at {end_of_header}, enclosing end {frame.limit}")
            return
        if tag == PIXEL_DATA_TAG and not self._depth:
            self.pixel_data_seen = True
        if self._on_element is not None:
            self._on_element(ElementInfo(tag, vr.decode("ascii") if vr else None, start, size,
                                         length, self._depth))
        if frame.kind == _SEQUENCE:
            self._in_sequence(frame, tag, length, start, end_of_header)
        elif frame.kind == _FRAGMENTS:
            self._in_fragments(tag, length, start, end_of_header)
        else:
            self._in_dataset(frame, tag, group, vr, length, start, end_of_header)

    def _check_value(self, tag: int, length: int, start: int, end_of_header: int) -> bool:
        """Odd length and fit in the enclosing container; False if the walk must stop."""
        if length & 1:
            self._report("odd-length", start, f"{tag_str(tag)} length", str(length))
        limit = self._stack[-1].limit
        if limit is not None and end_of_header + length > limit:
            self._report("overrun", start, f"{tag_str(tag)} length",
                         f"value ends at {end_of_header + length}, enclosing end {limit}")
            return False
        return True

    def _delimiter_length(self, tag: int, length: int, start: int) -> None:
        if length:
            self._report("bad-delimiter-length", start, f"{tag_str(tag)} length", str(length))

    def _in_sequence(self, frame: _Frame, tag: int, length: int, start: int,
                     end_of_header: int) -> None:
        if tag == ITEM_TAG:
            if length == UNDEFINED_LENGTH:
                self._push(_ITEM, tag, start, None, implicit=frame.implicit, little=frame.little)
            elif self._check_value(tag, length, start, end_of_header):
                self._push(_ITEM, tag, start, end_of_header + length, implicit=frame.implicit,
                           little=frame.little)
        elif tag == SEQUENCE_DELIMITATION_TAG and frame.end is None:
            self._delimiter_length(tag, length, start)
            self._stack.pop()
            self._depth -= 1
        else:
            self._report("expected-item", start, f"{tag_str(frame.tag)} sequence content",
                         f"tag {tag_str(tag)}")

    def _in_fragments(self, tag: int, length: int, start: int, end_of_header: int) -> None:
        if tag == ITEM_TAG:
            if length == UNDEFINED_LENGTH:
                self._report("bad-undefined-length", start, "pixel data fragment length",
                             "undefined length")
            elif self._check_value(tag, length, start, end_of_header):
                self._skip = length
                self._value = (tag, start, length)
        elif tag == SEQUENCE_DELIMITATION_TAG:
            self._delimiter_length(tag, length, start)
            self._stack.pop()
        else:
            self._report("expected-item", start, "(7FE0,0010) fragments", f"tag {tag_str(tag)}")

    def _in_dataset(self, frame: _Frame, tag: int, group: int, vr: bytes | None, length: int,
                    start: int, end_of_header: int) -> None:
        if group == 0xFFFE:
            if tag == ITEM_DELIMITATION_TAG and frame.kind == _ITEM and frame.end is None:
                self._delimiter_length(tag, length, start)
                self._stack.pop()
            elif tag == ITEM_DELIMITATION_TAG and length == 0:
                self._report("stray-item-delimiter", start, "(FFFE,E00D)",
                             "outside an undefined-length item")
            else:
                self._report("unexpected-delimiter", start, tag_str(tag),
                             "in a data set" if frame.kind == _DATASET else "in an item")
            return
        if tag <= frame.last_tag:
            code = "duplicate-tag" if tag == frame.last_tag else "tag-order"
            self._report(code, start, tag_str(tag), f"after {tag_str(frame.last_tag)}")
        frame.last_tag = tag
        if group in _ILLEGAL_GROUPS:
            self._report("illegal-group", start, tag_str(tag), f"group {group:04X}")
        elif frame.kind == _DATASET and group in (0x0000, 0x0002):
            self._report("command-or-meta-group", start, tag_str(tag), f"group {group:04X}")
        if length == UNDEFINED_LENGTH:
            if vr is None:  # implicit VR: undefined length means a sequence or fragments
                kind = _FRAGMENTS if tag == PIXEL_DATA_TAG else _SEQUENCE
                self._push(kind, tag, start, None, implicit=frame.implicit, little=frame.little)
            elif vr == b"SQ":
                self._push(_SEQUENCE, tag, start, None, implicit=False, little=frame.little)
            elif vr == b"UN":  # PS3.5 6.2.2: content of undefined-length UN is Implicit VR LE
                self._push(_SEQUENCE, tag, start, None, implicit=True, little=True)
            elif vr in _OB_OW and tag == PIXEL_DATA_TAG:
                self._push(_FRAGMENTS, tag, start, None, implicit=False, little=frame.little)
            else:
                self._report("bad-undefined-length", start, f"{tag_str(tag)} length",
                             f"undefined length with VR {vr.decode('ascii')}")
            return
        if not self._check_value(tag, length, start, end_of_header):
            return
        if vr == b"SQ" or (vr is None and tag in _SQ_TAGS):
            self._push(_SEQUENCE, tag, start, end_of_header + length, implicit=frame.implicit,
                       little=frame.little)
            return
        mask = _VR_MASK[vr] if vr is not None else _TAG_MASK.get(tag, 1)
        if length & mask and not length & 1:  # an odd length is reported already
            name = vr.decode("ascii") if vr is not None else str(DicomDictionary[tag][0])
            self._report("vr-length", start, f"{tag_str(tag)} length",
                         f"{length} for VR {name} ({mask + 1}-byte values)")
        self._skip = length
        self._value = (tag, start, length)
        if frame.kind == _DATASET and tag in self._capture_tags and length <= _CAPTURE_LIMIT:
            self._cap = bytearray()
            self._cap_tag = tag


def check_dataset_bytes(
    data: bytes | bytearray | memoryview,
    transfer_syntax_uid: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[Finding]:
    """Validate a whole encoded data set; an empty list means structurally sound."""
    checker = DatasetStructureChecker(transfer_syntax_uid, max_depth=max_depth)
    checker.feed(data)
    return checker.finish()


def problem_codes(
    data: bytes | bytearray | memoryview,
    transfer_syntax_uid: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[str]:
    """The problem codes (keys of ``PROBLEMS``) of ``check_dataset_bytes``."""
    checker = DatasetStructureChecker(transfer_syntax_uid, max_depth=max_depth)
    checker.feed(data)
    checker.finish()
    return checker.codes


def walk_elements(
    data: bytes | bytearray | memoryview, transfer_syntax_uid: str, *, max_depth: int | None = 0
) -> list[ElementInfo]:
    """Element headers of an encoded (not deflated) data set, down to ``max_depth``.

    ``max_depth=0`` lists only top-level elements; ``None`` lists everything. The walk stops
    at the first fatal problem, so a damaged data set yields the elements before it.
    """
    found: list[ElementInfo] = []

    def collect(info: ElementInfo) -> None:
        if max_depth is None or info.depth <= max_depth:
            found.append(info)

    checker = DatasetStructureChecker(transfer_syntax_uid, on_element=collect, max_depth=1 << 30)
    checker.feed(data)
    return found
