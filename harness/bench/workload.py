"""What the load generator sends: instances encoded once, framed once, patched per store.

A :class:`Workload` is a list of :class:`Template` (one encoded data set each, from the
dataset factory or from a folder of the user's Part 10 files). Every template's SOP Instance
UID sits in a slot of ``UID_LENGTH`` characters so :class:`UidSource` can write a fresh UID
into it for every store without re-encoding anything.

A :class:`MessagePlan` is the C-STORE message of one template, fully framed into P-DATA-TF
PDUs for one send size: the *head* (command PDU plus the data PDUs that hold the UID) is
copied per in-flight store and patched; the *tail* is shared, immutable and sent as is
(one framed buffer, views of a memory-mapped file, or an ``os.sendfile`` range).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import random
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.datasets import KINDS, encode_dataset, encode_file, make_instance, uid_offsets
from harness.wire.constants import (
    AFFECTED_SOP_INSTANCE_UID,
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_LE_ELEMENT_HEADER,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    MCH_COMMAND,
    MCH_LAST,
    MESSAGE_ID,
    UL_LE,
)
from harness.wire.constants import IMPLICIT_LE_ELEMENT_HEADER as _ELEMENT
from harness.wire.constants import PDV_HEADER as _PDV_HDR
from harness.wire.constants import US_LE as _MSGID
from harness.wire.dataset_raw import LONG_LENGTH_VRS, ts_encoding
from harness.wire.dimse import CStoreRQ, encode_command
from harness.wire.fragment import max_fragment
from harness.wire.pdu import pdu_header

# "2.25." + 38 digits: always below 2**128 (PS3.5 B.2), 43 characters, one NUL pad byte.
UID_DIGITS = 38
UID_LENGTH = 5 + UID_DIGITS
UID_SLOT = UID_LENGTH + 1
NONCE_DIGITS = 14
STREAM_DIGITS = 6
SEQ_DIGITS = UID_DIGITS - NONCE_DIGITS - STREAM_DIGITS
TEMPLATE_UID = "2.25." + "1" + "0" * (UID_DIGITS - 1)

# Transfer syntaxes the bench can send: patching needs a non-deflated encoding.
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": EXPLICIT_VR_LE,
    "implicit": IMPLICIT_VR_LE,
    "big": EXPLICIT_VR_BE,
}
# Kinds of the dataset factory offered as workloads (the CLI names them; the others work too).
PROFILE_KINDS = ("tiny", "ct", "mr", "cr", "us", "mg")
# Messages up to this size are copied whole per in-flight store: one contiguous send.
SMALL_MESSAGE = 256 * 1024
# File-backed templates larger than this are memory-mapped instead of read.
MAP_FILES_FROM = 1 << 20



class WorkloadError(ValueError):
    """The workload cannot be built (unknown name, empty folder, unusable files)."""


def new_nonce(rng: random.Random | None = None) -> int:
    """A run nonce: the leading digits of every UID a run sends (first digit never 0)."""
    r = rng or random.SystemRandom()
    return r.randrange(10 ** (NONCE_DIGITS - 1), 10 ** NONCE_DIGITS)


class UidSource:
    """Unique SOP Instance UIDs of exactly ``UID_LENGTH`` characters for one stream.

    Unique across runs (random nonce), associations and worker processes (``stream``)
    and stores (``seq``).
    """

    __slots__ = ("_prefix",)

    def __init__(self, nonce: int, stream: int) -> None:
        if not 10 ** (NONCE_DIGITS - 1) <= nonce < 10 ** NONCE_DIGITS:
            raise ValueError(f"nonce must have {NONCE_DIGITS} digits")
        if not 0 <= stream < 10 ** STREAM_DIGITS:
            raise ValueError(f"stream must be below {10 ** STREAM_DIGITS}")
        self._prefix = f"2.25.{nonce}{stream:0{STREAM_DIGITS}d}".encode("ascii")

    def uid(self, seq: int) -> bytes:
        return b"%s%0*d" % (self._prefix, SEQ_DIGITS, seq)


@dataclass(slots=True)
class Template:
    """One encoded data set ready for patching: where its UID slot is, where its bytes are.

    ``head`` holds the first bytes of the data set (at least through the UID slot); the rest
    is ``rest`` (memory) or ``file_range`` of ``path`` (a memory-mapped file).
    """

    sop_class: str
    transfer_syntax: str
    head: bytes
    uid_offset: int
    nbytes: int
    rest: memoryview | None = None
    path: Path | None = None
    file_range: tuple[int, int] | None = None  # (offset, length) in the file
    mapped: mmap.mmap | None = field(default=None, repr=False)

    def pieces(self) -> list[memoryview]:
        """The data set as consecutive pieces (head, then the rest)."""
        out = [memoryview(self.head)]
        if self.rest is not None and len(self.rest):
            out.append(self.rest)
        elif self.file_range is not None and self.file_range[1]:
            out.append(self._mapped_view()[self.file_range[0]:sum(self.file_range)])
        return out

    def _mapped_view(self) -> memoryview:
        if self.mapped is None:
            assert self.path is not None
            with self.path.open("rb") as fh:
                self.mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self.mapped)

    def data(self) -> bytes:
        """The whole data set as bytes (copies: for writing files, never on the hot path)."""
        return b"".join(bytes(p) for p in self.pieces())


@dataclass(slots=True)
class Workload:
    name: str
    description: str
    templates: list[Template]
    transfer_syntax: str
    kind: str | None = None  # dataset factory kind; None for a folder
    seed: int = 0
    skipped: list[str] = field(default_factory=list)  # files of a folder not usable

    @property
    def instance_bytes(self) -> int:
        """Mean data set size in bytes (what one store carries in P-DATA)."""
        return round(sum(t.nbytes for t in self.templates) / len(self.templates))

    @property
    def contexts(self) -> list[tuple[str, str]]:
        """(SOP class, transfer syntax) pairs to propose, in first-seen order."""
        seen: dict[tuple[str, str], None] = {}
        for t in self.templates:
            seen.setdefault((t.sop_class, t.transfer_syntax), None)
        return list(seen)


def resolve_transfer_syntax(text: str) -> str:
    """A transfer syntax UID from a short name or a UID; ``WorkloadError`` when unusable."""
    uid = TRANSFER_SYNTAXES.get(text.lower(), text)
    if uid == DEFLATED_EXPLICIT_VR_LE:
        raise WorkloadError("deflated transfer syntax: UIDs cannot be patched in place")
    if uid not in TRANSFER_SYNTAXES.values():
        raise WorkloadError(f"transfer syntax {text!r} not supported for generated workloads; "
                            f"use {', '.join(TRANSFER_SYNTAXES)} or their UIDs")
    return uid


def build_workload(name: str, transfer_syntax: str = EXPLICIT_VR_LE, *, seed: int = 0,
                   max_files: int = 10000) -> Workload:
    """A dataset factory kind (``tiny``, ``ct``, ...) or a folder of Part 10 files."""
    if name in KINDS:
        return _kind_workload(name, transfer_syntax, seed)
    path = Path(name)
    if path.is_dir():
        return _folder_workload(path, max_files)
    raise WorkloadError(f"workload {name!r}: not one of {', '.join(PROFILE_KINDS)} (or "
                        f"{', '.join(k for k in KINDS if k not in PROFILE_KINDS)}) and not a "
                        "folder")


def _kind_workload(kind: str, ts: str, seed: int) -> Workload:
    spec = KINDS[kind]
    ds = make_instance(kind, seed=seed)
    ds.SOPInstanceUID = TEMPLATE_UID
    encoded = encode_dataset(ds, ts)
    offset, length = uid_offsets(encoded, ts)["SOPInstanceUID"]
    if length != UID_SLOT:
        raise WorkloadError(f"unexpected SOP Instance UID slot of {length} bytes")
    end = offset + length
    view = memoryview(encoded)
    template = Template(spec.sop_class_uid, ts, bytes(view[:end]), offset, len(encoded),
                        rest=view[end:])
    return Workload(kind, spec.description, [template], ts, kind=kind, seed=seed)


# --- folders of Part 10 files -------------------------------------------------------------

def _file_meta(buf: memoryview) -> tuple[int, dict[int, bytes]] | None:
    """(data set offset, {element: value}) of a Part 10 file's group 0002, or None."""
    if len(buf) < 132 or bytes(buf[128:132]) != b"DICM":
        return None
    pos = 132
    values: dict[int, bytes] = {}
    while pos + 8 <= len(buf):
        group, element, vr, short = EXPLICIT_LE_ELEMENT_HEADER.unpack_from(buf, pos)
        if group != 0x0002:
            break
        if vr in LONG_LENGTH_VRS:
            if pos + 12 > len(buf):
                return None
            length = UL_LE.unpack_from(buf, pos + 8)[0]
            start = pos + 12
        else:
            length = short
            start = pos + 8
        if start + length > len(buf):
            return None
        values[element] = bytes(buf[start:start + length])
        pos = start + length
    return pos, values


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def _load_file(path: Path) -> Template | str:
    """A template from one file, or the reason it cannot be used."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if size >= MAP_FILES_FROM:
                mapped: mmap.mmap | None = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                buf = memoryview(mapped)  # type: ignore[arg-type]
            else:
                mapped = None
                buf = memoryview(fh.read())
    except (OSError, ValueError) as exc:
        return f"{path.name}: unreadable ({exc})"
    meta = _file_meta(buf)
    if meta is None:
        return f"{path.name}: not a DICOM Part 10 file"
    start, values = meta
    ts = _text(values.get(0x0010, b""))
    if not ts or ts == DEFLATED_EXPLICIT_VR_LE:
        return f"{path.name}: transfer syntax {ts or 'missing'} cannot be patched in place"
    data = buf[start:]
    try:
        offsets = uid_offsets(data, ts)
    except ValueError as exc:
        return f"{path.name}: {exc}"
    if "SOPInstanceUID" not in offsets or "SOPClassUID" not in offsets:
        return f"{path.name}: no SOP Class/Instance UID in the data set"
    c_off, c_len = offsets["SOPClassUID"]
    sop_class = _text(bytes(data[c_off:c_off + c_len]))
    offset, length = offsets["SOPInstanceUID"]
    enc = ts_encoding(ts)
    # Rewrite the UID element's header for a UID_SLOT-byte value: the element is top level,
    # so no other length covers it. Implicit and explicit UI headers are both 8 bytes.
    tag = bytes(data[offset - 8:offset - 4])
    fmt = "<" if enc.little else ">"
    header = tag + (struct.pack(fmt + "I", UID_SLOT) if enc.implicit
                    else b"UI" + struct.pack(fmt + "H", UID_SLOT))
    head = bytes(data[:offset - 8]) + header + TEMPLATE_UID.encode("ascii") + b"\x00"
    rest_start = start + offset + length
    rest_len = len(buf) - rest_start
    nbytes = len(head) + rest_len
    if mapped is None:
        return Template(sop_class, ts, head, offset, nbytes,
                        rest=memoryview(bytes(buf[rest_start:])), path=path)
    return Template(sop_class, ts, head, offset, nbytes, path=path,
                    file_range=(rest_start, rest_len), mapped=mapped)


def _folder_workload(folder: Path, max_files: int) -> Workload:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    templates: list[Template] = []
    skipped: list[str] = []
    for path in files[:max_files]:
        got = _load_file(path)
        if isinstance(got, str):
            skipped.append(got)
        else:
            templates.append(got)
    if not templates:
        why = f" ({skipped[0]})" if skipped else ""
        raise WorkloadError(f"workload folder {folder}: no usable DICOM file{why}")
    ts = templates[0].transfer_syntax
    return Workload(folder.name or str(folder), f"{len(templates)} file(s) from {folder}",
                    templates, ts, skipped=skipped)


# --- framing --------------------------------------------------------------------------------

@dataclass(slots=True)
class MessagePlan:
    """One template's C-STORE-RQ message framed for one send size and presentation context.

    ``head`` is copied per in-flight store (``msgid_at``, ``cmd_uid_at`` and ``data_uid_at``
    are offsets in it); ``tail`` parts and the ``sendfile`` range are shared and never
    written to.
    """

    head: bytes
    msgid_at: int
    cmd_uid_at: int
    data_uid_at: int
    tail: list[memoryview]
    nbytes: int  # data set bytes
    wire_bytes: int  # everything on the wire for this message
    sendfile: tuple[Path, int, int] | None = None  # (file, offset, length) after the tail


class StoreHead:
    """One association's writable copy of a plan's head, with the Message ID and the SOP
    Instance UID (command and data set) patched in per store. One per association is enough:
    the send hands the bytes to the kernel, so the buffer is free again when it returns."""

    __slots__ = ("_buf", "_plan", "_view")

    def __init__(self, plans: Iterable[MessagePlan]) -> None:
        self._buf = bytearray(max(len(p.head) for p in plans))
        self._view = memoryview(self._buf)
        self._plan: MessagePlan | None = None

    def fill(self, plan: MessagePlan, uid: bytes, msg_id: int) -> memoryview:
        """``plan``'s head carrying ``uid`` and ``msg_id`` (a view: valid until the next fill)."""
        buf = self._buf
        if self._plan is not plan:
            buf[:len(plan.head)] = plan.head
            self._plan = plan
        buf[plan.cmd_uid_at:plan.cmd_uid_at + UID_LENGTH] = uid
        buf[plan.data_uid_at:plan.data_uid_at + UID_LENGTH] = uid
        _MSGID.pack_into(buf, plan.msgid_at, msg_id)
        return self._view[:len(plan.head)]


