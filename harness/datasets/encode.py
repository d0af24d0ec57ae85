"""Data set encoding as it goes on the wire, Part 10 files, streaming, in-place UID patching.

``encode_dataset`` writes a data set alone (no preamble, no File Meta) in Implicit VR LE,
Explicit VR LE, Explicit VR BE (retired, PS3.5 A.3) or Deflated Explicit VR LE (PS3.5 A.5:
raw deflate of the Explicit VR LE encoding, padded to even length). The Dataset holds
"other" word values (OW, OF, OL, OD, OV) in little endian byte order; the big endian
encoding byte-swaps them as PS3.5 7.3 requires and ``decode_dataset`` swaps them back, so
``decode_dataset(encode_dataset(ds, ts), ts)`` equals ``ds`` in every transfer syntax.

Native Pixel Data that is the last element is written by hand after pydicom has encoded the
rest: the same path serves ``iter_encoded``, which streams a huge Pixel Data value piece by
piece so a 2 GB instance never sits in memory, and guarantees both give the same bytes.
"""

from __future__ import annotations

import io
import zlib
from array import array
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import UID

from harness.datasets.factory import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    KINDS,
    build_instance,
    frames_for_pixel_bytes,
    pattern_offset,
    pixel_period,
)
from harness.wire.constants import EXPLICIT_VR_LE
from harness.wire.dataset_check import PROBLEMS, DatasetStructureChecker, walk_elements
from harness.wire.dataset_raw import (
    PIXEL_DATA_TAG,
    SWAPPED_WORD_SIZE,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    UNDEFINED_LENGTH,
    element_header,
    ts_encoding,
)
from harness.wire.findings import DecodeError

_SWAP_TYPECODES = {2: "H", 4: "I", 8: "Q"}
# Top-level UIDs a benchmark patches per instance, by keyword.
UID_TAGS: dict[int, str] = {
    0x00080016: "SOPClassUID",
    0x00080018: "SOPInstanceUID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
}


def _swap(value: bytes, size: int) -> bytes:
    """Byte-swap every ``size``-byte word of ``value`` (a trailing partial word is kept)."""
    whole = len(value) - len(value) % size
    words = array(_SWAP_TYPECODES[size])
    words.frombytes(value[:whole])
    words.byteswap()
    return words.tobytes() + value[whole:]


def _needs_swap(ds: Dataset) -> bool:
    for elem in ds:
        if elem.VR in SWAPPED_WORD_SIZE and elem.value:
            return True
        if elem.VR == "SQ" and any(_needs_swap(item) for item in elem.value):
            return True
    return False


def _swapped(ds: Dataset) -> Dataset:
    """A copy of ``ds`` with OW/OF/OL/OD/OV values byte-swapped, sequences included."""
    out = Dataset()
    for elem in ds:
        if elem.VR in SWAPPED_WORD_SIZE and isinstance(elem.value, bytes | bytearray):
            new = DataElement(elem.tag, elem.VR, _swap(bytes(elem.value),
                                                       SWAPPED_WORD_SIZE[elem.VR]))
        elif elem.VR == "SQ":
            items = []
            for item in elem.value:
                copy = _swapped(item)
                copy.is_undefined_length_sequence_item = getattr(
                    item, "is_undefined_length_sequence_item", False)
                items.append(copy)
            new = DataElement(elem.tag, "SQ", Sequence(items))
            new.is_undefined_length = elem.is_undefined_length
        else:
            new = elem
        out.add(new)
    return out


