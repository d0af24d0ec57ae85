"""The structure checker's inline top-level walk gives exactly what the general walk gives.

Every comparison runs the same bytes, cut the same way, through a checker with the fast path
(the default) and one built with ``fast=False``, and compares everything observable:
findings, codes, captured values, element count, offset, fatal/depth and
``pixel_data_seen``.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.datasets import encode_dataset, make_instance
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.dataset_check import DatasetStructureChecker, walk_elements
from harness.wire.dataset_raw import PIXEL_DATA_TAG

ALL_TS = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]
LE_TS = [IMPLICIT_VR_LE, EXPLICIT_VR_LE]
SMALL = {"tiny": {}, "ct": {"rows": 6, "columns": 6}, "mr": {"rows": 4, "columns": 4},
         "us": {"rows": 3, "columns": 5, "frames": 2}, "sc": {"rows": 5, "columns": 5},
         "sr": {}, "pdf": {}}
CAPTURE = (0x00080016, 0x00080018, 0x00280010, 0x00280011, 0x00280100, 0x7FE00010)

_CACHE: dict[tuple[str, str], bytes] = {}


def encoded(kind: str, ts: str) -> bytes:
    key = (kind, ts)
    if key not in _CACHE:
        _CACHE[key] = encode_dataset(make_instance(kind, seed=3, **SMALL[kind]), ts)
    return _CACHE[key]


def run(data: bytes, ts: str, cuts: list[int], *, fast: bool,
        capture: tuple[int, ...] = CAPTURE, max_findings: int = 50) -> dict[str, Any]:
    checker = DatasetStructureChecker(ts, fast=fast, capture=capture, max_findings=max_findings)
    last = 0
    for cut in sorted(set(cuts)):
        checker.feed(memoryview(data)[last:cut])
        last = cut
    checker.feed(memoryview(data)[last:])
    mid = (checker.offset, checker.elements, checker.depth, checker.fatal)
    findings = checker.finish()
    return {"findings": findings, "codes": checker.codes, "captured": checker.captured,
            "elements": checker.elements, "offset": checker.offset, "fatal": checker.fatal,
            "depth": checker.depth, "pixels": checker.pixel_data_seen, "mid": mid,
            "ok": checker.ok}


def same(data: bytes, ts: str, cuts: list[int], **kw: Any) -> dict[str, Any]:
    fast = run(data, ts, cuts, fast=True, **kw)
    slow = run(data, ts, cuts, fast=False, **kw)
    assert fast == slow
    return fast


# --- valid data sets --------------------------------------------------------------------------

@pytest.mark.parametrize("ts", ALL_TS)
@pytest.mark.parametrize("kind", list(SMALL))
def test_valid_instances_identical(kind: str, ts: str) -> None:
    data = encoded(kind, ts)
    result = same(data, ts, [])
    assert result["codes"] == []
    assert result["captured"][0x00080018]  # the SOP Instance UID was captured


@given(data=st.data(), kind=st.sampled_from(list(SMALL)), ts=st.sampled_from(ALL_TS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_instances_chunked_identical(data: st.DataObject, kind: str, ts: str) -> None:
    raw = encoded(kind, ts)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    same(raw, ts, cuts)


def test_fast_path_really_skips_the_general_walk() -> None:
    """A plain Explicit VR LE data set never reaches the per-element methods."""
    raw = encoded("ct", EXPLICIT_VR_LE)
    calls = {"n": 0}
    original = DatasetStructureChecker._header

    def counting(self: DatasetStructureChecker, *args: Any) -> None:
        calls["n"] += 1
        original(self, *args)

    with mock.patch.object(DatasetStructureChecker, "_header", counting):
        checker = DatasetStructureChecker(EXPLICIT_VR_LE)
        checker.feed(raw)
        checker.finish()
        fast_calls = calls["n"]
        calls["n"] = 0
        slow = DatasetStructureChecker(EXPLICIT_VR_LE, fast=False)
        slow.feed(raw)
        slow.finish()
    assert checker.elements == slow.elements > 10
    assert fast_calls == 0
    assert calls["n"] == slow.elements


def test_pixel_data_seen_matches_walk() -> None:
    for kind in SMALL:
        for ts in ALL_TS:
            raw = encoded(kind, ts)
            checker = DatasetStructureChecker(ts)
            checker.feed(raw)
            checker.finish()
            if ts == DEFLATED_EXPLICIT_VR_LE:
                continue  # walk_elements reads plain bytes only
            top = {e.tag for e in walk_elements(raw, ts)}
            assert checker.pixel_data_seen == (PIXEL_DATA_TAG in top), (kind, ts)


def test_pixel_data_in_a_sequence_is_not_top_level() -> None:
    item = _el(0x00080100, b"SH", b"AB") + _el(PIXEL_DATA_TAG, b"OW", b"\0\0")
    seq = (struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
           + struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
           + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    assert not same(seq, EXPLICIT_VR_LE, [])["pixels"]
    assert same(seq + _el(PIXEL_DATA_TAG, b"OW", b"\0\0"), EXPLICIT_VR_LE, [])["pixels"]


# --- damaged and hand-built data sets ----------------------------------------------------------

def _el(tag: int, vr: bytes, value: bytes, *, reserved: int = 0, length: int | None = None,
        implicit: bool = False) -> bytes:
    n = len(value) if length is None else length
    group, element = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHI", group, element, n) + value
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"SV", b"UC", b"UN", b"UR",
              b"UT", b"UV"):
        return struct.pack("<HH2sHI", group, element, vr, reserved, n) + value
    return struct.pack("<HH2sH", group, element, vr, n & 0xFFFF) + value


TAGS = [0x00020010, 0x00000000, 0x00030010, 0x00080016, 0x00080018, 0x00081140, 0x00100010,
        0x00280010, 0x00280011, 0x00280100, 0x7FE00010, 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD,
        0xFFFF0000, 0x00091001]
VRS = [b"UI", b"OB", b"OW", b"SQ", b"UN", b"US", b"UT", b"LO", b"XX", b"ox"]

# Mostly well-formed elements (even values, true lengths, good VRs) so that the walk gets
# far, with the occasional deviation the fast path must leave to the general walk.
element_st = st.tuples(
    st.sampled_from(TAGS), st.sampled_from(VRS[:4] * 3 + VRS), st.one_of(
        st.binary(max_size=6).map(lambda b: b + b"\0" * (len(b) & 1)), st.binary(max_size=5)),
    st.sampled_from([0] * 12 + [1]),  # reserved bytes
    st.sampled_from([None] * 12 + [0xFFFFFFFF, 3, 0, 7]),  # length override
)


@given(elements=st.lists(element_st, max_size=14), ts=st.sampled_from(LE_TS),
       data=st.data(), sort=st.booleans())
@settings(max_examples=300, deadline=None)
def test_hand_built_elements_identical(elements: list[tuple[int, bytes, bytes, int, int | None]],
                                       ts: str, data: st.DataObject, sort: bool) -> None:
    if sort:
        elements = sorted(elements, key=lambda e: e[0])
    implicit = ts == IMPLICIT_VR_LE
    raw = b"".join(_el(t, vr, v, reserved=r, length=n, implicit=implicit)
                   for t, vr, v, r, n in elements)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    same(raw, ts, cuts)
    same(raw, ts, cuts, max_findings=2)


@given(data=st.data(), kind=st.sampled_from(list(SMALL)), ts=st.sampled_from(ALL_TS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_instances_identical(data: st.DataObject, kind: str, ts: str) -> None:
    raw = bytearray(encoded(kind, ts))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del raw[data.draw(st.integers(0, len(raw))):]
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    same(bytes(raw), ts, cuts)


@given(raw=st.binary(max_size=400), ts=st.sampled_from(ALL_TS), data=st.data())
@settings(max_examples=200, deadline=None)
def test_random_bytes_identical(raw: bytes, ts: str, data: st.DataObject) -> None:
    if ts == DEFLATED_EXPLICIT_VR_LE and data.draw(st.booleans()):
        deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        raw = deflater.compress(raw) + deflater.flush()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    same(raw, ts, cuts)


GOOD = _el(0x00080016, b"UI", b"1.2\0") + _el(0x00080018, b"UI", b"1.2.3\0")
TAIL = _el(0x00100010, b"PN", b"AB") + _el(PIXEL_DATA_TAG, b"OW", b"\0\0")
VIOLATIONS = {
    "duplicate-tag": _el(0x00080018, b"UI", b"1.2.4\0"),
    "tag-order": _el(0x00080005, b"CS", b"IR"),
    "odd-length": _el(0x00090010, b"LO", b"ABC"),
    "bad-undefined-length": _el(0x00090010, b"OB", b"", length=0xFFFFFFFF),
    "bad-vr": _el(0x00090010, b"XX", b"ab"),
    "reserved-not-zero": _el(0x00090010, b"OB", b"ab", reserved=7),
    "illegal-group": struct.pack("<HH2sH", 0xFFFF, 0x0010, b"LO", 2) + b"ab",
    "command-or-meta-group": b"",  # placed first, below
    "unexpected-delimiter": struct.pack("<HHI", 0xFFFE, 0xE000, 0),
    "stray-item-delimiter": struct.pack("<HHI", 0xFFFE, 0xE00D, 0),
    "overrun": b"",  # defined-length sequence whose element crosses its end, below
}


@pytest.mark.parametrize("code", [c for c, v in VIOLATIONS.items() if v])
@pytest.mark.parametrize("chunk", [0, 1, 5, 9, 13])
def test_each_deviation_reaches_the_general_walk(code: str, chunk: int) -> None:
    raw = GOOD + VIOLATIONS[code] + TAIL
    cuts = list(range(chunk, len(raw), chunk)) if chunk else []
    result = same(raw, EXPLICIT_VR_LE, cuts)
    assert code in result["codes"]


def test_meta_group_and_overrun_reach_the_general_walk() -> None:
    meta = _el(0x00020010, b"UI", b"1.2\0") + GOOD + TAIL
    assert "command-or-meta-group" in same(meta, EXPLICIT_VR_LE, [])["codes"]
    inner = _el(0x00080100, b"SH", b"ABCD")
    seq = (struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 8 + len(inner))
           + struct.pack("<HHI", 0xFFFE, 0xE000, len(inner) - 2) + inner)
    assert "overrun" in same(GOOD + seq + TAIL, EXPLICIT_VR_LE, [3, 40])["codes"]


def test_implicit_deviations_reach_the_general_walk() -> None:
    def imp(tag: int, value: bytes, length: int | None = None) -> bytes:
        return _el(tag, b"", value, implicit=True, length=length)

    good = imp(0x00080016, b"1.2\0") + imp(0x00080018, b"1.2.3\0")
    tail = imp(PIXEL_DATA_TAG, b"\0\0")
    cases = {"duplicate-tag": imp(0x00080018, b"12"), "tag-order": imp(0x00080005, b"IR"),
             "odd-length": imp(0x00090010, b"ABC"),
             "illegal-group": imp(0x00030010, b"AB")}
    for code, bad in cases.items():
        for cuts in ([], [1, 9, 17, 30]):
            assert code in same(good + bad + tail, IMPLICIT_VR_LE, cuts)["codes"]
    # a defined-length sequence known only by its tag is descended into, not jumped over
    item = imp(0x00081150, b"1.2\0")
    seq = imp(0x00081140, imp(0xFFFEE000, item), length=None)
    bad_item = imp(0x00081140, imp(0xFFFEE000, item + imp(0x00080005, b"IR")))
    assert same(good + seq + tail, IMPLICIT_VR_LE, [])["codes"] == []
    assert same(good + bad_item + tail, IMPLICIT_VR_LE, [])["codes"] == ["tag-order"]


def test_capture_across_chunks_and_large_values() -> None:
    uid = b"1.2.840.10008.5.1.4.1.1.2\0"
    raw = (_el(0x00080016, b"UI", uid) + _el(0x00080018, b"UI", b"1.2.3.4\0")
           + _el(0x00100010, b"PN", b"A" * 2000) + _el(PIXEL_DATA_TAG, b"OW", bytes(70000)))
    for ts in LE_TS:
        body = raw if ts == EXPLICIT_VR_LE else b"".join(
            _el(t, b"", v, implicit=True) for t, v in (
                (0x00080016, uid), (0x00080018, b"1.2.3.4\0"), (0x00100010, b"A" * 2000),
                (PIXEL_DATA_TAG, bytes(70000))))
        for step in (1, 3, 7, 16, 1000, 16384):
            result = same(body, ts, list(range(step, len(body), step)))
            assert result["captured"][0x00080016] == uid
            assert result["pixels"] and result["codes"] == []
        truncated = same(body[:-10], ts, [5, 30, 100])
        assert truncated["codes"] == ["truncated-value"]
