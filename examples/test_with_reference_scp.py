"""Example: the reference SCP as a test double for code that sends DICOM.

``reference_scp`` is a conformant Storage SCP on a free loopback port; parametrize it
indirectly with a behaviour profile (a mapping, a ``Profile`` or a YAML file) to make it
answer with failures, drop connections or misbehave in one of its named faults
(``dicom-harness serve --list-faults``). Here the "code under test" is a tiny sender that
uses pynetdicom, as an application would.
"""

from __future__ import annotations

from typing import Any

import pytest

pynetdicom = pytest.importorskip("pynetdicom")


def send(address: tuple[str, int], ae_title: str, datasets: list[Any]) -> list[int]:
    """The application code under test: send data sets, return the statuses (-1: none)."""
    from pynetdicom import AE

    ae = AE(ae_title="MY-SENDER")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID)
    assoc = ae.associate(*address, ae_title=ae_title)
    if not assoc.is_established:
        return [-1] * len(datasets)
    statuses = []
    for ds in datasets:
        status = assoc.send_c_store(ds)
        statuses.append(int(status.Status) if "Status" in status else -1)
    assoc.release()
    return statuses


def test_sender_delivers_everything(reference_scp: Any, dataset_factory: Any) -> None:
    batch = [dataset_factory("tiny") for _ in range(3)]
    assert send(reference_scp.address, reference_scp.ae_title, batch) == [0, 0, 0]
    records = reference_scp.wait_for(3)  # what the reference SCP saw, in order
    assert [r.sop_instance for r in records] == [str(ds.SOPInstanceUID) for ds in batch]
    assert all(r.path is not None and r.path.is_file() for r in records)


@pytest.mark.parametrize("reference_scp", [{"status_rules": [{"status": 0xA700}]}],
                         indirect=True, ids=["out-of-resources"])
def test_sender_sees_failures(reference_scp: Any, dataset_factory: Any) -> None:
    assert send(reference_scp.address, reference_scp.ae_title, [dataset_factory()]) == [0xA700]


def test_two_scps_at_once(reference_scp_factory: Any, scu_factory: Any,
                          dataset_factory: Any) -> None:
    plain = reference_scp_factory()
    picky = reference_scp_factory(ae_title="PICKY", require_called_aet=True)
    assert scu_factory(plain).store(dataset_factory()).status == 0x0000
    refused = scu_factory(picky, associate=False).associate(called_aet="SOMEONE-ELSE")
    assert refused.kind == "rejected"
