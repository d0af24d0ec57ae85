"""Fixtures for users' own tests: the target under test (``dicom_target``), reference
SCPs with any profile (``reference_scp``, ``reference_scp_factory``), synchronous simulated
SCUs (``scu``, ``scu_factory``; the SCU itself is :class:`harness.scu.sync_client.SyncSCU`),
synthetic data sets (``dataset_factory``) and single scenarios with their verdict
(``run_scenario``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest

from harness.net.address import parse_address
from harness.pytest_plugin.session import dicom_session
from harness.pytest_plugin.verdict import apply_verdict
from harness.wire.constants import DEFAULT_CALLING_AE, EXPLICIT_VR_LE

# Imported where used, as in session.py: the plugin loads in every pytest run.
if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from harness.engine.context import Target
    from harness.engine.embedded import EmbeddedSCP
    from harness.engine.model import Scenario
    from harness.scp.profile import Profile
    from harness.scp.server import StoreRecord
    from harness.scu.sync_client import SyncSCU
    from harness.wire.items import PresentationContextRQ


# --- fixtures: the target, reference SCPs ---------------------------------------------------


@pytest.fixture(scope="session")
def dicom_target(pytestconfig: pytest.Config) -> Target:
    """The SCP under test: ``--dicom-target``, else the embedded reference SCP (started on
    first use). Override this fixture to point ``scu``/``run_scenario`` at your own SCP."""
    return dicom_session(pytestconfig).target()


@dataclass(slots=True)
class ReferenceSCP:
    """A running reference SCP: where it listens, what it stored, its profile."""

    embedded: EmbeddedSCP
    profile: Profile

    @property
    def host(self) -> str:
        return self.embedded.host

    @property
    def port(self) -> int:
        return self.embedded.port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def ae_title(self) -> str:
        return self.profile.ae_title

    @property
    def storage_dir(self) -> Path:
        return self.embedded.storage_dir

    @property
    def records(self) -> list[StoreRecord]:
        """Every C-STORE it answered so far, in order (status, SOP Instance UID, file)."""
        return list(self.embedded.scp.records) if self.embedded.scp is not None else []

    def wait_for(self, count: int, timeout: float = 5.0) -> list[StoreRecord]:
        """The records once there are at least ``count`` (the SCP logs a store right after
        answering it, on its own thread), or whatever there is after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.records

    @property
    def target(self) -> Target:
        """This SCP as a :class:`Target` (its own behaviour declared)."""
        from harness.engine.context import Target
        from harness.engine.embedded import declared_from_profile

        return Target(self.host, self.port, self.ae_title, DEFAULT_CALLING_AE, 10.0,
                      self.storage_dir, declared_from_profile(self.profile), embedded=True)

    def stop(self) -> None:
        self.embedded.stop()


ProfileSpec: TypeAlias = "Profile | dict[str, Any] | str | Path | None"


def as_profile(spec: ProfileSpec, **overrides: Any) -> Profile:
    """A Profile from a Profile, a mapping, a YAML file path or None (conformant)."""
    from harness.scp.profile import Profile

    if isinstance(spec, Profile):
        profile = spec
    elif isinstance(spec, dict):
        profile = Profile.from_mapping(spec)
    elif isinstance(spec, str | Path):
        profile = Profile.load(spec)
    else:
        profile = Profile()
    # a copy: the caller's Profile stays as it was
    return dataclasses.replace(profile, **overrides) if overrides else profile


@pytest.fixture
def reference_scp_factory(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ReferenceSCP]]:
    """``reference_scp_factory(profile=None, **fields)`` starts a reference SCP (Profile,
    mapping or YAML path; ``fields`` override it); all are stopped after the test."""
    started: list[ReferenceSCP] = []

    def start(profile: ProfileSpec = None, **fields: Any) -> ReferenceSCP:
        from harness.engine.embedded import EmbeddedSCP

        prof = as_profile(profile, **fields)
        storage = tmp_path_factory.mktemp("reference-scp")
        scp = ReferenceSCP(EmbeddedSCP(prof, storage_dir=storage).start(), prof)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def reference_scp(request: pytest.FixtureRequest,
                  reference_scp_factory: Callable[..., ReferenceSCP]) -> ReferenceSCP:
    """A conformant reference SCP; parametrize it indirectly with a Profile, a mapping or a
    YAML path for another behaviour."""
    return reference_scp_factory(getattr(request, "param", None))


# --- fixtures: a synchronous simulated SCU ------------------------------------------------


TargetSpec: TypeAlias = "Target | ReferenceSCP | tuple[str, int] | str"


def target_of(spec: TargetSpec) -> Target:
    """A :class:`Target` from a Target, a ReferenceSCP, ``(host, port)`` or ``HOST:PORT``
    (the last two with the default AE titles)."""
    from harness.engine.context import Target

    if isinstance(spec, Target):
        return spec
    if isinstance(spec, ReferenceSCP):
        return spec.target
    host, port = parse_address(spec) if isinstance(spec, str) else spec
    return Target(host, port)


