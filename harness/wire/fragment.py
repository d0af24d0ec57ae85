"""DIMSE message fragmentation into P-DATA-TF PDUs and checked reassembly (PS3.8 Annex E).

Fragments are ``memoryview`` slices of the caller's buffers: splitting a 100 MB data set
copies nothing. Reassembly is streaming: command fragments are collected (they are small),
data set fragments are handed out one by one so a receiver can write them straight to disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.wire.constants import MCH_COMMAND, MCH_LAST, MCH_RESERVED_MASK, PDV_HEADER_LEN
from harness.wire.findings import Finding
from harness.wire.pdu import PDV, PDataTF

Packing = Literal["separate", "together"]


def max_fragment(max_pdu: int) -> int:
    """Largest fragment that fits one PDV in a P-DATA-TF of ``max_pdu`` (0 = unlimited)."""
    if max_pdu == 0:
        return 1 << 31
    if max_pdu <= PDV_HEADER_LEN:
        raise ValueError(f"maximum PDU length {max_pdu} leaves no room for a PDV (needs > 6)")
    # Keep fragments even (PS3.8 E.1) so odd maximums never produce odd splits; a maximum
    # of 7 leaves room for one byte only, and a zero-byte fragment could never progress.
    room = max_pdu - PDV_HEADER_LEN
    return room & ~1 if room > 1 else room


def split(data: bytes | bytearray | memoryview, size: int) -> Iterator[memoryview]:
    view = memoryview(data)
    if not len(view):
        return
    for start in range(0, len(view), size):
        yield view[start: start + size]


def message_pdvs(
    context_id: int,
    command: bytes | memoryview,
    data: bytes | bytearray | memoryview | None,
    max_pdu: int,
    *,
    command_splits: Sequence[int] | None = None,
    data_splits: Sequence[int] | None = None,
) -> Iterator[PDV]:
    """PDVs for one message: command fragments then data fragments, last bits set.

    ``command_splits``/``data_splits`` force fragment boundaries (byte offsets) for framing
    scenarios; otherwise fragments are as large as ``max_pdu`` allows.
    """
    limit = max_fragment(max_pdu)
    yield from _pdvs(context_id, command, limit, MCH_COMMAND, command_splits)
    if data is not None:
        yield from _pdvs(context_id, data, limit, 0, data_splits)


def pieces(payload: bytes | bytearray | memoryview, limit: int,
           splits: Sequence[int] | None = None) -> list[memoryview]:
    """Cut ``payload`` at the forced ``splits`` and then into pieces of at most ``limit``."""
    view = memoryview(payload)
    bounds = [0, *sorted(s for s in (splits or ()) if 0 < s < len(view)), len(view)]
    out: list[memoryview] = []
    for lo, hi in itertools.pairwise(bounds):
        out.extend(split(view[lo:hi], limit))
    return out or [view[0:0]]


def _pdvs(context_id: int, payload: bytes | bytearray | memoryview, limit: int, kind: int,
          splits: Sequence[int] | None) -> Iterator[PDV]:
    parts = pieces(payload, limit, splits)
    last = len(parts) - 1
    for i, piece in enumerate(parts):
        yield PDV(context_id, kind | (MCH_LAST if i == last else 0), piece)


def pack(pdvs: Iterator[PDV] | Sequence[PDV], max_pdu: int,
         packing: Packing = "separate") -> Iterator[PDataTF]:
    """Group PDVs into P-DATA-TF PDUs: one PDV each, or as many as fit under ``max_pdu``."""
    if packing == "separate":
        for pdv in pdvs:
            yield PDataTF([pdv])
        return
    limit = (1 << 32) - 1 if max_pdu == 0 else max_pdu
    batch: list[PDV] = []
    size = 0
    for pdv in pdvs:
        if batch and size + pdv.item_size > limit:
            yield PDataTF(batch)
            batch, size = [], 0
        batch.append(pdv)
        size += pdv.item_size
    if batch:
        yield PDataTF(batch)


def fragment(
    context_id: int,
    command: bytes | memoryview,
    data: bytes | bytearray | memoryview | None,
    max_pdu: int,
    packing: Packing = "separate",
) -> list[PDataTF]:
    """All P-DATA-TF PDUs of one message, respecting the receiver's ``max_pdu``."""
    return list(pack(message_pdvs(context_id, command, data, max_pdu), max_pdu, packing))


