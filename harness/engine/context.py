"""Run state: the target, its declared profile, and one scenario's associations and checks."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.engine.model import CheckResult, Scenario
from harness.engine.universal import UniversalChecks
from harness.net.trace import Trace
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome
from harness.wire.constants import DEFAULT_CALLED_AE, DEFAULT_CALLING_AE

DECLARATION_KEYS = {
    "called_ae_enforced": "the SCP rejects A-ASSOCIATE-RQs whose Called AE is not its own",
    "calling_aet_allow": "list of Calling AE titles the SCP accepts (others are rejected)",
    "duplicate_sop_instance": "overwrite | keep-first | reject",
    "artim_timeout": "seconds the SCP waits for an A-ASSOCIATE-RQ before closing",
    "idle_timeout": "seconds of inactivity after which the SCP ends an association",
    "max_associations": "concurrent associations the SCP accepts",
    "sop_classes": "SOP Class UIDs the SCP accepts",
    "transfer_syntaxes": "transfer syntaxes the SCP accepts",
    "async_window": "[invoked, performed] the SCP supports",
    "max_pdu": "the SCP's maximum PDU length",
    "tls": "TLS policy: {mutual: true|false, min_version: \"1.2\"} (PS3.15 B.12, BCP 195)",
}


class TargetProfileError(ValueError):
    pass


def load_target_profile(path: str | Path | None) -> dict[str, Any]:
    """What the target declares about itself (``--target-profile``); checked as MUST."""
    if path is None:
        return {}
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetProfileError(f"{p}: cannot read target profile: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TargetProfileError(f"{p}{where}: invalid YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TargetProfileError(f"{p}: a target profile must be a mapping")
    unknown = set(data) - set(DECLARATION_KEYS)
    if unknown:
        raise TargetProfileError(f"{p}: unknown declaration(s) {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(DECLARATION_KEYS))}")
    return dict(data)


@dataclass(slots=True)
class Target:
    host: str
    port: int
    called_aet: str = DEFAULT_CALLED_AE
    calling_aet: str = DEFAULT_CALLING_AE
    timeout: float = 10.0
    storage_dir: Path | None = None
    declared: dict[str, Any] = field(default_factory=dict)
    embedded: bool = False
    pid: int | None = None
    tls: Any = None  # harness.net.tls.TLSClient when the target speaks DICOM over TLS


@dataclass(slots=True)
class SentInstance:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    data: bytes
    outcome: str = ""  # kind of the store's outcome


class ScenarioRun:
    """Everything one scenario touches while it runs."""

    def __init__(self, scenario: Scenario, target: Target, observed: dict[str, Any]) -> None:
        self.scenario = scenario
        self.target = target
        self.observed = observed  # the run-wide observed conformance statement
        self.trace = Trace(limit=400)
        self.checks: list[CheckResult] = []
        self.associations: dict[str, SimulatedSCU] = {}
        self.last: dict[str, Outcome] = {}
        self.sent: list[SentInstance] = []
        self.message_ids = itertools.count(1)
        self.started = time.time()
        self.notes: list[str] = []
        self.skip_reason: str | None = None
        self.universal = UniversalChecks()
        self.our_max: dict[int, int] = {}  # association -> the Maximum Length we advertised
        self.step_outcomes: list[Outcome] = []
        self.index = 0  # position in the run, keeps synthetic instance UIDs unique
        self.uids: dict[str, str] = {}  # "unique:NAME" -> UID for this run
        self.echoed: set[str] = set()  # fields our own requests broke on purpose
        self.deferred: list[Callable[[], Awaitable[None]]] = []  # checks run at the end
        # The runner's StorageInspector when --storage-dir is known (stored-data checks).
        self.inspector: Any = None
        self._assoc_ids = itertools.count(1)

    @property
    def timeout(self) -> float:
        return self.scenario.timeout or self.target.timeout

    def next_assoc_id(self) -> int:
        return next(self._assoc_ids)

    def check(self, name: str, severity: str, ok: bool | None, expected: str, observed: str,
              reference: str = "") -> CheckResult:
        """Record a check; ``ok=None`` records an observation (info)."""
        if ok is None:
            outcome = "info"
        elif ok:
            outcome = "pass"
        else:
            outcome = {"must": "fail", "should": "warn"}.get(severity, "info")
        result = CheckResult(name, severity, outcome, expected, observed, reference)
        self.checks.append(result)
        return result

    def declared(self, key: str) -> Any:
        return self.target.declared.get(key)

    def close_all(self) -> None:
        for scu in self.associations.values():
            scu.close()
