"""Workloads of the bench: encoding once, framing, UID slots and patching, folders, files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from harness.bench.workload import (
    TEMPLATE_UID,
    UID_LENGTH,
    UID_SLOT,
    UidSource,
    WorkloadError,
    build_workload,
    close_workload,
    new_nonce,
    plan_message,
    resolve_transfer_syntax,
    write_part10_files,
)
from harness.datasets import decode_dataset, decode_file, encode_file, make_instance
from harness.wire.constants import EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE
from harness.wire.dimse import CStoreRQ, decode_command, encode_command
from harness.wire.fragment import fragment
from harness.wire.uid import is_valid_uid


def _reference_bytes(sop_class: str, data: bytes, send_pdu: int, uid: str = TEMPLATE_UID,
                     msg_id: int = 1) -> bytes:
    command = encode_command(CStoreRQ(msg_id, sop_class, uid, 0, 0x0000))
    return b"".join(p.encode() for p in fragment(1, command, data, send_pdu))


def _plan_bytes(plan_head: bytes, tail: list[memoryview]) -> bytes:
    return plan_head + b"".join(bytes(t) for t in tail)


@pytest.mark.parametrize("kind", ["tiny", "mr", "ct"])
@pytest.mark.parametrize("send_pdu", [0, 4096, 16384, 65536])
def test_plan_is_the_standard_fragmentation(kind: str, send_pdu: int) -> None:
    wl = build_workload(kind)
    t = wl.templates[0]
    plan = plan_message(t, 1, send_pdu)
    got = _plan_bytes(plan.head, plan.tail)
    assert got == _reference_bytes(t.sop_class, t.data(), send_pdu)
    assert plan.wire_bytes == len(got)
    assert plan.nbytes == len(t.data())
    # every slot the sender patches holds what it should
    assert got[plan.cmd_uid_at:plan.cmd_uid_at + UID_LENGTH] == TEMPLATE_UID.encode()
    assert got[plan.data_uid_at:plan.data_uid_at + UID_LENGTH] == TEMPLATE_UID.encode()
    assert struct.unpack_from("<H", got, plan.msgid_at)[0] == 1


def test_large_instances_share_their_tail() -> None:
    wl = build_workload("ct")
    plan = plan_message(wl.templates[0], 1, 16384)
    assert len(plan.head) < 1024  # only the command and the UID slot are copied per store
    again = plan_message(wl.templates[0], 3, 16384)
    assert len(plan.tail) == len(again.tail) == 1


def test_patched_message_decodes_with_the_new_uid() -> None:
    wl = build_workload("tiny")
    t = wl.templates[0]
    plan = plan_message(t, 1, 16384)
    uid = UidSource(new_nonce(), 7).uid(12345)
    head = bytearray(plan.head)
    head[plan.cmd_uid_at:plan.cmd_uid_at + UID_LENGTH] = uid
    head[plan.data_uid_at:plan.data_uid_at + UID_LENGTH] = uid
    struct.pack_into("<H", head, plan.msgid_at, 4242)
    assert bytes(head) == _reference_bytes(t.sop_class, bytes(t.head).replace(
        TEMPLATE_UID.encode(), uid) + bytes(t.rest or b""), 16384, uid.decode(), 4242)
    # the command is a valid C-STORE-RQ naming the new instance
    command = bytes(head[12:12 + len(encode_command(CStoreRQ(1, t.sop_class, TEMPLATE_UID)))])
    decoded = decode_command(command)
    assert isinstance(decoded.message, CStoreRQ)
    assert decoded.message.affected_sop_instance_uid == uid.decode()
    assert decoded.message.message_id == 4242


@pytest.mark.parametrize("ts", [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE])
def test_template_decodes_in_each_transfer_syntax(ts: str) -> None:
    t = build_workload("tiny", ts).templates[0]
    ds = decode_dataset(t.data(), ts)
    assert ds.SOPInstanceUID == TEMPLATE_UID
    assert len(t.data()) == t.nbytes


def test_transfer_syntax_names() -> None:
    assert resolve_transfer_syntax("implicit") == IMPLICIT_VR_LE
    assert resolve_transfer_syntax(EXPLICIT_VR_BE) == EXPLICIT_VR_BE
    with pytest.raises(WorkloadError, match="deflated"):
        resolve_transfer_syntax("1.2.840.10008.1.2.1.99")
    with pytest.raises(WorkloadError):
        resolve_transfer_syntax("1.2.840.10008.1.2.4.50")


def test_unknown_workload() -> None:
    with pytest.raises(WorkloadError, match="not one of"):
        build_workload("nonsense")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 999_999), st.integers(0, 10**18 - 1))
def test_uids_are_valid_and_fit_the_slot(stream: int, seq: int) -> None:
    uid = UidSource(new_nonce(), stream).uid(seq).decode()
    assert len(uid) == UID_LENGTH and UID_SLOT == UID_LENGTH + 1
    assert is_valid_uid(uid)
    assert int(uid[5:]) < 2**128  # a 2.25 UID is a UUID as an integer (PS3.5 B.2)


def test_uids_are_unique_across_streams_and_stores() -> None:
    nonce = new_nonce()
    uids = {UidSource(nonce, s).uid(i) for s in range(5) for i in range(2000)}
    assert len(uids) == 10_000
    with pytest.raises(ValueError):
        UidSource(5, 0)


# --- folders of files ---------------------------------------------------------------------

def _file(path: Path, uid: str, ts: str, rows: int = 8) -> None:
    ds = make_instance("tiny", rows=rows, columns=rows)
    ds.SOPInstanceUID = uid
    path.write_bytes(encode_file(ds, ts))


@pytest.mark.parametrize("ts", [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE])
def test_folder_workload_respliced_uid(tmp_path: Path, ts: str) -> None:
    _file(tmp_path / "a.dcm", "1.2.3.4", ts)  # a short UID gets a full-size slot
    (tmp_path / "notes.txt").write_text("not DICOM")
    wl = build_workload(str(tmp_path))
    assert len(wl.templates) == 1 and len(wl.skipped) == 1
    t = wl.templates[0]
    assert t.transfer_syntax == ts
    ds = decode_dataset(t.data(), ts)
    assert ds.SOPInstanceUID == TEMPLATE_UID
    assert ds.PatientName  # the rest of the data set is intact
    plan = plan_message(t, 1, 16384)
    assert _plan_bytes(plan.head, plan.tail) == _reference_bytes(t.sop_class, t.data(), 16384)


def test_folder_large_file_is_mapped_and_sendfile_planned(tmp_path: Path) -> None:
    _file(tmp_path / "big.dcm", "1.2.3.4.5", EXPLICIT_VR_LE, rows=800)  # > 1 MiB
    wl = build_workload(str(tmp_path))
    t = wl.templates[0]
    try:
        assert t.mapped is not None and t.rest is None and t.file_range is not None
        single = plan_message(t, 1, 0)  # no PDU limit: one PDV, the file range by sendfile
        assert single.sendfile is not None and not single.tail
        path, offset, length = single.sendfile
        data = single.head[single.data_uid_at - t.uid_offset:] + \
            path.read_bytes()[offset:offset + length]
        assert data == t.data()
        framed = plan_message(t, 1, 16384)  # limited PDUs: views of the mapped file
        assert framed.sendfile is None
        assert _plan_bytes(framed.head, framed.tail) == _reference_bytes(
            t.sop_class, t.data(), 16384)
    finally:
        close_workload(wl)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("nothing")
    with pytest.raises(WorkloadError, match="no usable DICOM"):
        build_workload(str(tmp_path))


def test_folder_skips_deflated(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1.99")
    (tmp_path / "d.dcm").write_bytes(encode_file(ds, "1.2.840.10008.1.2.1.99"))
    with pytest.raises(WorkloadError, match="cannot be patched"):
        build_workload(str(tmp_path))


def test_part10_files_for_storescu_are_unique(tmp_path: Path) -> None:
    wl = build_workload("tiny")
    uids = UidSource(new_nonce(), 900000)
    paths = write_part10_files(wl, tmp_path, 5, uids)
    seen = set()
    for i, path in enumerate(paths):
        meta, ds = decode_file(path.read_bytes())
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == uids.uid(i).decode()
        seen.add(ds.SOPInstanceUID)
    assert len(seen) == 5
