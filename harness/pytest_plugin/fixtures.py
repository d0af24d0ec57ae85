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
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import warnings
from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import pytest

from harness.engine.model import GROUP_TITLES, SEVERITIES
from harness.engine.target_options import (
    PLUGIN,
    TargetUnreachable,
    add_target_options,
    called_aet,
    check_reachable,
    option_default,
)
from harness.net.address import parse_address
from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION_SOP_CLASS

# Everything else is imported where it is used: pytest loads this plugin in every run of an
# environment that has the package, and pydicom alone costs a noticeable part of a second.
if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet
    from pydicom.dataset import Dataset

    from harness.engine.context import Target
    from harness.engine.embedded import EmbeddedSCP
    from harness.engine.model import Scenario
    from harness.engine.runner import Runner
    from harness.scp.profile import Profile
    from harness.scp.server import StoreRecord
    from harness.scu.client import SimulatedSCU
    from harness.scu.outcome import Outcome
    from harness.wire.items import PresentationContextRQ

T = TypeVar("T")

COLLECTOR_NAME = "dicom"
SLOW_TAG = "slow"
TRACE_LINES = 12  # trace events shown under a failure (all of them with -vv)
# user_properties keys, written for every scenario (JUnit <property>, pytest-html, xdist)
PROPERTY_PREFIX = "dicom_"


class DicomConformanceWarning(UserWarning):
    """A SHOULD-level scenario did not hold (a failure with ``--dicom-strict``)."""


# --- settings ------------------------------------------------------------------------------


@dataclass(slots=True)
class DicomSettings:
    """The plugin's command line options, checked once at configure time."""

    collect: bool = False
    target: tuple[str, int] | None = None
    called_aet: str | None = None
    calling_aet: str = option_default("calling-aet", PLUGIN)
    storage_dir: Path | None = None
    suite: str | None = None
    declared: dict[str, Any] = field(default_factory=dict)
    scp_profile: Profile | None = None  # the embedded SCP's; None: embedded_profile()
    strict: bool = False
    slow: bool = False
    timeout: float = option_default("timeout", PLUGIN)
    tls: Any = None  # the --dicom-tls* options, as ``run``'s --tls* (a namespace), or None


def settings_from_config(config: pytest.Config) -> DicomSettings:
    """Read and check the ``--dicom-*`` options; a bad value is a :class:`pytest.UsageError`."""
    opt = config.getoption
    s = DicomSettings(strict=bool(opt("dicom_strict")), slow=bool(opt("dicom_slow")),
                      suite=opt("dicom_suite"), calling_aet=str(opt("dicom_calling_aet")),
                      called_aet=opt("dicom_called_aet"))
    try:
        if opt("dicom_target"):
            s.target = parse_address(str(opt("dicom_target")))
        if opt("dicom_profile"):
            from harness.engine.context import load_target_profile

            s.declared = load_target_profile(opt("dicom_profile"))
        if opt("dicom_scp_profile"):
            from harness.scp.profile import Profile

            s.scp_profile = Profile.load(opt("dicom_scp_profile"))
        s.timeout = float(opt("dicom_timeout"))
        if s.timeout <= 0:
            raise ValueError(f"--dicom-timeout must be a positive number, got {s.timeout:g}")
        s.tls = _tls_settings(opt, s.target)
    except ValueError as exc:  # also TargetProfileError, ProfileError and TLSConfigError
        raise pytest.UsageError(f"dicom-harness: {exc}") from None
    storage = opt("dicom_storage_dir")
    if storage is not None:
        s.storage_dir = Path(storage)
        if not s.storage_dir.is_dir():
            raise pytest.UsageError(f"dicom-harness: --dicom-storage-dir {storage}: not a "
                                    "directory")
    s.collect = bool(opt("dicom")) or s.target is not None
    return s


