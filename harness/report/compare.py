"""Comparison of a run with a baseline run: what broke, what got fixed, what appeared.

Scenarios are matched by id. The rules (a scenario absent from one side counts as "not
that outcome" there):

- new_failures: fail now, not fail in the baseline (a new scenario that fails included);
- fixed: fail or warn in the baseline, pass now;
- new_warnings: warn now, not warn in the baseline;
- still_failing: fail in both;
- added / removed: ids only in the run / only in the baseline;
- regressions: the new failures, then MUST scenarios that went from pass to error (a check
  that used to hold can no longer even be run, which hides a possible failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.report.model import (
    as_text,
    group_of,
    outcome_of,
    scenario_id,
    scenarios,
    severity_of,
)


@dataclass(frozen=True, slots=True)
class Change:
    """One scenario whose outcome differs, or does not, between baseline and run.

    ``before`` is None for a scenario the baseline did not have, ``after`` None for one the
    run no longer has.
    """

    id: str
    title: str
    group: str
    severity: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class Comparison:
    new_failures: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    new_warnings: list[Change] = field(default_factory=list)
    still_failing: list[Change] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    regressions: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def unchanged(self) -> bool:
        """True when nothing differs that a reader of the comparison would care about."""
        return not (
            self.new_failures or self.fixed or self.new_warnings or self.added
            or self.removed or self.regressions
        )


def _index(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    # The first scenario of a given id wins: ids are unique in a well-formed run.
    index: dict[str, Mapping[str, Any]] = {}
    for scenario in scenarios(results):
        index.setdefault(scenario_id(scenario), scenario)
    return index


def compare(results: Mapping[str, Any], baseline: Mapping[str, Any]) -> Comparison:
    """Compare ``results`` with ``baseline`` (both results-JSON dicts); order follows the run."""
    now = _index(results)
    before = _index(baseline)
    comparison = Comparison()

    def change(sid: str) -> Change:
        current = now[sid] if sid in now else before[sid]
        return Change(
            id=sid,
            title=as_text(current.get("title")),
            group=group_of(current),
            severity=severity_of(current),
            before=outcome_of(before[sid]) if sid in before else None,
            after=outcome_of(now[sid]) if sid in now else None,
        )

    pass_to_error: list[Change] = []
    for sid in now:
        item = change(sid)
        if sid not in before:
            comparison.added.append(sid)
        if item.after == "fail":
            if item.before == "fail":
                comparison.still_failing.append(item)
            else:
                comparison.new_failures.append(item)
        elif item.after == "pass" and item.before in ("fail", "warn"):
            comparison.fixed.append(item)
        if item.after == "warn" and item.before != "warn":
            comparison.new_warnings.append(item)
        if (
            item.severity == "must" and item.before == "pass" and item.after == "error"
        ):
            pass_to_error.append(item)
    comparison.removed.extend(sid for sid in before if sid not in now)
    comparison.regressions.extend(comparison.new_failures)
    comparison.regressions.extend(pass_to_error)
    return comparison


def has_regression(comparison: Comparison) -> bool:
    """True when the run is worse than its baseline (what ``--fail-on regression`` checks)."""
    return bool(comparison.regressions)
