"""Seeded network fuzzing of the reference SCP: cases, the peer that plays them, the oracles.

A case is one TCP connection: a valid exchange (A-ASSOCIATE-RQ, C-STORE-RQ command and data
set in P-DATA-TF PDUs, A-RELEASE-RQ) damaged by one or two named mutations, or a stream that
is not DICOM at all, cut into chunks. ``make_case(seed, index)`` is deterministic, so a
failing case is named by its seed and index and saved as JSON (``save_case``) to be replayed
as a regression test (``tests/data/fuzz/*.json``).

The peer sends the chunks, reads until the SCP closes or stays quiet for a moment, and
notes every C-STORE-RSP it got. The oracles are checked by the tests: nothing on the SCP's
stderr but its own log lines, every stored file answered with Success (or a warning), nothing
written outside the storage directory, the SCP answering a liveness probe, memory bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.uid import generate_uid

from harness.scp.storage import safe_name
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE
from harness.wire.dimse import CEchoRQ, CStoreRQ, decode_command, encode_command
from harness.wire.fragment import fragment
from harness.wire.items import PresentationContextRQ
from harness.wire.pdu import ReleaseRQ, associate_rq
from tests._scp_support import CT, VERIFICATION, encode_dataset, make_ct

CORPUS = Path(__file__).parent / "data" / "fuzz"
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"

# Statuses after which a stored file is legitimate: Success and the Warning range.
STORED_OK = re.compile(r"^0x(0000|B[0-9A-F]{3})$")


@dataclass(slots=True)
class Case:
    name: str
    description: str
    chunks: list[bytes]
    reset: bool = False  # end with RST instead of FIN
    # Regression cases only: this SOP Instance UID must not be stored (invalid data set),
    # and what the SCP must answer: "abort", "reject" or "failure" (a C-STORE-RSP failure).
    not_stored: str | None = None
    expect: str | None = None

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "description": self.description,
                           "reset": self.reset, "not_stored": self.not_stored,
                           "expect": self.expect,
                           "chunks": [c.hex() for c in self.chunks]}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Case:
        data = json.loads(text)
        return cls(data["name"], data["description"], [bytes.fromhex(c) for c in data["chunks"]],
                   bool(data.get("reset", False)), data.get("not_stored"), data.get("expect"))


# --- the valid exchange -----------------------------------------------------------------------

_DATASETS: dict[str, bytes] = {}


def _dataset(uid: str, ts: str) -> bytes:
    # The template is encoded once per transfer syntax; each case gets its own UID in place
    # (same length: UIDs from one root and counter width).
    key = ts
    if key not in _DATASETS:
        _DATASETS[key] = encode_dataset(make_ct(f"{UID_ROOT}.{'9' * 8}"), ts)
    return _DATASETS[key].replace(f"{UID_ROOT}.{'9' * 8}".encode(), uid.encode())


def valid_exchange(uid: str, *, ts: str = EXPLICIT_VR_LE, max_pdu: int = 16384,
                   data_pdu: int = 512) -> list[bytes]:
    """The PDUs of one clean C-STORE on a fresh association, released at the end."""
    pcs = [PresentationContextRQ(1, CT, [ts]), PresentationContextRQ(3, VERIFICATION,
                                                                    [IMPLICIT_VR_LE])]
    out = [associate_rq("ANY-SCP", "FUZZER", pcs, max_pdu=max_pdu).encode()]
    command = encode_command(CStoreRQ(1, CT, uid, 0, 0x0000))
    for pdu in fragment(1, command, _dataset(uid, ts), data_pdu):
        out.append(b"".join(bytes(p) for p in pdu.encode_parts()))
    out.append(ReleaseRQ().encode())
    return out


def echo_exchange() -> list[bytes]:
    pcs = [PresentationContextRQ(1, VERIFICATION, [IMPLICIT_VR_LE])]
    out = [associate_rq("ANY-SCP", "PROBE", pcs).encode()]
    for pdu in fragment(1, encode_command(CEchoRQ(7)), None, 16384):
        out.append(b"".join(bytes(p) for p in pdu.encode_parts()))
    out.append(ReleaseRQ().encode())
    return out


# --- mutations --------------------------------------------------------------------------------

Mutation = Callable[[list[bytes], random.Random], str]


def _pick(pdus: list[bytes], rng: random.Random, kind: int | None = None) -> int:
    choices = [i for i, p in enumerate(pdus) if kind is None or (p and p[0] == kind)]
    return rng.choice(choices or list(range(len(pdus))))


def _flip(pdus: list[bytes], rng: random.Random) -> str:
    i = _pick(pdus, rng)
    b = bytearray(pdus[i])
    n = rng.randint(1, 4)
    for _ in range(n):
        b[rng.randrange(len(b))] = rng.randrange(256)
    pdus[i] = bytes(b)
    return f"{n} random byte(s) in PDU {i}"


def _length_lie(pdus: list[bytes], rng: random.Random) -> str:
    i = _pick(pdus, rng)
    value = rng.choice([0, 1, 2, 5, 6, 7, 65535, 65536, 65537, 1 << 20, (1 << 20) + 6,
                        0xFFFFFFFF, len(pdus[i]) - 6 + rng.choice([-2, -1, 1, 2, 100])])
    pdus[i] = pdus[i][:2] + struct.pack(">I", value & 0xFFFFFFFF) + pdus[i][6:]
    return f"PDU-length of PDU {i} set to {value}"


def _pdv_length_lie(pdus: list[bytes], rng: random.Random) -> str:
    i = _pick(pdus, rng, 0x04)
    if pdus[i][0] != 0x04 or len(pdus[i]) < 12:
        return _flip(pdus, rng)
    value = rng.choice([0, 1, 2, 3, 0xFFFFFFFF, len(pdus[i]) - 10 + rng.choice([-2, 2, 9])])
    pdus[i] = pdus[i][:6] + struct.pack(">I", value & 0xFFFFFFFF) + pdus[i][10:]
    return f"PDV item length of PDU {i} set to {value}"


def _truncate(pdus: list[bytes], rng: random.Random) -> str:
    i = _pick(pdus, rng)
    cut = rng.randrange(len(pdus[i]))
    del pdus[i + 1:]
    pdus[i] = pdus[i][:cut]
    return f"stream cut inside PDU {i} at byte {cut}"


def _reorder(pdus: list[bytes], rng: random.Random) -> str:
    op = rng.choice(["drop", "duplicate", "swap", "move-release"])
    i = _pick(pdus, rng)
    if op == "drop":
        del pdus[i]
    elif op == "duplicate":
        pdus.insert(i, pdus[i])
    elif op == "swap" and len(pdus) > 1:
        j = _pick(pdus, rng)
        pdus[i], pdus[j] = pdus[j], pdus[i]
    else:
        pdus.insert(rng.randrange(1, max(2, len(pdus))), ReleaseRQ().encode())
    return f"PDU order: {op} at {i}"


def _pdu_type(pdus: list[bytes], rng: random.Random) -> str:
    i = _pick(pdus, rng)
    t = rng.choice([0, 1, 2, 3, 5, 6, 7, 8, 0x10, 0xFF])
    pdus[i] = bytes([t]) + pdus[i][1:]
    return f"PDU {i} type set to {t:#x}"


def _max_length(pdus: list[bytes], rng: random.Random) -> str:
    rq = pdus[0]
    at = rq.find(b"\x51\x00\x00\x04")
    if at < 0:
        return _flip(pdus, rng)
    value = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 0xFFFFFFFF])
    pdus[0] = rq[:at + 4] + struct.pack(">I", value) + rq[at + 8:]
    return f"Maximum Length {value}"


def _command_element(pdus: list[bytes], rng: random.Random) -> str:
    """Change the value length of one command element (and pad/cut its value)."""
    i = next((k for k, p in enumerate(pdus) if len(p) > 11 and p[0] == 4 and p[11] & 1), None)
    if i is None:
        return _flip(pdus, rng)
    cmd = bytearray(pdus[i][12:])
    offsets, pos = [], 0
    while pos + 8 <= len(cmd):
        step = 8 + struct.unpack_from("<I", cmd, pos + 4)[0]
        if pos + step > len(cmd):  # a length already damaged: stop at what is whole
            break
        offsets.append(pos)
        pos += step
    if not offsets:
        return _flip(pdus, rng)
    pos = rng.choice(offsets[1:] or offsets)
    tag = struct.unpack_from("<HH", cmd, pos)
    old = struct.unpack_from("<I", cmd, pos + 4)[0]
    new = rng.choice([0, 1, 3, 4, 6, old + 2, max(0, old - 2), 0xFFFFFFFF])
    value = bytes(cmd[pos + 8:pos + 8 + old])
    value = (value + bytes(max(0, new - len(value))))[:new] if new != 0xFFFFFFFF else value
    cmd[pos:pos + 8 + old] = struct.pack("<HHI", *tag, new) + value
    body = bytes(cmd)
    pdus[i] = struct.pack(">BBI", 4, 0, len(body) + 6) + struct.pack(">IBB", len(body) + 2,
                                                                      pdus[i][10], pdus[i][11]) \
        + body
    return f"command element ({tag[0]:04X},{tag[1]:04X}) length {old} -> {new}"


_VRS = [b"FD", b"UL", b"AT", b"FL", b"SL", b"OD", b"US", b"SQ", b"UN", b"XX", b"OB"]


def _dataset_vr(pdus: list[bytes], rng: random.Random) -> str:
    """Change the VR of one Explicit VR element of the first data set fragment."""
    i = next((k for k, p in enumerate(pdus) if len(p) > 11 and p[0] == 4 and not p[11] & 1),
             None)
    if i is None:
        return _flip(pdus, rng)
    b = bytearray(pdus[i])
    spots = [m.start() for m in re.finditer(rb"[A-Z]{2}", b[12:])]
    if not spots:
        return _flip(pdus, rng)
    at = 12 + rng.choice(spots)
    vr = rng.choice(_VRS)
    b[at:at + 2] = vr
    pdus[i] = bytes(b)
    return f"data set bytes at {at - 12} of PDU {i} set to {vr.decode()}"


def _uid(pdus: list[bytes], rng: random.Random) -> str:
    """Put path-like or invalid characters into the SOP Instance UID of the command."""
    i = next((k for k, p in enumerate(pdus) if len(p) > 11 and p[0] == 4 and p[11] & 1), None)
    if i is None:
        return _flip(pdus, rng)
    tail = rng.choice([b"/../x", b"\\..\\", b"..", b"/", b"\x00", b"\xff"])
    at = pdus[i].rfind(b".")
    pdus[i] = pdus[i][:at] + tail + pdus[i][at + len(tail):]
    return f"SOP Instance UID of the command with {tail!r}"


def _chunking(pdus: list[bytes], rng: random.Random) -> str:
    return "chunked"  # the chunking itself (below) is the mutation


MUTATIONS: list[Mutation] = [_flip, _length_lie, _pdv_length_lie, _truncate, _reorder, _pdu_type,
                             _max_length, _command_element, _dataset_vr, _uid, _chunking]

FOREIGN = [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    bytes.fromhex("16030100a5010000a10303") + bytes(160),  # TLS ClientHello-ish
    b"SSH-2.0-OpenSSH_9.0\r\n",
    b"\x00" * 64,
    b"\xff" * 64,
]


def make_case(seed: int, index: int) -> Case:
    """Case ``index`` of the run with ``seed``: always the same bytes."""
    rng = random.Random(seed * 1_000_003 + index)
    uid = f"{UID_ROOT}.{seed % 100:02d}{index:06d}"
    if rng.random() < 0.05:
        junk = rng.choice(FOREIGN)
        if rng.random() < 0.5:
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        return Case(f"s{seed}-{index}", "not DICOM", [junk])
    ts = EXPLICIT_VR_LE if rng.random() < 0.8 else IMPLICIT_VR_LE
    pdus = valid_exchange(uid, ts=ts, data_pdu=rng.choice([64, 512, 16384]))
    notes = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        notes.append(rng.choice(MUTATIONS)(pdus, rng))
        pdus[:] = [p for p in pdus if p]  # a cut can leave an empty PDU: nothing to mutate
        if not pdus:
            break
    stream = b"".join(pdus)
    chunks: list[bytes] = []
    if "chunked" in notes or rng.random() < 0.2:
        pos = 0
        while pos < len(stream):
            step = rng.choice([1, 2, 7, 64, 1000])
            chunks.append(stream[pos:pos + step])
            pos += step
        chunks = chunks[:400]  # a slow drip, bounded
    else:
        chunks = [stream]
    return Case(f"s{seed}-{index}", "; ".join(notes), chunks, reset=rng.random() < 0.1)


def campaign_findings() -> list[Case]:
    """The defects of the first fuzzing campaign (issue 14), as regression cases."""
    cases = []
    uid = f"{UID_ROOT}.1401000001"
    pdus = valid_exchange(uid)
    cmd_at = 1
    body = bytearray(pdus[cmd_at][12:])
    at = body.index(struct.pack("<HHI", 0, 0x0700, 2))
    body[at:at + 10] = struct.pack("<HHI", 0, 0x0700, 4) + body[at + 8:at + 10] + b"\0\0"
    pdus[cmd_at] = struct.pack(">BBIIBB", 4, 0, len(body) + 6, len(body) + 2, 1, 3) + body
    cases.append(Case("finding-priority-4-bytes", "C-STORE-RQ Priority (0000,0700) of 4 bytes",
                      [b"".join(pdus)], not_stored=uid, expect="failure"))
    for value in (1, 6):
        uid = f"{UID_ROOT}.140200000{value}"
        pdus = valid_exchange(uid)
        at = pdus[0].index(b"\x51\x00\x00\x04")
        pdus[0] = pdus[0][:at + 4] + struct.pack(">I", value) + pdus[0][at + 8:]
        cases.append(Case(f"finding-max-length-{value}", f"A-ASSOCIATE-RQ Maximum Length {value}",
                          [b"".join(pdus)], not_stored=uid, expect="reject"))
    for length, drip in ((65537, False), (1048582, True)):
        pdus = valid_exchange(f"{UID_ROOT}.1403000001")
        head = pdus[0] + struct.pack(">BBI", 4, 0, length) + b"\0" * 64
        chunks = [head[i:i + 1] for i in range(len(head))] if drip else [head]
        cases.append(Case(f"finding-pdata-{length}{'-drip' if drip else ''}",
                          f"P-DATA-TF announcing {length} bytes"
                          f"{', one byte at a time' if drip else ''}", chunks, expect="abort"))
    for n, (keyword, vr) in enumerate(((b"Test^Patient", b"FD"), (b"HARNESS-1 ", b"UL"))):
        uid = f"{UID_ROOT}.140400000{n}"
        pdus = valid_exchange(uid, data_pdu=16384)
        i = next(k for k, p in enumerate(pdus) if len(p) > 11 and p[0] == 4 and not p[11] & 1)
        at = pdus[i].index(keyword) - 4
        pdus[i] = pdus[i][:at] + vr + pdus[i][at + 2:]
        cases.append(Case(f"finding-vr-{vr.decode().lower()}-{n}",
                          f"data set element {keyword.decode()!r} with VR {vr.decode()}",
                          [b"".join(pdus)], not_stored=uid, expect="failure"))
    return cases


# --- the peer ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Outcome:
    received: bytes = b""
    closed_by_scp: bool = False
    successes: set[str] = field(default_factory=set)  # SOP Instance UIDs answered Success


RELEASE_RP = b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"


async def play(port: int, case: Case, *, quiet: float = 0.15, limit: float = 3.0,
               until: bytes | None = None) -> Outcome:
    """Send the case's chunks, read until the SCP closes, is quiet for ``quiet`` s, or
    ``until`` arrived.

    A plain non-blocking socket rather than asyncio streams: when the SCP answers and closes
    while chunks are still going out, a write fails (the SCP's kernel resets), and a stream
    transport then drops what it had not read yet; the socket still gives it."""
    out = Outcome()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    got = bytearray()
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
        except (OSError, TimeoutError):
            return out
        deadline = loop.time() + limit
        try:
            for chunk in case.chunks:
                await asyncio.wait_for(loop.sock_sendall(sock, chunk), 2)
                if len(case.chunks) > 1 and _recv_ready(sock, got):
                    out.closed_by_scp = True  # answered and closed: stop dripping
                    break
        except (OSError, TimeoutError):
            out.closed_by_scp = True
        while not out.closed_by_scp and loop.time() < deadline and \
                (until is None or until not in got):
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), quiet)
            except TimeoutError:
                break
            except OSError:
                out.closed_by_scp = True
                break
            if not data:
                out.closed_by_scp = True
                break
            got += data
        if out.closed_by_scp:
            _recv_ready(sock, got)  # whatever is still queued in the kernel
    finally:
        if case.reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    out.received = bytes(got)
    out.successes = store_successes(out.received)
    return out


def _recv_ready(sock: socket.socket, got: bytearray) -> bool:
    """Append what can be read without waiting; True once the peer closed (or reset)."""
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True
        got += data


def store_successes(stream: bytes) -> set[str]:
    """Affected SOP Instance UIDs of the C-STORE-RSPs with Success or Warning in ``stream``."""
    return {uid for uid, status in store_responses(stream)
            if uid is not None and STORED_OK.match(f"0x{status:04X}")}


def answered_as_expected(expect: str, stream: bytes) -> bool:
    """``expect`` of a regression case against what the SCP sent."""
    if expect == "abort":
        return b"\x07\x00\x00\x00\x00\x04" in stream
    if expect == "reject":
        return stream[:1] == b"\x03"
    if expect == "failure":
        return any(status >= 0xA000 for _uid, status in store_responses(stream))
    raise ValueError(f"unknown expectation {expect!r}")


def store_responses(stream: bytes) -> list[tuple[str | None, int]]:
    """(Affected SOP Instance UID, Status) of every C-STORE-RSP in ``stream``."""
    found: list[tuple[str | None, int]] = []
    pos = 0
    command = bytearray()
    while pos + 6 <= len(stream):
        pdu_type, _r, length = struct.unpack_from(">BBI", stream, pos)
        body = stream[pos + 6:pos + 6 + length]
        pos += 6 + length
        if pdu_type != 4:
            continue
        p = 0
        while p + 6 <= len(body):
            size, _cid, mch = struct.unpack_from(">IBB", body, p)
            if mch & 1:
                command += body[p + 6:p + 4 + size]
                if mch & 2:
                    decoded = decode_command(bytes(command))
                    command.clear()
                    status, uid = decoded.elements.get(0x0900), decoded.elements.get(0x1000)
                    if decoded.elements.get(0x0100) == 0x8001 and isinstance(status, int):
                        found.append((uid if isinstance(uid, str) else None, status))
            p += 4 + size
    return found


async def probe(port: int, timeout: float = 5.0) -> bool:
    """Liveness: a C-ECHO on a fresh association gets its response and the release its RP."""
    case = Case("probe", "C-ECHO", [b"".join(echo_exchange())])
    try:
        out = await asyncio.wait_for(play(port, case, quiet=timeout, limit=timeout,
                                          until=RELEASE_RP), timeout + 1)
    except TimeoutError:
        return False
    return RELEASE_RP in out.received  # A-RELEASE-RP after the C-ECHO-RSP


# --- the SCP under test -----------------------------------------------------------------------

ALLOWED_STDERR = re.compile(r"^\d\d:\d\d:\d\d (association \d+ (from|ended)|store assoc=)")


@dataclass(slots=True)
class Serve:
    pid: int
    port: int
    storage: Path
    stderr: Path


@contextlib.contextmanager
def serve(root: Path, *, profile: Path | None = None) -> Iterator[Serve]:
    """``dicom-harness serve`` on a free port, storing in ``root/store``; stderr in a file."""
    storage = root / "store"
    err_path = root / "serve.stderr"
    args = [sys.executable, "-m", "harness.cli", "serve", "--port", "0", "--storage-dir",
            str(storage)]
    if profile is not None:
        args += ["--profile", str(profile)]
    with err_path.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on [\d.]+:(\d+)", line)
        assert match, f"serve did not start: {line!r} {err_path.read_text()}"
        yield Serve(proc.pid, int(match.group(1)), storage, err_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


def stderr_problems(path: Path) -> list[str]:
    """Lines of the SCP's stderr that are not its ordinary log lines."""
    text = path.read_text(errors="replace")
    lines = text.split("\n")[:-1]  # the last piece may be a line still being written
    return [line for line in lines if line.strip() and not ALLOWED_STDERR.match(line)]


def files_without_success(storage: Path, successes: set[str]) -> list[str]:
    """Stored instances (not temporaries) the peer never got a Success/Warning for."""
    answered = {safe_name(uid) for uid in successes}
    return sorted(p.name for p in storage.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name not in answered)


def rss(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(),
                      re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def fresh_uid() -> str:
    return generate_uid(prefix=UID_ROOT + ".")
