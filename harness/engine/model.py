"""Scenario model: what a scenario file describes, after loading and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES: tuple[str, ...] = ("must", "should", "info")
OUTCOMES = ("pass", "fail", "warn", "skip", "error", "info")
# How a scenario not run because the target went down begins its "observed" text: the runner
# writes it, the console and the reports count and group those scenarios by it.
NOT_RUN_TARGET_DOWN = "not run: the target is down"

# The one table of scenario group titles (the letters of the scenario files' "group:"). The
# runner writes each scenario's title into the results ("group_title"); reports read it there.
GROUP_TITLES: dict[str, str] = {
    "A": "Association negotiation",
    "B": "C-STORE happy paths and framing",
    "C": "Response fields and statuses",
    "D": "Duplicate invocations and pipelining",
    "E": "C-CANCEL and SCU-side cancellation",
    "F": "Malformed data sets",
    "G": "Malformed commands",
    "H": "Malformed PDUs and state machine",
    "I": "Release, abort and timeouts",
    "J": "Security and access control",
    "K": "Resource exhaustion",
    "L": "DICOM over TLS (PS3.15 Annex B)",
}


@dataclass(slots=True)
class Step:
    op: str
    params: dict[str, Any]
    expect: dict[str, Any] = field(default_factory=dict)
    assoc: str = "main"
    line: int | None = None


@dataclass(slots=True)
class Scenario:
    id: str
    title: str
    group: str
    severity: str
    references: list[str]
    steps: list[Step]
    description: str = ""
    tags: list[str] = field(default_factory=list)
    negative: bool = False
    requires: list[str] = field(default_factory=list)  # declarations needed, else skip
    conformance_statement: bool = False
    timeout: float | None = None
    expected: str = ""
    source: str = ""
    line: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # values of a parametrised copy

    @property
    def group_title(self) -> str:
        return GROUP_TITLES.get(self.group, self.group)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(slots=True)
class CheckResult:
    """One assertion made while running a scenario."""

    name: str
    severity: str  # must | should | info
    outcome: str  # pass | fail | warn | info | skip
    expected: str
    observed: str
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "outcome": self.outcome,
                "expected": self.expected, "observed": self.observed,
                "reference": self.reference}
