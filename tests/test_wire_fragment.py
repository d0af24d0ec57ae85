"""Tests for harness.wire.fragment: PS3.8 Annex E fragmentation within the peer's maximum
PDU length (PS3.8 D.1), zero-copy fragments, and checked reassembly."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.wire.constants import MCH_COMMAND, MCH_LAST
from harness.wire.decode import decode_pdu
from harness.wire.fragment import (
    CommandComplete,
    DataFragment,
    MessageAssembler,
    Misframed,
    fragment,
    max_fragment,
    message_pdvs,
    pack,
    pieces,
    split,
)
from harness.wire.pdu import PDV, PDataTF

COMMAND = bytes(range(1, 201))  # 200 bytes, even
DATA = bytes(range(256)) * 40  # 10240 bytes
MAX_PDUS = [0, 7, 8, 9, 64, 65, 255, 16384, 16385]


def pdu_length(pdu: PDataTF) -> int:
    """The PDU-length field of the encoded PDU (header excluded, PS3.8 9.3.1)."""
    data = pdu.encode()
    assert int.from_bytes(data[2:6], "big") == len(data) - 6
    return len(data) - 6


def all_pdvs(pdus: Sequence[PDataTF]) -> list[PDV]:
    return [pdv for pdu in pdus for pdv in pdu.pdvs]


def check_message(pdvs: list[PDV], command: bytes, data: bytes | None, context_id: int) -> None:
    commands = [p for p in pdvs if p.mch & MCH_COMMAND]
    datas = [p for p in pdvs if not p.mch & MCH_COMMAND]
    assert pdvs[: len(commands)] == commands  # command fragments come first
    assert b"".join(bytes(p.data) for p in commands) == command
    assert [p.is_last for p in commands] == [False] * (len(commands) - 1) + [True]
    if data is None:
        assert datas == []
    else:
        assert b"".join(bytes(p.data) for p in datas) == data
        assert [p.is_last for p in datas] == [False] * (len(datas) - 1) + [True]
    assert {p.context_id for p in pdvs} == {context_id}
    assert all(p.mch & ~(MCH_COMMAND | MCH_LAST) == 0 for p in pdvs)


@pytest.mark.parametrize("packing", ["separate", "together"])
@pytest.mark.parametrize("max_pdu", MAX_PDUS)
def test_fragment_respects_max_pdu(max_pdu: int, packing: str) -> None:
    pdus = fragment(3, COMMAND, DATA, max_pdu, packing)  # type: ignore[arg-type]
    for pdu in pdus:
        if max_pdu:
            assert pdu_length(pdu) <= max_pdu
        assert pdu.pdvs
        # Every PDU decodes cleanly except for odd fragments forced by max_pdu 7.
        _, findings = decode_pdu(pdu.encode())
        assert [f for f in findings if f.severity == "error"] == []
        if max_pdu != 7:
            assert findings == []
    pdvs = all_pdvs(pdus)
    check_message(pdvs, COMMAND, DATA, 3)
    if max_pdu == 0:
        assert len(pdvs) == 2  # unlimited: one fragment for the command, one for the data
    elif max_pdu == 7:
        assert all(len(p.data) == 1 for p in pdvs)  # only one byte fits
    else:
        assert all(len(p.data) % 2 == 0 for p in pdvs)  # even payloads give even fragments
        # Fragments are as large as allowed: only the last of each kind is shorter.
        limit = max_fragment(max_pdu)
        for kind in (MCH_COMMAND, 0):
            sizes = [len(p.data) for p in pdvs if p.mch & MCH_COMMAND == kind]
            assert all(s == limit for s in sizes[:-1])
    if packing == "separate":
        assert all(len(pdu.pdvs) == 1 for pdu in pdus)


def test_max_fragment() -> None:
    assert max_fragment(0) == 1 << 31
    assert max_fragment(7) == 1
    assert max_fragment(8) == 2
    assert max_fragment(9) == 2
    assert max_fragment(16384) == 16378
    assert max_fragment(16385) == 16378
    for bad in (1, 6, -5):
        with pytest.raises(ValueError, match="no room"):
            max_fragment(bad)


@settings(max_examples=150, deadline=None)
@given(st.integers(7, 5000), st.binary(min_size=1, max_size=300).map(lambda b: b * 7),
       st.sampled_from(["separate", "together"]), st.integers(1, 255))
def test_fragment_any_max_pdu(max_pdu: int, data: bytes, packing: str, context_id: int) -> None:
    command = data[:50] or b"c"
    pdus = fragment(context_id, command, data, max_pdu, packing)  # type: ignore[arg-type]
    assert all(pdu_length(pdu) <= max_pdu for pdu in pdus)
    check_message(all_pdvs(pdus), command, data, context_id)
    if max_pdu >= 8:
        # Odd sizes only where the payload itself ends.
        for payload_kind in (MCH_COMMAND, 0):
            frags = [p for p in all_pdvs(pdus) if p.mch & MCH_COMMAND == payload_kind]
            assert all(len(p.data) % 2 == 0 for p in frags[:-1])


def test_together_packs_several_pdvs_per_pdu() -> None:
    small = fragment(1, COMMAND, DATA[:500], 1024, "together")
    assert len(small) == 1 and len(small[0].pdvs) == 2
    pdvs = list(message_pdvs(1, COMMAND, DATA, 1024, data_splits=range(0, len(DATA), 300)))
    pdus = list(pack(pdvs, 1024, "together"))
    assert all(len(p.pdvs) >= 2 for p in pdus[:-1])
    assert all(pdu_length(p) <= 1024 for p in pdus)
    assert all_pdvs(pdus) == pdvs
    # Each PDU is as full as the next PDV allows.
    for pdu, nxt in itertools.pairwise(pdus):
        assert pdu_length(pdu) + nxt.pdvs[0].item_size > 1024
    # Command and data share the first PDU (PS3.8 E.1 Note).
    assert {p.is_command for p in pdus[0].pdvs} == {True, False}
    # Unlimited: everything in one PDU.
    assert len(fragment(1, COMMAND, DATA, 0, "together")) == 1


def test_pack_generic() -> None:
    pdvs = [PDV(1, 0, b"\x00" * 10) for _ in range(5)]  # item size 16 each
    assert [len(p.pdvs) for p in pack(pdvs, 40, "together")] == [2, 2, 1]
    assert [len(p.pdvs) for p in pack(iter(pdvs), 48, "together")] == [3, 2]
    assert [len(p.pdvs) for p in pack(pdvs, 40)] == [1] * 5
    assert list(pack([], 40, "together")) == []


def test_command_and_data_splits_honoured() -> None:
    pdvs = list(message_pdvs(5, COMMAND, DATA, 16384, command_splits=[10, 100],
                             data_splits=[4, 6, 7, 5000]))
    assert [len(p.data) for p in pdvs if p.is_command] == [10, 90, 100]
    assert [len(p.data) for p in pdvs if not p.is_command] == [4, 2, 1, 4993, len(DATA) - 5000]
    check_message(pdvs, COMMAND, DATA, 5)


def test_splits_combine_with_max_pdu_and_ignore_out_of_range() -> None:
    pdvs = list(message_pdvs(1, COMMAND, None, 64, command_splits=[0, 3, 3, 500, -1]))
    sizes = [len(p.data) for p in pdvs]
    assert sizes == [3, 58, 58, 58, 23]
    check_message(pdvs, COMMAND, None, 1)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(DATA)), max_size=12), st.sampled_from([0, 64, 65, 4096]))
def test_any_data_splits_are_boundaries(splits: list[int], max_pdu: int) -> None:
    pdvs = [p for p in message_pdvs(1, COMMAND, DATA, max_pdu, data_splits=splits)
            if not p.is_command]
    boundaries, pos = set(), 0
    for p in pdvs:
        pos += len(p.data)
        boundaries.add(pos)
    assert {s for s in splits if 0 < s < len(DATA)} <= boundaries
    assert b"".join(bytes(p.data) for p in pdvs) == DATA


def test_fragments_are_views_into_the_original_buffers() -> None:
    command = bytes(COMMAND)
    data = bytearray(DATA)
    pdvs = list(message_pdvs(1, command, data, 512))
    assert all(isinstance(p.data, memoryview) for p in pdvs)
    assert all(p.data.obj is command for p in pdvs if p.is_command)  # type: ignore[union-attr]
    assert all(p.data.obj is data for p in pdvs if not p.is_command)  # type: ignore[union-attr]
    view = memoryview(data)
    assert all(p.data.obj is data for p in message_pdvs(1, command, view, 512)  # type: ignore[union-attr]
               if not p.is_command)
    # The encoded parts reference the same memory: a change shows through.
    parts = fragment(1, command, data, 512)[-1].encode_parts()
    data[-1] ^= 0xFF
    assert bytes(parts[-1])[-1] == data[-1]


def test_fragmenting_large_data_copies_nothing() -> None:
    data = bytes(8 << 20)
    tracemalloc.start()
    try:
        pdus = fragment(1, COMMAND, data, 16384)
        parts = [part for pdu in pdus for part in pdu.encode_parts()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(len(p) for p in parts) == len(data) + len(COMMAND) + 12 * len(pdus)
    assert peak < len(data) // 4  # objects only: no fragment bytes were copied


def test_empty_and_absent_data() -> None:
    assert [p.mch for p in message_pdvs(1, b"ab", None, 64)] == [MCH_COMMAND | MCH_LAST]
    pdvs = list(message_pdvs(1, b"ab", b"", 64))
    assert [(p.mch, len(p.data)) for p in pdvs] == [(3, 2), (MCH_LAST, 0)]
    assert list(split(b"", 4)) == []
    assert [bytes(v) for v in split(b"abcde", 2)] == [b"ab", b"cd", b"e"]


def test_pieces() -> None:
    data = bytes(range(20))
    parts = pieces(data, 6, [3, 3, 25, 0])
    assert [bytes(p) for p in parts] == [data[:3], data[3:9], data[9:15], data[15:]]
    assert all(p.obj is data for p in parts)
    empty = pieces(b"", 6)
    assert len(empty) == 1 and len(empty[0]) == 0


def test_max_pdu_too_small_raises() -> None:
    with pytest.raises(ValueError):
        fragment(1, COMMAND, DATA, 6)


# --- reassembly -----------------------------------------------------------------------------


def run(assembler: MessageAssembler, pdvs: Sequence[PDV],
        has_data: bool = True) -> list[CommandComplete | DataFragment | Misframed]:
    events: list[CommandComplete | DataFragment | Misframed] = []
    for pdv in pdvs:
        event = assembler.feed(pdv)
        if event is None:
            continue
        events.append(event)
        if isinstance(event, CommandComplete):
            assembler.expect_data(has_data)
    return events


def test_happy_path() -> None:
    asm = MessageAssembler()
    assert not asm.in_message
    events = run(asm, list(message_pdvs(1, COMMAND, DATA, 4096)))
    assert isinstance(events[0], CommandComplete)
    assert (events[0].context_id, events[0].command, events[0].findings) == (1, COMMAND, [])
    frags = events[1:]
    assert all(isinstance(e, DataFragment) and e.findings == [] for e in frags)
    assert b"".join(bytes(e.data) for e in frags if isinstance(e, DataFragment)) == DATA
    assert [e.last for e in frags if isinstance(e, DataFragment)] == [False, False, True]
    assert not asm.in_message and not asm.receiving_data


def test_command_split_in_three_and_data_in_many() -> None:
    asm = MessageAssembler()
    cmd = list(message_pdvs(7, COMMAND, None, 16384, command_splits=[50, 120]))
    assert len(cmd) == 3
    assert asm.feed(cmd[0]) is None
    assert asm.in_message and not asm.receiving_data
    assert asm.feed(cmd[1]) is None
    done = asm.feed(cmd[2])
    assert isinstance(done, CommandComplete) and done.command == COMMAND
    asm.expect_data(True)
    assert asm.receiving_data
    data_pdvs = [p for p in message_pdvs(7, b"x", DATA, 8) if not p.is_command]
    assert len(data_pdvs) == len(DATA) // 2
    out = bytearray()
    for pdv in data_pdvs:
        event = asm.feed(pdv)
        assert isinstance(event, DataFragment)
        out += event.data
    assert out == DATA
    assert not asm.in_message


def test_command_without_data_set() -> None:
    asm = MessageAssembler()
    events = run(asm, list(message_pdvs(1, COMMAND, None, 0)) * 2, has_data=False)
    assert [type(e) for e in events] == [CommandComplete, CommandComplete]
    assert not asm.in_message


def test_data_before_command() -> None:
    asm = MessageAssembler()
    event = asm.feed(PDV(1, MCH_LAST, b"ab"))
    assert isinstance(event, Misframed) and event.fatal
    assert event.findings[0].expected == "a command fragment first"
    assert event.findings[0].section == "PS3.8 E.1"


def test_data_inside_a_command() -> None:
    asm = MessageAssembler()
    assert asm.feed(PDV(1, MCH_COMMAND, b"ab")) is None
    event = asm.feed(PDV(1, 0, b"cd"))
    assert isinstance(event, Misframed)
    assert event.findings[0].expected == "the rest of the command"


def test_context_change_mid_message() -> None:
    asm = MessageAssembler()
    run(asm, [PDV(1, 3, COMMAND)])
    event = asm.feed(PDV(3, 2, b"ab"))
    assert isinstance(event, Misframed)
    f = event.findings[0]
    assert (f.field, f.found) == ("Presentation-context-ID", "3")
    # Also within the command fragments.
    asm2 = MessageAssembler()
    asm2.feed(PDV(1, MCH_COMMAND, b"ab"))
    assert isinstance(asm2.feed(PDV(3, 3, b"cd")), Misframed)


def test_command_fragment_inside_data_set_is_interleaving() -> None:
    asm = MessageAssembler()
    events = run(asm, [PDV(1, 3, COMMAND), PDV(1, 0, b"half"), PDV(1, 3, COMMAND)])
    assert isinstance(events[-1], Misframed)
    assert events[-1].findings[0].found == "a command fragment inside a data set"


def test_pdv_before_expect_data_is_misframed() -> None:
    asm = MessageAssembler()
    assert isinstance(asm.feed(PDV(1, 3, COMMAND)), CommandComplete)
    event = asm.feed(PDV(1, 2, b"ab"))
    assert isinstance(event, Misframed) and event.findings[0].field == "assembler"


def test_mch_reserved_bits_warning_but_processed() -> None:
    asm = MessageAssembler()
    events = run(asm, [PDV(1, 0xFD, b"ab"), PDV(1, 0xFF, b"cd"), PDV(1, 0xFC, b"ef"),
                       PDV(1, 0xFE, b"gh")])
    done, first, last = events
    assert isinstance(done, CommandComplete) and done.command == b"abcd"
    assert [f.severity for f in done.findings] == ["warning", "warning"]
    assert [f.found for f in done.findings] == ["FDH", "FFH"]
    assert isinstance(first, DataFragment) and not first.last
    assert isinstance(last, DataFragment) and last.last and bytes(last.data) == b"gh"
    assert [f.found for f in last.findings] == ["FEH"]
    assert not asm.in_message


def test_reset() -> None:
    asm = MessageAssembler()
    asm.feed(PDV(1, MCH_COMMAND, b"ab"))
    asm.reset()
    assert not asm.in_message
    event = asm.feed(PDV(3, 3, b"cd"))  # a new message on another context is fine now
    assert isinstance(event, CommandComplete) and event.command == b"cd"


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.binary(max_size=2000),
       st.lists(st.integers(0, 400), max_size=8), st.lists(st.integers(0, 2000), max_size=8),
       st.sampled_from([0, 7, 8, 64, 255, 16384]), st.sampled_from(["separate", "together"]))
def test_reassembly_of_any_split(command: bytes, data: bytes, csplits: list[int],
                                 dsplits: list[int], max_pdu: int, packing: str) -> None:
    pdvs = list(message_pdvs(1, command, data, max_pdu, command_splits=csplits,
                             data_splits=dsplits))
    pdus = list(pack(pdvs, max_pdu, packing))  # type: ignore[arg-type]
    # Through the wire and back: encode, decode, reassemble.
    asm = MessageAssembler()
    got_command, got_data = b"", bytearray()
    for pdu in pdus:
        decoded, _ = decode_pdu(pdu.encode())
        assert isinstance(decoded, PDataTF)
        for event in run(asm, decoded.pdvs):
            assert not isinstance(event, Misframed)
            if isinstance(event, CommandComplete):
                got_command = event.command
            else:
                got_data += event.data
    assert got_command == command
    assert got_data == data
    assert not asm.in_message