def _pydicom_encode(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def _native_pixel_vr(ds: Dataset, elem: DataElement) -> str:
    vr = str(elem.VR)
    if vr in ("OB", "OW"):
        return vr
    return "OW" if int(ds.get("BitsAllocated", 16)) > 8 else "OB"


def _split_pixels(ds: Dataset) -> tuple[Dataset, str, bytes] | None:
    """(data set without Pixel Data, VR, value) when native Pixel Data is the last element."""
    if PIXEL_DATA_TAG not in ds or max(ds.keys()) != PIXEL_DATA_TAG:
        return None
    elem = ds[PIXEL_DATA_TAG]
    if elem.is_undefined_length or not isinstance(elem.value, bytes | bytearray):
        return None
    head = Dataset()
    for item in ds:
        if item.tag != PIXEL_DATA_TAG:
            head.add(item)
    return head, _native_pixel_vr(ds, elem), bytes(elem.value)


def _encoded_parts(ds: Dataset, implicit: bool, little: bool) -> list[bytes]:
    split = _split_pixels(ds)
    head_ds = ds if split is None else split[0]
    if not little and _needs_swap(head_ds):
        head_ds = _swapped(head_ds)
    parts = [_pydicom_encode(head_ds, implicit, little)]
    if split is not None:
        _, vr, value = split
        if not little and vr in SWAPPED_WORD_SIZE:
            value = _swap(value, SWAPPED_WORD_SIZE[vr])
        pad = len(value) & 1
        parts.append(element_header(PIXEL_DATA_TAG, vr, len(value) + pad, implicit=implicit,
                                    little=little))
        parts.append(value)
        if pad:
            parts.append(b"\x00")
    return parts


def deflate(parts: bytes | list[bytes]) -> bytes:
    """Raw deflate (PS3.5 A.5) of encoded Explicit VR LE bytes, padded to even length."""
    if isinstance(parts, bytes):
        parts = [parts]
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    data = b"".join(out)
    # PS3.5 A.5: an odd-length deflated bitstream is padded with one trailing NUL.
    return data + b"\x00" if len(data) & 1 else data


def encode_dataset(ds: Dataset, transfer_syntax_uid: str) -> bytes:
    """The data set alone, as sent in P-DATA (no preamble, no File Meta Information)."""
    enc = ts_encoding(transfer_syntax_uid)
    parts = _encoded_parts(ds, enc.implicit, enc.little)
    if enc.deflated:
        return deflate(parts)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def inflate(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of the PS3.5 A.5 deflate step (a trailing pad byte is ignored)."""
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = inflater.decompress(data) + inflater.flush()
    except zlib.error as exc:
        raise DecodeError(f"corrupt deflate bitstream: {exc}") from None
    if not inflater.eof:
        raise DecodeError("deflate bitstream ends before its final block")
    return out


def _unswap(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR in SWAPPED_WORD_SIZE and isinstance(elem.value, bytes | bytearray):
            elem.value = _swap(bytes(elem.value), SWAPPED_WORD_SIZE[elem.VR])
        elif elem.VR == "SQ":
            for item in elem.value:
                _unswap(item)


def decode_dataset(data: bytes | bytearray | memoryview, transfer_syntax_uid: str, *,
                   strict: bool = False) -> Dataset:
    """Parse an encoded data set (as ``encode_dataset`` writes it) into a pydicom Dataset.

    Raises ``DecodeError`` (carrying the structural findings) when the bytes cannot be
    decoded: always for problems that stop the structure walk (truncation, bad VR, ...),
    and with ``strict=True`` for any error-severity finding (odd lengths, tag order, ...).
    """
    enc = ts_encoding(transfer_syntax_uid)
    raw = inflate(data) if enc.deflated else bytes(data)
    checker = DatasetStructureChecker(EXPLICIT_VR_LE if enc.deflated else transfer_syntax_uid)
    checker.feed(raw)
    findings = checker.finish()
    bad = [f for f, code in zip(findings, checker.codes, strict=True)
           if PROBLEMS[code].fatal or (strict and f.severity == "error")]
    if bad:
        raise DecodeError(f"undecodable data set: {bad[0]}", findings)
    try:
        ds = read_dataset(io.BytesIO(raw), enc.implicit, enc.little)
        for _ in ds.iterall():  # convert every raw element now so errors surface here
            pass
    except Exception as exc:  # pydicom raises many types on bad input
        raise DecodeError(f"pydicom could not decode the data set: {exc!r}", findings) from None
    if not enc.little:
        _unswap(ds)
    return ds


def encode_file(ds: Dataset, transfer_syntax_uid: str, source_ae: str | None = None) -> bytes:
    """A DICOM Part 10 file: preamble, ``DICM``, File Meta Information, data set."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(ds.get("SOPClassUID", ""))
    meta.MediaStorageSOPInstanceUID = UID(ds.get("SOPInstanceUID", ""))
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if source_ae:
        meta.SourceApplicationEntityTitle = source_ae
    fp = DicomBytesIO()
    fp.is_implicit_VR = False
    fp.is_little_endian = True
    write_file_meta_info(fp, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + fp.getvalue() + encode_dataset(
        ds, transfer_syntax_uid)


def decode_file(data: bytes | bytearray | memoryview) -> tuple[Dataset, Dataset]:
    """(File Meta Information, data set) of a Part 10 file, decoded like ``decode_dataset``.

    Unlike ``pydicom.dcmread``, OW values of a big endian file come back in little endian
    byte order, so a stored file compares equal to the instance that was sent.
    """
    raw = bytes(data)
    if len(raw) < 132 or raw[128:132] != b"DICM":
        raise DecodeError("not a DICOM Part 10 file: no 'DICM' prefix at byte 128")
    meta_end = 132
    for info in walk_elements(raw[132:], EXPLICIT_VR_LE):
        if info.tag >> 16 != 0x0002 or info.length == UNDEFINED_LENGTH:
            break
        meta_end = 132 + info.value_offset + info.length
    try:
        meta = read_dataset(io.BytesIO(raw[132:meta_end]), False, True)
        ts = str(meta.TransferSyntaxUID).rstrip("\x00 ")
    except Exception as exc:  # pydicom raises many types on bad input
        raise DecodeError(f"unreadable File Meta Information: {exc!r}") from None
    return meta, decode_dataset(raw[meta_end:], ts)


def iter_encoded(
    kind: str,
    *,
    seed: int = 0,
    transfer_syntax_uid: str,
    pixel_bytes: int,
    chunk_size: int = 1 << 20,
    index: int = 0,
) -> tuple[int, Iterator[memoryview | bytes]]:
    """Total length and pieces of an encoded instance whose Pixel Data is made on the fly.

    ``pixel_bytes`` is rounded down to whole frames (at least one); the result is
    byte-identical to ``encode_dataset(make_instance(kind, seed=seed, index=index,
    frames=F), ts)`` for that frame count F. Uncompressed, non-deflated syntaxes only.
    Memory stays around ``chunk_size`` whatever the size: Pixel Data pieces are read-only
    views of one shared pattern buffer, so nothing is allocated per piece.
    """
    enc = ts_encoding(transfer_syntax_uid)
    if enc.deflated or transfer_syntax_uid not in UNCOMPRESSED_TRANSFER_SYNTAXES:
        raise ValueError(f"streaming needs an uncompressed, non-deflated transfer syntax, "
                         f"not {transfer_syntax_uid}")
    spec = KINDS.get(kind)
    if spec is None or not spec.has_pixels:
        raise ValueError(f"kind {kind!r} has no Pixel Data to stream")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    frames = frames_for_pixel_bytes(kind, pixel_bytes)
    head_ds = build_instance(kind, seed=seed, index=index, frames=frames, with_pixels=False)
    head = encode_dataset(head_ds, transfer_syntax_uid)
    period = pixel_period(spec, spec.columns, pattern_offset(seed, kind, index),
                          little=enc.little)
    n = spec.frame_bytes() * frames
    pad = n & 1
    vr = "OW" if spec.bits_allocated > 8 else "OB"
    header = element_header(PIXEL_DATA_TAG, vr, n + pad, implicit=enc.implicit, little=enc.little)
    total = len(head) + len(header) + n + pad

    def pieces() -> Iterator[memoryview | bytes]:
        yield head
        yield header
        p = len(period)
        # Long enough for any chunk starting anywhere within one period.
        view = memoryview(period * (chunk_size // p + 2))
        pos = 0
        while pos < n:
            take = min(chunk_size, n - pos)
            start = pos % p
            yield view[start:start + take]
            pos += take
        if pad:
            yield b"\x00"

    return total, pieces()


def uid_offsets(encoded: bytes | bytearray | memoryview, ts: str) -> dict[str, tuple[int, int]]:
    """Byte offset and length of the top-level UID values (keywords of ``UID_TAGS``).

    For patching per-instance UIDs in a pre-encoded data set; not possible when deflated.
    """
    if ts_encoding(ts).deflated:
        raise ValueError("UID offsets do not exist in a deflated encoding")
    found: dict[str, tuple[int, int]] = {}
    for info in walk_elements(encoded, ts):
        name = UID_TAGS.get(info.tag)
        if name is not None:
            found[name] = (info.value_offset, info.length)
    return found


def patch_uid(buf: bytearray | memoryview, offset: int, length: int, new_uid: str) -> None:
    """Write ``new_uid`` into the value slot at ``offset``, NUL-padded to ``length`` bytes."""
    raw = new_uid.encode("ascii")
    if len(raw) > length:
        raise ValueError(f"UID of {len(raw)} bytes does not fit a {length}-byte value")
    if offset < 0 or offset + length > len(buf):
        raise ValueError("UID slot outside the buffer")
    buf[offset:offset + length] = raw + b"\x00" * (length - len(raw))


# VRs a receiver may legitimately change between encodings (implicit VR decoding, PS3.5 A.1).
_EQUIVALENT_VRS = frozenset({"OB", "OW", "OB or OW", "UN"})


def dataset_differences(a: Dataset, b: Dataset, *, path: str = "") -> list[str]:
    """Element-by-element differences between two data sets (empty list: equal).

    OB/OW/UN VR changes are not differences (implicit VR decoding cannot tell them apart);
    values are compared as pydicom decodes them, sequences item by item.
    """
    diffs: list[str] = []
    tags_a, tags_b = set(a.keys()), set(b.keys())
    for tag in sorted(tags_a ^ tags_b):
        side = "first" if tag in tags_a else "second"
        diffs.append(f"{path}{tag} only in the {side} data set")
    for tag in sorted(tags_a & tags_b):
        ea, eb = a[tag], b[tag]
        where = f"{path}{ea.tag}"
        if ea.VR != eb.VR and not {ea.VR, eb.VR} <= _EQUIVALENT_VRS:
            diffs.append(f"{where} VR {ea.VR} != {eb.VR}")
        elif ea.VR == "SQ" and eb.VR == "SQ":
            if len(ea.value) != len(eb.value):
                diffs.append(f"{where} {len(ea.value)} items != {len(eb.value)} items")
                continue
            for n, (ia, ib) in enumerate(zip(ea.value, eb.value, strict=True)):
                diffs.extend(dataset_differences(ia, ib, path=f"{where}[{n}]."))
        elif ea.value != eb.value:
            diffs.append(f"{where} value {_short(ea.value)} != {_short(eb.value)}")
    return diffs


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
