"""Tests for harness.wire.dataset_check: the streaming structural checker."""

from __future__ import annotations

import random
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from harness.datasets import (
    KINDS,
    PROBLEMS,
    DatasetStructureChecker,
    check_dataset_bytes,
    decode_dataset,
    encode_dataset,
    iter_encoded,
    make_instance,
    problem_codes,
    walk_elements,
)
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.dataset_raw import (
    ITEM_DELIMITATION_TAG,
    ITEM_TAG,
    SEQUENCE_DELIMITATION_TAG,
    UNDEFINED_LENGTH,
    element_header,
    item_header,
)
from harness.wire.findings import Finding

ALL_TS = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
SMALL = {"cr": {"rows": 6, "columns": 4}, "mg": {"rows": 4, "columns": 6},
         "us": {"rows": 3, "columns": 5, "frames": 2}, "ct": {"rows": 6, "columns": 6},
         "mr": {"rows": 4, "columns": 4}, "sc": {"rows": 5, "columns": 5}}


def encoded(kind: str, ts: str, seed: int = 0) -> bytes:
    return encode_dataset(make_instance(kind, seed=seed, **SMALL.get(kind, {})), ts)


def encapsulated_instance() -> Dataset:
    ds = make_instance("sc", seed=1, rows=4, columns=4)
    ds.PixelData = encapsulate([b"\xff\xd8frame-one\xff\xd9", b"\xff\xd8two\xff\xd9"],
                               has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def nested_instance() -> Dataset:
    """Undefined- and defined-length sequences mixed, an empty item, an empty sequence."""
    ds = make_instance("ct", seed=2, rows=2, columns=2)
    inner = Dataset()
    inner.CodeValue = "1"
    inner.CodingSchemeDesignator = "DCM"
    inner.CodeMeaning = "x"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    item.is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.SourceImageSequence = Sequence([])
    return ds


def split_feed(data: bytes, ts: str, cuts: list[int]) -> DatasetStructureChecker:
    checker = DatasetStructureChecker(ts)
    last = 0
    for cut in sorted(cuts):
        checker.feed(data[last:cut])
        last = cut
    checker.feed(data[last:])
    checker.finish()
    return checker


def one_shot(data: bytes, ts: str) -> DatasetStructureChecker:
    checker = DatasetStructureChecker(ts)
    checker.feed(data)
    checker.finish()
    return checker


@pytest.mark.parametrize("ts", ALL_TS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_valid_kinds_have_no_findings(kind: str, ts: str) -> None:
    assert check_dataset_bytes(encoded(kind, ts, seed=5), ts) == []


@pytest.mark.parametrize("ts", ALL_TS)
def test_nested_sequences_have_no_findings(ts: str) -> None:
    data = encode_dataset(nested_instance(), ts)
    assert check_dataset_bytes(data, ts) == []
    if ts != DEFLATED_EXPLICIT_VR_LE:
        tags = {e.tag for e in walk_elements(data, ts, max_depth=None)}
        assert {0x00081140, 0x00081150, 0x0040A170, ITEM_TAG, ITEM_DELIMITATION_TAG,
                SEQUENCE_DELIMITATION_TAG} <= tags


def test_encapsulated_pixel_data_has_no_findings() -> None:
    data = encode_dataset(encapsulated_instance(), JPEG_BASELINE)
    assert check_dataset_bytes(data, JPEG_BASELINE) == []
    # fragments are seen as items one level below the top
    items = [e for e in walk_elements(data, JPEG_BASELINE, max_depth=None)
             if e.tag == ITEM_TAG]
    assert len(items) == 3  # basic offset table + 2 fragments
    # dropping the final Sequence Delimitation Item leaves the fragments open
    assert problem_codes(data[:-8], JPEG_BASELINE) == ["unterminated-fragments"]


def test_undefined_length_un_holds_implicit_le() -> None:
    # PS3.5 6.2.2: an undefined-length UN is a sequence whose items are Implicit VR LE,
    # whatever the transfer syntax.
    body = element_header(0x00100010, "PN", 4, implicit=True, little=True) + b"A^B "
    un = (element_header(0x00091010, "UN", UNDEFINED_LENGTH, implicit=False, little=False)
          + item_header(ITEM_TAG, len(body), little=True) + body
          + item_header(SEQUENCE_DELIMITATION_TAG, 0, little=True))
    creator = element_header(0x00090010, "LO", 4, implicit=False, little=False) + b"ACME"
    assert check_dataset_bytes(creator + un, EXPLICIT_VR_BE) == []


def test_captures_top_level_uids() -> None:
    ds = make_instance("sr", seed=3)
    for ts in ALL_TS:
        checker = one_shot(encode_dataset(ds, ts), ts)
        assert checker.captured_text(0x00080018) == ds.SOPInstanceUID
        assert checker.captured_text(0x00080016) == ds.SOPClassUID
        assert checker.captured_text(0x0020000D) == ds.StudyInstanceUID
        assert checker.captured_text(0x00100010) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(["sr", "tiny", "pdf", "nested", "encaps",
                                              "damaged"]),
       ts=st.sampled_from(ALL_TS))
def test_chunked_feeding_matches_one_shot(data: st.DataObject, which: str, ts: str) -> None:
    if which == "nested":
        raw = encode_dataset(nested_instance(), ts)
    elif which == "encaps":
        ts = JPEG_BASELINE
        raw = encode_dataset(encapsulated_instance(), ts)
    elif which == "damaged":
        base = encoded("sr", ts)
        cut = data.draw(st.integers(0, len(base)), label="cut")
        raw = base[:cut]
    else:
        raw = encoded(which, ts)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40), label="cuts")
    reference = one_shot(raw, ts)
    chunked = split_feed(raw, ts, cuts)
    assert chunked.findings == reference.findings
    assert chunked.codes == reference.codes
    assert chunked.captured == reference.captured
    assert chunked.offset == reference.offset


