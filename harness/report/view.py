"""The HTML report's view model: results JSON turned into plain display records.

Everything the template shows is computed here (text, links, counts, anchors), so the template
only lays it out. Values stay raw text: the template's autoescaping is what makes SCP-supplied
strings safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.report.chart import BarChart, stacked_bars
from harness.report.compare import Change, Comparison, compare
from harness.report.model import (
    OUTCOME_LABELS,
    OUTCOMES,
    SEVERITIES,
    SEVERITY_LABELS,
    Verdict,
    as_float,
    as_list,
    as_mapping,
    as_text,
    check_outcome,
    count_outcomes,
    group_of,
    group_title,
    group_titles,
    outcome_of,
    run_notes,
    scenario_id,
    scenarios,
    severity_of,
    verdict,
)
from harness.report.refs import reference_links
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    PC_RESULTS,
    RLE_LOSSLESS,
)
from harness.wire.uid import uid_name as registered_uid_name

# A scenario's trace can hold thousands of PDUs (1 000 stores); the page shows the first ones
# and every later entry that has findings, the JSON keeps them all.
MAX_TRACE_ROWS = 400
DIRECTIONS: dict[str, tuple[str, str]] = {
    "sent": ("\u2192", "harness to SCP"),
    "recv": ("\u2190", "SCP to harness"),
    "event": ("\u2022", "event"),
}
# Short column headings for the usual transfer syntaxes, in the order a reader expects them
# (others follow in first-seen order); the full name is in a tooltip.
TS_SHORT: dict[str, str] = {
    IMPLICIT_VR_LE: "Implicit LE",
    EXPLICIT_VR_LE: "Explicit LE",
    EXPLICIT_VR_BE: "Explicit BE",
    DEFLATED_EXPLICIT_VR_LE: "Deflate",
    JPEG_BASELINE: "JPEG Baseline",
    JPEG_EXTENDED: "JPEG Extended",
    JPEG_LOSSLESS: "JPEG Lossless",
    JPEG_LOSSLESS_SV1: "JPEG Lossless SV1",
    JPEG_LS_LOSSLESS: "JPEG-LS Lossless",
    JPEG_LS_NEAR_LOSSLESS: "JPEG-LS Near",
    JPEG_2000_LOSSLESS: "J2K Lossless",
    JPEG_2000: "J2K",
    RLE_LOSSLESS: "RLE",
}
TS_ORDER: tuple[str, ...] = tuple(TS_SHORT)
# Conformance keys with their own line; any other key is listed under "Other observations".
KNOWN_CONFORMANCE_KEYS = frozenset({
    "accepted", "rejected", "max_pdu", "async_window", "ae_title_policy",
    "duplicate_sop_instance_policy", "artim_timeout_s", "implementation_class_uid",
    "implementation_version_name", "rejected_transfer_syntaxes", "not_tested",
})


def uid_name(uid: str) -> str:
    """Registered name of a UID (wire/uid.py's lookup), or "" when unknown."""
    name = registered_uid_name(uid)
    return "" if name == uid else name


def fmt_seconds(value: Any) -> str:
    number = as_float(value)
    if number is None:
        return ""
    if number < 1:
        return f"{number * 1000:.1f} ms"
    if number < 120:
        return f"{number:.2f} s"
    minutes, seconds = divmod(number, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def fmt_date(value: Any) -> str:
    text = as_text(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    zone = moment.strftime("%z")  # "" for a naive time: shown without a zone
    offset = {"": "", "+0000": " UTC"}.get(zone, f" UTC{zone[:3]}:{zone[3:]}")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + offset


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str | None


def links(value: Any) -> list[Link]:
    """Reference text(s) -> links; a list of references or a single string."""
    refs = as_list(value) if isinstance(value, list | tuple) else ([value] if value else [])
    out: list[Link] = []
    for ref in refs:
        out.extend(Link(text, url) for text, url in reference_links(as_text(ref)))
    return out


@dataclass(frozen=True, slots=True)
class FindingView:
    offset: str
    field: str
    expected: str
    found: str
    section: list[Link]
    severity: str


@dataclass(frozen=True, slots=True)
class TraceRow:
    time: str
    assoc: str
    direction: str
    arrow: str
    direction_title: str
    type: str
    length: str
    summary: str
    findings: list[FindingView]
    gap: int = 0  # when > 0 this row only says that many entries are not shown


@dataclass(frozen=True, slots=True)
class CheckView:
    name: str
    severity: str
    outcome: str
    expected: str
    observed: str
    references: list[Link]


@dataclass(frozen=True, slots=True)
class ScenarioView:
    id: str
    anchor: str
    title: str
    group: str
    group_title: str
    severity: str
    outcome: str
    expected: str
    observed: str
    references: list[Link]
    checks: list[CheckView]
    trace: list[TraceRow]
    trace_total: int
    finding_count: int
    duration: str
    tags: list[str]
    conformance_statement: bool
    search: str
    open: bool


@dataclass(frozen=True, slots=True)
class GroupView:
    key: str
    title: str
    counts: dict[str, int]
    scenarios: list[ScenarioView]


@dataclass(frozen=True, slots=True)
class SopRow:
    uid: str
    name: str
    transfer_syntaxes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TsColumn:
    uid: str
    short: str
    name: str


@dataclass(frozen=True, slots=True)
class RejectedRow:
    uid: str
    name: str
    result: str
    meaning: str


@dataclass
class ConformanceView:
    present: bool
    accepted: list[SopRow] = field(default_factory=list)
    ts_columns: list[TsColumn] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    scenarios: list[ScenarioView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChangeView:
    change: Change
    anchor: str | None


@dataclass
class ComparisonView:
    comparison: Comparison
    baseline_started: str
    baseline_version: str
    sections: list[tuple[str, str, list[ChangeView]]]
    added: list[tuple[str, str | None]]
    removed: list[str]


def _finding(raw: Any) -> FindingView:
    item = as_mapping(raw)
    severity = as_text(item.get("severity")).lower() or "error"
    return FindingView(
        offset=as_text(item.get("offset")),
        field=as_text(item.get("field")),
        expected=as_text(item.get("expected")),
        found=as_text(item.get("found")),
        section=links(item.get("section")),
        severity=severity if severity in ("error", "warning") else "info",
    )


def _trace_row(raw: Any) -> TraceRow:
    entry = as_mapping(raw)
    direction = as_text(entry.get("dir")).lower()
    arrow, title = DIRECTIONS.get(direction, ("?", direction or "unknown direction"))
    t = as_float(entry.get("t"))
    length = entry.get("length")
    return TraceRow(
        time=f"{t * 1000:.1f}" if t is not None else "",
        assoc=as_text(entry.get("assoc")),
        direction=direction if direction in DIRECTIONS else "other",
        arrow=arrow,
        direction_title=title,
        type=as_text(entry.get("type")),
        # Events (connect, close, timeout) carry no PDU: a length of 0 there says nothing.
        length="" if length is None or (direction == "event" and length == 0) else as_text(length),
        summary=as_text(entry.get("summary")),
        findings=[_finding(f) for f in as_list(entry.get("findings"))],
    )


def _trace(raw: Any) -> tuple[list[TraceRow], int, int]:
    """(rows shown, total entries, findings in total); long traces keep rows with findings."""
    entries = as_list(raw)
    rows: list[TraceRow] = []
    skipped = 0
    findings = 0
    for index, entry in enumerate(entries):
        has_findings = bool(as_list(as_mapping(entry).get("findings")))
        findings += len(as_list(as_mapping(entry).get("findings")))
        if index < MAX_TRACE_ROWS or has_findings:
            if skipped:
                rows.append(_gap(skipped))
                skipped = 0
            rows.append(_trace_row(entry))
        else:
            skipped += 1
    if skipped:
        rows.append(_gap(skipped))
    return rows, len(entries), findings


def _gap(count: int) -> TraceRow:
    return TraceRow("", "", "other", "", "", "", "", "", [], gap=count)


_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _anchor(sid: str, used: set[str]) -> str:
    base = "s-" + (_ANCHOR_UNSAFE.sub("-", sid).strip("-") or "scenario")
    anchor, n = base, 1
    while anchor in used:
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


def scenario_view(scenario: Mapping[str, Any], anchor: str) -> ScenarioView:
    outcome = outcome_of(scenario)
    checks = [
        CheckView(
            name=as_text(c.get("name")),
            severity=severity_of(c),
            outcome=check_outcome(c),
            expected=as_text(c.get("expected")),
            observed=as_text(c.get("observed")),
            references=links(c.get("reference")),
        )
        for c in (as_mapping(raw) for raw in as_list(scenario.get("checks")))
    ]
    trace, total, findings = _trace(scenario.get("trace"))
    refs = links(scenario.get("references"))
    sid = scenario_id(scenario)
    title = as_text(scenario.get("title"))
    expected = as_text(scenario.get("expected"))
    observed = as_text(scenario.get("observed"))
    tags = [as_text(t) for t in as_list(scenario.get("tags"))]
    # The search box matches against this lower-cased bag of words.
    words = [sid, title, group_of(scenario), group_title(scenario), outcome,
             OUTCOME_LABELS[outcome], severity_of(scenario), expected, observed, *tags,
             *(r.text for r in refs)]
    for check in checks:
        words.extend((check.name, check.expected, check.observed))
    return ScenarioView(
        id=sid,
        anchor=anchor,
        title=title,
        group=group_of(scenario),
        group_title=group_title(scenario),
        severity=severity_of(scenario),
        outcome=outcome,
        expected=expected,
        observed=observed,
        references=refs,
        checks=checks,
        trace=trace,
        trace_total=total,
        finding_count=findings,
        duration=fmt_seconds(scenario.get("duration_s")) if outcome != "skip" else "",
        tags=tags,
        conformance_statement=scenario.get("conformance_statement") is True,
        search=" ".join(w for w in words if w).lower(),
        open=outcome in ("fail", "error"),
    )


def _rejected_row(uid: str, name: str, result: Any) -> RejectedRow:
    """A refused context's row: the result as given, with its PS3.8 Table 9-18 meaning."""
    meaning = PC_RESULTS.get(result, "") if isinstance(result, int) else ""
    return RejectedRow(uid, name, as_text(result), meaning)


def _conformance(results: Mapping[str, Any], views: list[ScenarioView]) -> ConformanceView:
    raw = results.get("conformance")
    conf = as_mapping(raw)
    target = as_mapping(results.get("target"))
    view = ConformanceView(present=isinstance(raw, Mapping) and bool(raw))
    view.scenarios = [v for v in views if v.conformance_statement]

    seen_ts: list[str] = []
    for item in (as_mapping(a) for a in as_list(conf.get("accepted"))):
        uid = as_text(item.get("sop_class"))
        syntaxes = [as_text(t) for t in as_list(item.get("transfer_syntaxes"))]
        for ts in syntaxes:
            if ts not in seen_ts:
                seen_ts.append(ts)
        view.accepted.append(
            SopRow(uid, as_text(item.get("name")) or uid_name(uid), frozenset(syntaxes))
        )
    order = {uid: i for i, uid in enumerate(TS_ORDER)}
    first_seen = {uid: i for i, uid in enumerate(seen_ts)}
    columns = sorted(seen_ts, key=lambda uid: (order.get(uid, len(order)), first_seen[uid]))
    view.ts_columns = [
        TsColumn(uid, TS_SHORT.get(uid) or uid_name(uid) or uid, uid_name(uid) or uid)
        for uid in columns
    ]
    for item in (as_mapping(r) for r in as_list(conf.get("rejected"))):
        uid = as_text(item.get("sop_class"))
        view.rejected.append(_rejected_row(uid, as_text(item.get("name")) or uid_name(uid),
                                           item.get("result")))

    # A transfer syntax refused for a class accepted in another (issue 13).
    for item in (as_mapping(r) for r in as_list(conf.get("rejected_transfer_syntaxes"))):
        uid = as_text(item.get("sop_class"))
        ts = as_text(item.get("transfer_syntax"))
        name = as_text(item.get("name")) or uid_name(uid) or uid
        view.rejected.append(_rejected_row(
            uid, f"{name} in {as_text(item.get('transfer_syntax_name')) or uid_name(ts) or ts}",
            item.get("result")))

    max_pdu = conf.get("max_pdu")
    if isinstance(max_pdu, int) and not isinstance(max_pdu, bool):
        pdu_text = "0 (unlimited)" if max_pdu == 0 else f"{max_pdu:,} bytes"
    else:
        pdu_text = as_text(max_pdu) or "not recorded"
    window = as_list(conf.get("async_window"))
    if len(window) == 2:
        window_text = f"{as_text(window[0])} invoked / {as_text(window[1])} performed"
        if window[0] == 1 and window[1] == 1:
            window_text += " (synchronous)"
    else:
        window_text = as_text(conf.get("async_window")) or "not negotiated"
    artim = as_float(conf.get("artim_timeout_s"))
    view.facts = [
        ("Maximum PDU length (SCP receives)", pdu_text),
        ("Asynchronous operations window", window_text),
        ("AE title policy", as_text(conf.get("ae_title_policy")) or "not recorded"),
        ("Duplicate SOP Instance policy",
         as_text(conf.get("duplicate_sop_instance_policy")) or "not recorded"),
        ("ARTIM timeout (measured)", f"{artim:.1f} s" if artim is not None else "not measured"),
        ("Implementation Class UID",
         as_text(conf.get("implementation_class_uid") or target.get("implementation_class_uid"))
         or "not sent"),
        ("Implementation Version Name",
         as_text(conf.get("implementation_version_name")
                 or target.get("implementation_version_name")) or "not sent"),
    ]
    view.other = [
        (as_text(key).replace("_", " "), as_text(value))
        for key, value in conf.items()
        if key not in KNOWN_CONFORMANCE_KEYS and not isinstance(value, Mapping)
    ]
    # A mapping (the TLS session: version, cipher, certificate) gives one row per field.
    view.other += [
        (f"{as_text(key)} {as_text(sub)}".replace("_", " "), as_text(item))
        for key, value in conf.items() if isinstance(value, Mapping)
        for sub, item in value.items()
    ] + [
        (f"Not tested: {as_text(item.get('scenario'))}", as_text(item.get("reason")))
        for item in (as_mapping(i) for i in as_list(conf.get("not_tested")))
    ]
    return view


def _comparison(
    results: Mapping[str, Any], baseline: Mapping[str, Any], anchors: Mapping[str, str]
) -> ComparisonView:
    comparison = compare(results, baseline)

    def wrap(changes: list[Change]) -> list[ChangeView]:
        return [ChangeView(c, anchors.get(c.id)) for c in changes]

    pass_to_error = [c for c in comparison.regressions if c not in comparison.new_failures]
    sections = [
        ("new-failures", "New failures", wrap(comparison.new_failures)),
        ("fixed", "Fixed", wrap(comparison.fixed)),
        ("broken", "MUST scenarios that can no longer run (pass \u2192 error)",
         wrap(pass_to_error)),
        ("new-warnings", "New warnings", wrap(comparison.new_warnings)),
        ("still-failing", "Still failing", wrap(comparison.still_failing)),
    ]
    return ComparisonView(
        comparison=comparison,
        baseline_started=fmt_date(baseline.get("started_at")),
        baseline_version=as_text(baseline.get("harness_version")),
        sections=sections,
        added=[(sid, anchors.get(sid)) for sid in comparison.added],
        removed=comparison.removed,
    )


@dataclass
class ReportView:
    """All the template needs, in display form."""

    title: str
    harness_version: str
    started: str
    duration: str
    target: list[tuple[str, str]]
    embedded: bool
    verdict: Verdict
    counts: dict[str, int]
    total: int
    outcomes: list[tuple[str, str, int]]
    severities: list[tuple[str, str, dict[str, int]]]
    groups: list[GroupView]
    group_chart: BarChart
    severity_chart: BarChart
    total_chart: BarChart
    conformance: ConformanceView
    comparison: ComparisonView | None
    run_notes: list[str] = field(default_factory=list)  # target down, run cut short
    outcome_labels: dict[str, str] = field(default_factory=lambda: dict(OUTCOME_LABELS))
    severity_labels: dict[str, str] = field(default_factory=lambda: dict(SEVERITY_LABELS))


def build_view(results: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> ReportView:
    items = scenarios(results)
    target = as_mapping(results.get("target"))
    used: set[str] = set()
    views = [scenario_view(s, _anchor(scenario_id(s), used)) for s in items]
    anchors: dict[str, str] = {}
    for v in views:
        anchors.setdefault(v.id, v.anchor)

    titles = group_titles(items)
    groups = [
        GroupView(
            key=key,
            title=title,
            counts=count_outcomes(s for s in items if group_of(s) == key),
            scenarios=[v for v in views if v.group == key],
        )
        for key, title in titles.items()
    ]
    counts = count_outcomes(items)
    severities = [
        (sev, SEVERITY_LABELS[sev], count_outcomes(s for s in items if severity_of(s) == sev))
        for sev in SEVERITIES
    ]
    host, port = as_text(target.get("host")), as_text(target.get("port"))
    target_rows = [
        ("Target", f"{host}:{port}" if host or port else "not recorded"),
        ("Called AE title", as_text(target.get("called_aet"))),
        ("Calling AE title", as_text(target.get("calling_aet"))),
        ("Implementation Class UID", as_text(target.get("implementation_class_uid"))),
        ("Implementation Version Name", as_text(target.get("implementation_version_name"))),
    ]
    return ReportView(
        title="DICOM Storage SCP conformance report",
        harness_version=as_text(results.get("harness_version")) or "unknown",
        started=fmt_date(results.get("started_at")),
        duration=fmt_seconds(results.get("duration_s")),
        target=[(k, v) for k, v in target_rows if v],
        embedded=target.get("embedded") is True,
        verdict=verdict(counts),
        counts=counts,
        total=sum(counts.values()),
        outcomes=[(o, OUTCOME_LABELS[o], counts[o]) for o in OUTCOMES],
        severities=severities,
        groups=groups,
        group_chart=stacked_bars([(g.key, f"{g.key} \u2013 {g.title}", g.counts) for g in groups]),
        total_chart=stacked_bars([("all", "All scenarios", counts)]),
        severity_chart=stacked_bars([(k, f"{label} scenarios", c) for k, label, c in severities]),
        conformance=_conformance(results, views),
        comparison=_comparison(results, baseline, anchors) if baseline is not None else None,
        run_notes=run_notes(results),
    )
