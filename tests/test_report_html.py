"""The HTML report (harness/report/html.py, view.py, chart.py, templates) without a browser."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.report import render_html, write_html
from harness.report.chart import BAR_WIDTH, LABEL_WIDTH, stacked_bars
from harness.report.refs import NEMA_BASE
from harness.report.view import MAX_TRACE_ROWS

SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "sample-results.json").read_text(encoding="utf-8")
)
TEMPLATES = Path(__file__).parent.parent / "harness" / "report" / "templates"


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes()):
                out.append(child)
            out.extend(child.find_all(tag, cls))
        return out


VOID = {"meta", "link", "br", "input", "img", "hr", "rect", "col", "source"}


class Tree(HTMLParser):
    """A tiny DOM: enough to query tags, attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root
        self.raw_data: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        node: Element | None = self.current
        while node is not None:
            node.text_parts.append(data)
            node = node.parent


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(SAMPLE)


@pytest.fixture(scope="module")
def tree(page: str) -> Element:
    return Tree(page).root


def scenario_elements(tree: Element) -> dict[str, Element]:
    return {
        el.find_all("code", "sid")[0].text: el for el in tree.find_all("details", "scenario")
    }


def test_every_scenario_is_rendered_with_its_data(tree: Element) -> None:
    rendered = scenario_elements(tree)
    assert list(rendered) == [s["id"] for s in sorted(SAMPLE["scenarios"],
                                                       key=lambda s: s["group"])]
    for s in SAMPLE["scenarios"]:
        el = rendered[s["id"]]
        assert el.attrs["data-outcome"] == s["outcome"]
        assert el.attrs["data-group"] == s["group"]
        assert el.attrs["data-severity"] == s["severity"]
        assert s["title"] in el.text
        badge = el.find_all("span", "badge")[0]
        assert f"o-{s['outcome']}" in badge.classes()
        # failures and errors are unfolded, the rest folded
        assert ("open" in el.attrs) == (s["outcome"] in ("fail", "error"))
        # expected and observed in plain words (the control character made visible)
        observed = s["observed"].replace("\x07", "\\x07")
        assert observed in el.text
        assert s["expected"] in el.text


def test_header(tree: Element) -> None:
    header = tree.find_all("header")[0]
    text = re.sub(r"\s+", " ", header.text)
    for fragment in ("127.0.0.1:11112", "<script>alert(1)</script>", "HARNESS",
                     "1.2.826.0.1.3680043.9.7433.1.1", "STORE-SCP & <b>1.0</b>", "0.1.0",
                     "2025-01-15 09:30:12 UTC", "42.98 s", "FAIL", "4 scenarios failed"):
        assert fragment in text, fragment
    assert "verdict-fail" in header.classes()


def test_hostile_strings_are_escaped(page: str) -> None:
    assert page.count("<script") == 1 and page.count("</script") == 1
    assert "<script>alert" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>1.0</b>" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "\x07" not in page


def test_script_is_static(page: str) -> None:
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    assert script == (TEMPLATES / "report.js.j2").read_text(encoding="utf-8")
    for s in SAMPLE["scenarios"]:
        assert s["id"] not in script