def _tls_settings(opt: Callable[[str], Any], target: tuple[str, int] | None) -> Any:
    """``--dicom-tls*`` as the namespace ``run --tls*`` gives (same checks, same setup)."""
    import types

    from harness.net.tls import client_options

    args = types.SimpleNamespace(
        target=target, tls=bool(opt("dicom_tls")), tls_ca=opt("dicom_tls_ca"),
        tls_cert=opt("dicom_tls_cert"), tls_key=opt("dicom_tls_key"),
        tls_no_verify=bool(opt("dicom_tls_no_verify")),
        tls_min_version=str(opt("dicom_tls_min_version")),
        tls_server_name=opt("dicom_tls_server_name"))
    options = client_options(args)  # TLSConfigError (a ValueError) for a stray flag
    if options is not None and target is not None:
        options.client_context()  # files readable, key matching
    return args if options is not None else None


def check_target_reachable(host: str, port: int, timeout: float) -> None:
    """A usage error (one line, no traceback) when nothing listens at the target."""
    try:
        check_reachable(host, port, timeout)
    except TargetUnreachable as exc:
        raise pytest.UsageError(f"dicom-harness: --dicom-target {exc}") from None


# --- the session's target and runner -------------------------------------------------------


class DicomSession:
    """The target under test for one pytest process (each xdist worker has its own): the
    embedded reference SCP is started on first use, never at collection."""

    def __init__(self, settings: DicomSettings) -> None:
        self.settings = settings
        self.embedded: EmbeddedSCP | None = None
        self._target: Target | None = None
        self._runner: Runner | None = None

    @property
    def description(self) -> str:
        s = self.settings
        if s.target is not None:
            return f"{s.target[0]}:{s.target[1]} (called AE {called_aet(s.called_aet)})"
        faults = sorted(s.scp_profile.faults) if s.scp_profile is not None else []
        return "the embedded reference SCP" + (f" with faults {', '.join(faults)}" if faults
                                               else "")

    def target(self) -> Target:
        if self._target is None:
            from harness.engine.context import Target
            from harness.engine.embedded import EmbeddedSCP, embedded_profile

            s = self.settings
            tls, declared = None, dict(s.declared)
            if s.tls is not None:
                from harness.engine.tls_setup import TLSSetupError, client_for_run

                try:
                    tls, declared = client_for_run(s.tls, declared)
                except TLSSetupError as exc:
                    raise pytest.UsageError(f"dicom-harness: {exc}") from None
            if s.target is not None:
                self._target = Target(s.target[0], s.target[1], called_aet(s.called_aet),
                                      s.calling_aet, s.timeout, s.storage_dir, declared,
                                      tls=tls)
            else:
                profile = s.scp_profile or embedded_profile()
                from harness.engine.tls_setup import embedded_server_context

                self.embedded = EmbeddedSCP(profile,
                                            tls=embedded_server_context(tls, profile)).start()
                from harness.engine.embedded import declared_from_profile

                declared = {**declared_from_profile(profile), **declared}
                self._target = Target("127.0.0.1", self.embedded.port,
                                      called_aet(s.called_aet, profile.ae_title),
                                      s.calling_aet,
                                      s.timeout, self.embedded.storage_dir, declared, True,
                                      tls=tls)
        return self._target

    def run(self, scenario: Scenario, index: int) -> dict[str, Any]:
        if self._runner is None:
            from harness.engine.runner import Runner

            self._runner = Runner(self.target())
        import asyncio

        return asyncio.run(self._runner.run_one(scenario, index))

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


SESSION_KEY = pytest.StashKey[DicomSession]()


def dicom_session(config: pytest.Config) -> DicomSession:
    return config.stash[SESSION_KEY]


# --- options, markers, collection ----------------------------------------------------------


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


def marker_name(text: str) -> str:
    """A marker name ``-m`` can type: lower case, anything else becomes ``_``."""
    return re.sub(r"\W+", "_", text).strip("_").lower() or "_"


def group_marker(group: str) -> str:
    return f"group_{marker_name(group)}"


