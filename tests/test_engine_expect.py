"""Outcome patterns and their grading (harness/engine/expect.py), on hand-made outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.engine.expect import (
    CATEGORIES,
    KINDS,
    graded,
    judge,
    matches,
    pattern_problem,
    validate_expect,
)
from harness.net.requestor import DimseMessage
from harness.scu.outcome import Outcome
from harness.wire.dimse import CEchoRSP, CStoreRSP, decode_command, encode_command

CT = "1.2.840.10008.5.1.4.1.1.2"


def response(status: int, *, echo: bool = False) -> Outcome:
    """A received C-STORE-RSP (or C-ECHO-RSP) with ``status``, as the SCU client builds it."""
    msg = CEchoRSP(1, status) if echo else CStoreRSP(1, status, CT, "1.2.3.4")
    data = encode_command(msg)
    return Outcome("response", message=DimseMessage(1, data, decode_command(data)))


def rejected(result: int, source: int, reason: int) -> Outcome:
    return Outcome("rejected", result=result, source=source, reason=reason)


def abort(source: int, reason: int) -> Outcome:
    return Outcome("abort", source=source, reason=reason)


# --- matches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS - {"rejected", "abort", "response"}))
def test_plain_kinds(kind: str) -> None:
    out = Outcome(kind)
    assert matches(kind, out) and matches(kind.upper(), out) and matches(f"  {kind} ", out)
    others = sorted(KINDS - {kind})
    assert not any(matches(other, out) for other in others)


def test_accepted_and_rejected_are_distinct() -> None:
    assert matches("accepted", Outcome("accepted"))
    assert not matches("accepted", rejected(1, 1, 3))
    assert not matches("rejected", Outcome("accepted"))
    assert matches("rejected", rejected(1, 1, 3))


@pytest.mark.parametrize(("pattern", "hit"), [
    ("rejected:1,2,2", True), ("rejected:1,*,2", True), ("rejected:*,*,*", True),
    ("rejected:*,2,*", True), ("rejected:2,2,2", False), ("rejected:1,1,2", False),
    ("rejected:1,2,3", False), ("rejected:01,2,2", True),
])
def test_rejected_fields(pattern: str, hit: bool) -> None:
    assert matches(pattern, rejected(1, 2, 2)) is hit
    # a rejection pattern never matches anything else
    assert not matches(pattern, abort(1, 2))
    assert not matches(pattern, Outcome("accepted"))


def test_rejected_fields_missing_never_match_a_number() -> None:
    assert not matches("rejected:1,2,2", Outcome("rejected"))
    assert matches("rejected:*,*,*", Outcome("rejected"))


@pytest.mark.parametrize(("pattern", "hit"), [
    ("abort", True), ("abort:2,*", True), ("abort:2,0", True), ("abort:*,0", True),
    ("abort:0,*", False), ("abort:2,1", False), ("ended", True),
])
def test_abort_fields(pattern: str, hit: bool) -> None:
    assert matches(pattern, abort(2, 0)) is hit


def test_close_hang_and_ended() -> None:
    assert matches("close", Outcome("close")) and not matches("close", Outcome("hang"))
    assert matches("hang", Outcome("hang")) and not matches("hang", Outcome("close"))
    assert matches("ended", Outcome("close")) and matches("ended", abort(0, 0))
    assert not matches("ended", Outcome("hang")) and not matches("ended", Outcome("release"))


@pytest.mark.parametrize(("status", "category"), [
    (0x0000, "success"),
    (0x0001, "warning"), (0x0107, "warning"), (0x0116, "warning"),  # 01xx, yet warnings
    (0xB000, "warning"), (0xB007, "warning"), (0xBFFF, "warning"),
    (0x0106, "failure"), (0x0110, "failure"), (0x0117, "failure"), (0x0210, "failure"),
    (0xA700, "failure"), (0xA7FF, "failure"), (0xA900, "failure"), (0xC000, "failure"),
    (0xCFFF, "failure"),
    (0xFE00, "cancel"), (0xFF00, "pending"), (0xFF01, "pending"),
    (0xFFFF, "illegal"), (0x0300, "illegal"), (0xD000, "illegal"), (0x9000, "illegal"),
])
def test_status_categories_follow_annex_c(status: int, category: str) -> None:
    out = response(status)
    assert out.status == status
    assert matches(category, out) and matches(category.capitalize(), out)
    for other in sorted(CATEGORIES - {category}):
        assert not matches(other, out), (hex(status), other)
    assert matches("response", out) and matches(f"not:{category}", out) is False


def test_categories_need_a_response() -> None:
    for category in CATEGORIES:
        assert not matches(category, Outcome("accepted"))
        assert not matches(category, Outcome("response"))  # no message, no status


@pytest.mark.parametrize(("pattern", "status", "hit"), [
    ("0xA700-0xA7FF", 0xA700, True), ("0xA700-0xA7FF", 0xA7FF, True),
    ("0xA700-0xA7FF", 0xA742, True), ("0xA700-0xA7FF", 0xA6FF, False),
    ("0xA700-0xA7FF", 0xA800, False), ("0x0210", 0x0210, True), ("0x0210", 0x0211, False),
    ("0xc000-0xcfff", 0xC123, True), ("0x0000", 0x0000, True),
])
def test_status_codes_and_ranges(pattern: str, status: int, hit: bool) -> None:
    assert matches(pattern, response(status)) is hit
    assert not matches(pattern, Outcome("accepted"))


def test_echo_responses_have_statuses_too() -> None:
    assert matches("success", response(0, echo=True))
    assert matches("0x0211", response(0x0211, echo=True))


def test_not_any_and_nesting() -> None:
    ok = response(0)
    assert matches("any", ok) and matches("any", Outcome("hang"))
    assert matches("not:failure", ok) and not matches("not:success", ok)
    assert matches("not:not:success", ok)
    assert matches("not:rejected:1,*,*", rejected(2, 1, 1))
    assert not matches("not:any", Outcome("close"))
    assert matches("not:hang", Outcome("close"))


def test_unknown_pattern_never_matches() -> None:
    # matches() is only given validated patterns; an unknown word is simply no match
    assert not matches("nonsense", Outcome("accepted"))


# --- pattern_problem / validate_expect -----------------------------------------------------------


@pytest.mark.parametrize("pattern", [
    *sorted(KINDS | CATEGORIES), "any", "ended", "not:success", "rejected:1,2,2",
    "rejected:*,*,*", "abort:2,*", "0x0000", "0xA700-0xA7FF", "NOT:Accepted", "0xffff"])
def test_valid_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize("pattern", ["", None, 5, "acepted", "rejected:1,2", "rejected:1,2,3,4",
                                     "abort:1", "abort:a,b", "rejected:x,1,1", "0xZZ",
                                     "0x1-0xQQ", "not:", "not:bogus", "rejected:\u00b2,*,*",
                                     "abort:\u0663,1"])
def test_invalid_patterns(pattern: Any) -> None:
    problem = pattern_problem(pattern)
    assert problem
    inner = pattern[4:] if isinstance(pattern, str) and pattern.startswith("not:") else pattern
    assert repr(inner) in problem or "non-empty" in problem, problem


@pytest.mark.parametrize(("expect", "text"), [
    ({"outcome": "bogus"}, "expect.outcome: unknown outcome pattern 'bogus'"),
    ({"outcome": ["accepted", "rejected:1"]}, "expect.outcome: pattern 'rejected:1'"),
    ({"outcome": {"must": ["accepted"], "may": ["x"]}}, "unknown grade(s) may"),
    ({"outcome": {"should": ["warnings"]}}, "'warnings'"),
    ({"outcome": 7}, "'7'"),
    ({"outcome": {"must": 7}}, "'7'"),
    ({"stored": "partial"}, "expect.stored must be"),
    ({"stored": True}, "expect.stored must be"),
    ({"within": 0}, "expect.within must be a positive number"),
    ({"within": "soon"}, "expect.within"),
    ({"contexts": [1, 2]}, "expect.contexts"),
    ({"contexts": {"x": [0]}}, "expect.contexts"),
])
def test_validate_expect_errors(expect: dict[str, Any], text: str) -> None:
    problem = validate_expect(expect)
    assert problem is not None and text in problem, problem


@pytest.mark.parametrize("expect", [
    {}, {"outcome": "accepted"}, {"outcome": ["success", "warning"]},
    {"outcome": {"must": ["response"], "should": ["success"], "must_not": "hang",
                 "should_not": ["abort"], "info": ["accepted"]}},
    {"stored": "sent"}, {"stored": "none"}, {"stored": "not-partial"},
    {"stored": "consistent"}, {"stored": "any"}, {"within": 2.5}, {"contexts": {1: [0]}},
])
def test_validate_expect_accepts(expect: dict[str, Any]) -> None:
    assert validate_expect(expect) is None


# --- graded / judge ---------------------------------------------------------------------------


def test_graded_plain_spec_uses_the_scenario_severity() -> None:
    assert graded("accepted", "must") == [("must", ["accepted"])]
    assert graded(["success", "warning"], "should") == [("should", ["success", "warning"])]
    assert graded("accepted", "info") == [("info", ["accepted"])]
    assert graded(None, "must") == [("must", [])]


def test_graded_mapping_in_fixed_order() -> None:
    spec = {"info": "x", "should_not": ["abort"], "must": ["response"], "should": "success"}
    assert graded(spec, "info") == [("must", ["response"]), ("should", ["success"]),
                                    ("should_not", ["abort"]), ("info", ["x"])]


def test_judge_plain() -> None:
    assert judge("accepted", Outcome("accepted"), "must") == [("must", "pass", "accepted")]
    assert judge(["accepted", "rejected"], rejected(1, 1, 7), "should") == [
        ("should", "pass", "accepted or rejected")]
    assert judge("accepted", Outcome("close"), "must") == [("must", "fail", "accepted")]
    assert judge("accepted", Outcome("close"), "should") == [("should", "fail", "accepted")]
    assert judge("accepted", Outcome("close"), "info") == [("info", "fail", "accepted")]


def test_judge_graded() -> None:
    spec = {"must": ["response"], "should": ["success"], "must_not": ["0xA700-0xA7FF"],
            "should_not": ["warning"]}
    assert judge(spec, response(0), "must") == [
        ("must", "pass", "response"), ("should", "pass", "success"),
        ("must", "pass", "not 0xA700-0xA7FF"), ("should", "pass", "not warning")]
    assert judge(spec, response(0xB000), "must") == [
        ("must", "pass", "response"), ("should", "fail", "success"),
        ("must", "pass", "not 0xA700-0xA7FF"), ("should", "fail", "not warning")]
    assert judge(spec, response(0xA701), "must") == [
        ("must", "pass", "response"), ("should", "fail", "success"),
        ("must", "fail", "not 0xA700-0xA7FF"), ("should", "pass", "not warning")]
    assert [v for _s, v, _t in judge(spec, Outcome("hang"), "must")] == [
        "fail", "fail", "pass", "pass"]


def test_judge_skips_empty_grades() -> None:
    assert judge({"must": [], "should": ["accepted"]}, Outcome("accepted"), "must") == [
        ("should", "pass", "accepted")]
    assert judge(None, Outcome("accepted"), "must") == []


def test_judge_info_grade_records() -> None:
    spec = {"must": ["accepted", "rejected"], "info": ["accepted"]}
    assert judge(spec, rejected(1, 1, 3), "info") == [
        ("must", "pass", "accepted or rejected"), ("info", "fail", "accepted")]


# --- properties ---------------------------------------------------------------------------------

_SMALL = st.one_of(st.none(), st.integers(min_value=0, max_value=9))
_PATTERNS = st.one_of(
    st.sampled_from(sorted(KINDS | CATEGORIES | {"any", "ended"})),
    st.builds(lambda r, s, n: f"rejected:{r},{s},{n}", *[st.sampled_from("0123*")] * 3),
    st.builds(lambda s, r: f"abort:{s},{r}", *[st.sampled_from("0126*")] * 2),
    st.integers(0, 0xFFFF).map(lambda c: f"0x{c:04X}"),
    st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)).map(
        lambda t: f"0x{min(t):04X}-0x{max(t):04X}"),
)
_PATTERN_OR_NOT = st.one_of(_PATTERNS, _PATTERNS.map(lambda p: "not:" + p))
_SPECS = st.one_of(
    _PATTERN_OR_NOT, st.lists(_PATTERN_OR_NOT, max_size=4),
    st.dictionaries(st.sampled_from(["must", "should", "must_not", "should_not", "info"]),
                    st.one_of(_PATTERN_OR_NOT, st.lists(_PATTERN_OR_NOT, max_size=3)),
                    max_size=5))


@st.composite
def outcomes(draw: st.DrawFn) -> Outcome:
    kind = draw(st.sampled_from(sorted(KINDS)))
    if kind == "response" and draw(st.booleans()):
        return response(draw(st.integers(0, 0xFFFF)), echo=draw(st.booleans()))
    return Outcome(kind, draw(st.text(max_size=5)), result=draw(_SMALL), source=draw(_SMALL),
                   reason=draw(_SMALL))


@settings(max_examples=300, deadline=None)
@given(spec=_SPECS, out=outcomes(), severity=st.sampled_from(["must", "should", "info"]))
def test_judge_never_raises(spec: Any, out: Outcome, severity: str) -> None:
    assert validate_expect({"outcome": spec}) is None
    results = judge(spec, out, severity)
    for sev, verdict, text in results:
        assert sev in ("must", "should", "info") and verdict in ("pass", "fail") and text
    assert len(results) == sum(1 for _g, pats in graded(spec, severity) if pats)


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(max_size=20), out=outcomes())
def test_any_valid_pattern_can_be_matched(pattern: str, out: Outcome) -> None:
    # whatever pattern_problem lets through, matches() evaluates without raising
    if pattern_problem(pattern) is None:
        assert isinstance(matches(pattern, out), bool)
        assert matches("not:" + pattern, out) is not matches(pattern, out)


@given(pattern=_PATTERNS, out=outcomes())
def test_not_inverts(pattern: str, out: Outcome) -> None:
    assert matches("not:" + pattern, out) is not matches(pattern, out)
