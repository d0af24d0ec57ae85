"""The requirement catalogue (docs/requirements.md) is the one home of the requirement ids.

Every id cited in the scenario files, the package's code or README.md must have an entry in the
catalogue; every scenario the catalogue names must exist in the suite (as the project's loader
reads it); a scenario whose description cites an id must be listed under that id. Everything is
read from the files themselves: adding a citation without an entry, or renaming a scenario
without updating the catalogue, makes these tests fail.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.engine.loader import load_suite
from harness.engine.model import Scenario

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "docs" / "requirements.md"
SCENARIOS = ROOT / "scenarios"

# A catalogue id: a group letter and two digits (A01), or a rule of the standard (R-CS-7).
REQ_ID = re.compile(r"\b(?:[A-K]\d{2}|R-[A-Z]{2}-\d+)\b")
GROUP_ID = re.compile(r"^([A-K])(\d{2})$")
ENTRY_HEADING = re.compile(r"^### (\S+) (\S.*)$")
SEVERITY = re.compile(r"\*\*(?:MUST|SHOULD|INFO)\*\*")
BACKTICKED = re.compile(r"`([^`]+)`")
SCENARIO_ID = re.compile(r"^[a-z0-9]+\.[a-z0-9.-]+(?:\[[^\]]*\])?$")
LINK = re.compile(r"\]\(#([^)]+)\)")


@dataclass
class Entry:
    """One requirement of the catalogue: its heading, its text and its list items by label."""

    req_id: str
    title: str
    line: int
    text: str = ""
    items: dict[str, str] = field(default_factory=dict)  # "Standard" / "Checked by" -> text

    @property
    def checked_by(self) -> list[str]:
        return [t for t in BACKTICKED.findall(self.items.get("Checked by", ""))
                if SCENARIO_ID.match(t)]


def parse_catalogue(text: str) -> dict[str, Entry]:
    """Entries by id; an id defined twice keeps its first entry (see the duplicates test)."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    label: str | None = None  # the labelled list item that continuation lines belong to
    for number, line in enumerate(text.splitlines(), 1):
        heading = ENTRY_HEADING.match(line)
        if line.startswith("#"):
            current, label = None, None
            if heading and REQ_ID.fullmatch(heading.group(1)):
                current = Entry(heading.group(1), heading.group(2), number)
                entries.setdefault(current.req_id, current)
            continue
        if current is None:
            continue
        current.text += line + "\n"
        labelled = re.match(r"^- \*\*([^*]+)\*\*:\s*(.*)$", line)
        if labelled and labelled.group(1) in ("Standard", "Checked by"):
            label = labelled.group(1)
            current.items[label] = labelled.group(2)
        elif label is not None and line.startswith("  ") and line.strip():
            current.items[label] += " " + line.strip()
        else:
            label = None
    return entries


def headings(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.startswith("### ")]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def cited_ids() -> dict[str, list[str]]:
    """Every requirement id cited in scenarios/*.yaml, harness/**/*.py and README.md."""
    sources = [*sorted(SCENARIOS.glob("*.yaml")), *sorted((ROOT / "harness").rglob("*.py")),
               ROOT / "README.md"]
    found: dict[str, list[str]] = defaultdict(list)
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in REQ_ID.finditer(line):
                found[match.group(0)].append(f"{path.relative_to(ROOT)}:{number}")
    return dict(found)


def undefined(cited: dict[str, list[str]], entries: dict[str, Entry]) -> dict[str, list[str]]:
    return {rid: where for rid, where in cited.items() if rid not in entries}


def base_id(scenario_id: str) -> str:
    return scenario_id.split("[", 1)[0]


@pytest.fixture(scope="module")
def text() -> str:
    return CATALOGUE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def entries(text: str) -> dict[str, Entry]:
    return parse_catalogue(text)


@pytest.fixture(scope="module")
def suite() -> list[Scenario]:
    return load_suite(str(SCENARIOS))


@pytest.fixture(scope="module")
def known_ids(suite: list[Scenario]) -> set[str]:
    return {sc.id for sc in suite} | {base_id(sc.id) for sc in suite}


