"""Tests for harness.wire.status: the C-STORE status table and the Annex C classes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.wire.status import (
    C_STORE_STATUSES,
    C_STORE_TABLE,
    GENERAL_STATUSES,
    PYNETDICOM_STATUSES,
    StatusCategory,
    c_store_legality,
    classify,
    describe,
    is_c_store_status,
    status_label,
)

S, W, F = StatusCategory.SUCCESS, StatusCategory.WARNING, StatusCategory.FAILURE

# R-ST-2, row by row: (lo, hi, category, words of the meaning, related fields).
R_ST_2 = [
    (0x0000, 0x0000, S, "success", ()),
    (0xB000, 0xB000, W, "coercion", (0x0901, 0x0902)),
    (0xB007, 0xB007, W, "does not match sop class", (0x0901, 0x0902)),
    (0xB006, 0xB006, W, "elements discarded", (0x0901, 0x0902)),
    (0xA700, 0xA7FF, F, "out of resources", (0x0902,)),
    (0xA900, 0xA9FF, F, "does not match sop class", (0x0901, 0x0902)),
    (0xC000, 0xCFFF, F, "cannot understand", (0x0901, 0x0902)),
    (0x0122, 0x0122, F, "sop class not supported", (0x0902,)),
    (0x0124, 0x0124, F, "not authorized", (0x0902,)),
    (0x0117, 0x0117, F, "invalid sop instance", (0x1000,)),
    (0x0210, 0x0210, F, "duplicate invocation", ()),
    (0x0211, 0x0211, F, "unrecognized operation", ()),
    (0x0212, 0x0212, F, "mistyped argument", ()),
]


@pytest.mark.parametrize(("lo", "hi", "category", "words", "related"), R_ST_2)
def test_every_c_store_row(lo: int, hi: int, category: StatusCategory, words: str,
                           related: tuple[int, ...]) -> None:
    for code in {lo, hi, (lo + hi) // 2}:
        assert classify(code) is category
        assert c_store_legality(code) == "listed"
        assert is_c_store_status(code)
        assert code in C_STORE_STATUSES
        assert C_STORE_STATUSES[code][0] is category
        info = describe(code)
        assert info.lo == info.hi == code
        assert info.category is category
        assert set(info.related_fields) == set(related)
        if code not in PYNETDICOM_STATUSES:
            assert words in info.meaning.lower()


@pytest.mark.parametrize(("code", "category"), [
    (0x0001, W), (0x0107, W), (0x0116, W), (0x0110, F), (0x0111, F), (0x0213, F),
    (0x0105, F), (0x0118, F), (0xA000, F), (0xA801, F), (0xB001, W), (0xBFFF, W),
    (0x01FF, F), (0x02FF, F),
])
def test_not_listed_for_c_store(code: int, category: StatusCategory) -> None:
    assert classify(code) is category
    assert c_store_legality(code) == "not-listed"
    assert code not in C_STORE_STATUSES
    assert describe(code).c_store == "not-listed"


@pytest.mark.parametrize(("code", "category"), [
    (0xFE00, StatusCategory.CANCEL), (0xFF00, StatusCategory.PENDING),
    (0xFF01, StatusCategory.PENDING), (0x0002, StatusCategory.ILLEGAL),
    (0x1234, StatusCategory.ILLEGAL), (0xD000, StatusCategory.ILLEGAL),
    (0xFFFF, StatusCategory.ILLEGAL), (0x0300, StatusCategory.ILLEGAL),
    (0x00FF, StatusCategory.ILLEGAL), (0xFF02, StatusCategory.ILLEGAL),
    (0x10000, StatusCategory.ILLEGAL), (-1, StatusCategory.ILLEGAL),
])
def test_illegal_in_c_store(code: int, category: StatusCategory) -> None:
    assert classify(code) is category
    assert c_store_legality(code) == "illegal"
    assert code not in C_STORE_STATUSES
    assert describe(code).c_store == "illegal"


def test_bool_is_not_a_status() -> None:
    assert classify(True) is StatusCategory.ILLEGAL
    assert c_store_legality(True) == "illegal"
    assert True not in C_STORE_STATUSES
    with pytest.raises(KeyError):
        C_STORE_STATUSES[True]


def test_classification_is_not_by_high_nibble() -> None:
    # Same high byte, different classes (R-ST-3).
    assert classify(0x0107) is W and classify(0x0106) is F and classify(0x0116) is W
    assert classify(0x0117) is F and classify(0x0001) is W and classify(0x0002) is not W


def test_every_16_bit_code_is_consistent() -> None:
    counts = {"listed": 0, "not-listed": 0, "illegal": 0}
    for code in range(0x10000):
        category = classify(code)
        legality = c_store_legality(code)
        counts[legality] += 1
        info = describe(code)
        assert info.category is category
        assert info.c_store == legality
        assert (legality == "illegal") == (category not in (S, W, F))
        assert (code in C_STORE_STATUSES) == (legality == "listed")
    # 1 success + 3 warnings + 2 x 256 + 4096 + 6 single failures.
    assert counts["listed"] == 1 + 3 + 512 + 4096 + 6
    assert len(C_STORE_STATUSES) == counts["listed"]


def test_ranges_describe_the_code_itself() -> None:
    info = describe(0xA7FE)
    assert (info.lo, info.hi) == (0xA7FE, 0xA7FE)
    assert "out of resources" in info.meaning.lower()
    assert "C.5.5" in info.section
    assert describe(0x0122).section.endswith("C.5.6")
    assert "C.5.25" in describe(0x0124).section
    assert "C.5.22" in describe(0x0213).section


@pytest.mark.parametrize("code", [0xC001, 0xC002, 0xC210, 0xC211])
def test_pynetdicom_codes(code: int) -> None:
    info = describe(code)
    assert info.category is F and info.c_store == "listed"
    assert "pynetdicom" in info.meaning
    assert C_STORE_STATUSES[code][1] == info.meaning
    assert "pynetdicom" not in describe(0xC003).meaning


def test_unknown_code_meaning() -> None:
    assert "not a valid status" in describe(0x1234).meaning
    assert "service-class specific" in describe(0xA123).meaning
    assert status_label(0xB000) == "0xB000 Warning: Coercion of Data Elements"
    assert status_label(0x0000) == "0x0000 Success"
    assert status_label(0x0211) == "0x0211 Failure: Unrecognized operation"


def test_table_rows_do_not_overlap() -> None:
    spans = sorted((r.lo, r.hi) for r in C_STORE_TABLE)
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi < lo


def test_matches_pynetdicom_storage_table() -> None:
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS as PN

    ours = set(C_STORE_STATUSES)
    # pynetdicom accepts for C-STORE every general status; the extra ones are exactly those
    # the standard does not list for C-STORE (R-ST-2 "not listed" and FE00 "illegal").
    extra = set(PN) - ours
    assert extra == {0x0105, 0x0106, 0x0107, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115,
                     0x0116, 0x0118, 0x0119, 0x0120, 0x0121, 0x0123, 0x0213, 0xFE00}
    assert ours <= set(PN)
    for code in (0x0000, 0xB000, 0xB006, 0xB007, 0xA700, 0xA9FF, 0xC123, 0x0117, 0x0212):
        assert PN[code][0] == C_STORE_STATUSES[code][0]  # StrEnum compares equal to str
    for code in extra:
        assert c_store_legality(code) in ("not-listed", "illegal")


def test_general_statuses_mapping() -> None:
    assert 0x0213 in GENERAL_STATUSES and 0xFE00 in GENERAL_STATUSES
    assert 0x0117 in GENERAL_STATUSES
    assert 0xB000 not in GENERAL_STATUSES
    assert GENERAL_STATUSES[0xFE00][0] is StatusCategory.CANCEL


@given(st.integers(min_value=-(2**20), max_value=2**20))
def test_never_raises(code: int) -> None:
    assert isinstance(classify(code), StatusCategory)
    assert c_store_legality(code) in ("listed", "not-listed", "illegal")
    assert describe(code).meaning
