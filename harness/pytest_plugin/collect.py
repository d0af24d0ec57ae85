"""Collection: the suite as pytest items. A synthetic ``dicom`` collector
(:class:`ScenarioSuite`) holds one :class:`ScenarioItem` per scenario, with its markers
(``dicom(...)``, ``group_<letter>``, the severity, its tags); :func:`scenario_params` gives
users the same scenarios to parametrize their own tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.engine.model import GROUP_TITLES
from harness.pytest_plugin.session import dicom_session
from harness.pytest_plugin.verdict import apply_verdict

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

    from harness.engine.model import Scenario

COLLECTOR_NAME = "dicom"
SLOW_TAG = "slow"


def marker_name(text: str) -> str:
    """A marker name ``-m`` can type: lower case, anything else becomes ``_``."""
    return re.sub(r"\W+", "_", text).strip("_").lower() or "_"


def group_marker(group: str) -> str:
    return f"group_{marker_name(group)}"


def register_marker(config: pytest.Config, name: str, text: str) -> None:
    config.addinivalue_line("markers", f"{name}: {text}")


def load_scenarios(suite: str | None, *, slow: bool = False) -> list[tuple[int, Scenario]]:
    """The suite's scenarios with their position in it (keeps synthetic UIDs unique, also
    across xdist workers); slow ones only with ``slow``."""
    from harness.engine.loader import load_suite

    return [(i, sc) for i, sc in enumerate(load_suite(suite))
            if slow or SLOW_TAG not in sc.tags]


class ScenarioSuite(pytest.Collector):
    """The synthetic collector holding one item per scenario."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        from harness.engine.loader import ScenarioError

        settings = dicom_session(self.config).settings
        try:
            scenarios = load_scenarios(settings.suite, slow=settings.slow)
        except ScenarioError as exc:
            raise self.CollectError(f"dicom-harness: {exc}") from None
        groups, tags = set(GROUP_TITLES), set()
        for index, sc in scenarios:
            if sc.group not in groups:  # a suite of one's own may add groups
                groups.add(sc.group)
                register_marker(self.config, group_marker(sc.group),
                                 f"dicom-harness group {sc.group}")
            for tag in sc.tags:
                if tag not in tags:
                    tags.add(tag)
                    register_marker(self.config, marker_name(tag),
                                     f"dicom-harness scenarios tagged {tag}")
            yield ScenarioItem.from_parent(self, name=sc.id, scenario=sc, index=index)


class ScenarioItem(pytest.Item):
    """One scenario: runs it against the session's target and maps its verdict."""

    def __init__(self, *, scenario: Scenario, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.index = index
        for mark in scenario_marks(scenario, tags=True):
            self.add_marker(mark)
        # -k also matches the title and tags, like `dicom-harness run -k`
        self.extra_keyword_matches.update([scenario.title, *scenario.tags])

    def runtest(self) -> None:
        session = dicom_session(self.config)
        result = session.run(self.scenario, self.index)
        apply_verdict(self, result, strict=session.settings.strict)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # Not ending in the node id: pytest would turn the id's dots into "::".
        line = self.scenario.line - 1 if self.scenario.line else None
        return Path(self.scenario.source), line, f"{self.scenario.id}: {self.scenario.title}"


def scenario_marks(sc: Scenario, *, tags: bool = False) -> list[pytest.MarkDecorator]:
    """``dicom(...)``, ``group_<x>``, the severity and (``tags``) one marker per tag; every
    name must be registered first (pytest_configure does it for the standard groups)."""
    marks = [pytest.mark.dicom(id=sc.id, group=sc.group, severity=sc.severity,
                               references=list(sc.references)),
             getattr(pytest.mark, sc.severity)]
    if sc.group in GROUP_TITLES or tags:
        marks.append(getattr(pytest.mark, group_marker(sc.group)))
    if tags:
        marks += [getattr(pytest.mark, marker_name(tag)) for tag in sc.tags]
    return marks


def scenarios(expr: str | None = None, *, suite: str | None = None,
              slow: bool = False) -> list[Scenario]:
    """Scenarios of ``suite`` selected by a ``dicom-harness -k`` expression."""
    from harness.engine.loader import select

    return select([sc for _i, sc in load_scenarios(suite, slow=slow)], expr)


def scenario_params(expr: str | None = None, *, suite: str | None = None,
                    slow: bool = False) -> list[ParameterSet]:
    """``@pytest.mark.parametrize("scenario", scenario_params("assoc.baseline"))``: one
    param per scenario, with its id and markers."""
    return [pytest.param(sc, id=sc.id, marks=scenario_marks(sc))
            for sc in scenarios(expr, suite=suite, slow=slow)]