# --- reassembly ---------------------------------------------------------------------------


@dataclass(slots=True)
class CommandComplete:
    context_id: int
    command: bytes
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class DataFragment:
    context_id: int
    data: memoryview
    last: bool
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class Misframed:
    """A PDV that breaks the message structure; ``fatal`` ones leave no way to continue."""

    pdv: PDV
    findings: list[Finding]
    fatal: bool = True


AssemblyEvent = CommandComplete | DataFragment | Misframed


class MessageAssembler:
    """Checks and reassembles the PDV stream of one association, one PDV at a time.

    After a :class:`CommandComplete`, the caller decodes the command and calls
    :meth:`expect_data` with whether a data set follows (Command Data Set Type). That keeps
    this module free of command-set parsing.
    """

    __slots__ = ("_command", "_context", "_findings", "_state")

    def __init__(self) -> None:
        self._state: Literal["idle", "command", "decide", "data"] = "idle"
        self._command: list[bytes] = []
        self._findings: list[Finding] = []
        self._context: int | None = None

    @property
    def in_message(self) -> bool:
        return self._state != "idle"

    @property
    def receiving_data(self) -> bool:
        return self._state == "data"

    def expect_data(self, has_data_set: bool) -> None:
        self._state = "data" if has_data_set else "idle"
        if not has_data_set:
            self._context = None

    def reset(self) -> None:
        self._state, self._command, self._context = "idle", [], None
        self._findings = []

    def take_data(self, context_id: int, last: bool) -> bool:
        """Fast path for the common PDV: a data set fragment (MCH 00H/02H) continuing the
        data set being received on the same context. Updates the state as :meth:`feed`
        would and returns True; returns False (state untouched) for anything else, which
        then goes through :meth:`feed`."""
        if self._state != "data" or context_id != self._context:
            return False
        if last:
            self._state = "idle"
            self._context = None
        return True

    def feed(self, pdv: PDV) -> AssemblyEvent | None:
        findings: list[Finding] = []
        mch = pdv.mch
        if mch & MCH_RESERVED_MASK:
            findings.append(Finding(None, "Message Control Header", "bits 2-7 zero",
                                    f"{mch:02X}H", "PS3.8 E.2", "warning"))
        is_command = bool(mch & MCH_COMMAND)
        last = bool(mch & MCH_LAST)
        state = self._state
        if state == "decide":
            return Misframed(pdv, [Finding(None, "assembler", "expect_data() after a command",
                                           "another PDV", "harness")])
        if self._context is not None and pdv.context_id != self._context:
            return Misframed(pdv, [*findings, Finding(
                None, "Presentation-context-ID",
                f"{self._context} (same context for every fragment of a message)",
                str(pdv.context_id), "PS3.8 E.1")])
        if is_command:
            if state == "data":
                return Misframed(pdv, [*findings, Finding(
                    None, "PDV type", "a data set fragment (messages are not interleaved)",
                    "a command fragment inside a data set", "PS3.8 E.1")])
            self._context = pdv.context_id
            self._command.append(bytes(pdv.data))
            self._findings += findings
            if not last:
                self._state = "command"
                return None
            command = b"".join(self._command)
            found, self._command, self._findings = self._findings, [], []
            self._state = "decide"
            return CommandComplete(pdv.context_id, command, found)
        if state != "data":
            what = "a command fragment first" if state == "idle" else "the rest of the command"
            return Misframed(pdv, [*findings, Finding(None, "PDV type", what,
                                                      "a data set fragment", "PS3.8 E.1")])
        if last:
            self._state = "idle"
            self._context = None
        return DataFragment(pdv.context_id, memoryview(pdv.data), last, findings)
