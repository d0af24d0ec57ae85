"""Tests for harness.datasets.malformers: every malformer does what its table entry says."""

from __future__ import annotations

import io
import struct
import time
import warnings

import pytest
from pydicom.filereader import read_dataset

from harness.datasets import (
    HOSTILE_UIDS,
    MALFORMERS,
    UID_64,
    UID_65,
    NotApplicable,
    check_dataset_bytes,
    dataset_differences,
    decode_dataset,
    encode_dataset,
    inflate,
    make_instance,
    malform,
    problem_codes,
    walk_elements,
    with_sop_instance_uid,
    with_uids,
)
from harness.datasets.malformers import deep_nesting, lying_length
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.findings import DecodeError
from harness.wire.uid import uid_problem

ALL_TS = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]
PLAIN_TS = ALL_TS[:3]
KIND_ARGS = {"tiny": {}, "sr": {}, "pdf": {}, "us": {"rows": 3, "columns": 5, "frames": 2},
             "mr": {"rows": 4, "columns": 4}}

_cache: dict[tuple[str, str], bytes] = {}


def encoded(kind: str, ts: str) -> bytes:
    key = (kind, ts)
    if key not in _cache:
        _cache[key] = encode_dataset(make_instance(kind, seed=21, **KIND_ARGS[kind]), ts)
    return _cache[key]


def plain(data: bytes, ts: str) -> tuple[bytes, str]:
    """Inflated bytes and their syntax, so deflated results can be inspected too."""
    if ts == DEFLATED_EXPLICIT_VR_LE:
        return inflate(data), EXPLICIT_VR_LE
    return data, ts


@pytest.mark.parametrize("ts", ALL_TS)
@pytest.mark.parametrize("kind", list(KIND_ARGS))
@pytest.mark.parametrize("name", list(MALFORMERS))
def test_detectable_flag_matches_the_checker(name: str, kind: str, ts: str) -> None:
    malformer = MALFORMERS[name]
    original = encoded(kind, ts)
    for seed in (0, 1):
        try:
            out = malformer(original, ts, seed=seed)
        except NotApplicable:
            return
        assert out != original
        assert malform(name, original, ts, seed=seed) == out  # deterministic
        errors = [f for f in check_dataset_bytes(out, ts) if f.severity == "error"]
        assert bool(errors) == malformer.detectable, (name, kind, ts, errors)


def test_table_entries_are_complete() -> None:
    required = {"truncate-between-elements", "truncate-after-header", "truncate-inside-value",
                "lying-length", "odd-length", "bad-vr", "unterminated-sequence",
                "deep-nesting", "wrong-transfer-syntax", "big-endian-mismatch", "garbage",
                "uid-mismatch", "missing-type1", "hostile-uid", "non-even-pixel-data"}
    assert required <= set(MALFORMERS)
    for name, m in MALFORMERS.items():
        assert m.name == name and m.description and m.violates.startswith(("PS3", "robust"))
    with pytest.raises(ValueError):
        malform("no-such-thing", b"", EXPLICIT_VR_LE)


@pytest.mark.parametrize("ts", PLAIN_TS)
def test_truncations(ts: str) -> None:
    data = encoded("tiny", ts)
    starts = {e.offset for e in walk_elements(data, ts)}
    value_starts = {e.value_offset for e in walk_elements(data, ts)}
    between = malform("truncate-between-elements", data, ts)
    assert data.startswith(between) and len(between) in starts and 0 < len(between) < len(data)
    assert check_dataset_bytes(between, ts) == []
    after = malform("truncate-after-header", data, ts)
    assert data.startswith(after) and len(after) in value_starts
    assert problem_codes(after, ts) == ["truncated-value"]
    inside = malform("truncate-inside-value", data, ts, seed=3)
    assert data.startswith(inside)
    assert len(inside) not in starts | value_starts
    assert problem_codes(inside, ts) == ["truncated-value"]


def test_truncate_inside_value_fools_pydicom_but_not_us() -> None:
    ts = EXPLICIT_VR_LE
    data = encoded("tiny", ts)
    cut = malform("truncate-inside-value", data, ts, seed=5)
    info = [e for e in walk_elements(cut, ts)][-1]
    # pydicom quietly returns a value shorter than its declared length ...
    ds = read_dataset(io.BytesIO(cut), False, True)
    assert len(ds.get_item(info.tag).value) < info.length
    # ... while decode_dataset refuses, with the finding that says why
    with pytest.raises(DecodeError) as err:
        decode_dataset(cut, ts)
    assert err.value.findings[0].field.startswith(f"({info.tag >> 16:04X},")


