"""StorageServiceClass of the reference SCP, without a network: the seed API and its changes.

The service class talks to an association through ``ae``, ``dimse`` and ``is_established``;
a small fake stands in for them, and real :class:`IncomingFile` objects in a temporary
directory show what is kept and what is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from harness.scp.service import (
    CStoreRequest,
    CStoreResponse,
    PresentationContext,
    StorageServiceClass,
    StoreEvent,
)
from harness.scp.storage import IncomingFile, leftover_parts
from harness.wire.constants import EXPLICIT_VR_LE
from harness.wire.status import c_store_legality, classify

CT = "1.2.840.10008.5.1.4.1.1.2"
UID = "1.2.826.0.1.3680043.8.498.4242"
CONTEXT = PresentationContext(1, CT, EXPLICIT_VR_LE)


@dataclass
class FakeDimse:
    cancel_req: dict[int, Any] = field(default_factory=dict)
    sent: list[tuple[CStoreResponse, int]] = field(default_factory=list)

    def send_msg(self, rsp: CStoreResponse, context_id: int) -> None:
        self.sent.append((rsp, context_id))


@dataclass
class FakeAE:
    store_handler: Any = None
    duplicate_policy: str = "overwrite"


@dataclass
class FakeAssoc:
    ae: FakeAE = field(default_factory=FakeAE)
    dimse: FakeDimse = field(default_factory=FakeDimse)
    is_established: bool = True


def service(handler: Any = None) -> tuple[StorageServiceClass, FakeAssoc]:
    assoc = FakeAssoc(FakeAE(handler))
    return StorageServiceClass(assoc), assoc


def rsp() -> CStoreResponse:
    return CStoreResponse(7, CT, UID)


def request(tmp_path: Path | None = None, data: bytes = b"") -> CStoreRequest:
    req = CStoreRequest(7, CT, UID, transfer_syntax=EXPLICIT_VR_LE)
    if tmp_path is not None:
        req.file = IncomingFile(tmp_path, CT, UID, EXPLICIT_VR_LE, "SCU")
        req.file.write(data)
        req.dataset_sop_instance = UID
    return req


def status_ds(**elements: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


# --- the seed API ---------------------------------------------------------------------------

def test_identity_and_properties() -> None:
    svc, assoc = service()
    assert svc.uid == "1.2.840.10008.4.2"
    assert svc.ae is assoc.ae
    assert svc.dimse is assoc.dimse
    for code in (0x0000, 0xB000, 0xB006, 0xB007, 0xA700, 0xA7FF, 0xA900, 0xC000, 0xCFFF,
                 0x0117, 0x0122, 0x0124, 0x0210, 0x0211, 0x0212):
        assert code in svc.statuses, hex(code)
    for code in (0xFF00, 0xFE00, 0xFFFF, 0x0001, 0x0110):
        assert code not in svc.statuses, hex(code)


@pytest.mark.parametrize(("code", "valid"), [
    (0x0000, True), (0xB000, True), (0xA7FF, True), (0xA9FF, True), (0xC211, True),
    (0x0122, True), (0xFF00, False), (0xFE00, False), (0xFFFF, False), (0x0001, False),
    (True, False), (-1, False), (0x10000, False),
])
def test_is_valid_status(code: int, valid: bool) -> None:
    svc, _ = service()
    assert svc.is_valid_status(code) is valid


def test_is_cancelled_is_one_shot() -> None:
    svc, assoc = service()
    assert svc.is_cancelled(3) is False
    assoc.dimse.cancel_req[3] = object()
    assoc.dimse.cancel_req[4] = object()
    assert svc.is_cancelled(3) is True
    assert svc.is_cancelled(3) is False  # consumed
    assert svc.is_cancelled(4) is True


# --- validate_status ------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0x0000, 0xB000, 0xB007, 0xA700, 0xA900, 0xC000, 0x0117, 0x0122])
def test_validate_status_int(code: int) -> None:
    svc, _ = service()
    r = rsp()
    assert svc.validate_status(code, r) is r
    assert r.Status == code
    assert (r.MessageIDBeingRespondedTo, r.AffectedSOPClassUID, r.AffectedSOPInstanceUID) == (
        7, CT, UID)


def test_validate_status_dataset_with_related_fields() -> None:
    svc, _ = service()
    r = svc.validate_status(status_ds(Status=0xB000, ErrorComment="coerced",
                                      OffendingElement=[0x00100010, 0x00100020], ErrorID=12),
                            rsp())
    assert r.Status == 0xB000
    assert r.ErrorComment == "coerced"
    assert r.OffendingElement == [0x00100010, 0x00100020]
    assert r.ErrorID == 12
    encoded = r.to_message()
    assert encoded.offending_element == [0x00100010, 0x00100020]
    assert encoded.error_comment == "coerced"


def test_validate_status_single_offending_element_becomes_a_list() -> None:
    svc, _ = service()
    r = svc.validate_status(status_ds(Status=0xA900, OffendingElement=0x00080016), rsp())
    assert r.Status == 0xA900
    assert r.OffendingElement == [0x00080016]
    assert all(isinstance(t, int) for t in r.OffendingElement)
    assert Tag(r.OffendingElement[0]) == Tag(0x00080016)


def test_status_dataset_cannot_overwrite_identifying_fields() -> None:
    svc, _ = service()
    r = svc.validate_status(status_ds(Status=0x0000, MessageIDBeingRespondedTo=999,
                                      AffectedSOPInstanceUID="1.2.3.4.5",
                                      AffectedSOPClassUID="1.2.3"), rsp())
    assert r.Status == 0x0000
    assert r.MessageIDBeingRespondedTo == 7
    assert r.AffectedSOPInstanceUID == UID
    assert r.AffectedSOPClassUID == CT


def test_dataset_without_status_is_c001() -> None:
    svc, _ = service()
    assert svc.validate_status(status_ds(ErrorComment="no status"), rsp()).Status == 0xC001


@pytest.mark.parametrize("value", [None, "0x0000", "Success", 0.0, [0], b"\x00\x00", object()])
def test_not_a_status_is_c002(value: Any) -> None:
    svc, _ = service()
    assert svc.validate_status(value, rsp()).Status == 0xC002


@pytest.mark.parametrize("value", [0xFFFF, 0x10000, -1, True, False, 0xFF00, 0xFF01, 0xFE00,
                                   0x1234, 0xD000])
def test_codes_outside_c_store_classes_are_never_sent(value: Any) -> None:
    svc, _ = service()
    assert svc.validate_status(value, rsp()).Status == 0xC002


@pytest.mark.parametrize("value", [0xFFFF, 0x10000, 0xFF00])
def test_illegal_status_inside_a_dataset_is_never_sent(value: int) -> None:
    svc, _ = service()
    ds = Dataset()
    ds.add_new(0x00000900, "UL" if value > 0xFFFF else "US", value)
    assert svc.validate_status(ds, rsp()).Status == 0xC002


@given(st.integers(min_value=-(1 << 20), max_value=1 << 20))
def test_any_int_ends_as_a_sendable_status(code: int) -> None:
    svc, _ = service()
    status = svc.validate_status(code, rsp()).Status
    assert status is not None
    assert 0 <= status <= 0xFFFF
    assert c_store_legality(status) != "illegal"
    assert status == code or status == 0xC002
    assert classify(status).value in ("Success", "Warning", "Failure")


# --- SCP(req, context): handler, response, file ------------------------------------------------

def test_scp_success_keeps_the_file_and_answers(tmp_path: Path) -> None:
    seen: list[StoreEvent] = []

    def handler(event: StoreEvent) -> int:
        seen.append(event)
        return 0x0000

    svc, assoc = service(handler)
    req = request(tmp_path, b"\x08\x00\x18\x00")
    out = svc.SCP(req, CONTEXT)
    assert out is not None and out.Status == 0x0000
    assert [(r.Status, cid) for r, cid in assoc.dimse.sent] == [(0x0000, 1)]
    assert seen and seen[0].context is CONTEXT and seen[0].request is req
    assert req.file is not None and req.file.final_path == tmp_path / f"{UID}.dcm"
    assert req.file.final_path.read_bytes().endswith(b"\x08\x00\x18\x00")
    assert leftover_parts(tmp_path) == []


def test_scp_warning_keeps_failure_drops(tmp_path: Path) -> None:
    svc, assoc = service(lambda event: status_ds(Status=0xB006, ErrorComment="discarded"))
    req = request(tmp_path, b"\x00\x00")
    svc.SCP(req, CONTEXT)
    assert (assoc.dimse.sent[0][0].Status, assoc.dimse.sent[0][0].ErrorComment) == (
        0xB006, "discarded")
    assert (tmp_path / f"{UID}.dcm").exists()

    other = tmp_path / "other"
    other.mkdir()
    svc2, assoc2 = service(lambda event: 0xA700)
    req2 = request(other, b"\x00\x00")
    svc2.SCP(req2, CONTEXT)
    assert assoc2.dimse.sent[0][0].Status == 0xA700
    assert list(other.iterdir()) == []


def test_handler_exception_is_c211_and_drops_the_file(tmp_path: Path) -> None:
    def handler(event: StoreEvent) -> int:
        raise RuntimeError("boom")

    svc, assoc = service(handler)
    req = request(tmp_path, b"\x00\x00")
    svc.SCP(req, CONTEXT)
    [(sent, cid)] = assoc.dimse.sent
    assert sent.Status == 0xC211 and cid == 1
    assert sent.ErrorComment is not None and "RuntimeError" in sent.ErrorComment
    assert sent.MessageIDBeingRespondedTo == 7 and sent.AffectedSOPInstanceUID == UID
    assert list(tmp_path.iterdir()) == []


def test_handler_returning_garbage_gets_c002_and_drops_the_file(tmp_path: Path) -> None:
    svc, assoc = service(lambda event: "OK")
    svc.SCP(request(tmp_path, b"\x00\x00"), CONTEXT)
    assert assoc.dimse.sent[0][0].Status == 0xC002
    assert list(tmp_path.iterdir()) == []


def test_handler_that_ends_the_association_gets_no_response(tmp_path: Path) -> None:
    svc, assoc = service()

    def handler(event: StoreEvent) -> int:
        assoc.is_established = False  # as if the handler aborted
        return 0x0000

    assoc.ae.store_handler = handler
    assert svc.SCP(request(tmp_path, b"\x00\x00"), CONTEXT) is None
    assert assoc.dimse.sent == []
    assert list(tmp_path.iterdir()) == []


def test_precheck_skips_the_handler(tmp_path: Path) -> None:
    called: list[int] = []

    def handler(event: StoreEvent) -> int:
        called.append(1)
        return 0

    svc, assoc = service(handler)
    req = request(tmp_path, b"\x00\x00")
    req.precheck = (0xA900, "mismatch")
    svc.SCP(req, CONTEXT)
    assert called == []
    assert (assoc.dimse.sent[0][0].Status, assoc.dimse.sent[0][0].ErrorComment) == (
        0xA900, "mismatch")
    assert list(tmp_path.iterdir()) == []


def test_handler_sees_the_dataset(tmp_path: Path) -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = UID
    ds.PatientName = "Doe^Jane"
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    names: list[str] = []

    def handler(event: StoreEvent) -> int:
        names.append(str(event.dataset.PatientName))
        assert event.request.DataSet == fp.getvalue()
        return 0

    svc, assoc = service(handler)
    svc.SCP(request(tmp_path, fp.getvalue()), CONTEXT)
    assert names == ["Doe^Jane"]
    assert assoc.dimse.sent[0][0].Status == 0


def test_keep_first_policy(tmp_path: Path) -> None:
    svc, assoc = service()
    assoc.ae.duplicate_policy = "keep-first"
    svc.SCP(request(tmp_path, b"\x01\x00"), CONTEXT)
    svc.SCP(request(tmp_path, b"\x02\x00"), CONTEXT)
    assert [r.Status for r, _ in assoc.dimse.sent] == [0, 0]
    assert (tmp_path / f"{UID}.dcm").read_bytes().endswith(b"\x01\x00")
    assert leftover_parts(tmp_path) == []


def test_unwritable_target_is_out_of_resources(tmp_path: Path) -> None:
    svc, assoc = service()
    (tmp_path / f"{UID}.dcm").mkdir()  # os.replace onto a directory fails
    svc.SCP(request(tmp_path, b"\x00\x00"), CONTEXT)
    sent = assoc.dimse.sent[0][0]
    assert 0xA700 <= (sent.Status or 0) <= 0xA7FF
    assert leftover_parts(tmp_path) == []
