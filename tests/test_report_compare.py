"""Comparison with a baseline (harness/report/compare.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.report import compare, has_regression

OUTCOMES = ["pass", "fail", "warn", "skip", "error", "info"]


def run(*items: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    scenarios = []
    for item in items:
        sid, outcome = item[0], item[1]
        severity = item[2] if len(item) == 3 else "must"
        scenarios.append({"id": sid, "title": f"title {sid}", "group": sid[0].upper(),
                          "severity": severity, "outcome": outcome})
    return {"harness_version": "0.1.0", "target": {}, "scenarios": scenarios}


def ids(changes: list[Any]) -> list[str]:
    return [c.id for c in changes]


def test_each_list() -> None:
    baseline = run(("a1", "pass"), ("a2", "fail"), ("a3", "fail"), ("a4", "warn"),
                   ("a5", "pass"), ("a6", "pass"), ("a7", "pass", "should"), ("gone", "pass"))
    results = run(("a1", "fail"), ("a2", "fail"), ("a3", "pass"), ("a4", "pass"),
                  ("a5", "warn"), ("a6", "error"), ("a7", "error", "should"), ("new1", "fail"),
                  ("new2", "warn"), ("new3", "pass"))
    c = compare(results, baseline)
    assert ids(c.new_failures) == ["a1", "new1"]
    assert ids(c.still_failing) == ["a2"]
    assert ids(c.fixed) == ["a3", "a4"]
    assert ids(c.new_warnings) == ["a5", "new2"]
    assert c.added == ["new1", "new2", "new3"]
    assert c.removed == ["gone"]
    # new failures first, then MUST scenarios that went pass -> error (not the SHOULD one)
    assert ids(c.regressions) == ["a1", "new1", "a6"]
    assert has_regression(c)
    first = c.new_failures[0]
    assert (first.before, first.after, first.severity, first.title) == ("pass", "fail", "must",
                                                                          "title a1")
    assert c.new_failures[1].before is None


def test_identical_runs_have_no_change() -> None:
    results = run(("a", "pass"), ("b", "fail"), ("c", "warn"))
    c = compare(results, results)
    assert not has_regression(c)
    assert ids(c.still_failing) == ["b"]
    assert c.unchanged
    assert not (c.new_failures or c.fixed or c.new_warnings or c.added or c.removed)


def test_fixes_only_is_not_a_regression() -> None:
    c = compare(run(("a", "pass")), run(("a", "fail")))
    assert ids(c.fixed) == ["a"] and not has_regression(c)


def test_to_dict_is_json_shaped() -> None:
    d = compare(run(("a", "fail")), run(("a", "pass"))).to_dict()
    assert d["regressions"][0] == {"id": "a", "title": "title a", "group": "A",
                                   "severity": "must", "before": "pass", "after": "fail"}


def test_tolerates_junk() -> None:
    baseline = {"scenarios": [None, 3, {"outcome": "pass"}, {"id": "x", "outcome": "nonsense"}]}
    results = {"scenarios": [{"id": "x", "outcome": "fail"}]}
    c = compare(results, baseline)
    # an unknown outcome counts as a harness error, so fail is new
    assert ids(c.new_failures) == ["x"]
    assert compare({}, {}).unchanged
    # an empty scenario object is falsy: it must still be found by its (placeholder) id
    c = compare({"scenarios": [{}]}, {"scenarios": [{"id": "x", "outcome": "pass"}]})
    assert c.added == ["(unnamed)"] and c.removed == ["x"]


runs = st.dictionaries(
    st.sampled_from([f"s{i}" for i in range(8)]), st.sampled_from(OUTCOMES), max_size=8
)


@settings(max_examples=60)
@given(runs, runs)
def test_partition_invariants(now: dict[str, str], before: dict[str, str]) -> None:
    results = run(*now.items())
    baseline = run(*before.items())
    c = compare(results, baseline)
    failing_now = {sid for sid, o in now.items() if o == "fail"}
    assert set(ids(c.new_failures)) | set(ids(c.still_failing)) == failing_now
    assert not set(ids(c.new_failures)) & set(ids(c.still_failing))
    assert set(c.added) == now.keys() - before.keys()
    assert set(c.removed) == before.keys() - now.keys()
    assert {x.id for x in c.fixed} == {
        sid for sid, o in now.items() if o == "pass" and before.get(sid) in ("fail", "warn")
    }
    assert set(ids(c.new_warnings)) == {
        sid for sid, o in now.items() if o == "warn" and before.get(sid) != "warn"
    }
    assert has_regression(c) == bool(
        set(ids(c.new_failures))
        or {sid for sid, o in now.items() if o == "error" and before.get(sid) == "pass"}
    )
