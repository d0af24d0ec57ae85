"""Shared helpers for the reference SCP tests: synthetic data sets, an SCP in a loop, peers.

Everything here is bounded in time: every wait takes a timeout and every child process is
killed if it outlives its deadline. The SCP runs in the test's own asyncio loop (peers that are
processes are driven with ``asyncio.create_subprocess_exec``), so no thread ever touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from collections.abc import AsyncIterator, Awaitable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, generate_uid

from harness.net.requestor import DimseMessage, PeerEnded, Requestor
from harness.scp import Profile, StorageSCP
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.dimse import CEchoRQ, CStoreRQ, encode_command
from harness.wire.items import PresentationContextRQ
from harness.wire.pdu import AssociateAC, AssociateRJ, associate_rq

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
VERIFICATION = "1.2.840.10008.1.1"
ALL_NATIVE = [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]

T = TypeVar("T")


# --- synthetic data sets ----------------------------------------------------------------------

def make_ct(sop_instance: str | None = None, *, sop_class: str = CT, rows: int = 16,
            columns: int = 16, patient: str = "Test^Patient") -> Dataset:
    """A small, valid CT image (16x16 by default, 16-bit pixels with a known ramp)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance or generate_uid()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.PatientName = patient
    ds.PatientID = "HARNESS-1"
    ds.Modality = "CT"
    ds.StudyDate = "20240101"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = 7
    ds.SliceThickness = "1.25"
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(rows * columns, dtype="<u4") * 37 & 0xFFFF).astype("<u2").tobytes()
    return ds


def encode_dataset(ds: Dataset, transfer_syntax: str = EXPLICIT_VR_LE) -> bytes:
    """The data set encoded as it travels in a C-STORE (no File Meta)."""
    if transfer_syntax == EXPLICIT_VR_BE:
        raise ValueError("encode big endian data sets with DCMTK, not here")
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = transfer_syntax == IMPLICIT_VR_LE
    write_dataset(fp, ds)
    data = fp.getvalue()
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LE:
        deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = deflater.compress(data) + deflater.flush()
        if len(data) % 2:
            data += b"\x00"
    return data


def write_part10(ds: Dataset, path: Path, transfer_syntax: str = EXPLICIT_VR_LE) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path


def differences(sent: Dataset, stored: Dataset) -> list[str]:
    """Every element of ``sent`` (outside group 0002) that ``stored`` lacks or alters."""
    out: list[str] = []
    sent_tags = {e.tag for e in sent if e.tag.group != 2}
    stored_tags = {e.tag for e in stored if e.tag.group != 2}
    for tag in sorted(sent_tags - stored_tags):
        out.append(f"missing {tag}")
    for tag in sorted(stored_tags - sent_tags):
        out.append(f"extra {tag}")
    for tag in sorted(sent_tags & stored_tags):
        if tag == 0x7FE00010:
            if pixel_values(stored) != pixel_values(sent):
                out.append("pixel data differs")
        elif sent[tag].value != stored[tag].value:
            out.append(f"{tag} {sent[tag].keyword}: {sent[tag].value!r} != {stored[tag].value!r}")
    return out


def pixel_values(ds: Dataset) -> list[int]:
    """16-bit native pixel values, whatever the byte order the data set was read with."""
    meta = getattr(ds, "file_meta", None)
    big = meta is not None and meta.get("TransferSyntaxUID") == EXPLICIT_VR_BE
    return np.frombuffer(ds.PixelData, dtype=">u2" if big else "<u2").tolist()  # type: ignore[no-any-return]


def stored_files(directory: Path) -> list[Path]:
    """Everything the SCP left in its directory, hidden temporaries included."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


def read_stored(path: Path) -> Dataset:
    return dcmread(path)


# --- the SCP under test -----------------------------------------------------------------------

async def with_timeout(aw: Awaitable[T], timeout: float) -> T:
    return await asyncio.wait_for(aw, timeout)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh loop with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def running_scp(profile: Profile | None = None, storage_dir: Path | None = None,
                      **kwargs: Any) -> AsyncIterator[StorageSCP]:
    scp = StorageSCP(profile or Profile(), storage_dir, **kwargs)
    await scp.start()
    try:
        yield scp
    finally:
        await scp.stop()


# --- our requestor ----------------------------------------------------------------------------

def contexts(*specs: tuple[str, list[str]]) -> list[PresentationContextRQ]:
    """Presentation contexts 1, 3, 5... from (abstract syntax, transfer syntaxes)."""
    return [PresentationContextRQ(2 * i + 1, abstract, list(ts))
            for i, (abstract, ts) in enumerate(specs)]


async def associate(port: int, pcs: list[PresentationContextRQ] | None = None, *,
                    called: str = "ANY-SCP", calling: str = "HARNESS", max_pdu: int = 16384,
                    timeout: float = 5.0, **rq_kwargs: Any) -> tuple[
                        Requestor, AssociateAC | AssociateRJ | PeerEnded]:
    req = await Requestor.connect("127.0.0.1", port, timeout=timeout)
    rq = associate_rq(called, calling, pcs or contexts((CT, [EXPLICIT_VR_LE])),
                      max_pdu=max_pdu, **rq_kwargs)
    answer = await req.associate(rq)
    return req, answer


@contextlib.asynccontextmanager
async def association(port: int, pcs: list[PresentationContextRQ] | None = None,
                      **kwargs: Any) -> AsyncIterator[Requestor]:
    """An accepted association; closed (not released) on exit whatever happened."""
    req, answer = await associate(port, pcs, **kwargs)
    try:
        assert isinstance(answer, AssociateAC), f"association not accepted: {answer!r}"
        yield req
    finally:
        req.close()


def store_command(msg_id: int, sop_instance: str, sop_class: str = CT) -> bytes:
    return encode_command(CStoreRQ(msg_id, sop_class, sop_instance, 0, 0x0000))


async def store(req: Requestor, data: bytes, sop_instance: str, *, msg_id: int = 1,
                sop_class: str = CT, context_id: int = 1,
                timeout: float = 5.0) -> DimseMessage | PeerEnded:
    """One C-STORE with our requestor; the response (or why none came)."""
    await req.send_message(context_id, store_command(msg_id, sop_instance, sop_class), data)
    return await req.recv_message(timeout)


async def echo(req: Requestor, msg_id: int = 99, context_id: int = 1,
               timeout: float = 5.0) -> DimseMessage | PeerEnded:
    await req.send_message(context_id, encode_command(CEchoRQ(msg_id)))
    return await req.recv_message(timeout)


def status_of(msg: DimseMessage | PeerEnded) -> int:
    assert isinstance(msg, DimseMessage), f"expected a response, got {msg!r}"
    value = msg.command.elements.get(0x0900)
    assert isinstance(value, int), f"response without a Status: {msg.command.elements}"
    return value


# --- peers as processes -----------------------------------------------------------------------

async def run_process(args: Iterable[str], *, timeout: float, env: dict[str, str] | None = None,
                      cwd: Path | None = None) -> tuple[int, str]:
    """Run a child to completion (killed at ``timeout``); its exit code and combined output."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})}, cwd=cwd)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    return proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace")