def command_template(sop_class: str) -> tuple[bytes, int, int]:
    """C-STORE-RQ command bytes with the template UID; (bytes, msgid offset, UID offset)."""
    command = encode_command(CStoreRQ(1, sop_class, TEMPLATE_UID, 0, 0x0000))
    msgid_at = uid_at = -1
    pos = 0
    while pos + 8 <= len(command):
        _group, element, length = _ELEMENT.unpack_from(command, pos)
        if element == MESSAGE_ID:
            msgid_at = pos + 8
        elif element == AFFECTED_SOP_INSTANCE_UID:
            uid_at = pos + 8
        pos += 8 + length
    if msgid_at < 0 or uid_at < 0:
        raise AssertionError("C-STORE-RQ template lacks Message ID or SOP Instance UID")
    return command, msgid_at, uid_at


def _frame_header(context_id: int, mch: int, size: int) -> bytes:
    return pdu_header(0x04, size + 6) + _PDV_HDR.pack(size + 2, context_id, mch)


def _take(pieces: list[memoryview], start: int, size: int) -> Iterator[memoryview]:
    """Views of ``size`` bytes from ``start`` in the concatenation of ``pieces``."""
    base = 0
    for piece in pieces:
        end = base + len(piece)
        if size <= 0:
            return
        if start < end:
            lo = start - base
            n = min(size, len(piece) - lo)
            yield piece[lo:lo + n]
            start += n
            size -= n
        base = end


