"""Stored-data checks (harness/engine/storage.py): finding stored files by what they contain,
comparing them with what was sent, and spotting writes outside the storage directory."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from harness.datasets import encode_dataset, encode_file, make_instance
from harness.engine.storage import StorageInspector, compare, outside_writes
from harness.wire.constants import EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE


@pytest.fixture()
def instance() -> Dataset:
    return make_instance("tiny", seed=7)


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


def differences(stored: Path, sent: bytes, ts: str,
                allowed: set[str] | None = None) -> list[str]:
    """compare() on a comparable pair: a list (None would mean 'not comparable')."""
    problems = compare(stored, sent, ts, allowed)
    assert problems is not None
    return problems


def put(path: Path, ds: Dataset, ts: str = EXPLICIT_VR_LE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_file(ds, ts))
    return path


# --- StorageInspector --------------------------------------------------------------------------


def test_finds_files_by_uid_whatever_their_name(store: Path, instance: Dataset) -> None:
    other = make_instance("tiny", seed=8)
    a = put(store / "whatever.bin", instance)
    b = put(store / "deep" / "er" / "no-extension", other, IMPLICIT_VR_LE)
    c = put(store / "1.dcm", instance, EXPLICIT_VR_BE)  # a second copy, another encoding
    inspector = StorageInspector(store)
    assert {f.path for f in inspector.find(instance.SOPInstanceUID)} == {a, c}
    assert [f.path for f in inspector.find(other.SOPInstanceUID)] == [b]
    assert inspector.find("1.2.3.4.5") == []
    files = inspector.scan()
    assert len(files) == 3 and all(f.readable and f.size > 0 for f in files)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unreadable_files_are_indexed_not_raised(store: Path, instance: Dataset) -> None:
    good = put(store / "good.dcm", instance)
    (store / "garbage").write_bytes(os.urandom(300))
    (store / "empty").write_bytes(b"")
    (store / "half.dcm").write_bytes(good.read_bytes()[:200])
    (store / "preamble-only").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    (store / "dangling").symlink_to(store / "does-not-exist")
    files = {f.path.name: f for f in StorageInspector(store).scan()}
    assert "dangling" not in files  # cannot stat: nothing to index
    assert files["good.dcm"].readable
    for name in ("garbage", "empty", "half.dcm", "preamble-only"):
        assert files[name].sop_instance_uid is None, name
    assert not files["garbage"].readable


def test_uid_missing_from_a_readable_file(store: Path, instance: Dataset) -> None:
    # (0008,0018) renamed to (0008,0019): a valid file without a SOP Instance UID
    data = encode_file(instance, EXPLICIT_VR_LE)
    at = data.rindex(b"\x08\x00\x18\x00UI")
    (store / "no-uid").write_bytes(data[:at] + b"\x08\x00\x19\x00UI" + data[at + 6:])
    [found] = StorageInspector(store).scan()
    assert found.readable and found.sop_instance_uid is None


def test_backslash_uid_reads_back_whole(store: Path, instance: Dataset) -> None:
    # pydicom splits a UI value at "\\"; the index must give back the UID as sent
    instance.SOPInstanceUID = "1.2.3.4.5"
    data = encode_file(instance, EXPLICIT_VR_LE).replace(b"1.2.3.4.5", b"1.2.3\\4.5")
    (store / "odd").write_bytes(data)
    inspector = StorageInspector(store)
    assert [f.path.name for f in inspector.find("1.2.3\\4.5")] == ["odd"]
    assert inspector.find("1.2.3") == [] and inspector.find("4.5") == []


def test_hostile_uid_reads_back_and_compares_without_pydicom_warnings(store: Path,
                                                        instance: Dataset) -> None:
    # A lenient target stores the path-like UID a security scenario sent; reading it back
    # must give the UID, not a screen of pydicom "Invalid value for VR UI" warnings.
    import warnings

    instance.SOPInstanceUID = "1.2.3.4.5"
    hostile = b"../../xyz"  # as long as "1.2.3.4.5": the element lengths stay right
    data = encode_file(instance, EXPLICIT_VR_LE).replace(b"1.2.3.4.5", hostile)
    (store / "evil").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = StorageInspector(store).scan()
        sent = encode_dataset(instance, EXPLICIT_VR_LE).replace(b"1.2.3.4.5", hostile)
        problems = compare(store / "evil", sent, EXPLICIT_VR_LE)
    assert [(f.path.name, f.sop_instance_uid) for f in found] == [("evil", "../../xyz")]
    assert problems == []
    assert [str(w.message) for w in caught] == []


def test_index_follows_changes(store: Path, instance: Dataset) -> None:
    inspector = StorageInspector(store)
    assert inspector.scan() == []
    path = put(store / "x", instance)
    assert [f.sop_instance_uid for f in inspector.scan()] == [instance.SOPInstanceUID]
    other = make_instance("tiny", seed=99)
    other.PatientName = "A^Much^Longer^Name^So^The^Size^Changes"
    put(path, other)
    assert [f.sop_instance_uid for f in inspector.scan()] == [other.SOPInstanceUID]
    path.unlink()
    assert inspector.scan() == []


def test_wait_for_and_new_since(store: Path, instance: Dataset) -> None:
    inspector = StorageInspector(store)
    start = time.monotonic()
    assert inspector.wait_for(instance.SOPInstanceUID, timeout=0.2) == []
    assert 0.15 <= time.monotonic() - start < 2.0
    before = time.time()
    path = put(store / "new", instance)
    assert [f.path for f in inspector.wait_for(instance.SOPInstanceUID, 1.0)] == [path]
    assert [f.path for f in inspector.new_since(before)] == [path]
    os.utime(path, (before - 3600, before - 3600))
    assert inspector.new_since(before) == []


# --- compare ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE])
def test_compare_equal_across_encodings(store: Path, instance: Dataset, ts: str) -> None:
    sent = encode_dataset(instance, ts)
    stored = put(store / "x", instance, EXPLICIT_VR_LE if ts != EXPLICIT_VR_LE else ts)
    assert compare(stored, sent, ts) == []


def test_compare_reports_differences(store: Path, instance: Dataset) -> None:
    sent = encode_dataset(instance, EXPLICIT_VR_LE)
    changed = copy.deepcopy(instance)
    changed.PatientName = "Someone^Else"
    del changed.StudyDate
    problems = differences(put(store / "x", changed), sent, EXPLICIT_VR_LE)
    assert len(problems) == 2
    assert any("(0010,0010)" in p and "Someone^Else" in p for p in problems)
    assert any("(0008,0020)" in p for p in problems)


def test_compare_allows_declared_coercions(store: Path, instance: Dataset) -> None:
    sent = encode_dataset(instance, EXPLICIT_VR_LE)
    changed = copy.deepcopy(instance)
    changed.PatientName = "Coerced^Name"
    stored = put(store / "x", changed)
    assert compare(stored, sent, EXPLICIT_VR_LE, {"PatientName"}) == []
    assert compare(stored, sent, EXPLICIT_VR_LE, {"PatientID"})  # not that one


def test_compare_pixel_data(store: Path, instance: Dataset) -> None:
    sent = encode_dataset(instance, EXPLICIT_VR_LE)
    changed = copy.deepcopy(instance)
    pixels = bytearray(changed.PixelData)
    pixels[-1] ^= 0xFF
    changed.PixelData = bytes(pixels)
    problems = differences(put(store / "x", changed), sent, EXPLICIT_VR_LE)
    assert len(problems) == 1 and "(7FE0,0010)" in problems[0]


def test_compare_undecodable_stored_file(store: Path, instance: Dataset) -> None:
    sent = encode_dataset(instance, EXPLICIT_VR_LE)
    bad = store / "bad"
    bad.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(64))
    [problem] = differences(bad, sent, EXPLICIT_VR_LE)
    assert problem.startswith("stored file cannot be read")
    (store / "nodicm").write_bytes(b"not dicom at all")
    assert compare(store / "nodicm", sent, EXPLICIT_VR_LE)


def test_compare_undecodable_sent_bytes_compares_bytes(store: Path) -> None:
    garbage = b"\xbe\xef" * 50 + b"\x01\x02\x03"
    kept = store / "kept"
    kept.write_bytes(b"\0" * 128 + b"DICM" + b"meta" + garbage)
    assert compare(kept, garbage, EXPLICIT_VR_LE) == []
    # stored in another shape: a malformed data set cannot be compared element by element
    cut = store / "cut"
    cut.write_bytes(b"\0" * 128 + b"DICM" + garbage[:-5])
    assert compare(cut, garbage, EXPLICIT_VR_LE) is None


# --- outside_writes ---------------------------------------------------------------------------


def test_outside_write_next_to_the_storage_dir(store: Path) -> None:
    since = time.time()
    uid = "1.2.3/../../evil-k3q"
    escaped = store.parent / "CT.evil-k3q"
    escaped.write_bytes(b"x")
    assert outside_writes(store, since, [uid]) == [escaped]
    # a backslash is a separator too (a Windows-minded SCP)
    assert outside_writes(store, since, ["1.2.3\\..\\..\\evil-k3q"]) == [escaped]


def test_outside_write_where_the_uid_points(store: Path) -> None:
    since = time.time()
    target = store.parent / "plain-x9"
    target.write_bytes(b"x")
    assert target.resolve() in outside_writes(store, since, ["../plain-x9"])


def test_outside_writes_ignores_inside_old_and_plain(store: Path) -> None:
    since = time.time()
    (store / "CT.evil-m2").write_bytes(b"inside is fine")
    assert outside_writes(store, since, ["../../evil-m2"]) == []
    old = store.parent / "evil-m3"
    old.write_bytes(b"was there before")
    os.utime(old, (since - 3600, since - 3600))
    assert outside_writes(store, since, ["../evil-m3"]) == []
    # a UID without a separator cannot name another directory, whatever exists next door
    (store.parent / "1.2.3.evil-m4").write_bytes(b"x")
    assert outside_writes(store, since, ["1.2.3.evil-m4", "evil-m4"]) == []
    assert outside_writes(store, since, []) == []
