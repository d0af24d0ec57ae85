"""``bench.sender.unsent``: what is left of a gathered send after a partial write (both load
generators resume from it, so a wrong offset corrupts the byte stream)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.bench.sender import unsent


@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_the_rest_is_exactly_the_bytes_not_yet_taken(chunks: list[bytes], data: st.DataObject
                                                     ) -> None:
    whole = b"".join(chunks)
    n = data.draw(st.integers(0, len(whole)))
    rest = unsent([memoryview(c) for c in chunks], n)
    assert b"".join(bytes(p) for p in rest) == whole[n:]
    # every buffer before the first untaken byte is gone
    assert len(rest) <= len(chunks)


def test_a_partial_first_buffer_keeps_its_tail() -> None:
    rest = unsent([memoryview(b"abcd"), memoryview(b"ef")], 3)
    assert [bytes(p) for p in rest] == [b"d", b"ef"]