def test_every_cited_id_is_defined(entries: dict[str, Entry]) -> None:
    cited = cited_ids()
    assert cited, "no requirement id found in scenarios/, harness/, README.md: the pattern broke"
    missing = undefined(cited, entries)
    assert not missing, "cited but not defined in docs/requirements.md: " + "; ".join(
        f"{rid} ({', '.join(where[:3])})" for rid, where in sorted(missing.items()))


def test_a_missing_entry_is_reported(text: str) -> None:
    """The check above can fail: drop the entry of a cited id and it must be reported."""
    cited = cited_ids()
    victim = sorted(cited)[0]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {victim} "))
    stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")),
                len(lines))
    damaged = parse_catalogue("\n".join(lines[:start] + lines[stop:]))
    assert victim not in damaged
    assert victim in undefined(cited, damaged)


def test_entries_are_complete(text: str, entries: dict[str, Entry]) -> None:
    problems = []
    ids = [line.split()[1] for _, line in headings(text) if REQ_ID.fullmatch(line.split()[1])]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"defined twice: {', '.join(dupes)}")
    for entry in entries.values():
        where = f"{entry.req_id} (docs/requirements.md:{entry.line})"
        if not SEVERITY.search(entry.text):
            problems.append(f"{where}: no **MUST**/**SHOULD**/**INFO** rule")
        if not re.search(r"PS3\.\d+", entry.items.get("Standard", "")):
            problems.append(f"{where}: no '- **Standard**:' line naming a PS3.x section")
        if not entry.items.get("Checked by"):
            problems.append(f"{where}: no '- **Checked by**:' line")
    assert entries, "no entry parsed from docs/requirements.md"
    assert not problems, "; ".join(problems)


def test_group_ids_are_numbered_without_gaps(entries: dict[str, Entry]) -> None:
    numbers: dict[str, set[int]] = defaultdict(set)
    for rid in entries:
        m = GROUP_ID.match(rid)
        if m:
            numbers[m.group(1)].add(int(m.group(2)))
    gaps = {g: sorted(set(range(1, max(n) + 1)) - n) for g, n in numbers.items()}
    assert not {g: v for g, v in gaps.items() if v}, f"missing entries: {gaps}"


def test_every_named_scenario_exists(text: str, entries: dict[str, Entry],
                                     suite: list[Scenario], known_ids: set[str]) -> None:
    prefixes = {sc.id.split(".", 1)[0] for sc in suite}
    named = {t for t in BACKTICKED.findall(text)
             if SCENARIO_ID.match(t) and t.split(".", 1)[0] in prefixes}
    named |= {sid for e in entries.values() for sid in e.checked_by}
    unknown = sorted(named - known_ids)
    assert named, "no scenario id found in docs/requirements.md"
    assert not unknown, f"named in docs/requirements.md but not in the suite: {unknown}"


def test_scenarios_citing_an_id_are_listed_under_it(entries: dict[str, Entry],
                                                    suite: list[Scenario]) -> None:
    missing = set()
    for sc in suite:
        for rid in set(REQ_ID.findall(f"{sc.title} {sc.description}")):
            entry = entries.get(rid)
            if entry is not None and base_id(sc.id) not in map(base_id, entry.checked_by):
                missing.add(f"{base_id(sc.id)} cites {rid} but is not in its 'Checked by'")
    assert not missing, "; ".join(sorted(missing))


def test_files_named_under_checked_by_exist(entries: dict[str, Entry]) -> None:
    named = {t for e in entries.values() for t in BACKTICKED.findall(e.items.get("Checked by", ""))
             if t.startswith(("tests/", "harness/"))}
    assert not [n for n in sorted(named) if not (ROOT / n).exists()]


def test_internal_links_resolve(text: str) -> None:
    anchors = {github_anchor(line) for line in text.splitlines() if line.startswith("#")}
    broken = sorted(set(LINK.findall(text)) - anchors)
    assert not broken, f"links to no heading: {broken}"
