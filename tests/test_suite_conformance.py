"""The whole suite against the reference SCP: the conformant profile passes every scenario, and
every MUST / SHOULD scenario fails (MUST) or warns (SHOULD) against a profile with the fault
it exists to catch. A scenario that cannot fail is a defect: the coverage test below keeps
the fault map complete as scenarios are added.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from _fault_map import FAULT_MAP, Case

from harness.engine.context import Target
from harness.engine.embedded import EmbeddedSCP, declared_from_profile, embedded_profile
from harness.engine.loader import load_suite
from harness.engine.model import Scenario
from harness.engine.runner import Runner


def _base(scenario_id: str) -> str:
    return scenario_id.split("[", 1)[0]


def _selected(case: Case, suite: list[Scenario]) -> list[Scenario]:
    return [s for s in suite if s.id in case.ids or _base(s.id) in case.ids]


@pytest.fixture(scope="module")
def suite() -> list[Scenario]:
    return load_suite()


def _tls(scenarios: list[Scenario], profile: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The TLS group (L) needs the SCP to serve TLS, as ``run --tls`` does without target."""
    if not any(s.group == "L" for s in scenarios):
        return None, None, {}
    from types import SimpleNamespace

    from harness.engine.tls_setup import client_for_run, embedded_server_context

    args = SimpleNamespace(target=None, tls=True, tls_ca=None, tls_cert=None, tls_key=None,
                           tls_no_verify=False, tls_min_version="1.2", tls_server_name=None)
    client, declared = client_for_run(args, {})
    return client, embedded_server_context(client, profile), declared


def _run(scenarios: list[Scenario], *, faults: tuple[str, ...] = (),
         overrides: dict[str, Any] | None = None, declared: dict[str, Any] | None = None,
         timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    profile = embedded_profile(faults=set(faults), **(overrides or {}))
    tls, server_tls, tls_declared = _tls(scenarios, profile)
    with EmbeddedSCP(profile, tls=server_tls) as scp:
        target = Target("127.0.0.1", scp.port, profile.ae_title, "HARNESS", timeout,
                        scp.storage_dir, {**declared_from_profile(profile), **tls_declared,
                                          **(declared or {})}, True, tls=tls)
        results = asyncio.run(Runner(target, recovery_timeout=3.0).run(scenarios))
    return {r["id"]: r for r in results["scenarios"]}


def test_every_must_and_should_scenario_has_a_fault(suite: list[Scenario]) -> None:
    covered = {i for case in FAULT_MAP for i in case.ids}
    missing = sorted({_base(s.id) for s in suite if s.severity in ("must", "should")}
                     - {_base(i) for i in covered})
    assert not missing, f"MUST/SHOULD scenarios with no fault proving they can fail: {missing}"
    for case in FAULT_MAP:
        assert _selected(case, suite), f"fault map entry selects no scenario: {case.ids}"


def test_conformant_reference_scp_passes_the_suite(suite: list[Scenario]) -> None:
    chosen = [s for s in suite if "slow" not in s.tags]
    results = _run(chosen, timeout=5.0)
    bad = {i: (r["outcome"], r["observed"][:300]) for i, r in results.items()
           if r["outcome"] in ("fail", "warn", "error")}
    assert not bad, f"the conformant reference SCP does not pass: {bad}"
    assert len(results) == len(chosen)


def _groups() -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = defaultdict(list)
    for case in FAULT_MAP:
        grouped[case.key].append(case)
    return grouped


GROUPS = _groups()


@pytest.mark.parametrize("key", list(GROUPS), ids=[g[0].label for g in GROUPS.values()])
def test_scenarios_fail_with_their_fault(key: str, suite: list[Scenario]) -> None:
    cases = GROUPS[key]
    faults, overrides, declared = cases[0].faults, cases[0].overrides, cases[0].declared
    chosen: dict[str, Scenario] = {}
    for case in cases:
        for sc in _selected(case, suite):
            chosen[sc.id] = sc
    results = _run(list(chosen.values()), faults=faults, overrides=dict(overrides),
                   declared=dict(declared))
    wrong = {}
    for sid, sc in chosen.items():
        outcome = results[sid]["outcome"]
        allowed = {"fail"} if sc.severity == "must" else {"warn", "fail"}
        if outcome not in allowed:
            wrong[sid] = (sc.severity, outcome, results[sid]["observed"][:200])
    assert not wrong, f"with {faults or dict(overrides)}: scenarios that did not catch it: {wrong}"
