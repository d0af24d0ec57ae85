"""Streaming, atomic storage of the reference SCP: names, File Meta, temporaries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import dcmread

from harness.scp import storage
from harness.scp.storage import IncomingFile, file_meta, leftover_parts, safe_name
from harness.wire.constants import EXPLICIT_VR_BE, IMPLICIT_VR_LE
from harness.wire.uid import is_valid_uid

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize("uid", ["1.2.3", "1.2.840.10008.5.1.4.1.1.2.1234567890", "0", "2.25.1"])
def test_valid_uid_names_the_file(uid: str) -> None:
    assert safe_name(uid) == f"{uid}.dcm"


@pytest.mark.parametrize("uid", ["../../x", "/etc/passwd", "1.2.3/../../evil", "..", ".", "",
                                 "1.2.3\x00/x", "C:\\\\x", "1" * 65, "1.2.3 ", "-rf"])
def test_hostile_uid_gets_a_hashed_name(uid: str) -> None:
    name = safe_name(uid)
    assert name.startswith("invalid-uid-") and name.endswith(".dcm")
    assert "/" not in name and "\\" not in name and ".." not in name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"[0-9./]{1,70}", fullmatch=True))
def test_no_uid_leaves_the_directory(uid: str) -> None:
    root = Path("/srv/store")
    name = safe_name(uid)
    target = (root / name).resolve()
    assert target.parent == root
    assert not name.startswith(".")  # never hidden, never a temporary's name
    assert os.sep not in name and "\x00" not in name
    assert name.endswith(".dcm")
    assert (name == f"{uid}.dcm") == is_valid_uid(uid)


def test_file_meta_is_part10(tmp_path: Path) -> None:
    meta = file_meta(CT, "1.2.3.4", EXPLICIT_VR_BE, "SOURCE-AE")
    assert meta[:128] == bytes(128) and meta[128:132] == b"DICM"
    path = tmp_path / "x.dcm"
    path.write_bytes(meta)
    ds = dcmread(path, force=True)
    fm = ds.file_meta
    assert fm.MediaStorageSOPClassUID == CT
    assert fm.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert fm.TransferSyntaxUID == EXPLICIT_VR_BE
    assert str(fm.SourceApplicationEntityTitle).strip() == "SOURCE-AE"
    assert fm.FileMetaInformationGroupLength == len(meta) - 132 - 12


def test_file_meta_without_source_ae_and_long_title() -> None:
    assert b"\x02\x00\x16\x00" not in file_meta(CT, "1.2.3", IMPLICIT_VR_LE, None)
    meta = file_meta(CT, "1.2.3", IMPLICIT_VR_LE, "A" * 40)
    assert b"A" * 16 in meta and b"A" * 17 not in meta


def test_incoming_file_commit_and_discard(tmp_path: Path) -> None:
    f = IncomingFile(tmp_path, CT, "1.2.3", IMPLICIT_VR_LE, "SCU")
    f.write(memoryview(b"\x08\x00\x18\x00\x06\x00\x00\x001.2.3\x00"))
    assert leftover_parts(tmp_path) == [f.path]
    assert f.path.name.startswith(".") and f.path.parent == tmp_path
    target = f.commit("1.2.3")
    assert target == tmp_path / "1.2.3.dcm" == f.final_path
    assert leftover_parts(tmp_path) == []
    assert f.received == 14
    assert dcmread(target).SOPInstanceUID == "1.2.3"

    g = IncomingFile(tmp_path, CT, "1.2.4", IMPLICIT_VR_LE, "SCU")
    g.write(b"\x00\x00")
    g.discard()
    g.discard()  # twice is harmless
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.2.3.dcm"]


def test_keep_first_does_not_overwrite(tmp_path: Path) -> None:
    a = IncomingFile(tmp_path, CT, "1.2.3", IMPLICIT_VR_LE, None)
    a.write(b"\x01\x00")
    a.commit("1.2.3")
    b = IncomingFile(tmp_path, CT, "1.2.3", IMPLICIT_VR_LE, None)
    b.write(b"\x02\x00")
    assert b.commit("1.2.3", overwrite=False) is None
    assert (tmp_path / "1.2.3.dcm").read_bytes().endswith(b"\x01\x00")
    assert leftover_parts(tmp_path) == []


def test_fsync_commit(tmp_path: Path) -> None:
    f = IncomingFile(tmp_path, CT, "1.2.5", IMPLICIT_VR_LE, None, fsync=True)
    f.write(b"\x00\x00")
    assert f.commit("1.2.5") == tmp_path / "1.2.5.dcm"


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=3 * (1 << 19)), min_size=1, max_size=8),
       chunk=st.sampled_from([64, 4096, 1 << 20]))
def test_written_bytes_survive_any_fragment_sizes(tmp_path_factory: pytest.TempPathFactory,
                                                  sizes: list[int], chunk: int) -> None:
    """Fragments smaller than, across and larger than the reused write buffer, for two files
    open at once (each must have its own buffer), land on disk in order and intact."""
    directory = tmp_path_factory.mktemp("frag")
    old = storage._WRITE_CHUNK
    storage._WRITE_CHUNK = chunk
    storage._POOL.clear()  # buffers of another size must not be handed out
    try:
        files = [IncomingFile(directory, CT, f"1.2.{i}", IMPLICIT_VR_LE, None) for i in (1, 2)]
        sent: list[bytearray] = [bytearray(), bytearray()]
        for n, size in enumerate(sizes):
            fragment = bytes([n % 251 + 1]) * size
            which = n % 2
            files[which].write(memoryview(fragment))
            sent[which] += fragment
        paths = [f.commit(f"1.2.{i}") for f, i in zip(files, (1, 2), strict=True)]
    finally:
        storage._WRITE_CHUNK = old
        storage._POOL.clear()
    for f, path, data in zip(files, paths, sent, strict=True):
        assert path is not None
        raw = path.read_bytes()
        assert raw[f.meta_length:] == data
        assert raw[:f.meta_length] == file_meta(CT, path.stem, IMPLICIT_VR_LE, None)


def test_write_buffers_are_reused_not_shared(tmp_path: Path) -> None:
    storage._POOL.clear()
    a = IncomingFile(tmp_path, CT, "1.2.7", IMPLICIT_VR_LE, None)
    b = IncomingFile(tmp_path, CT, "1.2.8", IMPLICIT_VR_LE, None)
    assert a._buf is not b._buf  # open at the same time: one buffer each
    first = a._buf
    a.write(b"\x01\x00")
    a.commit("1.2.7")
    c = IncomingFile(tmp_path, CT, "1.2.9", IMPLICIT_VR_LE, None)
    assert c._buf is first  # a finished file's buffer goes to the next one
    b.discard()
    c.discard()
    assert len(storage._POOL) == 2
    assert (tmp_path / "1.2.7.dcm").read_bytes().endswith(b"\x01\x00")
