"""Modules split by job (issue 17) keep their old import paths: the pytest plugin package
shows pytest every hook and fixture of its submodules and every name the single module gave,
and the names that moved elsewhere still resolve where they were."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import harness.pytest_plugin as plugin

# Every public name harness/pytest_plugin.py had before it became a package.
OLD_PLUGIN_NAMES = (
    "COLLECTOR_NAME", "SLOW_TAG", "TRACE_LINES", "PROPERTY_PREFIX", "DicomConformanceWarning",
    "DicomSettings", "settings_from_config", "check_target_reachable", "DicomSession",
    "SESSION_KEY", "dicom_session", "marker_name", "group_marker", "load_scenarios",
    "ScenarioSuite", "ScenarioItem", "scenario_marks", "result_properties", "describe_result",
    "apply_verdict", "ReferenceSCP", "ProfileSpec", "as_profile", "default_contexts",
    "TargetSpec", "target_of", "SyncSCU", "DatasetFactory", "scenarios", "scenario_params",
    "parse_address",
    "pytest_addoption", "pytest_configure", "pytest_unconfigure", "pytest_report_header",
    "pytest_make_collect_report", "pytest_report_teststatus",
    "dicom_target", "reference_scp_factory", "reference_scp", "scu_factory", "scu",
    "dataset_factory", "run_scenario",
)


def _submodules() -> list[ModuleType]:
    return [importlib.import_module(f"{plugin.__name__}.{info.name}")
            for info in pkgutil.iter_modules(plugin.__path__)]


def _is_fixture(obj: object) -> bool:
    # pytest 8 wraps fixtures in a FixtureFunctionDefinition; older ones mark the function.
    return type(obj).__name__ == "FixtureFunctionDefinition" or \
        hasattr(obj, "_pytestfixturefunction")


@pytest.mark.parametrize("name", OLD_PLUGIN_NAMES)
def test_old_plugin_names_resolve(name: str) -> None:
    assert getattr(plugin, name) is not None
    assert name in plugin.__all__  # also for ``from harness.pytest_plugin import *``


def test_every_hook_and_fixture_is_visible_from_the_entry_point_module() -> None:
    hooks, fixtures = set(), set()
    for module in _submodules():
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ and not _is_fixture(obj):
                continue
            if name.startswith("pytest_") and inspect.isfunction(obj):
                hooks.add(name)
            elif _is_fixture(obj):
                fixtures.add(name)
    assert hooks >= {"pytest_addoption", "pytest_configure", "pytest_make_collect_report"}
    assert fixtures >= {"dicom_target", "scu", "run_scenario"}
    assert not [n for n in hooks | fixtures if getattr(plugin, n, None) is None]
    for name in hooks | fixtures:  # the very object pytest registers, not a copy
        owner = next(m for m in _submodules() if name in vars(m))
        assert getattr(plugin, name) is vars(owner)[name]


def test_loading_the_plugin_leaves_pydicom_and_the_scu_stack_unloaded() -> None:
    # pytest loads the plugin in every run of an environment that has the package.
    code = ("import sys, harness.pytest_plugin; "
            "print(sorted(m for m in ('pydicom', 'harness.scu.client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_moved_classes_resolve_at_their_old_paths() -> None:
    from harness.net import acceptor, acceptor_server
    from harness.scu import sync_client

    assert acceptor.AcceptorServer is acceptor_server.AcceptorServer
    assert plugin.SyncSCU is sync_client.SyncSCU
    assert plugin.default_contexts is sync_client.default_contexts
    with pytest.raises(AttributeError):
        _ = acceptor.NoSuchName
