"""Tests for harness.datasets.factory: kinds, determinism, sizes, UIDs, the PDF."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time

import pytest
from pydicom.dataset import Dataset

from harness.datasets import (
    KINDS,
    build_instance,
    derive_uid,
    encode_dataset,
    frames_for_pixel_bytes,
    make_instance,
    tiny_pdf,
    uid_of_length,
)
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE
from harness.wire.uid import uid_problem

# Geometry overrides that keep the big kinds cheap where size does not matter.
SMALL = {"cr": {"rows": 10, "columns": 12}, "mg": {"rows": 12, "columns": 10},
         "us": {"rows": 6, "columns": 8, "frames": 2}}


def small(kind: str, **kw: int) -> Dataset:
    return make_instance(kind, **{**SMALL.get(kind, {}), **kw})


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_gives_identical_bytes(kind: str) -> None:
    a = encode_dataset(small(kind, seed=7, index=3), EXPLICIT_VR_LE)
    b = encode_dataset(small(kind, seed=7, index=3), EXPLICIT_VR_LE)
    assert a == b


@pytest.mark.parametrize("kind", list(KINDS))
def test_different_seed_changes_uids_and_names(kind: str) -> None:
    a, b = small(kind, seed=1), small(kind, seed=2)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientName",
                    "PatientID"):
        assert a.get(keyword) != b.get(keyword), keyword
    assert encode_dataset(a, IMPLICIT_VR_LE) != encode_dataset(b, IMPLICIT_VR_LE)


def test_determinism_does_not_depend_on_the_process() -> None:
    code = ("import hashlib; from harness.datasets import make_instance, encode_dataset; "
            "print(hashlib.sha256(encode_dataset(make_instance('sr', seed=5), "
            "'1.2.840.10008.1.2')).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    here = hashlib.sha256(encode_dataset(make_instance("sr", seed=5), IMPLICIT_VR_LE))
    assert out.stdout.strip() == here.hexdigest()


def test_index_varies_the_instance_within_one_series() -> None:
    a, b = make_instance("ct", seed=4, index=0), make_instance("ct", seed=4, index=1)
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID
    assert a.PatientName == b.PatientName
    assert (a.InstanceNumber, b.InstanceNumber) == (1, 2)
    assert a.SliceLocation != b.SliceLocation


def test_patient_and_study_shared_across_kinds_of_one_seed() -> None:
    ct, sr = make_instance("ct", seed=9), make_instance("sr", seed=9)
    assert ct.PatientName == sr.PatientName
    assert ct.StudyInstanceUID == sr.StudyInstanceUID
    assert ct.SeriesInstanceUID != sr.SeriesInstanceUID


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_has_its_modules(kind: str) -> None:
    spec = KINDS[kind]
    ds = small(kind, seed=3)
    assert ds.SOPClassUID == spec.sop_class_uid
    assert ds.Modality == spec.modality
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                    "SeriesInstanceUID", "SeriesNumber", "Manufacturer", "InstanceNumber"):
        assert keyword in ds, keyword
    assert re.fullmatch(r"\d{8}", ds.PatientBirthDate)
    assert "^" in str(ds.PatientName)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert uid_problem(str(ds[keyword].value)) is None
    if spec.has_pixels:
        frame = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
        frames = int(ds.get("NumberOfFrames", 1))
        assert len(ds.PixelData) == frame * frames + (frame * frames) % 2
        assert ds.HighBit == ds.BitsStored - 1
    else:
        assert "PixelData" not in ds
    # nothing may follow Pixel Data (the streaming encoder relies on it)
    assert max(ds.keys()) <= 0x7FE00010


def test_sr_content_tree_and_undefined_lengths() -> None:
    ds = make_instance("sr", seed=1)
    assert ds.ValueType == "CONTAINER"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    sections = ds.ContentSequence
    assert [s.ConceptNameCodeSequence[0].CodeMeaning for s in sections] == [
        "Findings", "Impressions"]
    assert all(item.ValueType == "TEXT" and item.TextValue for s in sections
               for item in s.ContentSequence)
    assert ds["ContentSequence"].is_undefined_length


def test_pdf_is_a_valid_little_pdf() -> None:
    ds = make_instance("pdf", seed=2)
    doc = bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength]
    assert doc.startswith(b"%PDF-1.4") and doc.endswith(b"%%EOF\n")
    assert len(ds.EncapsulatedDocument) % 2 == 0
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    # every xref offset points at its "n 0 obj" line, and startxref at "xref"
    start = int(doc.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert doc[start:start + 4] == b"xref"
    entries = doc[start:].split(b"\n")[3:3 + 5]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry[:10])
        assert doc[offset:].startswith(f"{number} 0 obj".encode())
    assert str(ds.PatientID).encode() in doc


def test_tiny_pdf_escapes_parentheses() -> None:
    doc = tiny_pdf("a (b)", ["back\\slash"])
    assert b"(a \\(b\\)) Tj" in doc and b"(back\\\\slash) Tj" in doc


def test_sizes_are_in_the_stated_ballpark() -> None:
    tiny = len(encode_dataset(make_instance("tiny"), IMPLICIT_VR_LE))
    assert 1600 <= tiny <= 2600
    assert 512 * 1024 < len(encode_dataset(make_instance("ct"), IMPLICIT_VR_LE)) < 540_000
    t = time.perf_counter()
    cr = make_instance("cr")
    assert time.perf_counter() - t < 1.0  # a 10 MB CR is cheap to make
    assert 9_500_000 < len(encode_dataset(cr, IMPLICIT_VR_LE)) < 11_000_000
    del cr
    assert 45e6 < KINDS["mg"].pixel_bytes < 55e6
    assert 4e6 < KINDS["us"].pixel_bytes < 8e6 and KINDS["us"].frames > 1


def test_mammogram_is_about_50_mb() -> None:
    mg = make_instance("mg", seed=1)
    assert 45e6 < len(mg.PixelData) < 55e6
    assert mg.PresentationIntentType == "FOR PRESENTATION"
    assert mg.ViewCodeSequence[0].CodeMeaning == "cranio-caudal"


def test_pixel_pattern_is_within_bits_stored_and_seeded() -> None:
    a, b = make_instance("mr", seed=1), make_instance("mr", seed=2)
    words = memoryview(a.PixelData).cast("H")
    assert max(words) < 1 << a.BitsStored
    assert a.PixelData != b.PixelData


def test_geometry_overrides_and_bad_values() -> None:
    ds = make_instance("ct", rows=4, columns=6, frames=3)
    assert (ds.Rows, ds.Columns, ds.NumberOfFrames) == (4, 6, 3)
    assert len(ds.PixelData) == 4 * 6 * 3 * 2
    with pytest.raises(ValueError):
        make_instance("ct", rows=0)
    with pytest.raises(ValueError):
        make_instance("xray")
    assert "PixelData" not in build_instance("ct", with_pixels=False)


def test_frames_for_pixel_bytes() -> None:
    frame = KINDS["ct"].frame_bytes()
    assert frames_for_pixel_bytes("ct", 10 * frame + 5) == 10
    assert frames_for_pixel_bytes("ct", 1) == 1


def test_uid_helpers() -> None:
    uid = derive_uid(1, "x")
    assert uid.startswith("2.25.") and uid_problem(uid) is None and len(uid) <= 44
    assert derive_uid(1, "x") == uid != derive_uid(2, "x")
    for length in (10, 44, 64):
        for n in (0, 1, 12345):
            u = uid_of_length(n, length)
            assert len(u) == length and uid_problem(u) is None
    assert uid_of_length(1, 30) != uid_of_length(2, 30)
    with pytest.raises(ValueError):
        uid_of_length(0, 65)
    with pytest.raises(ValueError):
        uid_of_length(100, 7)


def test_an_unknown_kind_is_named_with_the_known_ones() -> None:
    # A typo in a scenario's `kind:` reaches the report as this message, not "KeyError: 'ctt'".
    for error in (KeyError, ValueError):
        with pytest.raises(error) as caught:
            KINDS["ctt"]
        assert str(caught.value) == ("unknown data set kind 'ctt'; kinds: "
                                     + ", ".join(sorted(KINDS)))
    with pytest.raises(ValueError, match="unknown kind 'ctt'"):
        make_instance("ctt")
