"""pytest plugin: the conformance suite as pytest tests, plus fixtures for users' own tests.

``pytest --dicom`` (the embedded reference SCP) or ``pytest --dicom-target HOST:PORT``
collects every scenario of the suite as one test item under a synthetic ``dicom`` collector
(node id ``dicom::<scenario id>``), marked ``dicom``, ``group_<letter>`` and its severity
(``must`` / ``should`` / ``info``), so ``-k``, ``-m``, ``--junitxml``, pytest-xdist and
pytest-html work as for any test. Verdicts map onto pytest outcomes: fail -> FAILED,
warn (a SHOULD that does not hold) -> passed with a :class:`DicomConformanceWarning` and the
status WARN (FAILED with ``--dicom-strict``), skip -> SKIPPED, error (the harness could not
run the scenario) -> ERROR, info -> passed with the observation in ``user_properties``.

Without ``--dicom``/``--dicom-target`` nothing is collected: installing the package never
adds tests to a user's runs; the fixtures (``dicom_target``, ``reference_scp``,
``reference_scp_factory``, ``scu``, ``scu_factory``, ``dataset_factory``, ``run_scenario``)
are always available.

The package, one job per module: :mod:`.hooks` (options, markers, collection and report
hooks), :mod:`.collect` (the suite as pytest items, ``scenario_params``), :mod:`.verdict`
(result -> pytest outcome), :mod:`.session` (settings and the target under test),
:mod:`.fixtures`; the synchronous SCU is :mod:`harness.scu.sync_client`. pytest registers
hooks and fixtures from this module (the ``pytest11`` entry point, ``-p
harness.pytest_plugin``), so every one is imported here, as is every name the single module
it once was gave.
"""

from __future__ import annotations

from typing import Any

from harness.net.address import parse_address
from harness.pytest_plugin.collect import (
    COLLECTOR_NAME,
    SLOW_TAG,
    ScenarioItem,
    ScenarioSuite,
    group_marker,
    load_scenarios,
    marker_name,
    scenario_marks,
    scenario_params,
    scenarios,
)
from harness.pytest_plugin.fixtures import (
    DatasetFactory,
    ProfileSpec,
    ReferenceSCP,
    TargetSpec,
    as_profile,
    dataset_factory,
    dicom_target,
    reference_scp,
    reference_scp_factory,
    run_scenario,
    scu,
    scu_factory,
    target_of,
)
from harness.pytest_plugin.hooks import (
    pytest_addoption,
    pytest_configure,
    pytest_make_collect_report,
    pytest_report_header,
    pytest_report_teststatus,
    pytest_unconfigure,
)
from harness.pytest_plugin.session import (
    SESSION_KEY,
    DicomSession,
    DicomSettings,
    check_target_reachable,
    dicom_session,
    settings_from_config,
)
from harness.pytest_plugin.verdict import (
    PROPERTY_PREFIX,
    TRACE_LINES,
    DicomConformanceWarning,
    apply_verdict,
    describe_result,
    result_properties,
)

# The synchronous SCU lives in harness.scu.sync_client; given here on first use only (it
# imports the SCU stack, which a pytest run that uses no fixture does not need).
_LAZY = {"SyncSCU": "harness.scu.sync_client", "default_contexts": "harness.scu.sync_client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COLLECTOR_NAME",
    "PROPERTY_PREFIX",
    "SESSION_KEY",
    "SLOW_TAG",
    "TRACE_LINES",
    "DatasetFactory",
    "DicomConformanceWarning",
    "DicomSession",
    "DicomSettings",
    "ProfileSpec",
    "ReferenceSCP",
    "ScenarioItem",
    "ScenarioSuite",
    "SyncSCU",
    "TargetSpec",
    "apply_verdict",
    "as_profile",
    "check_target_reachable",
    "dataset_factory",
    "default_contexts",
    "describe_result",
    "dicom_session",
    "dicom_target",
    "group_marker",
    "load_scenarios",
    "marker_name",
    "parse_address",
    "pytest_addoption",
    "pytest_configure",
    "pytest_make_collect_report",
    "pytest_report_header",
    "pytest_report_teststatus",
    "pytest_unconfigure",
    "reference_scp",
    "reference_scp_factory",
    "result_properties",
    "run_scenario",
    "scenario_marks",
    "scenario_params",
    "scenarios",
    "scu",
    "scu_factory",
    "settings_from_config",
    "target_of",
]
