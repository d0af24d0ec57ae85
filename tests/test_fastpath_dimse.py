"""DIMSE fast paths give exactly what the general paths give.

- ``decode_command`` on a clean C-STORE-RQ takes a template decoder; for any bytes its
  result must equal the general decoder's (``_decode_general``), findings included.
- ``encode_command`` of the usual C-STORE-RSP uses a template; its bytes must equal the
  generic encoder's (``encode_elements(message_elements(...))``).
"""

from __future__ import annotations

import struct
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.wire.dimse import (
    CStoreRQ,
    CStoreRSP,
    DecodedCommand,
    decode_command,
    encode_command,
    encode_elements,
    message_elements,
    value_ui,
    value_us,
)
from harness.wire.dimse import decode as dimse_decode
from harness.wire.dimse import fast as dimse_fast

UID_CHARS = "0123456789." * 4 + " \x00a"
uid_st = st.one_of(
    st.sampled_from(["1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.826.0.1.3680043.8.498.1",
                     "1." + "2" * 63, "1." + "2" * 62, "0", "1.02", ""]),
    st.text(UID_CHARS, max_size=70),
)
u16 = st.integers(0, 0xFFFF)
rq_st = st.builds(CStoreRQ, u16, uid_st, uid_st, st.sampled_from([0, 1, 2, 3, 0xFFFF]),
                  st.sampled_from([0x0000, 0x0001, 0x0101, 0xFFFE]))


def general(data: bytes) -> DecodedCommand:
    return dimse_decode._decode_general(data)


@given(msg=rq_st)
@settings(max_examples=400, deadline=None)
def test_store_rq_decode_identical(msg: CStoreRQ) -> None:
    data = encode_command(msg)
    assert decode_command(data) == general(data)


@given(msg=rq_st, data=st.data())
@settings(max_examples=400, deadline=None)
def test_damaged_store_rq_decode_identical(msg: CStoreRQ, data: st.DataObject) -> None:
    raw = bytearray(encode_command(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.sampled_from([0, 1, 2, 0x20, 0x2E, 0x31, 0xFF,
                                              data.draw(st.integers(0, 255))]))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut]), bytes(raw) + b"\x00\x00"):
        assert decode_command(candidate) == general(candidate)


@given(extra=st.sampled_from([(0x1030, value_ui("MOVER")), (0x1031, value_us(9)),
                              (0x0120, value_us(1)), (0x0900, value_us(0))]),
       msg=rq_st)
@settings(max_examples=100, deadline=None)
def test_store_rq_with_other_elements_identical(extra: tuple[int, bytes], msg: CStoreRQ) -> None:
    elements = sorted([*message_elements(msg), extra])
    data = encode_elements(elements)
    assert decode_command(data) == general(data)


def test_clean_store_rq_uses_the_template() -> None:
    data = encode_command(CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5"))
    with mock.patch.object(dimse_decode, "_decode_general", side_effect=AssertionError("slow")):
        decoded = decode_command(data)
    assert decoded.ok and decoded.findings == []
    assert decoded.message == CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")
    assert decoded.offsets[0x1000] == len(data) - 8 - len(value_ui("1.2.3.4.5"))


@pytest.mark.parametrize("bad", [
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2 ", "1.2.3"),  # space padding
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2.3\x00\x00"),  # two pad bytes
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.02"),  # leading zero
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2", priority=7),
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2", command_data_set_type=0x0101),
    CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1." + "2" * 63),  # 65 characters
])
def test_deviations_keep_their_findings(bad: CStoreRQ) -> None:
    data = encode_command(bad)
    decoded = decode_command(data)
    assert decoded == general(data)
    assert decoded.findings


def test_wrong_group_length_is_reported() -> None:
    data = bytearray(encode_command(CStoreRQ(5, "1.2.840.10008.5.1.4.1.1.2", "1.2.3")))
    struct.pack_into("<I", data, 8, 1000)
    decoded = decode_command(bytes(data))
    assert decoded == general(bytes(data)) and not decoded.ok


# --- C-STORE-RSP encoding ---------------------------------------------------------------------

rsp_st = st.builds(
    CStoreRSP, u16, u16,
    st.one_of(st.none(), uid_st), st.one_of(st.none(), uid_st),
    st.one_of(st.none(), u16), st.one_of(st.none(), st.text("ABC xyz", max_size=9)),
    st.one_of(st.none(), st.lists(st.integers(0, 0xFFFFFFFF), max_size=2)),
    st.one_of(st.none(), u16),
)


@given(msg=rsp_st)
@settings(max_examples=400, deadline=None)
def test_store_rsp_encode_identical(msg: CStoreRSP) -> None:
    assert encode_command(msg) == encode_elements(message_elements(msg))


@given(msg=st.builds(CStoreRSP, u16, u16, uid_st, uid_st))
@settings(max_examples=200, deadline=None)
def test_usual_store_rsp_template_round_trips(msg: CStoreRSP) -> None:
    assert dimse_fast._fast_store_rsp(msg) is not None
    data = encode_command(msg)
    assert data == encode_elements(message_elements(msg))
    decoded = decode_command(data)
    assert decoded.command_field == 0x8001
    assert decoded.elements[0x0900] == msg.status


def test_store_rsp_out_of_range_raises_like_the_generic_encoder() -> None:
    with pytest.raises(struct.error):
        encode_command(CStoreRSP(70000, 0, "1.2", "1.2.3"))
    with pytest.raises(struct.error):
        encode_elements(message_elements(CStoreRSP(70000, 0, "1.2", "1.2.3")))