def _register_marker(config: pytest.Config, name: str, text: str) -> None:
    config.addinivalue_line("markers", f"{name}: {text}")


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from_config(config)
    # xdist workers trust the controller's check: no extra connections per worker.
    if settings.target is not None and not hasattr(config, "workerinput"):
        check_target_reachable(*settings.target, settings.timeout)
    config.stash[SESSION_KEY] = DicomSession(settings)
    _register_marker(config, "dicom", "a DICOM conformance scenario of dicom-harness; "
                     "dicom(id=..., group=..., severity=...) carries its fields")
    for severity, text in zip(SEVERITIES, ("the standard requires it (fails)",
                                           "the standard recommends it (warns)",
                                           "only records what the SCP does"), strict=True):
        _register_marker(config, severity, f"dicom-harness scenario of severity {severity}: "
                         f"{text}")
    for group, title in GROUP_TITLES.items():
        _register_marker(config, group_marker(group), f"dicom-harness group {group}: {title}")


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
                _register_marker(self.config, group_marker(sc.group),
                                 f"dicom-harness group {sc.group}")
            for tag in sc.tags:
                if tag not in tags:
                    tags.add(tag)
                    _register_marker(self.config, marker_name(tag),
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


# --- verdicts ------------------------------------------------------------------------------


def result_properties(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What JUnit XML / pytest-html / xdist carry for a scenario (strings only)."""
    return [(PROPERTY_PREFIX + "outcome", str(result["outcome"])),
            (PROPERTY_PREFIX + "severity", str(result["severity"])),
            (PROPERTY_PREFIX + "group", str(result["group"])),
            (PROPERTY_PREFIX + "references", ", ".join(result.get("references", []))),
            (PROPERTY_PREFIX + "expected", str(result.get("expected", ""))),
            (PROPERTY_PREFIX + "observed", str(result.get("observed", "")))]


def describe_result(result: dict[str, Any], *, trace_lines: int = TRACE_LINES) -> str:
    """A failure message: expected vs observed, the checks that did not hold, the trace."""
    lines = [f"{result['id']} ({result['severity']}, {result['outcome']}): {result['title']}",
             f"  group:      {result['group']} {result.get('group_title', '')}".rstrip(),
             f"  references: {', '.join(result.get('references', []))}"]
    if result.get("source"):
        lines.append(f"  scenario:   {result['source']}")
    lines += [f"  expected:   {result.get('expected', '')}",
              f"  observed:   {result.get('observed', '')}"]
    bad = [c for c in result.get("checks", []) if c.get("outcome") in ("fail", "warn")]
    if bad:
        lines.append("  checks that did not hold:")
        for c in bad:
            ref = f"  [{c['reference']}]" if c.get("reference") else ""
            lines.append(f"    {c['outcome'].upper():4} {c['severity']:6} {c['name']}: expected "
                         f"{c['expected']}; observed {c['observed']}{ref}")
    trace = result.get("trace") or []
    if trace and trace_lines > 0:
        shown = trace[-trace_lines:]
        lines.append(f"  trace (last {len(shown)} of {len(trace)} events):")
        for e in shown:
            lines.append(f"    {e['t']:9.4f}s #{e['assoc']} {e['dir']:5} {e['type']} "
                         f"({e['length']} B) {e.get('summary', '')}".rstrip())
    return "\n".join(lines)


def apply_verdict(node: pytest.Item, result: dict[str, Any], *, strict: bool) -> None:
    """Turn a scenario result into the pytest outcome of ``node`` (any test item)."""
    node.user_properties.extend(result_properties(result))
    outcome = result["outcome"]
    if outcome in ("pass", "info"):
        return
    if outcome == "skip":
        raise pytest.skip.Exception(f"{result['id']}: {result['observed']}",
                                    _use_item_location=True)
    verbose = int(node.config.getoption("verbose") or 0)
    text = describe_result(result, trace_lines=200 if verbose >= 2 else TRACE_LINES)
    if outcome == "warn" and not strict:
        warnings.warn_explicit(DicomConformanceWarning(
            f"{result['id']}: SHOULD not met: expected {result['expected']}; observed "
            f"{result['observed']}"), DicomConformanceWarning,
            filename=str(result.get("source", "")).rpartition(":")[0] or node.name,
            lineno=_line_of(result))
        return
    if outcome == "warn":
        text += "\n  (a SHOULD that does not hold fails because of --dicom-strict)"
    pytest.fail(text, pytrace=False)


def _line_of(result: dict[str, Any]) -> int:
    tail = str(result.get("source", "")).rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


# Several run_scenario calls in one test: the report shows the worst verdict.
_RANK = {"pass": 0, "info": 1, "skip": 2, "warn": 3, "fail": 4, "error": 5}


def _dicom_outcome(report: pytest.TestReport) -> str | None:
    found = [str(value) for key, value in report.user_properties
             if key == PROPERTY_PREFIX + "outcome"]
    return max(found, key=lambda o: _RANK.get(o, 0)) if found else None


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport,
                             config: pytest.Config) -> tuple[str, str, Any] | None:
    """WARN for SHOULDs that do not hold, ERROR when the harness could not run a scenario."""
    if report.when != "call":
        return None
    outcome = _dicom_outcome(report)
    if outcome == "warn" and report.passed:
        return "warned", "W", ("WARN", {"yellow": True})
    if outcome == "error" and report.failed:
        return "error", "E", ("ERROR", {"red": True})
    return None


# --- fixtures: the target, reference SCPs ---------------------------------------------------


@pytest.fixture(scope="session")
def dicom_target(pytestconfig: pytest.Config) -> Target:
    """The SCP under test: ``--dicom-target``, else the embedded reference SCP (started on
    first use). Override this fixture to point ``scu``/``run_scenario`` at your own SCP."""
    return dicom_session(pytestconfig).target()


@dataclass(slots=True)
class ReferenceSCP:
    """A running reference SCP: where it listens, what it stored, its profile."""

    embedded: EmbeddedSCP
    profile: Profile

    @property
    def host(self) -> str:
        return self.embedded.host

    @property
    def port(self) -> int:
        return self.embedded.port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def ae_title(self) -> str:
        return self.profile.ae_title

    @property
    def storage_dir(self) -> Path:
        return self.embedded.storage_dir

    @property
    def records(self) -> list[StoreRecord]:
        """Every C-STORE it answered so far, in order (status, SOP Instance UID, file)."""
        return list(self.embedded.scp.records) if self.embedded.scp is not None else []

    def wait_for(self, count: int, timeout: float = 5.0) -> list[StoreRecord]:
        """The records once there are at least ``count`` (the SCP logs a store right after
        answering it, on its own thread), or whatever there is after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.records

    @property
    def target(self) -> Target:
        """This SCP as a :class:`Target` (its own behaviour declared)."""
        from harness.engine.context import Target
        from harness.engine.embedded import declared_from_profile

        return Target(self.host, self.port, self.ae_title, "HARNESS", 10.0, self.storage_dir,
                      declared_from_profile(self.profile), embedded=True)

    def stop(self) -> None:
        self.embedded.stop()


ProfileSpec: TypeAlias = "Profile | dict[str, Any] | str | Path | None"


def as_profile(spec: ProfileSpec, **overrides: Any) -> Profile:
    """A Profile from a Profile, a mapping, a YAML file path or None (conformant)."""
    from harness.scp.profile import Profile

    if isinstance(spec, Profile):
        profile = spec
    elif isinstance(spec, dict):
        profile = Profile.from_mapping(spec)
    elif isinstance(spec, str | Path):
        profile = Profile.load(spec)
    else:
        profile = Profile()
    # a copy: the caller's Profile stays as it was
    return dataclasses.replace(profile, **overrides) if overrides else profile


@pytest.fixture
def reference_scp_factory(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ReferenceSCP]]:
    """``reference_scp_factory(profile=None, **fields)`` starts a reference SCP (Profile,
    mapping or YAML path; ``fields`` override it); all are stopped after the test."""
    started: list[ReferenceSCP] = []

    def start(profile: ProfileSpec = None, **fields: Any) -> ReferenceSCP:
        from harness.engine.embedded import EmbeddedSCP

        prof = as_profile(profile, **fields)
        storage = tmp_path_factory.mktemp("reference-scp")
        scp = ReferenceSCP(EmbeddedSCP(prof, storage_dir=storage).start(), prof)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def reference_scp(request: pytest.FixtureRequest,
                  reference_scp_factory: Callable[..., ReferenceSCP]) -> ReferenceSCP:
    """A conformant reference SCP; parametrize it indirectly with a Profile, a mapping or a
    YAML path for another behaviour."""
    return reference_scp_factory(getattr(request, "param", None))


# --- fixtures: a synchronous simulated SCU ------------------------------------------------


def default_contexts() -> list[PresentationContextRQ]:
    """One context per SOP class the dataset factory makes, plus Verification, each with
    Explicit and Implicit VR Little Endian."""
    from harness.datasets import KINDS
    from harness.wire.items import PresentationContextRQ

    classes = list(dict.fromkeys(spec.sop_class_uid for spec in KINDS.values()))
    classes.append(VERIFICATION_SOP_CLASS)
    return [PresentationContextRQ(2 * i + 1, uid, [EXPLICIT_VR_LE, IMPLICIT_VR_LE])
            for i, uid in enumerate(classes)]


TargetSpec: TypeAlias = "Target | ReferenceSCP | tuple[str, int] | str"


def target_of(spec: TargetSpec) -> Target:
    """A :class:`Target` from a Target, a ReferenceSCP, ``(host, port)`` or ``HOST:PORT``
    (the last two with the default AE titles)."""
    from harness.engine.context import Target

    if isinstance(spec, Target):
        return spec
    if isinstance(spec, ReferenceSCP):
        return spec.target
    host, port = parse_address(spec) if isinstance(spec, str) else spec
    return Target(host, port)


class SyncSCU:
    """A :class:`SimulatedSCU` for synchronous tests: every call runs to completion on the
    SCU's private event loop. ``run(coro_fn)`` gives full access to the async API."""

    def __init__(self, target: Target, *, timeout: float | None = None) -> None:
        import asyncio

        from harness.scu.client import SimulatedSCU

        self.target = target
        self.timeout = timeout or target.timeout
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._message_ids = itertools.count(1)
        try:
            self.scu: SimulatedSCU = self.loop.run_until_complete(
                SimulatedSCU.connect(target.host, target.port, timeout=self.timeout,
                                     tls=target.tls.context if target.tls else None))
        except BaseException:
            self.loop.close()
            raise

    def run(self, work: Callable[[SimulatedSCU], Coroutine[Any, Any, T]]) -> T:
        """``scu.run(lambda s: s.echo(7))``: run async code against the association."""
        return self.loop.run_until_complete(work(self.scu))

    def associate(self, contexts: list[PresentationContextRQ] | None = None, *,
                  called_aet: str | None = None, calling_aet: str | None = None,
                  max_pdu: int = 16384) -> Outcome:
        rq = self.scu.build_rq(called_aet or self.target.called_aet,
                               calling_aet or self.target.calling_aet,
                               contexts=contexts or default_contexts(), max_pdu=max_pdu)
        return self.loop.run_until_complete(self.scu.associate(rq, self.timeout))

    @property
    def accepted_contexts(self) -> dict[int, tuple[str, str]]:
        """Context ID -> (abstract syntax, transfer syntax) of the accepted contexts."""
        return self.scu.requestor.accepted_contexts

    def store(self, dataset: Dataset | bytes, *, sop_class_uid: str | None = None,
              sop_instance_uid: str | None = None, message_id: int | None = None,
              timeout: float | None = None) -> Outcome:
        """C-STORE a data set (encoded in the accepted context's transfer syntax) or
        already-encoded bytes (then give both UIDs); returns the outcome (``.status``)."""
        from pydicom.dataset import Dataset

        from harness.datasets import UNCOMPRESSED_TRANSFER_SYNTAXES, encode_dataset
        from harness.scu.client import StoreRequest
        from harness.scu.outcome import Outcome

        klass = sop_class_uid or (str(dataset.SOPClassUID) if isinstance(dataset, Dataset)
                                  else "")
        instance = sop_instance_uid or (str(dataset.SOPInstanceUID)
                                        if isinstance(dataset, Dataset) else "")
        if not klass or not instance:
            raise ValueError("store(bytes) needs sop_class_uid and sop_instance_uid")
        found = self.scu.context_for(klass)
        if found is None:
            return Outcome("error", f"no accepted presentation context for {klass}")
        context_id, ts = found
        if isinstance(dataset, Dataset):
            if ts not in UNCOMPRESSED_TRANSFER_SYNTAXES:
                return Outcome("error", f"the accepted transfer syntax {ts} needs "
                               "encapsulated Pixel Data; pass encoded bytes instead")
            data = encode_dataset(dataset, ts)
        else:
            data = dataset
        request = StoreRequest(message_id or next(self._message_ids), klass, instance)
        return self.loop.run_until_complete(self.scu.store(request, data, context_id,
                                                           timeout=timeout or self.timeout))

    def echo(self, message_id: int | None = None) -> Outcome:
        return self.loop.run_until_complete(self.scu.echo(message_id or next(
            self._message_ids), timeout=self.timeout))

    def release(self) -> Outcome:
        return self.loop.run_until_complete(self.scu.release(self.timeout))

    def abort(self) -> Outcome:
        return self.scu.abort()

    def close(self) -> None:
        """Release if still associated (briefly), then close the connection and the loop."""
        if self.loop.is_closed():
            return
        req = self.scu.requestor
        try:
            if req.ac is not None and req.ended is None and not req.conn.is_closed:
                self.loop.run_until_complete(self.scu.release(min(self.timeout, 2.0)))
        except Exception:  # the test may have broken the association on purpose
            pass
        finally:
            self.scu.close()
            import asyncio

            self.loop.run_until_complete(asyncio.sleep(0))  # let the transport finish closing
            self.loop.close()


@pytest.fixture
def scu_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., SyncSCU]]:
    """``scu_factory(target=None, *, associate=True, contexts=None, called_aet=None,
    timeout=None)``: a :class:`SyncSCU` connected (and associated) to ``target`` (a Target,
    ReferenceSCP, ``(host, port)`` or ``HOST:PORT``; default ``dicom_target``)."""
    made: list[SyncSCU] = []

    def connect(target: TargetSpec | None = None, *, associate: bool = True,
                contexts: list[PresentationContextRQ] | None = None,
                called_aet: str | None = None, timeout: float | None = None) -> SyncSCU:
        # dicom_target only when needed: it may start the embedded SCP
        chosen: Target = target_of(target) if target is not None else \
            request.getfixturevalue("dicom_target")
        scu = SyncSCU(chosen, timeout=timeout)
        made.append(scu)
        if associate:
            out = scu.associate(contexts, called_aet=called_aet)
            if out.kind != "accepted":
                raise AssertionError(f"association with {chosen.host}:{chosen.port} not "
                                     f"accepted: {out.describe()}")
        return scu

    yield connect
    for scu in made:
        scu.close()


