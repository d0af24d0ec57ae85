"""The reference SCP with real peers on 127.0.0.1: DCMTK storescu/echoscu and pynetdicom.

What was sent is compared with what was stored, element by element and pixel by pixel, for
every native transfer syntax. The SCP runs in the test's event loop; the peers are child
processes with deadlines (killed on timeout).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
from _scp_support import (
    CT,
    MR,
    differences,
    make_ct,
    read_stored,
    run,
    run_process,
    running_scp,
    stored_files,
)

from harness.scp import Profile
from harness.scp.storage import leftover_parts
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),
]

STORESCU = "/usr/bin/storescu"
ECHOSCU = "/usr/bin/echoscu"
needs_dcmtk = pytest.mark.skipif(not (os.access(STORESCU, os.X_OK) and os.access(ECHOSCU, os.X_OK)),
                                 reason="DCMTK storescu/echoscu not installed in /usr/bin")
needs_pynetdicom = pytest.mark.skipif(shutil.which("python") is None, reason="no python")

PEER_TIMEOUT = 30.0


def instances(base: str, n: int = 3) -> list:  # type: ignore[type-arg]
    """A few different instances: small CT, larger CT, MR (different classes and sizes)."""
    out = [make_ct(f"{base}.1"), make_ct(f"{base}.2", rows=64, columns=48, patient="Other^One")]
    mr = make_ct(f"{base}.3", sop_class=MR, patient="Mr^Patient")
    mr.Modality = "MR"
    out.append(mr)
    return out[:n]


def write_sources(directory: Path, datasets: list, ts: str = EXPLICIT_VR_LE) -> list[Path]:  # type: ignore[type-arg]
    from _scp_support import write_part10

    directory.mkdir(parents=True, exist_ok=True)
    return [write_part10(ds, directory / f"src{i}.dcm", ts) for i, ds in enumerate(datasets)]


def check_stored(storage_dir: Path, sent: list, ts: str, calling: str) -> None:  # type: ignore[type-arg]
    assert leftover_parts(storage_dir) == []
    files = {p.name: p for p in stored_files(storage_dir)}
    assert sorted(files) == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in sent)
    for ds in sent:
        stored = read_stored(files[f"{ds.SOPInstanceUID}.dcm"])
        meta = stored.file_meta
        assert meta.TransferSyntaxUID == ts
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert str(meta.SourceApplicationEntityTitle).strip() == calling
        # the source files carry File Meta; compare the data sets only
        assert differences(ds, stored) == [], ds.SOPInstanceUID


# --- DCMTK --------------------------------------------------------------------------------------

# (storescu proposal option, the only transfer syntax the SCP accepts): storescu converts the
# Explicit VR LE source files to whatever was accepted.
DCMTK_SYNTAXES = [
    (["-xi"], IMPLICIT_VR_LE),
    (["-xe"], EXPLICIT_VR_LE),
    (["-xb"], EXPLICIT_VR_BE),
    (["-xd"], DEFLATED_EXPLICIT_VR_LE),
]


@needs_dcmtk
@pytest.mark.parametrize(("options", "ts"), DCMTK_SYNTAXES, ids=["implicit", "explicit-le",
                                                               "explicit-be", "deflated"])
def test_dcmtk_storescu_every_native_syntax(tmp_path: Path, options: list[str], ts: str) -> None:
    sent = instances(f"1.2.826.0.1.3680043.8.498.31.{len(ts)}")
    files = write_sources(tmp_path / "src", sent)

    async def go() -> None:
        async with running_scp(Profile(transfer_syntaxes=[ts]), tmp_path / "store") as scp:
            rc, out = await run_process(
                [STORESCU, "-aet", "DCMTKSCU", "-aec", "ANY-SCP", *options, "127.0.0.1",
                 str(scp.port), *map(str, files)], timeout=PEER_TIMEOUT)
            assert rc == 0, out
            assert [r.status for r in scp.records] == [0, 0, 0]
            assert {r.path.name for r in scp.records if r.path} == {
                f"{ds.SOPInstanceUID}.dcm" for ds in sent}
        check_stored(tmp_path / "store", sent, ts, "DCMTKSCU")
    run(go(), timeout=PEER_TIMEOUT + 10)


@needs_dcmtk
def test_dcmtk_default_proposal_keeps_the_files_syntax(tmp_path: Path) -> None:
    # storescu proposes a context per transfer syntax and uses the one matching the file
    sent = instances("1.2.826.0.1.3680043.8.498.32", 2)
    files = write_sources(tmp_path / "src", sent, IMPLICIT_VR_LE)

    async def go() -> None:
        async with running_scp(None, tmp_path / "store") as scp:
            rc, out = await run_process([STORESCU, "127.0.0.1", str(scp.port),
                                         *map(str, files)], timeout=PEER_TIMEOUT)
            assert rc == 0, out
        check_stored(tmp_path / "store", sent, IMPLICIT_VR_LE, "STORESCU")
    run(go(), timeout=PEER_TIMEOUT + 10)


@needs_dcmtk
def test_dcmtk_echoscu() -> None:
    async def go() -> None:
        async with running_scp() as scp:
            rc, out = await run_process([ECHOSCU, "-v", "127.0.0.1", str(scp.port)],
                                        timeout=PEER_TIMEOUT)
            assert rc == 0, out
            assert "Received Echo Response (Success)" in out
    run(go(), timeout=PEER_TIMEOUT + 10)


@needs_dcmtk
def test_dcmtk_eight_concurrent_associations(tmp_path: Path) -> None:
    batches = [instances(f"1.2.826.0.1.3680043.8.498.33.{n}") for n in range(8)]
    sources = [write_sources(tmp_path / f"src{n}", b) for n, b in enumerate(batches)]

    async def go() -> None:
        async with running_scp(None, tmp_path / "store") as scp:
            results = await asyncio.gather(*(run_process(
                [STORESCU, "-aet", f"SCU{n}", "127.0.0.1", str(scp.port), *map(str, files)],
                timeout=PEER_TIMEOUT) for n, files in enumerate(sources)))
            for rc, out in results:
                assert rc == 0, out
            assert len({r.assoc for r in scp.records}) == 8
            assert [r.status for r in scp.records] == [0] * 24
        stored = {p.name for p in stored_files(tmp_path / "store")}
        assert stored == {f"{ds.SOPInstanceUID}.dcm" for b in batches for ds in b}
        for n, batch in enumerate(batches):
            for ds in batch:
                got = read_stored(tmp_path / "store" / f"{ds.SOPInstanceUID}.dcm")
                assert differences(ds, got) == []
                assert str(got.file_meta.SourceApplicationEntityTitle).strip() == f"SCU{n}"
    run(go(), timeout=PEER_TIMEOUT + 20)


@needs_dcmtk
def test_dcmtk_abort_after_stores_keeps_only_complete_files(tmp_path: Path) -> None:
    sent = instances("1.2.826.0.1.3680043.8.498.34", 2)
    files = write_sources(tmp_path / "src", sent)

    async def go() -> None:
        async with running_scp(None, tmp_path / "store") as scp:
            rc, out = await run_process([STORESCU, "--abort", "127.0.0.1", str(scp.port),
                                         *map(str, files)], timeout=PEER_TIMEOUT)
            assert rc == 0, out
            await asyncio.sleep(0.1)
        check_stored(tmp_path / "store", sent, EXPLICIT_VR_LE, "STORESCU")
    run(go(), timeout=PEER_TIMEOUT + 10)


HOSTILE = ["../../x", "/etc/passwd", "1.2.3/../../evil"]


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@needs_dcmtk
@pytest.mark.parametrize("accept", [False, True], ids=["conformant", "accept_invalid_uid"])
def test_hostile_uids_write_nothing_outside(tmp_path: Path, accept: bool) -> None:
    # The UID is both the command's Affected SOP Instance UID (storescu copies it from the
    # file) and the data set's SOP Instance UID.
    sent = [make_ct(uid) for uid in HOSTILE]
    files = write_sources(tmp_path / "src", sent)
    store = tmp_path / "a" / "b" / "store"
    store.mkdir(parents=True)
    before = _snapshot(tmp_path)
    passwd = Path("/etc/passwd")
    passwd_before = passwd.stat() if passwd.exists() else None
    profile = Profile.with_faults("accept_invalid_uid") if accept else Profile()

    async def go() -> None:
        async with running_scp(profile, store) as scp:
            _rc, out = await run_process([STORESCU, "-nh", "127.0.0.1", str(scp.port),
                                         *map(str, files)], timeout=PEER_TIMEOUT)
            assert [r.status for r in scp.records] == ([0] * 3 if accept else [0x0117] * 3), out
    run(go(), timeout=PEER_TIMEOUT + 10)

    after = _snapshot(tmp_path)
    new = after - before
    assert all(p.parent == store for p in new), sorted(map(str, new))
    assert not (tmp_path / "x").exists() and not (tmp_path / "a" / "evil").exists()
    if passwd_before is not None:
        now = passwd.stat()
        assert (now.st_mtime_ns, now.st_size) == (passwd_before.st_mtime_ns,
                                                  passwd_before.st_size)
    if not accept:
        assert new == set()
    else:
        names = sorted(p.name for p in new)
        assert len(names) == 3 and all(n.startswith("invalid-uid-") for n in names), names
        for ds in sent:
            hits = [p for p in new if read_stored(p).SOPInstanceUID == ds.SOPInstanceUID]
            assert len(hits) == 1
            assert differences(ds, read_stored(hits[0])) == []


# --- pynetdicom ---------------------------------------------------------------------------------

@needs_pynetdicom
@pytest.mark.parametrize(("option", "ts"), [("-xe", EXPLICIT_VR_LE), ("-xi", IMPLICIT_VR_LE)],
                         ids=["explicit-le", "implicit"])
def test_pynetdicom_storescu(tmp_path: Path, option: str, ts: str) -> None:
    # pynetdicom's storescu sends files as they are encoded: write them in the requested syntax
    sent = instances(f"1.2.826.0.1.3680043.8.498.35.{len(ts)}")
    write_sources(tmp_path / "src", sent, ts)

    async def go() -> None:
        async with running_scp(None, tmp_path / "store") as scp:
            rc, out = await run_process(
                [sys.executable, "-m", "pynetdicom", "storescu", "-aet", "PYNETSCU", option,
                 "127.0.0.1", str(scp.port), str(tmp_path / "src")], timeout=PEER_TIMEOUT)
            assert rc == 0, out
            assert [r.status for r in scp.records] == [0, 0, 0], out
        check_stored(tmp_path / "store", sent, ts, "PYNETSCU")
    run(go(), timeout=PEER_TIMEOUT + 10)


def test_sources_are_not_touched(tmp_path: Path) -> None:
    """Sanity of the helpers the interop tests rely on: Part 10 sources round-trip."""
    sent = instances("1.2.826.0.1.3680043.8.498.36")
    for path, ds in zip(write_sources(tmp_path, sent), sent, strict=True):
        again = read_stored(path)
        assert differences(ds, again) == []
        assert again.SOPClassUID in (CT, MR)
    changed = make_ct("1.2.826.0.1.3680043.8.498.36.1")
    changed.PatientName = "Someone^Else"
    assert differences(changed, read_stored(tmp_path / "src0.dcm")) != []