@pytest.mark.parametrize("ts", ALL_TS)
def test_one_byte_feeding(ts: str) -> None:
    for raw in (encoded("sr", ts), encoded("tiny", ts)[:-5]):
        reference = one_shot(raw, ts)
        checker = DatasetStructureChecker(ts)
        for i in range(len(raw)):
            checker.feed(raw[i:i + 1])
        assert checker.finish() == reference.findings
        assert checker.captured == reference.captured


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=600), ts=st.sampled_from([*ALL_TS, JPEG_BASELINE]))
def test_never_raises_on_random_bytes(raw: bytes, ts: str) -> None:
    findings = check_dataset_bytes(raw, ts)
    assert all(isinstance(f, Finding) for f in findings)
    codes = problem_codes(raw, ts)
    assert all(code in PROBLEMS for code in codes)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 400))
def test_random_bytes_in_pieces_never_raise(seed: int, size: int) -> None:
    rng = random.Random(seed)
    raw = rng.randbytes(size)
    for ts in ALL_TS:
        checker = DatasetStructureChecker(ts)
        pos = 0
        while pos < size:
            step = rng.randrange(1, 17)
            checker.feed(memoryview(raw)[pos:pos + step])
            pos += step
        checker.finish()


def test_truncations_are_named() -> None:
    data = encoded("tiny", EXPLICIT_VR_LE)
    tops = walk_elements(data, EXPLICIT_VR_LE)
    last = tops[-1]
    assert problem_codes(data[:last.offset + 5], EXPLICIT_VR_LE) == ["truncated-header"]
    assert problem_codes(data[:last.value_offset + 1], EXPLICIT_VR_LE) == ["truncated-value"]
    assert problem_codes(data[:last.offset], EXPLICIT_VR_LE) == []
    finding = check_dataset_bytes(data[:-1], EXPLICIT_VR_LE)[0]
    assert finding.offset == last.offset and finding.severity == "error"
    assert "(7FE0,0010)" in finding.field


def test_sequence_truncation_reports_open_containers() -> None:
    data = encode_dataset(nested_instance(), EXPLICIT_VR_LE)
    seq = next(e for e in walk_elements(data, EXPLICIT_VR_LE) if e.tag == 0x00081140)
    codes = problem_codes(data[:seq.value_offset + 30], EXPLICIT_VR_LE)
    assert "unterminated-sequence" in codes and "unterminated-item" in codes


def _explicit(tag: int, vr: str, value: bytes) -> bytes:
    return element_header(tag, vr, len(value), implicit=False, little=True) + value


def test_specific_violations() -> None:
    ts = EXPLICIT_VR_LE
    a = _explicit(0x00100010, "PN", b"A^B ")
    b = _explicit(0x00100020, "LO", b"ID01")
    assert problem_codes(b + a, ts) == ["tag-order"]
    assert problem_codes(a + a, ts) == ["duplicate-tag"]
    assert problem_codes(_explicit(0x00100010, "PN", b"A^B"), ts) == ["odd-length"]
    assert problem_codes(a[:4] + b"ZZ" + a[6:], ts) == ["bad-vr"]
    stray = item_header(ITEM_DELIMITATION_TAG, 0, little=True)
    assert problem_codes(a + stray + b, ts) == ["stray-item-delimiter"]
    assert problem_codes(a + item_header(ITEM_TAG, 0, little=True), ts) == [
        "unexpected-delimiter"]
    bad_undefined = element_header(0x00100010, "UT", UNDEFINED_LENGTH, implicit=False,
                                   little=True)
    assert problem_codes(bad_undefined, ts) == ["bad-undefined-length"]
    reserved = bytearray(_explicit(0x00420011, "OB", b"ab"))
    reserved[6] = 1
    checker = one_shot(bytes(reserved), ts)
    assert checker.codes == ["reserved-not-zero"] and checker.ok
    assert problem_codes(_explicit(0x00020010, "UI", b"1.2\x00"), ts) == [
        "command-or-meta-group"]
    assert problem_codes(_explicit(0x00030010, "LO", b"ab"), ts) == ["illegal-group"]


