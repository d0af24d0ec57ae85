"""Where the reference SCP puts what it receives: streamed, atomic, inside the directory.

Data set fragments go straight to a temporary file (``.part``) in the storage directory, after
a Part 10 preamble and File Meta Information built from the command and the presentation
context. Only when the whole data set arrived and the handler accepted it does the file get
its final name by ``os.replace`` (optionally after fsync). Aborted, failed or refused stores
leave nothing behind. Final names come from the SOP Instance UID only when it is a valid UID
(digits and dots), otherwise from its hash, so no peer input can point outside the directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import uuid
from pathlib import Path

from harness.wire.pdu import HARNESS_IMPLEMENTATION_CLASS_UID, HARNESS_IMPLEMENTATION_VERSION
from harness.wire.uid import is_valid_uid

PART_SUFFIX = ".part"


def _explicit_le(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _pad(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str,
              source_ae: str | None) -> bytes:
    """Preamble, 'DICM' and group 0002 (Explicit VR LE) for a Part 10 file (PS3.10 7.1)."""
    elements = [
        _explicit_le(2, 0x0001, b"OB", b"\x00\x01"),
        _explicit_le(2, 0x0002, b"UI", _pad(sop_class.encode("ascii", "replace"), b"\0")),
        _explicit_le(2, 0x0003, b"UI", _pad(sop_instance.encode("ascii", "replace"), b"\0")),
        _explicit_le(2, 0x0010, b"UI", _pad(transfer_syntax.encode("ascii", "replace"), b"\0")),
        _explicit_le(2, 0x0012, b"UI", _pad(HARNESS_IMPLEMENTATION_CLASS_UID.encode(), b"\0")),
        _explicit_le(2, 0x0013, b"SH", _pad(HARNESS_IMPLEMENTATION_VERSION.encode(), b" ")),
    ]
    if source_ae:
        ae = source_ae.strip().encode("ascii", "replace")[:16]
        elements.append(_explicit_le(2, 0x0016, b"AE", _pad(ae, b" ")))
    body = b"".join(elements)
    group_length = _explicit_le(2, 0x0000, b"UL", struct.pack("<I", len(body)))
    return bytes(128) + b"DICM" + group_length + body


def safe_name(sop_instance_uid: str) -> str:
    """A file name for an instance that cannot escape the directory whatever the UID says."""
    if is_valid_uid(sop_instance_uid):
        return sop_instance_uid + ".dcm"
    digest = hashlib.sha256(sop_instance_uid.encode("utf-8", "replace")).hexdigest()[:40]
    return f"invalid-uid-{digest}.dcm"


class IncomingFile:
    """One data set being received into ``directory``."""

    __slots__ = ("_fh", "directory", "final_path", "fsync", "meta_length", "path", "received")

    def __init__(self, directory: Path, sop_class: str, sop_instance: str, transfer_syntax: str,
                 source_ae: str | None, *, fsync: bool = False) -> None:
        self.directory = directory
        self.path = directory / f".{uuid.uuid4().hex}{PART_SUFFIX}"
        self.final_path: Path | None = None
        self.fsync = fsync
        self.received = 0
        self._fh = open(self.path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in commit/discard
        meta = file_meta(sop_class, sop_instance, transfer_syntax, source_ae)
        self.meta_length = len(meta)
        self._fh.write(meta)

    def write(self, fragment: memoryview | bytes) -> None:
        self.received += len(fragment)
        self._fh.write(fragment)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()

    def commit(self, sop_instance_uid: str, *, overwrite: bool = True) -> Path | None:
        """Give the file its final name; ``None`` if not overwriting an existing instance."""
        self.close()
        target = self.directory / safe_name(sop_instance_uid)
        if not overwrite and target.exists():
            self.discard()
            return None
        os.replace(self.path, target)
        if self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.final_path = target
        return target

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def leftover_parts(directory: Path) -> list[Path]:
    return sorted(directory.glob(f".*{PART_SUFFIX}"))
