"""The C-STORE-RSP reader the bench's receive paths share (harness.wire.dimse.fast).

``read_store_rsp`` must agree with the validating decoder: on every clean C-STORE-RSP it gives
the decoder's Message ID Being Responded To and Status, and whatever it accepts the decoder
also reads as a C-STORE-RSP with those values. ``read_store_rsp_pdu`` accepts exactly one
P-DATA-TF holding one whole command PDV.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.wire.constants import MESSAGE_ID_BEING_RESPONDED_TO, STATUS
from harness.wire.dimse import (
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    decode_command,
    encode_command,
    encode_elements,
    message_elements,
    read_store_rsp,
    read_store_rsp_pdu,
    value_us,
)
from harness.wire.pdu import PDV, PDataTF, ReleaseRQ

CT = "1.2.840.10008.5.1.4.1.1.2"
u16 = st.integers(0, 0xFFFF)
rsp_st = st.builds(
    CStoreRSP, u16, u16,
    st.one_of(st.none(), st.just(CT)), st.one_of(st.none(), st.just("2.25.7")),
    st.one_of(st.none(), u16), st.one_of(st.none(), st.text("ABC xyz", max_size=9)),
    st.one_of(st.none(), st.lists(st.integers(0, 0xFFFFFFFF), max_size=2)),
    st.one_of(st.none(), u16),
)


def _whole(rsp: CStoreRSP) -> tuple[int, int]:
    return rsp.message_id_being_responded_to, rsp.status


@given(msg=rsp_st)
@settings(max_examples=300, deadline=None)
def test_every_store_rsp_shape_is_read(msg: CStoreRSP) -> None:
    data = encode_command(msg)
    assert read_store_rsp(data, 0, len(data)) == _whole(msg)
    # Inside a larger buffer (the sender reads in place from its receive buffer).
    buf = bytearray(b"\xAA" * 12 + data + b"\x55" * 7)
    assert read_store_rsp(buf, 12, 12 + len(data)) == _whole(msg)
    assert read_store_rsp(memoryview(buf), 12, 12 + len(data)) == _whole(msg)


@given(msg=rsp_st, data=st.data())
@settings(max_examples=400, deadline=None)
def test_agrees_with_the_validating_decoder(msg: CStoreRSP, data: st.DataObject) -> None:
    raw = bytearray(encode_command(msg))
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.sampled_from([0, 1, 2, 0x20, 0x80, 0x09, 0xFF]))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        got = read_store_rsp(candidate, 0, len(candidate))
        decoded = decode_command(candidate)
        duplicate = any("duplicate" in f.found for f in decoded.findings)
        if decoded.ok and isinstance(decoded.message, CStoreRSP):
            assert got == _whole(decoded.message)
        if got is not None and not duplicate:
            assert decoded.command_field == 0x8001
            assert (decoded.elements[MESSAGE_ID_BEING_RESPONDED_TO],
                    decoded.elements[STATUS]) == got


def test_other_commands_and_broken_sets_are_refused() -> None:
    echo = encode_command(CEchoRSP(3, 0))
    assert read_store_rsp(echo, 0, len(echo)) is None
    rq = encode_command(CStoreRQ(3, CT, "2.25.7"))
    assert read_store_rsp(rq, 0, len(rq)) is None
    elements = message_elements(CStoreRSP(3, 0, CT, "2.25.7"))
    no_status = encode_elements([e for e in elements if e[0] != STATUS])
    assert read_store_rsp(no_status, 0, len(no_status)) is None
    long_status = encode_elements([(t, v + b"\x00\x00" if t == STATUS else v)
                                   for t, v in elements])
    assert read_store_rsp(long_status, 0, len(long_status)) is None
    foreign = encode_elements([*elements, (0x00080016, value_us(1))])
    assert read_store_rsp(foreign, 0, len(foreign)) is None
    whole = encode_command(CStoreRSP(3, 0, CT, "2.25.7"))
    assert read_store_rsp(whole + b"\x00\x00", 0, len(whole) + 2) is None  # bytes left over
    assert read_store_rsp(whole, 0, len(whole) - 1) is None  # value runs past the end


def test_pdu_reader_takes_one_whole_command_pdv_only() -> None:
    command = encode_command(CStoreRSP(9, 0xA700, CT, "2.25.7"))
    assert read_store_rsp_pdu(PDataTF([PDV(1, 0x03, command)]).encode()) == (9, 0xA700)
    assert read_store_rsp_pdu(PDataTF([PDV(1, 0x01, command)]).encode()) is None  # not last
    assert read_store_rsp_pdu(PDataTF([PDV(1, 0x02, command)]).encode()) is None  # data set
    two = PDataTF([PDV(1, 0x01, command[:20]), PDV(1, 0x03, command[20:])]).encode()
    assert read_store_rsp_pdu(two) is None  # fragmented: the general path reassembles
    assert read_store_rsp_pdu(ReleaseRQ().encode()) is None
    assert read_store_rsp_pdu(PDataTF([PDV(1, 0x03, command)]).encode()[:-1]) is None
