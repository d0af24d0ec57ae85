"""Tests for harness.datasets.encode: the four encodings, files, streaming, UID patching."""

from __future__ import annotations

import io
import os
import pathlib
import struct
import subprocess
import tracemalloc
import zlib
from array import array

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from harness.datasets import (
    IMPLEMENTATION_CLASS_UID,
    KINDS,
    DatasetStructureChecker,
    check_dataset_bytes,
    dataset_differences,
    decode_dataset,
    decode_file,
    encode_dataset,
    encode_file,
    inflate,
    iter_encoded,
    make_instance,
    patch_uid,
    uid_of_length,
    uid_offsets,
)
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.findings import DecodeError

ALL_TS = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]
SMALL = {"cr": {"rows": 10, "columns": 12}, "mg": {"rows": 12, "columns": 10},
         "us": {"rows": 5, "columns": 7, "frames": 2}, "ct": {"rows": 8, "columns": 8},
         "mr": {"rows": 8, "columns": 6}, "sc": {"rows": 7, "columns": 9}}


def small(kind: str, seed: int = 0) -> Dataset:
    return make_instance(kind, seed=seed, **SMALL.get(kind, {}))


def pydicom_encoding(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


@pytest.mark.parametrize("ts", ALL_TS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_round_trips_in_each_syntax(kind: str, ts: str) -> None:
    ds = small(kind, seed=11)
    data = encode_dataset(ds, ts)
    assert len(data) % 2 == 0
    assert check_dataset_bytes(data, ts) == []
    back = decode_dataset(data, ts, strict=True)
    assert dataset_differences(ds, back) == []
    assert encode_dataset(back, ts) == data


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("kind", ["tiny", "us", "sr", "pdf", "sc"])
def test_little_endian_matches_pydicom_writer(kind: str, implicit: bool) -> None:
    # The hand-written Pixel Data header must match what pydicom itself writes.
    ds = small(kind, seed=2)
    ts = IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE
    assert encode_dataset(ds, ts) == pydicom_encoding(ds, implicit, True)


def test_big_endian_swaps_words_and_tags() -> None:
    ds = small("ct", seed=1)
    be = encode_dataset(ds, EXPLICIT_VR_BE)
    le = encode_dataset(ds, EXPLICIT_VR_LE)
    assert len(be) == len(le)
    assert be.startswith(b"\x00\x08\x00\x05CS")  # (0008,0005) big endian
    pixels = bytes(ds.PixelData)
    words = array("H", pixels)
    words.byteswap()
    assert be.endswith(words.tobytes())
    assert be[-len(pixels) - 4:-len(pixels)] == struct.pack(">I", len(pixels))
    # what pydicom reads from a big endian file is the raw (swapped) value
    raw = pydicom.dcmread(io.BytesIO(encode_file(ds, EXPLICIT_VR_BE)))
    assert raw.PixelData == words.tobytes()


def test_deflated_is_raw_deflate_of_explicit_le() -> None:
    ds = small("sr", seed=4)
    deflated = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LE)
    assert len(deflated) % 2 == 0
    assert inflate(deflated) == encode_dataset(ds, EXPLICIT_VR_LE)
    with pytest.raises(zlib.error):
        zlib.decompress(deflated)  # no zlib header: raw deflate (PS3.5 A.5)
    with pytest.raises(DecodeError):
        inflate(deflated[: len(deflated) // 2])


@pytest.mark.parametrize("ts", ALL_TS)
def test_part10_file_is_readable_by_pydicom(ts: str) -> None:
    ds = small("mr", seed=5)
    data = encode_file(ds, ts, source_ae="HARNESS")
    assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM"
    read = pydicom.dcmread(io.BytesIO(data))
    meta = read.file_meta
    assert meta.TransferSyntaxUID == ts
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.SourceApplicationEntityTitle == "HARNESS"
    assert read.PatientName == ds.PatientName
    meta2, back = decode_file(data)
    assert meta2.TransferSyntaxUID == ts
    assert dataset_differences(ds, back) == []


def test_decode_file_rejects_non_part10() -> None:
    with pytest.raises(DecodeError):
        decode_file(encode_dataset(small("tiny"), EXPLICIT_VR_LE))


def test_decode_dataset_raises_with_findings_on_truncation() -> None:
    data = encode_dataset(small("ct"), EXPLICIT_VR_LE)
    with pytest.raises(DecodeError) as info:
        decode_dataset(data[:-3], EXPLICIT_VR_LE)
    assert info.value.findings
    assert "truncat" in str(info.value.findings[0]).lower()


@pytest.mark.parametrize("ts", [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE])
@pytest.mark.parametrize("kind", ["tiny", "ct", "us", "sc", "cr"])
def test_streamed_equals_encode_dataset(kind: str, ts: str) -> None:
    frame = KINDS[kind].frame_bytes()
    total, pieces = iter_encoded(kind, seed=3, index=2, transfer_syntax_uid=ts,
                                 pixel_bytes=2 * frame + 11, chunk_size=4099)
    streamed = b"".join(bytes(p) for p in pieces)
    expected = encode_dataset(make_instance(kind, seed=3, index=2, frames=2), ts)
    assert total == len(streamed) == len(expected)
    assert streamed == expected


def test_streamed_odd_pixel_length_is_padded() -> None:
    # 3 x 5 RGB 8-bit = 45 bytes: the stream must pad to 46 like encode_dataset does.
    total, pieces = iter_encoded("us", transfer_syntax_uid=EXPLICIT_VR_LE, pixel_bytes=1,
                                 chunk_size=7)
    data = b"".join(bytes(p) for p in pieces)
    assert total == len(data) and total % 2 == 0
    assert check_dataset_bytes(data, EXPLICIT_VR_LE) == []


def test_streaming_rejects_what_it_cannot_stream() -> None:
    with pytest.raises(ValueError):
        iter_encoded("sr", transfer_syntax_uid=EXPLICIT_VR_LE, pixel_bytes=100)
    with pytest.raises(ValueError):
        iter_encoded("ct", transfer_syntax_uid=DEFLATED_EXPLICIT_VR_LE, pixel_bytes=100)
    with pytest.raises(ValueError):
        iter_encoded("ct", transfer_syntax_uid="1.2.840.10008.1.2.4.50", pixel_bytes=100)


def test_streaming_300_mb_uses_bounded_memory() -> None:
    size = 300 * 1024 * 1024
    tracemalloc.start()
    try:
        total, pieces = iter_encoded("ct", seed=1, transfer_syntax_uid=EXPLICIT_VR_LE,
                                     pixel_bytes=size)
        checker = DatasetStructureChecker(EXPLICIT_VR_LE)
        crc = 0
        count = 0
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
            checker.feed(piece)
            count += len(piece)
        findings = checker.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == total
    assert size - KINDS["ct"].frame_bytes() < total - 2000 <= size
    assert findings == []
    assert checker.captured_text(0x00080018) == make_instance("ct", seed=1).SOPInstanceUID
    assert peak < 20 * 1024 * 1024, peak
    # same content every time
    _, again = iter_encoded("ct", seed=1, transfer_syntax_uid=EXPLICIT_VR_LE,
                            pixel_bytes=size, chunk_size=3 << 20)
    crc2 = 0
    for piece in again:
        crc2 = zlib.crc32(piece, crc2)
    assert crc2 == crc


@pytest.mark.parametrize("ts", [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE])
def test_uid_offsets_and_patching(ts: str) -> None:
    ds = small("ct", seed=8)
    data = bytearray(encode_dataset(ds, ts))
    offsets = uid_offsets(data, ts)
    assert set(offsets) >= {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"}
    off, length = offsets["SOPInstanceUID"]
    assert bytes(data[off:off + length]).rstrip(b"\x00") == ds.SOPInstanceUID.encode()
    new = uid_of_length(42, len(ds.SOPInstanceUID))
    patch_uid(data, off, length, new)
    shorter = "1.2.3"
    s_off, s_len = offsets["StudyInstanceUID"]
    patch_uid(data, s_off, s_len, shorter)
    assert check_dataset_bytes(data, ts) == []
    back = decode_dataset(data, ts)
    assert back.SOPInstanceUID == new
    assert back.StudyInstanceUID == shorter
    assert back.SeriesInstanceUID == ds.SeriesInstanceUID
    with pytest.raises(ValueError):
        patch_uid(data, off, length, "1." + "2" * length)
    with pytest.raises(ValueError):
        uid_offsets(encode_dataset(ds, DEFLATED_EXPLICIT_VR_LE), DEFLATED_EXPLICIT_VR_LE)


def test_dataset_differences_reports_changes() -> None:
    a = small("sr", seed=1)
    b = decode_dataset(encode_dataset(a, IMPLICIT_VR_LE), IMPLICIT_VR_LE)
    assert dataset_differences(a, b) == []
    b.PatientName = "Other^Name"
    del b.StudyDate
    b.ContentSequence[0].ContentSequence[0].TextValue = "changed"
    diffs = dataset_differences(a, b)
    assert len(diffs) == 3
    assert any("(0040,A160)" in d for d in diffs)


DCMDUMP = "/usr/bin/dcmdump"


@pytest.mark.interop
@pytest.mark.skipif(not os.path.exists(DCMDUMP), reason="DCMTK dcmdump not installed")
@pytest.mark.parametrize("ts", ALL_TS)
def test_dcmtk_reads_our_files(ts: str, tmp_path: pathlib.Path) -> None:
    ds = small("mg", seed=1)
    path = tmp_path / "x.dcm"
    path.write_bytes(encode_file(ds, ts))
    out = subprocess.run([DCMDUMP, "+L", str(path)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "E:" not in out.stderr and "W:" not in out.stderr
    first_word = struct.unpack_from("<H", ds.PixelData)[0]
    pixel_line = next(line for line in out.stdout.splitlines() if "PixelData" in line)
    assert f"OW {first_word:04x}\\" in pixel_line  # same values in every byte order
