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
import functools
import hashlib
import itertools
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


def _ui(element: int, uid: str) -> bytes:
    # A UI value is at most 64 characters; only a fault profile lets longer ones through.
    return _explicit_le(2, element, b"UI", _pad(uid.encode("ascii", "replace")[:0xFFFE], b"\0"))


@functools.lru_cache(maxsize=256)
def _ui_cached(element: int, uid: str) -> bytes:
    return _ui(element, uid)


@functools.lru_cache(maxsize=256)
def _source_ae(source_ae: str | None) -> bytes:
    if not source_ae:
        return b""
    ae = source_ae.strip().encode("ascii", "replace")[:16]
    return _explicit_le(2, 0x0016, b"AE", _pad(ae, b" "))


_PREAMBLE = bytes(128) + b"DICM" + struct.pack("<HH2sH", 2, 0x0000, b"UL", 4)
_META_VERSION = _explicit_le(2, 0x0001, b"OB", b"\x00\x01")
_META_IMPLEMENTATION = (
    _explicit_le(2, 0x0012, b"UI", _pad(HARNESS_IMPLEMENTATION_CLASS_UID.encode(), b"\0"))
    + _explicit_le(2, 0x0013, b"SH", _pad(HARNESS_IMPLEMENTATION_VERSION.encode(), b" ")))


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str,
              source_ae: str | None) -> bytes:
    """Preamble, 'DICM' and group 0002 (Explicit VR LE) for a Part 10 file (PS3.10 7.1)."""
    body = b"".join((_META_VERSION, _ui_cached(0x0002, sop_class), _ui(0x0003, sop_instance),
                     _ui_cached(0x0010, transfer_syntax), _META_IMPLEMENTATION,
                     _source_ae(source_ae)))
    return _PREAMBLE + struct.pack("<I", len(body)) + body


def safe_name(sop_instance_uid: str) -> str:
    """A file name for an instance that cannot escape the directory whatever the UID says."""
    if is_valid_uid(sop_instance_uid):
        return sop_instance_uid + ".dcm"
    digest = hashlib.sha256(sop_instance_uid.encode("utf-8", "replace")).hexdigest()[:40]
    return f"invalid-uid-{digest}.dcm"


# Temporary names: a random per-process prefix and a counter (no random syscall per file).
_PART_PREFIX = f".{uuid.uuid4().hex[:16]}-"
_PART_COUNTER = itertools.count(1)


def _new_part_prefix() -> None:
    # A forked worker (harness.scp.workers) would otherwise share its parent's names.
    global _PART_PREFIX
    _PART_PREFIX = f".{uuid.uuid4().hex[:16]}-"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_part_prefix)
# Fragments collect up to this much before one write(). Not more: on the Linux 6 test
# machines one 512 KiB write into a new file costs about four times the CPU of two 256 KiB
# ones (the page cache's large folios), which cost no more than smaller pieces.
_WRITE_CHUNK = 1 << 18
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
    os, "O_BINARY", 0)
# Write buffers are reused: growing a fresh one per store (realloc, first-touch page faults)
# cost about 200 µs per 512 KB instance, more than all the rest of the per-store Python.
_POOL: list[bytearray] = []
_POOL_KEEP = 8


def _take_buffer() -> bytearray:
    try:
        return _POOL.pop()  # one atomic step: SCPs may run on several threads
    except IndexError:
        return bytearray(_WRITE_CHUNK)


def _give_back(buf: bytearray) -> None:
    if len(_POOL) < _POOL_KEEP and len(buf) == _WRITE_CHUNK:
        _POOL.append(buf)


def open_part(directory: str) -> tuple[int, str]:
    """Create a new, empty temporary file in ``directory``: (descriptor, path)."""
    path = os.path.join(directory, f"{_PART_PREFIX}{next(_PART_COUNTER)}{PART_SUFFIX}")
    return os.open(path, _OPEN_FLAGS, 0o644), path


def drop_part(part: tuple[int, str]) -> None:
    """Close and remove a temporary file from :func:`open_part` that was never used."""
    with contextlib.suppress(OSError):
        os.close(part[0])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(part[1])


class IncomingFile:
    """One data set being received into ``directory``.

    Written with plain ``os.write`` on a descriptor and a reused buffer: a small instance
    costs one open, one write and one close, and a large one a write per 256 KiB, without the
    seek, stat and per-file buffer allocation of a buffered file object.
    """

    __slots__ = ("_buf", "_dir", "_fd", "_part", "_pos", "_view", "directory", "final_path",
                 "fsync", "meta_length", "received")

    def __init__(self, directory: Path, sop_class: str, sop_instance: str, transfer_syntax: str,
                 source_ae: str | None, *, fsync: bool = False,
                 part: tuple[int, str] | None = None) -> None:
        """``part``: a temporary file from :func:`open_part` in ``directory`` to use (opened
        ahead, while the association had nothing else to do); it is this file's from now on."""
        self.directory = directory
        # Plain strings on the per-store path: Path objects cost more than the syscalls.
        self._dir = os.fspath(directory)
        self.final_path: Path | None = None
        self.fsync = fsync
        self.received = 0
        self._fd, self._part = part if part is not None else open_part(self._dir)
        self._buf: bytearray | None = _take_buffer()
        self._view = memoryview(self._buf)
        self._pos = 0
        meta = file_meta(sop_class, sop_instance, transfer_syntax, source_ae)
        self.meta_length = len(meta)
        self._put(meta)

    @property
    def path(self) -> Path:
        """The temporary (``.part``) file."""
        return Path(self._part)

    def write(self, fragment: memoryview | bytes) -> None:
        self.received += len(fragment)
        self._put(fragment)  # copied: the caller may reuse its buffer

    def _put(self, data: memoryview | bytes) -> None:
        pos = self._pos
        end = pos + len(data)
        if end > _WRITE_CHUNK:
            self._flush()
            pos, end = 0, len(data)
            if end > _WRITE_CHUNK:  # larger than the whole buffer: straight through
                self._write_all(data)
                return
        self._view[pos:end] = data
        self._pos = end

    def _flush(self) -> None:
        if self._pos:
            with self._view[:self._pos] as pending:
                self._write_all(pending)
            self._pos = 0

    def _write_all(self, data: memoryview | bytes) -> None:
        with memoryview(data) as view:
            done = 0
            while done < len(view):  # in pieces of at most _WRITE_CHUNK (see there)
                done += os.write(self._fd, view[done:done + _WRITE_CHUNK])

    def _release_buffer(self) -> None:
        buf, self._buf = self._buf, None
        if buf is not None:
            self._view.release()
            self._view = memoryview(b"")
            self._pos = 0
            _give_back(buf)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self._flush()
                if self.fsync:
                    os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1
                self._release_buffer()

    def commit(self, sop_instance_uid: str, *, overwrite: bool = True) -> Path | None:
        """Give the file its final name; ``None`` if not overwriting an existing instance."""
        self.close()
        target = os.path.join(self._dir, safe_name(sop_instance_uid))
        if not overwrite and os.path.exists(target):
            self.discard()
            return None
        os.replace(self._part, target)
        if self.fsync:
            dir_fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.final_path = final = Path(target)
        return final

    def discard(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
        self._release_buffer()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._part)


def leftover_parts(directory: Path) -> list[Path]:
    return sorted(directory.glob(f".*{PART_SUFFIX}"))
