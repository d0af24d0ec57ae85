"""Example: test your own Storage SCP with dicom-harness's pytest fixtures.

"My SCP" here is a small pynetdicom application entity that writes every instance it
receives to a folder. Replace the ``my_scp`` fixture with whatever starts yours (a process,
a container, a service of your application); the tests stay the same.

Run it with ``pytest examples/test_my_scp.py`` (add ``-p harness.pytest_plugin`` if the
plugin is not installed through its entry point).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.engine.context import Target
from harness.pytest_plugin import scenario_params

pynetdicom = pytest.importorskip("pynetdicom")

MY_AE_TITLE = "MY-SCP"

# A few scenarios of the conformance suite, chosen with the same -k syntax as
# `dicom-harness run -k`. Each becomes one test of this module.
SELECTED = "assoc.baseline or store.small-max-pdu or store.echo or response.fields-success"


@dataclass
class MySCP:
    host: str
    port: int
    storage_dir: Path
    received: list[str]  # SOP Instance UIDs, in arrival order


@pytest.fixture(scope="module")
def my_scp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySCP]:
    """Start the SCP under test on a free loopback port; stop it after the module."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    storage = tmp_path_factory.mktemp("my-scp")
    received: list[str] = []

    def handle_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(storage / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        received.append(str(ds.SOPInstanceUID))
        return 0x0000

    ae = AE(ae_title=MY_AE_TITLE)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, handle_store)])
    assert server is not None  # non-blocking: the running server
    host, port = server.server_address[:2]
    try:
        yield MySCP(host, port, storage, received)
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def dicom_target(my_scp: MySCP) -> Target:
    """Point the plugin's ``scu`` and ``run_scenario`` fixtures at my SCP. The storage
    folder enables the stored-data checks (nothing lost, nothing altered)."""
    return Target(my_scp.host, my_scp.port, called_aet=MY_AE_TITLE,
                  storage_dir=my_scp.storage_dir)


@pytest.mark.parametrize("scenario", scenario_params(SELECTED))
def test_conformance(scenario: Any, run_scenario: Any) -> None:
    # Fails with expected/observed on a MUST, warns on a SHOULD (fails with --dicom-strict).
    run_scenario(scenario)


def test_store_is_acknowledged_and_kept(scu: Any, dataset_factory: Any, my_scp: MySCP) -> None:
    ds = dataset_factory("tiny")
    outcome = scu.store(ds)
    assert outcome.kind == "response", outcome.describe()
    assert outcome.status == 0x0000, outcome.describe()
    assert str(ds.SOPInstanceUID) in my_scp.received
    assert (my_scp.storage_dir / f"{ds.SOPInstanceUID}.dcm").is_file()


def test_every_kind_of_instance(scu: Any, dataset_factory: Any) -> None:
    for kind in ("mr", "sc", "sr", "pdf"):
        outcome = scu.store(dataset_factory(kind))
        assert outcome.status == 0x0000, f"{kind}: {outcome.describe()}"


def test_echo(scu: Any) -> None:
    assert scu.echo().status == 0x0000