@pytest.mark.parametrize("ts", PLAIN_TS)
def test_lying_length(ts: str) -> None:
    data = encoded("tiny", ts)
    out = malform("lying-length", data, ts)
    little = ts != EXPLICIT_VR_BE
    pixel = next(e for e in walk_elements(data, ts) if e.tag == 0x7FE00010)
    assert len(out) == pixel.value_offset + 100
    (declared,) = struct.unpack_from("<I" if little else ">I", out, pixel.value_offset - 4)
    assert declared == 0xFFFFFFF0
    assert out[:pixel.value_offset - 4] == data[:pixel.value_offset - 4]
    short = lying_length(data, ts, length=0x10000, follow=10)
    assert problem_codes(short, ts) == ["truncated-value"]


def test_lying_length_on_sr_uses_a_sequence() -> None:
    # Explicit VR SR: every long-length top-level element is an undefined-length sequence,
    # which now declares 0xFFFFFFF0 and meets its own (now misplaced) delimiter.
    out = malform("lying-length", encoded("sr", EXPLICIT_VR_LE), EXPLICIT_VR_LE)
    seq = [e for e in walk_elements(out, EXPLICIT_VR_LE) if e.length == 0xFFFFFFF0]
    assert len(seq) == 1 and seq[0].vr == "SQ"
    assert problem_codes(out, EXPLICIT_VR_LE)[-1] in ("expected-item", "truncated-container")


@pytest.mark.parametrize("ts", PLAIN_TS)
def test_odd_length_and_non_even_pixel_data(ts: str) -> None:
    data = encoded("tiny", ts)
    odd = malform("odd-length", data, ts)
    assert len(odd) == len(data) - 1
    assert problem_codes(odd, ts) == ["odd-length"]
    pixels = malform("non-even-pixel-data", data, ts)
    assert problem_codes(pixels, ts) == ["odd-length"]
    last = walk_elements(pixels, ts)[-1]
    assert last.tag == 0x7FE00010 and last.length % 2 == 1
    with pytest.raises(NotApplicable):
        malform("non-even-pixel-data", encoded("sr", ts), ts)


def test_bad_vr() -> None:
    data = encoded("mr", EXPLICIT_VR_LE)
    out = malform("bad-vr", data, EXPLICIT_VR_LE, seed=2)
    assert len(out) == len(data) and b"ZZ" in out
    assert problem_codes(out, EXPLICIT_VR_LE) == ["bad-vr"]
    with pytest.raises(NotApplicable):
        malform("bad-vr", encoded("mr", IMPLICIT_VR_LE), IMPLICIT_VR_LE)
    # deflated: the VR is damaged inside the deflated stream
    deflated = malform("bad-vr", encoded("mr", DEFLATED_EXPLICIT_VR_LE),
                       DEFLATED_EXPLICIT_VR_LE)
    assert problem_codes(deflated, DEFLATED_EXPLICIT_VR_LE) == ["bad-vr"]


@pytest.mark.parametrize("ts", ALL_TS)
def test_sequence_malformers(ts: str) -> None:
    data = encoded("pdf", ts)
    unterminated = malform("unterminated-sequence", data, ts)
    assert problem_codes(unterminated, ts) == ["unterminated-sequence"]
    deep = malform("deep-nesting", data, ts)
    assert problem_codes(deep, ts) == ["too-deep"]
    raw, raw_ts = plain(deep, ts)
    # well formed: with a high enough limit nothing is wrong, and it is 200 deep
    assert problem_codes(raw, raw_ts, max_depth=1000) == []
    assert max(e.depth for e in walk_elements(raw, raw_ts, max_depth=None)) == 200


def test_ten_thousand_deep_is_cheap_to_build_and_check() -> None:
    t = time.perf_counter()
    out = deep_nesting(encoded("tiny", EXPLICIT_VR_LE), EXPLICIT_VR_LE, depth=10_000)
    assert problem_codes(out, EXPLICIT_VR_LE) == ["too-deep"]
    assert problem_codes(out, EXPLICIT_VR_LE, max_depth=20_000) == []
    assert time.perf_counter() - t < 2.0