def test_no_external_resources(page: str, tree: Element) -> None:
    for element in tree.find_all():
        assert "src" not in element.attrs, element.tag
        assert element.tag not in ("iframe", "object", "embed", "img", "audio", "video", "base")
        assert "style" not in element.attrs  # inline styles would need 'unsafe-inline'
        for name, value in element.attrs.items():
            assert not name.startswith("on"), name  # no inline event handlers
            if name in ("href", "xlink:href", "action", "formaction", "poster", "data"):
                assert value is not None
                if element.tag == "link":
                    assert element.attrs.get("rel") == "icon" and value == "data:,"
                elif not value.startswith("#"):
                    assert element.tag == "a" and value.startswith(NEMA_BASE), value
                    assert element.attrs.get("rel") == "noopener noreferrer"
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@import" not in style and "url(" not in style
    assert not re.search(r"<link[^>]+stylesheet", page)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*//", page)  # protocol-relative


def test_content_security_policy_pins_the_inline_code(page: str, tree: Element) -> None:
    meta = [m for m in tree.find_all("meta")
            if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(meta) == 1
    csp = meta[0].attrs["content"] or ""
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert directives["script-src"] == digest(script)
    assert directives["style-src"] == digest(style)
    assert "unsafe" not in csp


def test_references_link_to_nema(tree: Element) -> None:
    el = scenario_elements(tree)["store.duplicate.same-message-id"]
    links = {a.text: a.attrs["href"] for a in el.find_all("a", "ref")}
    assert links["PS3.7 9.1.1.1.1"] == f"{NEMA_BASE}part07/sect_9.1.html#sect_9.1.1.1.1"
    assert links["PS3.7 C.5.9"] == f"{NEMA_BASE}part07/sect_C.5.html#sect_C.5.9"


def test_checks_table(tree: Element) -> None:
    scenario = next(s for s in SAMPLE["scenarios"] if s["id"] == "rsp.fields")
    table = scenario_elements(tree)["rsp.fields"].find_all("table", "checks")[0]
    rows = table.find_all("tr", "check")
    assert len(rows) == len(scenario["checks"])
    for row, check in zip(rows, scenario["checks"], strict=True):
        cells = row.find_all("td")
        assert cells[0].text == check["name"]
        assert cells[2].text.lower().startswith(check["outcome"][:4])
        assert cells[4].text == check["observed"]
        assert f"o-row-{check['outcome']}" in row.classes()


def test_trace_is_folded_with_findings_highlighted(tree: Element) -> None:
    rendered = scenario_elements(tree)
    for s in SAMPLE["scenarios"]:
        traces = rendered[s["id"]].find_all("details", "trace")
        if not s["trace"]:
            assert traces == []
            continue
        (trace,) = traces
        assert "open" not in trace.attrs
        rows = trace.find_all("tr")
        entries = [r for r in rows if any(c.startswith("dir-") for c in r.classes())]
        assert len(entries) == len(s["trace"])
        findings = [f for e in s["trace"] for f in e["findings"]]
        finding_rows = trace.find_all("tr", "finding")
        assert len(finding_rows) == len(findings)
        for row, finding in zip(finding_rows, findings, strict=True):
            assert f"f-{finding['severity']}" in row.classes()
            assert finding["found"] in row.text
        assert len(trace.find_all("tr", "has-findings")) == sum(1 for e in s["trace"]
                                                                if e["findings"])
        first = entries[0].find_all("td")
        assert first[3].text == s["trace"][0]["type"]
        assert first[0].text == f"{s['trace'][0]['t'] * 1000:.1f}"


def test_long_trace_keeps_late_findings() -> None:
    results = copy.deepcopy(SAMPLE)
    entry = {"t": 0.001, "assoc": 1, "dir": "recv", "type": "P-DATA-TF", "length": 10,
             "summary": "rsp", "findings": []}
    trace = [dict(entry) for _ in range(MAX_TRACE_ROWS + 300)]
    trace[MAX_TRACE_ROWS + 100] = dict(entry, type="A-ABORT", findings=[
        {"offset": 1, "field": "late", "expected": "x", "found": "LATE-FINDING",
         "section": "PS3.8 9.3.8", "severity": "error"}])
    results["scenarios"] = [dict(results["scenarios"][0], trace=trace)]
    tree = Tree(render_html(results)).root
    trace_el = tree.find_all("details", "trace")[0]
    gaps = trace_el.find_all("tr", "gap")
    assert [g.text.split()[1] for g in gaps] == ["100", "199"]
    assert "LATE-FINDING" in trace_el.text
    assert f"{len(trace)} entries" in trace_el.find_all("summary")[0].text


def test_conformance_statement(tree: Element) -> None:
    section = next(s for s in tree.find_all("section") if s.attrs.get("id") == "conformance")
    matrix = section.find_all("table", "matrix")[0]
    heads = [th.text for th in matrix.find_all("th", "ts")]
    assert heads == ["Implicit LE", "Explicit LE", "JPEG Baseline"]
    rows = {tr.find_all("th")[0].text: tr for tr in matrix.find_all("tbody")[0].find_all("tr")}
    ct = next(row for name, row in rows.items() if name.startswith("CT Image Storage"))
    assert [td.text for td in ct.find_all("td")] == ["\u2713", "\u2713", "\u2713"]
    pdf = next(row for name, row in rows.items() if name.startswith("Encapsulated PDF"))
    assert [td.text for td in pdf.find_all("td")] == ["", "\u2713", ""]
    # a SOP class without a name in the results is named from the UID dictionary
    assert any(name.startswith("Basic Text SR Storage") for name in rows)
    text = re.sub(r"\s+", " ", section.text)
    for fragment in ("16,384 bytes", "1 invoked / 1 performed (synchronous)",
                     "any called AE accepted", "overwrite", "30.0 s",
                     "3 \u2013 abstract-syntax-not-supported", "RT Plan Storage",
                     "user identity", "not supported (no 59H item)"):
        assert fragment in text, fragment
    flagged = [s["id"] for s in SAMPLE["scenarios"] if s["conformance_statement"]]
    listed = [c.text for c in section.find_all("table", "conf-scenarios")[0].find_all("code")]
    assert listed == flagged


def test_summary_counts(tree: Element) -> None:
    cards = {c.attrs["data-outcome-link"]: int(c.find_all("span", "card-n")[0].text)
             for c in tree.find_all("a", "card")}
    outcomes = [s["outcome"] for s in SAMPLE["scenarios"]]
    kinds = ("fail", "error", "warn", "pass", "info", "skip")
    assert cards == {o: outcomes.count(o) for o in kinds}
    groups = sorted({s["group"] for s in SAMPLE["scenarios"]})
    options = [o.attrs["value"] for o in tree.find_all("option")]
    assert options == ["", *groups, "", "must", "should", "info"]
    svg_bars = tree.find_all("svg")
    assert len(svg_bars) == 3  # all, by group, by severity


def test_filters_and_print_rules_exist(page: str) -> None:
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    print_rules = style.split("@media print", 1)[1]
    assert ".filters" in print_rules and "display: none" in print_rules
    assert "details::details-content" in print_rules
    assert 'id="f-q"' in page and 'name="outcome"' in page


def test_baseline_section_orders_new_failures_first() -> None:
    baseline = copy.deepcopy(SAMPLE)
    for s in baseline["scenarios"]:
        if s["id"] == "assoc.protocol-version.bit0-clear":
            s["outcome"] = "pass"  # now fails: a new failure
        if s["id"] == "security.path-uid":
            s["outcome"] = "fail"  # now passes: fixed
    baseline["scenarios"].append({"id": "old.removed", "outcome": "pass"})
    page = render_html(SAMPLE, baseline)
    section = page.split('<section id="changes">', 1)[1].split("</section>", 1)[0]
    assert section.index("New failures") < section.index("Fixed") < section.index("Still failing")
    new_failures = section.split("New failures", 1)[1].split("</table>", 1)[0]
    assert "assoc.protocol-version.bit0-clear" in new_failures
    assert "security.path-uid" in section.split("Fixed", 1)[1].split("</table>", 1)[0]
    assert "old.removed" in section.split("Removed scenarios", 1)[1]
    assert "1 regression." in section
    assert 'href="#changes"' in page
    assert '<section id="changes">' not in render_html(SAMPLE)


@pytest.mark.parametrize("results", [
    {},
    {"scenarios": []},
    {"harness_version": "0.1.0", "target": {}, "scenarios": [{"id": "x", "outcome": "pass"}]},
    {"scenarios": [{"id": 5, "outcome": "weird", "group": None, "references": "PS3.8 9.3",
                    "checks": [None, {"outcome": 3}], "trace": [None, {"findings": [None]}],
                    "tags": "slow"}],
     "target": "nonsense", "conformance": {"accepted": [{"transfer_syntaxes": None}],
                                          "async_window": "7", "max_pdu": "big"}},
])
def test_incomplete_results_still_render(results: dict[str, Any]) -> None:
    page = render_html(results)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_no_scenarios_verdict() -> None:
    assert "NO SCENARIOS" in render_html({"scenarios": []})


def test_write_html(tmp_path: Path) -> None:
    path = write_html(SAMPLE, tmp_path / "deep" / "report.html")
    assert path == tmp_path / "deep" / "report.html"
    assert path.read_text(encoding="utf-8") == render_html(SAMPLE)


def test_bar_geometry() -> None:
    chart = stacked_bars([("A", "a", {"pass": 3, "fail": 1}), ("B", "b", {"warn": 8}),
                          ("C", "c", {})])
    a, b, c = chart.bars
    assert [s.outcome for s in a.segments] == ["fail", "pass"]  # worst first
    assert a.segments[0].x == LABEL_WIDTH
    assert a.segments[1].x == pytest.approx(a.segments[0].x + a.segments[0].width)
    assert b.segments[0].width == pytest.approx(BAR_WIDTH)  # the longest bar fills the width
    assert sum(s.width for s in a.segments) == pytest.approx(BAR_WIDTH / 2)
    assert c.segments == () and c.total == 0
    assert a.y < b.y < c.y


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12,
)
scenario_like = st.dictionaries(
    st.sampled_from(["id", "title", "group", "group_title", "severity", "outcome", "references",
                     "expected", "observed", "checks", "trace", "tags", "duration_s",
                     "conformance_statement"]),
    json_values,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenario_like, max_size=4), json_values, json_values)
def test_arbitrary_json_never_breaks_the_page(
    items: list[dict[str, Any]], target: Any, conformance: Any
) -> None:
    results = {"scenarios": items, "target": target, "conformance": conformance,
               "started_at": target}
    page = render_html(results, baseline={"scenarios": items[:1]})
    assert page.count("<script") == 1 and page.count("</script") == 1
    assert len(Tree(page).root.find_all("details", "scenario")) == len(items)


def test_event_rows_have_no_length(tree: Element) -> None:
    rows = tree.find_all("tr", "dir-event")
    assert rows and all(r.find_all("td")[4].text == "" for r in rows)


def test_report_dir(tmp_path: Path) -> None:
    from harness.report import REPORT_FILES, load_results, write_report_dir

    paths = write_report_dir(SAMPLE, tmp_path / "reports", baseline=SAMPLE)
    assert {p.name for p in paths.values()} == set(REPORT_FILES.values())
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(REPORT_FILES.values())
    assert load_results(paths["json"]) == SAMPLE
    assert 'id="changes"' in paths["html"].read_text(encoding="utf-8")
    assert paths["junit"].read_text(encoding="utf-8").startswith("<?xml")
