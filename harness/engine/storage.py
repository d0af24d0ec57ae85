"""Stored-data checks: find what the target stored, whatever its file naming, and compare.

Files in the storage directory are matched by the SOP Instance UID they contain (read with
pydicom, pixel data skipped for the index). Checks: stored == sent (every element, pixel data
by hash, declared coercions allowed), nothing stored after a failure, nothing partial after an
abort, nothing outside the directory.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag

from harness.datasets.encode import dataset_differences, decode_dataset, decode_file


@dataclass(slots=True)
class StoredFile:
    path: Path
    sop_instance_uid: str | None
    mtime: float
    size: int
    readable: bool
    version: tuple[int, int, int] = (0, 0, 0)  # (inode, mtime ns, size): a rewrite changes it


class StorageInspector:
    """Indexes a storage directory incrementally (by path, size and mtime)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[Path, StoredFile] = {}

    def scan(self) -> list[StoredFile]:
        seen: set[Path] = set()
        for root, _dirs, files in os.walk(self.directory):
            for name in files:
                path = Path(root) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                seen.add(path)
                old = self._index.get(path)
                version = (st.st_ino, st.st_mtime_ns, st.st_size)
                if old is not None and old.version == version:
                    continue
                uid, readable = _read_uid(path)
                self._index[path] = StoredFile(path, uid, st.st_mtime, st.st_size, readable,
                                               version)
        for gone in set(self._index) - seen:
            del self._index[gone]
        return list(self._index.values())

    def find(self, sop_instance_uid: str) -> list[StoredFile]:
        return [f for f in self.scan() if f.sop_instance_uid == sop_instance_uid]

    def wait_for(self, sop_instance_uid: str, timeout: float = 1.0) -> list[StoredFile]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(sop_instance_uid)
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def snapshot(self, uids: set[str]) -> dict[Path, tuple[int, int, int]]:
        """The files holding any of ``uids`` now, with their versions: taken before a store
        so that what that store left behind can be told from earlier copies (the same UID
        may have been stored before, in this run or an earlier one)."""
        return {f.path: f.version for f in self.scan() if f.sop_instance_uid in uids}

    def written_since(self, before: dict[Path, tuple[int, int, int]],
                      uids: set[str]) -> list[StoredFile]:
        """Files holding any of ``uids`` that are new or rewritten since ``before``."""
        return [f for f in self.scan() if f.sop_instance_uid in uids
                and before.get(f.path) != f.version]

    def new_since(self, since: float) -> list[StoredFile]:
        return [f for f in self.scan() if f.mtime >= since - 1.0]


def _read_uid(path: Path) -> tuple[str | None, bool]:
    """(SOP Instance UID or None, readable) of a stored file."""
    try:
        with warnings.catch_warnings():
            # What the target stored may hold the invalid UIDs a scenario sent on purpose;
            # the scenario judges them, pydicom's reading warnings would only be noise.
            warnings.simplefilter("ignore", UserWarning)
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            elem = ds.get("SOPInstanceUID")
        if elem is None:
            return None, True
        # A UID holding a backslash reads back as several values: join them again.
        text = "\\".join(map(str, elem)) if isinstance(elem, list | tuple) or hasattr(
            elem, "_list") else str(elem)
        return text, True
    except Exception:  # pydicom raises many kinds on damaged files: all mean "unreadable"
        return None, False


def compare(stored_path: Path, sent: bytes, transfer_syntax: str,
            allowed_coercions: set[str] | None = None) -> list[str] | None:
    """Differences between a stored file and the data set bytes sent (empty = equal; None =
    not comparable: what was sent is itself undecodable and the target re-encoded it).

    Both sides are decoded with the harness's own decoders, so byte order (Explicit VR Big
    Endian) and deflation do not count as differences; ``allowed_coercions`` are keywords
    the target declared it may change.
    """
    with warnings.catch_warnings():
        # Both sides may hold the invalid values a scenario sent on purpose (see _read).
        warnings.simplefilter("ignore", UserWarning)
        return _compare(stored_path, sent, transfer_syntax, allowed_coercions)


def _compare(stored_path: Path, sent: bytes, transfer_syntax: str,
             allowed_coercions: set[str] | None) -> list[str] | None:
    try:
        original = decode_dataset(sent, transfer_syntax)
    except Exception:
        # What was sent is itself undecodable (a malformed case): a stored copy can only be
        # compared byte for byte.
        return _compare_bytes(stored_path, sent)
    try:
        _meta, stored = decode_file(stored_path.read_bytes())
    except Exception as exc:  # any decode failure means the stored object is unusable
        return [f"stored file cannot be read: {type(exc).__name__}: {exc}"]
    # Differences name tags ("(0010,0010) value ..."): match declared keywords by their tag.
    allowed = set(allowed_coercions or ())
    allowed.update(str(Tag(t)) for t in map(tag_for_keyword, set(allowed)) if t is not None)
    problems = []
    for text in dataset_differences(original, stored):
        if not any(word in text for word in allowed):
            problems.append(text)
    return problems


def _compare_bytes(stored_path: Path, sent: bytes) -> list[str] | None:
    data = stored_path.read_bytes()
    return [] if data.endswith(sent) or sent in data else None


def outside_writes(directory: Path, since: float, uids: list[str]) -> list[Path]:
    """Evidence of a path traversal: files created since ``since`` outside the storage
    directory at the places a UID would name if used as a path (``directory/<uid>``, with
    or without a prefix such as ``CT.``), or next to or above the directory with a name that
    ends in the UID's last path component."""
    hits: list[Path] = []
    root = directory.resolve()
    for uid in uids:
        if "/" not in uid and "\\" not in uid:
            continue  # a UID without a separator cannot name another directory
        tail = uid.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].strip("\x00 ")
        places = {(directory / uid.replace("\x00", "")).resolve()}
        for base in (directory.parent, directory.parent.parent, Path("/tmp")):
            try:
                places.update(p for p in base.iterdir() if tail and p.name.endswith(tail))
            except OSError:
                continue
        for place in places:
            if str(place).startswith(str(root) + os.sep):
                continue
            try:
                if place.is_file() and place.stat().st_mtime >= since - 0.5:
                    hits.append(place)
            except OSError:
                continue
    return hits
