"""Reference -> NEMA URL mapping (harness/report/refs.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.report.refs import NEMA_BASE, reference_links, reference_url

B = NEMA_BASE

CASES = [
    # section numbers: page = first two levels, anchor = the full number
    ("PS3.7 9.1.1.1.2", f"{B}part07/sect_9.1.html#sect_9.1.1.1.2"),
    ("PS3.8 9.3", f"{B}part08/sect_9.3.html"),
    ("PS3.8 9.3.2", f"{B}part08/sect_9.3.html#sect_9.3.2"),
    ("PS3.8 9", f"{B}part08/chapter_9.html"),
    ("PS3.8 §9.3.2", f"{B}part08/sect_9.3.html#sect_9.3.2"),
    ("PS3.8 §9.3.2\u20139.3.4", f"{B}part08/sect_9.3.html#sect_9.3.2"),  # en dash range
    ("PS 3.8 9.3.4", f"{B}part08/sect_9.3.html#sect_9.3.4"),
    ("DICOM PS3.5 6.2 (AE VR)", f"{B}part05/sect_6.2.html"),
    ("PS3.7 9.1.1.1.9 g", f"{B}part07/sect_9.1.html#sect_9.1.1.1.9"),
    ("PS3.15 7.1", f"{B}part15/sect_7.1.html"),
    # annexes
    ("PS3.7 Annex C", f"{B}part07/chapter_C.html"),
    ("PS3.4 Annex B", f"{B}part04/chapter_B.html"),
    ("PS3.7 annex D.3.3.3", f"{B}part07/sect_D.3.html#sect_D.3.3.3"),
    ("PS3.4 B.2.3", f"{B}part04/sect_B.2.html#sect_B.2.3"),
    ("PS3.8 D.2 Note 2", f"{B}part08/sect_D.2.html"),
    ("PS3.8 E.1", f"{B}part08/sect_E.1.html"),
    ("PS3.7 C.5.9", f"{B}part07/sect_C.5.html#sect_C.5.9"),
    ("PS3.2 N.5.2.5.2", f"{B}part02/sect_N.5.html#sect_N.5.2.5.2"),
    # tables and figures live on the page of their section
    ("PS3.7 Table 9.3-1", f"{B}part07/sect_9.3.html#table_9.3-1"),
    ("PS3.4 Table B.2-1", f"{B}part04/sect_B.2.html#table_B.2-1"),
    ("PS3.7 Table 9.1-1", f"{B}part07/sect_9.1.html#table_9.1-1"),
    ("PS3.8 Figure 9-1", f"{B}part08/chapter_9.html#figure_9-1"),
    # state machine actions, events and states are in PS3.8 9.2
    ("PS3.8 AA-8", f"{B}part08/sect_9.2.html"),
    ("PS3.8 AR-4", f"{B}part08/sect_9.2.html"),
    ("PS3.8 Evt17", f"{B}part08/sect_9.2.html"),
    # a whole part, or a part with an unreadable section
    ("PS3.7", f"{B}part07/PS3.7.html"),
    ("PS3.15 general", f"{B}part15/PS3.15.html"),
]


@pytest.mark.parametrize(("reference", "url"), CASES)
def test_reference_url(reference: str, url: str) -> None:
    assert reference_url(reference) == url


@pytest.mark.parametrize(
    "reference", ["", "pynetdicom #823/#1092", "robustness rule", "RFC 793", "PS4.1 2", "PS3.0 1"]
)
def test_not_a_standard_reference(reference: str) -> None:
    assert reference_url(reference) is None


def test_compound_reference_inherits_the_part() -> None:
    links = reference_links("PS3.8 7.1.1.14, 9.3.3, D.1; PS3.7 D.3.3.2, Annex C")
    assert [text for text, _ in links] == [
        "PS3.8 7.1.1.14", "9.3.3", "D.1", "PS3.7 D.3.3.2", "Annex C",
    ]
    assert [url for _, url in links] == [
        f"{B}part08/sect_7.1.html#sect_7.1.1.14",
        f"{B}part08/sect_9.3.html#sect_9.3.3",
        f"{B}part08/sect_D.1.html",
        f"{B}part07/sect_D.3.html#sect_D.3.3.2",
        f"{B}part07/chapter_C.html",
    ]


def test_compound_reference_keeps_plain_text() -> None:
    assert reference_links("robustness rule; PS3.8 9.3.5") == [
        ("robustness rule", None),
        ("PS3.8 9.3.5", f"{B}part08/sect_9.3.html#sect_9.3.5"),
    ]


_SAFE_URL = re.compile(r"^https://dicom\.nema\.org/[A-Za-z0-9/_.#-]+$")


@settings(max_examples=60)
@given(st.text(max_size=80))
def test_any_text_gives_no_url_or_a_safe_one(text: str) -> None:
    # References come from the results file: whatever they hold, a URL is built only from
    # characters that cannot break out of an attribute or point elsewhere.
    url = reference_url(text)
    assert url is None or _SAFE_URL.match(url), url
    for _, link in reference_links(text):
        assert link is None or _SAFE_URL.match(link), link


@settings(max_examples=40)
@given(st.from_regex(r"PS3\.(1[0-9]|[1-9]) (\d{1,2}|[A-H])(\.\d{1,2}){0,4}", fullmatch=True))
def test_section_urls_follow_the_page_anchor_rule(reference: str) -> None:
    url = reference_url(reference)
    assert url is not None
    part, section = reference.split(" ")
    assert f"/part{int(part[4:]):02d}/" in url
    levels = section.split(".")
    if len(levels) == 1:
        assert url.endswith(f"chapter_{section}.html")
    elif len(levels) == 2:
        assert url.endswith(f"sect_{section}.html")
    else:
        assert url.endswith(f"sect_{levels[0]}.{levels[1]}.html#sect_{section}")