@pytest.fixture
def scu(scu_factory: Callable[..., SyncSCU]) -> SyncSCU:
    """A simulated SCU associated with ``dicom_target`` (released after the test)."""
    return scu_factory()


# --- fixtures: data sets, scenarios ---------------------------------------------------------


class DatasetFactory:
    """``dataset_factory(kind="tiny", seed=None, index=None, **geometry)`` -> a synthetic
    pydicom Dataset with File Meta Information (so other toolkits can send it too); each
    call without ``index`` gives a new instance (new UIDs)."""

    def __init__(self, seed: int = 0) -> None:
        from harness.datasets import KINDS

        self.seed = seed
        self.kinds = tuple(KINDS)
        self._index = itertools.count()

    def __call__(self, kind: str = "tiny", *, seed: int | None = None, index: int | None = None,
                 transfer_syntax: str = EXPLICIT_VR_LE, **geometry: Any) -> Dataset:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import UID

        from harness.datasets import make_instance

        ds = make_instance(kind, seed=self.seed if seed is None else seed,
                           index=next(self._index) if index is None else index, **geometry)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = UID(transfer_syntax)
        ds.file_meta = meta
        return ds

    @staticmethod
    def encode(ds: Dataset, transfer_syntax: str = EXPLICIT_VR_LE) -> bytes:
        """The data set as sent in P-DATA (no File Meta Information)."""
        from harness.datasets import encode_dataset

        return encode_dataset(ds, transfer_syntax)

    @staticmethod
    def encode_file(ds: Dataset, transfer_syntax: str = EXPLICIT_VR_LE) -> bytes:
        """A DICOM Part 10 file (preamble, File Meta Information, data set)."""
        from harness.datasets import encode_file

        return encode_file(ds, transfer_syntax)