@pytest.fixture
def scu_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., SyncSCU]]:
    """``scu_factory(target=None, *, associate=True, contexts=None, called_aet=None,
    timeout=None)``: a :class:`SyncSCU` connected (and associated) to ``target`` (a Target,
    ReferenceSCP, ``(host, port)`` or ``HOST:PORT``; default ``dicom_target``)."""
    made: list[SyncSCU] = []

    def connect(target: TargetSpec | None = None, *, associate: bool = True,
                contexts: list[PresentationContextRQ] | None = None,
                called_aet: str | None = None, timeout: float | None = None) -> SyncSCU:
        # dicom_target only when needed: it may start the embedded SCP
        chosen: Target = target_of(target) if target is not None else \
            request.getfixturevalue("dicom_target")
        from harness.scu.sync_client import SyncSCU

        scu = SyncSCU(chosen, timeout=timeout)
        made.append(scu)
        if associate:
            out = scu.associate(contexts, called_aet=called_aet)
            if out.kind != "accepted":
                raise AssertionError(f"association with {chosen.host}:{chosen.port} not "
                                     f"accepted: {out.describe()}")
        return scu

    yield connect
    for scu in made:
        scu.close()


@pytest.fixture
def scu(scu_factory: Callable[..., SyncSCU]) -> SyncSCU:
    """A simulated SCU associated with ``dicom_target`` (released after the test)."""
    return scu_factory()


# --- fixtures: data sets, one scenario ----------------------------------------------------


class DatasetFactory:
    """``dataset_factory(kind="tiny", seed=None, index=None, **geometry)`` -> a synthetic
    pydicom Dataset with File Meta Information (so other toolkits can send it too); each
    call without ``index`` gives a new instance (new UIDs)."""

    def __init__(self, seed: int = 0) -> None:
        from harness.datasets import KINDS

        self.seed = seed
        self.kinds = tuple(KINDS)
        self._index = itertools.count()

    def __call__(self, kind: str = "tiny", *, seed: int | None = None, index: int | None = None,
                 transfer_syntax: str = EXPLICIT_VR_LE, **geometry: Any) -> Dataset:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import UID

        from harness.datasets import make_instance

        ds = make_instance(kind, seed=self.seed if seed is None else seed,
                           index=next(self._index) if index is None else index, **geometry)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = UID(transfer_syntax)
        ds.file_meta = meta
        return ds

    @staticmethod
    def encode(ds: Dataset, transfer_syntax: str = EXPLICIT_VR_LE) -> bytes:
        """The data set as sent in P-DATA (no File Meta Information)."""
        from harness.datasets import encode_dataset

        return encode_dataset(ds, transfer_syntax)

    @staticmethod
    def encode_file(ds: Dataset, transfer_syntax: str = EXPLICIT_VR_LE) -> bytes:
        """A DICOM Part 10 file (preamble, File Meta Information, data set)."""
        from harness.datasets import encode_file

        return encode_file(ds, transfer_syntax)


@pytest.fixture
def dataset_factory(request: pytest.FixtureRequest) -> DatasetFactory:
    """Synthetic instances; the seed derives from the test's node id, so two tests never
    send the same SOP Instance UIDs and a rerun sends the same ones."""
    digest = hashlib.sha256(request.node.nodeid.encode("utf-8")).digest()
    return DatasetFactory(seed=int.from_bytes(digest[:4], "big"))


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest,
                 pytestconfig: pytest.Config) -> Callable[..., dict[str, Any]]:
    """``run_scenario(scenario_or_id, target=None, *, strict=None, declared=None,
    storage_dir=None, suite=None)``: run one scenario against ``target`` (default
    ``dicom_target``) and give the test the scenario's verdict, like the collected items.
    Returns the result dict (outcome, expected, observed, checks, trace)."""
    import asyncio

    from harness.engine.loader import load_suite
    from harness.engine.runner import Runner

    settings = dicom_session(pytestconfig).settings
    suites: dict[str | None, list[Scenario]] = {}

    def run(scenario: Scenario | str, target: TargetSpec | None = None, *,
            strict: bool | None = None, declared: dict[str, Any] | None = None,
            storage_dir: str | Path | None = None, suite: str | None = None) -> dict[str, Any]:
        if suite not in suites:
            suites[suite] = load_suite(suite)
        known = suites[suite]
        if isinstance(scenario, str):
            found = [sc for sc in known if sc.id == scenario]
            if not found:
                raise LookupError(f"no scenario {scenario!r} in suite {suite or 'all'}")
            scenario = found[0]
        # the scenario's position in its suite keeps synthetic UIDs the same as in a run
        index = next((i for i, sc in enumerate(known) if sc.id == scenario.id), 0)
        chosen: Target = target_of(target) if target is not None else \
            request.getfixturevalue("dicom_target")
        if declared is not None or storage_dir is not None:
            # a copy with every other field kept (TLS, pid): the session's target stays as is
            chosen = dataclasses.replace(
                chosen, declared={**chosen.declared, **(declared or {})},
                storage_dir=Path(storage_dir) if storage_dir is not None else chosen.storage_dir)
        runner = Runner(chosen)
        result = asyncio.run(runner.run_one(scenario, index))
        apply_verdict(request.node, result,
                      strict=settings.strict if strict is None else strict)
        return result

    return run
