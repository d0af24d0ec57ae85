"""Links from references such as "PS3.7 9.1.1.1.2" to the section on the NEMA site.

The NEMA "chtml" edition of the standard has one page per part, chapter/annex and top-level
section ("part07/sect_9.1.html"); deeper sections are anchors inside those pages
("#sect_9.1.1.1.2"). The grammar of a reference is a table of patterns, tried in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable

NEMA_BASE = "https://dicom.nema.org/medical/dicom/current/output/chtml/"

_PART = re.compile(r"^\s*(?:DICOM\s+)?PS\s*3\.(\d{1,2})\b[\s,:]*(.*)$", re.IGNORECASE)
# A section number: chapter digits or an annex letter (1-3 letters), then dotted numbers.
_SECTION = r"(?P<sec>(?:\d+|[A-Z]{1,3})(?:\.\d+)*)"


def _page(part: str, number: str) -> str:
    return f"{NEMA_BASE}part{part}/{number}.html"


def _section_url(part: str, sec: str) -> str:
    head, *rest = sec.split(".")
    if not rest:
        return _page(part, f"chapter_{head}")
    page = f"sect_{head}.{rest[0]}"
    url = _page(part, page)
    return url if len(rest) == 1 else f"{url}#sect_{sec}"


def _table_url(kind: str) -> Callable[[str, re.Match[str]], str]:
    """Tables/figures "9.3-1" live on the page of their section: sect_9.3.html#table_9.3-1."""

    def build(part: str, m: re.Match[str]) -> str:
        label = m.group("label")
        sec = label.split("-")[0]
        head, *rest = sec.split(".")
        page = f"chapter_{head}" if not rest else f"sect_{head}.{rest[0]}"
        return f"{_page(part, page)}#{kind}_{label}"

    return build


def _state_table(part: str, m: re.Match[str]) -> str:
    # Actions (AA-8, AE-6, AR-4, DT-2), events (Evt17) and states (Sta6) of the PS3.8 state
    # machine are all defined in section 9.2.
    return _page(part, "sect_9.2")


# (pattern applied to the text after "PS3.n", builder(part, match) -> URL); first match wins.
_RULES: tuple[tuple[re.Pattern[str], Callable[[str, re.Match[str]], str]], ...] = (
    (re.compile(r"^Table\s+(?P<label>[A-Z0-9.]+-\d+[a-z]?)", re.I), _table_url("table")),
    (re.compile(r"^Figure\s+(?P<label>[A-Z0-9.]+-\d+[a-z]?)", re.I), _table_url("figure")),
    (re.compile(r"^(?:AA|AE|AR|DT|Evt|Sta)-?\d+\b", re.I), _state_table),
    (re.compile(r"^(?i:Annex|Chapter|Section|Sect\.?|§)?\s*" + _SECTION + r"(?![\w-])"),
     lambda part, m: _section_url(part, m.group("sec"))),
)


def reference_url(reference: str) -> str | None:
    """URL on the NEMA site for one reference, or None when it is not a PS3.x reference.

    >>> reference_url("PS3.7 9.1.1.1.2")
    'https://dicom.nema.org/medical/dicom/current/output/chtml/part07/sect_9.1.html#sect_9.1.1.1.2'
    """
    m = _PART.match(reference)
    if not m:
        return None
    number = int(m.group(1))
    if not 1 <= number <= 99:
        return None
    part = f"{number:02d}"
    rest = m.group(2).strip().lstrip("§").strip()
    if not rest:
        return _page(part, f"PS3.{number}")
    for pattern, build in _RULES:
        found = pattern.match(rest)
        if found:
            return build(part, found)
    # A PS3.x reference whose section we cannot read still deserves a link to the part.
    return _page(part, f"PS3.{number}")


def reference_links(reference: str) -> list[tuple[str, str | None]]:
    """Split a compound reference into (text, URL or None) pieces.

    "PS3.8 7.1.1.14, 9.3.3, D.1; PS3.7 D.3.3.2" gives four links: a bare section number
    inherits the part of the reference before it.
    """
    links: list[tuple[str, str | None]] = []
    part: str | None = None
    for piece in re.split(r"\s*[;,]\s*", reference.strip()):
        if not piece:
            continue
        m = _PART.match(piece)
        if m:
            part = m.group(1)
            links.append((piece, reference_url(piece)))
        elif part is not None and re.match(r"^(?:Annex\s+|Table\s+|§\s*)?[A-Z0-9]", piece):
            links.append((piece, reference_url(f"PS3.{part} {piece}")))
        else:
            links.append((piece, None))
    return links