@pytest.fixture
def dataset_factory(request: pytest.FixtureRequest) -> DatasetFactory:
    """Synthetic instances; the seed derives from the test's node id, so two tests never
    send the same SOP Instance UIDs and a rerun sends the same ones."""
    digest = hashlib.sha256(request.node.nodeid.encode("utf-8")).digest()
    return DatasetFactory(seed=int.from_bytes(digest[:4], "big"))


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


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest,
                 pytestconfig: pytest.Config) -> Callable[..., dict[str, Any]]:
    """``run_scenario(scenario_or_id, target=None, *, strict=None, declared=None,
    storage_dir=None, suite=None)``: run one scenario against ``target`` (default
    ``dicom_target``) and give the test the scenario's verdict, like the collected items.
    Returns the result dict (outcome, expected, observed, checks, trace)."""
    import asyncio

    from harness.engine.context import Target
    from harness.engine.loader import load_suite
    from harness.engine.runner import Runner

    settings = dicom_session(pytestconfig).settings
    suites: dict[str | None, list[Scenario]] = {}

    def run(scenario: Scenario | str, target: TargetSpec | None = None, *,
            strict: bool | None = None, declared: dict[str, Any] | None = None,
            storage_dir: str | Path | None = None, suite: str | None = None) -> dict[str, Any]:
        if suite not in suites:
            suites[suite] = load_suite(suite)
        known = suites[suite]
        if isinstance(scenario, str):
            found = [sc for sc in known if sc.id == scenario]
            if not found:
                raise LookupError(f"no scenario {scenario!r} in suite {suite or 'all'}")
            scenario = found[0]
        # the scenario's position in its suite keeps synthetic UIDs the same as in a run
        index = next((i for i, sc in enumerate(known) if sc.id == scenario.id), 0)
        chosen: Target = target_of(target) if target is not None else \
            request.getfixturevalue("dicom_target")
        if declared is not None or storage_dir is not None:
            chosen = Target(chosen.host, chosen.port, chosen.called_aet, chosen.calling_aet,
                            chosen.timeout,
                            Path(storage_dir) if storage_dir is not None else chosen.storage_dir,
                            {**chosen.declared, **(declared or {})}, chosen.embedded)
        runner = Runner(chosen)
        result = asyncio.run(runner.run_one(scenario, index))
        apply_verdict(request.node, result,
                      strict=settings.strict if strict is None else strict)
        return result

    return run
