"""A tolerant read-only view of the results JSON: outcomes, severities, groups, counts, verdict.

Every report writer reads the results through these helpers so that a key the engine did not
write (all keys beyond DESIGN.md's stable ones may be absent) and values of an unexpected type
never raise: the results come partly from the SCP under test and are treated as untrusted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.engine.model import GROUP_TITLES, NOT_RUN_TARGET_DOWN
from harness.engine.model import SEVERITIES as SEVERITIES  # read by the report writers

# Display order: worst first, so tables and charts lead with what needs attention.
OUTCOMES: tuple[str, ...] = ("fail", "error", "warn", "pass", "info", "skip")
OUTCOME_LABELS: dict[str, str] = {
    "fail": "Fail",
    "error": "Error",
    "warn": "Warning",
    "pass": "Pass",
    "info": "Info",
    "skip": "Skipped",
}
# Keys of the results "summary" object for each outcome (DESIGN.md + the "info" extension).
SUMMARY_KEYS: dict[str, str] = {
    "pass": "passed",
    "fail": "failed",
    "warn": "warned",
    "skip": "skipped",
    "error": "errored",
    "info": "info",
}
SEVERITY_LABELS: dict[str, str] = {"must": "MUST", "should": "SHOULD", "info": "INFO"}

# The engine writes each scenario's "group_title" into the results (from the one table of group
# titles, harness/engine/model.py); the same table names a group the results carry without a
# title (results of an older version).
NO_GROUP = "other"

# C0 controls (except tab/newline) and DEL: an SCP can put them in an AE title or an Error
# Comment; shown as \xNN so the reader sees them and XML stays well-formed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def as_text(value: Any) -> str:
    """Any JSON value as display text: None -> "", containers as compact JSON, controls escaped."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def as_float(value: Any) -> float | None:
    """A number from the results, or None when absent or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def scenarios(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The scenario objects of a results dict (non-objects are dropped)."""
    return [s for s in as_list(results.get("scenarios")) if isinstance(s, Mapping)]


def outcome_of(scenario: Mapping[str, Any]) -> str:
    """The scenario's outcome; anything outside the contract counts as a harness error."""
    outcome = scenario.get("outcome")
    if isinstance(outcome, str) and outcome.lower() in OUTCOME_LABELS:
        return outcome.lower()
    return "error"


def check_outcome(check: Mapping[str, Any]) -> str:
    outcome = check.get("outcome")
    if isinstance(outcome, str) and outcome.lower() in OUTCOME_LABELS:
        return outcome.lower()
    return "info"


def severity_of(item: Mapping[str, Any]) -> str:
    """"must", "should" or "info"; a missing or unknown severity is shown as "info"."""
    severity = item.get("severity")
    if isinstance(severity, str) and severity.lower() in SEVERITY_LABELS:
        return severity.lower()
    return "info"


def scenario_id(scenario: Mapping[str, Any]) -> str:
    return as_text(scenario.get("id")) or "(unnamed)"


def group_of(scenario: Mapping[str, Any]) -> str:
    return as_text(scenario.get("group")).strip() or NO_GROUP


def group_title(scenario: Mapping[str, Any]) -> str:
    title = as_text(scenario.get("group_title")).strip()
    if title:
        return title
    return GROUP_TITLES.get(group_of(scenario), "Other scenarios")


def group_titles(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Group key -> title, in first-seen order, sorted by key (A..K, then the rest)."""
    seen: dict[str, str] = {}
    for scenario in items:
        seen.setdefault(group_of(scenario), group_title(scenario))
    return dict(sorted(seen.items(), key=lambda kv: (kv[0] == NO_GROUP, kv[0])))


def count_outcomes(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Outcome -> number of scenarios, every outcome present (zero when unseen)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for scenario in items:
        counts[outcome_of(scenario)] += 1
    return counts


def summary(results: Mapping[str, Any]) -> dict[str, int]:
    """The run's summary in the results-JSON shape, recomputed from the scenarios.

    Recomputed rather than copied so that every writer reports the same numbers as the
    scenario list it shows, whatever the "summary" object says.
    """
    counts = count_outcomes(scenarios(results))
    out = {"total": sum(counts.values())}
    out.update({SUMMARY_KEYS[o]: counts[o] for o in OUTCOMES})
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """The one-line judgement of a run: ``key`` is also the CSS class of its badge."""

    key: str
    label: str
    explanation: str


def verdict(counts: Mapping[str, int]) -> Verdict:
    """Overall verdict from outcome counts: any failure fails the run (as the exit status does)."""
    if counts.get("fail", 0):
        n = counts["fail"]
        return Verdict("fail", "FAIL", f"{n} scenario{'s' if n != 1 else ''} failed")
    if counts.get("error", 0):
        n = counts["error"]
        return Verdict(
            "error", "INCOMPLETE", f"no failure, but {n} scenario{'s' if n != 1 else ''} "
            "could not be run"
        )
    if counts.get("warn", 0):
        n = counts["warn"]
        return Verdict("warn", "PASS WITH WARNINGS", f"{n} SHOULD-level deviation"
                       f"{'s' if n != 1 else ''}")
    if not any(counts.values()):
        return Verdict("skip", "NO SCENARIOS", "the run contains no scenario")
    return Verdict("pass", "PASS", "every scenario that ran passed")


def run_notes(results: Mapping[str, Any]) -> list[str]:
    """Run-level findings shown above everything else: a target that stopped accepting
    connections (the scenario that killed it, how many were not run) and a run cut at
    ``--max-duration``."""
    notes: list[str] = []
    items = scenarios(results)
    down = results.get("target_down")
    if isinstance(down, Mapping):
        not_run = sum(1 for s in items if as_text(s.get("observed")).startswith(
            NOT_RUN_TARGET_DOWN))
        if down.get("after"):
            notes.append(f"The SCP stopped accepting connections after scenario "
                         f"{as_text(down.get('after'))}: that scenario fails, and the "
                         f"remaining {not_run} scenario(s) were not run because the target "
                         "is down.")
        else:
            notes.append(f"The target accepted no connection: {not_run} scenario(s) were "
                         "not run.")
    stopped = results.get("stopped")
    if isinstance(stopped, Mapping) and stopped.get("reason") == "max-duration":
        unfinished = sum(1 for s in items if outcome_of(s) == "error" and "max-duration" in
                         as_text(s.get("observed")))
        notes.append(f"The run reached --max-duration {as_text(stopped.get('limit_s'))} s: "
                     f"{unfinished} scenario(s) unfinished or not run (reported as errors).")
    return notes
