"""The plugin's pytest hooks: its options (``pytest_addoption``), markers and session
(``pytest_configure``), the suite added under the session at collection
(``pytest_make_collect_report``) and the WARN / ERROR statuses in reports
(``pytest_report_teststatus``). pytest finds them through ``harness.pytest_plugin``, which
re-exports every one.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from harness.engine.model import GROUP_TITLES, SEVERITIES
from harness.engine.target_options import add_target_options
from harness.pytest_plugin.collect import (
    COLLECTOR_NAME,
    ScenarioSuite,
    group_marker,
    register_marker,
)
from harness.pytest_plugin.session import (
    SESSION_KEY,
    DicomSession,
    check_target_reachable,
    dicom_session,
    settings_from_config,
)
from harness.pytest_plugin.verdict import dicom_outcome


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dicom", "DICOM Storage SCP conformance (dicom-harness)")
    group.addoption("--dicom", action="store_true", default=False,
                    help="collect the conformance suite and run it against the embedded "
                         "reference SCP (or --dicom-target)")
    group.addoption("--dicom-suite", default=None, metavar="NAME|PATH",
                    help="scenario file, folder or suite name (default: every scenario)")
    group.addoption("--dicom-strict", action="store_true", default=False,
                    help="a SHOULD scenario that does not hold fails instead of warning")
    group.addoption("--dicom-slow", action="store_true", default=False,
                    help="also collect scenarios tagged slow (large objects, floods)")
    # --dicom-target, AE titles, timeout, storage dir, profiles, --dicom-tls*: declared once
    # for run, bench and this plugin (harness.engine.target_options).
    add_target_options(group, types={"timeout": float})


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from_config(config)
    # xdist workers trust the controller's check: no extra connections per worker.
    if settings.target is not None and not hasattr(config, "workerinput"):
        check_target_reachable(*settings.target, settings.timeout)
    config.stash[SESSION_KEY] = DicomSession(settings)
    register_marker(config, "dicom", "a DICOM conformance scenario of dicom-harness; "
                     "dicom(id=..., group=..., severity=...) carries its fields")
    for severity, text in zip(SEVERITIES, ("the standard requires it (fails)",
                                           "the standard recommends it (warns)",
                                           "only records what the SCP does"), strict=True):
        register_marker(config, severity, f"dicom-harness scenario of severity {severity}: "
                         f"{text}")
    for group, title in GROUP_TITLES.items():
        register_marker(config, group_marker(group), f"dicom-harness group {group}: {title}")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.settings.collect:
        return None
    s = session.settings
    return (f"dicom-harness: suite {s.suite or 'all'} against {session.description}"
            + (", strict" if s.strict else ""))


# An old-style wrapper on purpose: the plugin loads in every pytest run of an environment
# that has the package, and new-style wrappers need a recent pluggy.
@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Add the suite under the session: its items then go through ``-k``/``-m`` like any."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if isinstance(collector, pytest.Session) and report.passed and \
            dicom_session(collector.config).settings.collect:
        report.result.append(ScenarioSuite.from_parent(collector, name=COLLECTOR_NAME,
                                                       nodeid=COLLECTOR_NAME))


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport,
                             config: pytest.Config) -> tuple[str, str, Any] | None:
    """WARN for SHOULDs that do not hold, ERROR when the harness could not run a scenario."""
    if report.when != "call":
        return None
    outcome = dicom_outcome(report)
    if outcome == "warn" and report.passed:
        return "warned", "W", ("WARN", {"yellow": True})
    if outcome == "error" and report.failed:
        return "error", "E", ("ERROR", {"red": True})
    return None