def test_defined_length_overrun_and_delimiter_length() -> None:
    ts = EXPLICIT_VR_LE
    inner = _explicit(0x00080100, "SH", b"12")
    item = item_header(ITEM_TAG, len(inner) - 2, little=True) + inner  # item too short
    seq = element_header(0x00081140, "SQ", len(item), implicit=False, little=True) + item
    assert problem_codes(seq, ts) == ["overrun"]
    good = item_header(ITEM_TAG, UNDEFINED_LENGTH, little=True) + inner + item_header(
        ITEM_DELIMITATION_TAG, 4, little=True) + b"\0\0\0\0"
    seq = element_header(0x00081140, "SQ", UNDEFINED_LENGTH, implicit=False,
                         little=True) + good
    codes = problem_codes(seq, ts)
    assert codes[0] == "bad-delimiter-length"


def test_depth_limit_and_findings_cap() -> None:
    sq = element_header(0x00081140, "SQ", UNDEFINED_LENGTH, implicit=False, little=True)
    item = item_header(ITEM_TAG, UNDEFINED_LENGTH, little=True)
    deep = (sq + item) * 10
    assert "too-deep" in problem_codes(deep, EXPLICIT_VR_LE, max_depth=5)
    assert "too-deep" not in problem_codes(deep, EXPLICIT_VR_LE, max_depth=10)
    # a million-deep nesting is cut off at the limit, without recursion or big state
    checker = DatasetStructureChecker(EXPLICIT_VR_LE)
    checker.feed((sq + item) * 100_000)
    assert checker.fatal and checker.depth == 65
    odd = b"".join(_explicit(0x00100000 + 2 * i + 0x10, "LO", b"abc") for i in range(80))
    checker = DatasetStructureChecker(EXPLICIT_VR_LE, max_findings=10)
    checker.feed(odd)
    findings = checker.finish()
    assert len(findings) == 11 and checker.codes[-1] == "too-many-findings"


def test_deflate_problems() -> None:
    good = encoded("tiny", DEFLATED_EXPLICIT_VR_LE)
    assert problem_codes(good[: len(good) // 2], DEFLATED_EXPLICIT_VR_LE)[0] in (
        "deflate-truncated", "truncated-value", "truncated-header")
    assert "deflate-truncated" in problem_codes(good[: len(good) // 2],
                                                DEFLATED_EXPLICIT_VR_LE)
    assert problem_codes(good + b"\0\0\0\0", DEFLATED_EXPLICIT_VR_LE) == ["deflate-trailing"]
    assert problem_codes(b"\xff" * 64, DEFLATED_EXPLICIT_VR_LE) == ["deflate-error"]


def test_100_mb_data_set_is_checked_quickly() -> None:
    total, pieces = iter_encoded("ct", transfer_syntax_uid=IMPLICIT_VR_LE,
                                 pixel_bytes=100 * 1024 * 1024)
    data = b"".join(bytes(p) for p in pieces)
    assert len(data) == total
    t = time.perf_counter()
    assert check_dataset_bytes(data, IMPLICIT_VR_LE) == []
    assert check_dataset_bytes(memoryview(data)[:-2], IMPLICIT_VR_LE)[0].field.startswith(
        "(7FE0,0010)")
    assert time.perf_counter() - t < 0.5


def test_lying_length_is_never_allocated() -> None:
    header = element_header(0x7FE00010, "OW", 0xFFFFFFF0, implicit=False, little=True)
    checker = DatasetStructureChecker(EXPLICIT_VR_LE)
    checker.feed(header + b"\0" * 100)
    assert checker.finish()[0].found.endswith(f"100 of {0xFFFFFFF0} value bytes")


def test_decode_dataset_agrees_with_checker_on_big_endian_sequences() -> None:
    data = encode_dataset(nested_instance(), EXPLICIT_VR_BE)
    ds = decode_dataset(data, EXPLICIT_VR_BE, strict=True)
    assert ds.ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue == "1"


def test_implicit_defined_length_sequence_is_descended() -> None:
    ds = nested_instance()
    ds["ReferencedImageSequence"].is_undefined_length = False
    for item in ds.ReferencedImageSequence:
        item.is_undefined_length_sequence_item = False
    data = encode_dataset(ds, IMPLICIT_VR_LE)
    depths = {e.tag: e.depth for e in walk_elements(data, IMPLICIT_VR_LE, max_depth=None)}
    assert depths[0x00081150] == 1 and depths[0x00080100] == 2
    # corrupt the inner item length: the checker sees the overrun inside the sequence
    seq = next(e for e in walk_elements(data, IMPLICIT_VR_LE) if e.tag == 0x00081140)
    bad = bytearray(data)
    item_len_at = seq.value_offset + 4
    (length,) = struct.unpack_from("<I", bad, item_len_at)
    struct.pack_into("<I", bad, item_len_at, length + 2)
    assert "overrun" in problem_codes(bytes(bad), IMPLICIT_VR_LE)


def test_private_element_with_dataelement_api() -> None:
    ds = make_instance("tiny")
    ds.add(DataElement(0x00110010, "LO", "ACME 1.0"))
    ds.add(DataElement(0x00111001, "OB", b"\x01\x02\x03\x04"))
    for ts in ALL_TS:
        assert check_dataset_bytes(encode_dataset(ds, ts), ts) == []