@pytest.mark.parametrize("ts", PLAIN_TS)
def test_encoding_mismatches_decode_differently(ts: str) -> None:
    data = encoded("sr", ts)
    wrong = malform("wrong-transfer-syntax", data, ts)
    other = EXPLICIT_VR_LE if ts == IMPLICIT_VR_LE else IMPLICIT_VR_LE
    assert wrong == encode_dataset(decode_dataset(data, ts), other)
    assert check_dataset_bytes(wrong, other) == []  # valid in its own syntax ...
    assert problem_codes(wrong, ts)  # ... not in the context's
    endian = malform("big-endian-mismatch", data, ts)
    other = EXPLICIT_VR_LE if ts == EXPLICIT_VR_BE else EXPLICIT_VR_BE
    assert check_dataset_bytes(endian, other) == []
    assert problem_codes(endian, ts)


def test_garbage_is_even_random_and_seeded() -> None:
    a = malform("garbage", b"", EXPLICIT_VR_LE, seed=1)
    assert len(a) == 256 and a != malform("garbage", b"", EXPLICIT_VR_LE, seed=2)
    for seed in range(30):
        for ts in ALL_TS:
            assert problem_codes(malform("garbage", b"", ts, seed=seed), ts), (seed, ts)


@pytest.mark.parametrize("ts", ALL_TS)
def test_uid_malformers_change_only_what_they_say(ts: str) -> None:
    ds = make_instance("tiny", seed=21)
    data = encoded("tiny", ts)
    changed = decode_dataset(malform("uid-mismatch", data, ts), ts, strict=True)
    assert changed.SOPInstanceUID != ds.SOPInstanceUID
    assert uid_problem(changed.SOPInstanceUID) is None
    assert dataset_differences(ds, changed) == [
        d for d in dataset_differences(ds, changed) if d.startswith("(0008,0018)")]
    assert len(dataset_differences(ds, changed)) == 1
    klass = decode_dataset(malform("class-mismatch", data, ts), ts)
    assert klass.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # CT -> MR
    missing = decode_dataset(malform("missing-type1", data, ts), ts)
    assert "SOPInstanceUID" not in missing and "SOPClassUID" not in missing
    assert "PatientName" in missing
    assert "Rows" not in decode_dataset(malform("missing-rows", data, ts), ts)


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uids_are_written_verbatim(uid: str) -> None:
    ts = EXPLICIT_VR_LE
    out = with_sop_instance_uid(encoded("tiny", ts), ts, uid)
    assert check_dataset_bytes(out, ts) == []
    info = next(e for e in walk_elements(out, ts) if e.tag == 0x00080018)
    value = out[info.value_offset:info.value_offset + info.length]
    assert value.rstrip(b"\x00") == uid.encode().rstrip(b"\x00") or value == uid.encode()
    assert uid_problem(uid) is not None  # every one of them is an invalid UID


def test_hostile_list_covers_the_cases() -> None:
    joined = "|".join(HOSTILE_UIDS)
    for needle in ("../../x", "/etc/passwd", "1.2.3/../../evil", "C:\\evil", "\x00", " "):
        assert needle in joined
    assert UID_65 in HOSTILE_UIDS and len(UID_65) == 65
    assert len(UID_64) == 64 and uid_problem(UID_64) is None
    assert any(uid_problem(u) == "component with a leading zero" for u in HOSTILE_UIDS)
    seen = {malform("hostile-uid", encoded("tiny", IMPLICIT_VR_LE), IMPLICIT_VR_LE, seed=s)
            for s in range(20)}
    assert len(seen) > 5


def test_duplicate_and_out_of_order() -> None:
    ts = IMPLICIT_VR_LE
    data = encoded("sr", ts)
    dup = malform("duplicate-tag", data, ts)
    assert problem_codes(dup, ts) == ["duplicate-tag"]
    swapped = malform("tags-out-of-order", data, ts)
    assert len(swapped) == len(data) and sorted(swapped) == sorted(data)
    assert problem_codes(swapped, ts) == ["tag-order"]


def test_with_uids_copies() -> None:
    ds = make_instance("tiny", seed=1)
    other = with_uids(ds, sop_instance_uid="1.2.3", sop_class_uid="1.2.4")
    assert (other.SOPInstanceUID, other.SOPClassUID) == ("1.2.3", "1.2.4")
    assert ds.SOPInstanceUID != "1.2.3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hostile = with_uids(ds, sop_instance_uid="../../x")
    assert hostile.SOPInstanceUID == "../../x"