def plan_message(template: Template, context_id: int, send_pdu: int, *,
                 allow_sendfile: bool = True) -> MessagePlan:
    """Frame ``template`` as a C-STORE-RQ on ``context_id`` in PDUs of at most ``send_pdu``.

    ``send_pdu`` 0 means no limit. The head ends right after the UID slot (or holds the whole
    message when it is small); everything after it is the shared tail.
    """
    command, msgid_at, cmd_uid_at = command_template(template.sop_class)
    frag = max_fragment(send_pdu)
    head = bytearray()
    for piece_start in range(0, len(command), frag):  # a command fits one PDV in practice
        piece = command[piece_start:piece_start + frag]
        last = piece_start + frag >= len(command)
        head += _frame_header(context_id, MCH_COMMAND | (MCH_LAST if last else 0), len(piece))
        if piece_start <= msgid_at < piece_start + frag:
            msgid_at = len(head) + msgid_at - piece_start
        if piece_start <= cmd_uid_at < piece_start + frag:
            cmd_uid_at = len(head) + cmd_uid_at - piece_start
        head += piece
    total = template.nbytes
    nfrag = max(1, -(-total // frag))
    pieces = template.pieces()
    uid_end = template.uid_offset + UID_SLOT
    small = len(head) + total + 12 * nfrag <= SMALL_MESSAGE
    split = total if small else uid_end  # data bytes that go into the head
    # Sequence of framed parts after the command: headers and views of the data set.
    parts: list[memoryview] = []
    data_uid_at = -1
    for k in range(nfrag):
        start = k * frag
        size = min(frag, total - start)
        hdr = memoryview(_frame_header(context_id, MCH_LAST if k == nfrag - 1 else 0, size))
        if start < split:
            head += hdr
            if start <= template.uid_offset < start + size:
                data_uid_at = len(head) + template.uid_offset - start
            for view in _take(pieces, start, min(size, split - start)):
                head += view
            if start + size > split:
                parts.extend(_take(pieces, split, start + size - split))
        else:
            parts.append(hdr)
            parts.extend(_take(pieces, start, size))
    wire = len(head) + sum(len(p) for p in parts)
    if nfrag == 1 and allow_sendfile and template.file_range is not None and \
            template.path is not None and parts:
        # One PDV carries the data set: the patched head from memory, the rest straight from
        # the file with os.sendfile (no copy through user space).
        offset, length = template.file_range
        return MessagePlan(bytes(head), msgid_at, cmd_uid_at, data_uid_at, [], total, wire,
                           (template.path, offset, length))
    tail: list[memoryview]
    if template.file_range is None and len(parts) > 1:
        # Memory: one framed copy of the tail, shared by every store and association.
        tail = [memoryview(b"".join(parts))]
    else:
        tail = parts  # a single view, or views of a memory-mapped file: nothing copied
    return MessagePlan(bytes(head), msgid_at, cmd_uid_at, data_uid_at, tail, total, wire)


# --- Part 10 files for other senders (DCMTK storescu) ---------------------------------------

def part10_bytes(workload: Workload, index: int) -> bytes:
    """Template ``index`` as a Part 10 file holding ``TEMPLATE_UID`` (twice: meta and data)."""
    template = workload.templates[index]
    if workload.kind is not None:
        ds = make_instance(workload.kind, seed=workload.seed)
        ds.SOPInstanceUID = TEMPLATE_UID
        return encode_file(ds, template.transfer_syntax)
    from pydicom import dcmread

    assert template.path is not None
    ds = dcmread(template.path)
    ds.SOPInstanceUID = TEMPLATE_UID
    return encode_file(ds, template.transfer_syntax)


def write_part10_files(workload: Workload, folder: Path, count: int, uids: UidSource,
                       first_seq: int = 0) -> list[Path]:
    """``count`` Part 10 files in ``folder``, the workload's templates in turn, unique UIDs.

    Each template is encoded once; every file is a copy with its two UID slots patched.
    """
    folder.mkdir(parents=True, exist_ok=True)
    needle = TEMPLATE_UID.encode("ascii")
    encoded: list[tuple[bytearray, list[int]]] = []
    for i in range(len(workload.templates)):
        raw = bytearray(part10_bytes(workload, i))
        at = [pos for pos in _find_all(raw, needle)]
        encoded.append((raw, at))
    out: list[Path] = []
    for n in range(count):
        raw, at = encoded[n % len(encoded)]
        uid = uids.uid(first_seq + n)
        for pos in at:
            raw[pos:pos + UID_LENGTH] = uid
        path = folder / f"bench{n:07d}.dcm"
        path.write_bytes(raw)
        out.append(path)
    return out


def _find_all(buf: bytearray, needle: bytes) -> Iterator[int]:
    pos = buf.find(needle)
    while pos >= 0:
        yield pos
        pos = buf.find(needle, pos + 1)


def close_workload(workload: Workload) -> None:
    """Unmap memory-mapped files (the workload is unusable afterwards)."""
    for template in workload.templates:
        if template.mapped is not None:
            with contextlib.suppress(BufferError):
                template.mapped.close()
            template.mapped = None


class PlanCache:
    """Framed messages shared by the associations of one process (one copy per template,
    context, PDU size and sendfile choice), plus the files kept open for ``os.sendfile``:
    N associations on a folder workload hold one framed copy of each file, not N."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, int, int, bool], MessagePlan] = {}
        self._fds: dict[Path, int] = {}

    def plan(self, template: Template, context_id: int, send_pdu: int,
             sendfile: bool = True) -> MessagePlan:
        key = (id(template), context_id, send_pdu, sendfile)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_message(template, context_id, send_pdu,
                                                   allow_sendfile=sendfile)
        return plan

    def fd(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
