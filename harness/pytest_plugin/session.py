"""The plugin's state for one pytest process: its ``--dicom-*`` options, checked once at
configure time (:class:`DicomSettings`), and the target under test with the runner that runs
scenarios against it (:class:`DicomSession`, kept in ``config.stash``; each xdist worker has
its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.engine.target_options import (
    PLUGIN,
    TargetUnreachable,
    called_aet,
    check_reachable,
    option_default,
)
from harness.net.address import parse_address

# Everything else is imported where it is used: pytest loads this plugin in every run of an
# environment that has the package, and pydicom alone costs a noticeable part of a second.
if TYPE_CHECKING:
    from harness.engine.context import Target
    from harness.engine.embedded import EmbeddedSCP
    from harness.engine.model import Scenario
    from harness.engine.runner import Runner
    from harness.scp.profile import Profile


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
            from harness.engine.embedded import (
                EmbeddedSCP,
                declared_from_profile,
                embedded_profile,
            )
            from harness.engine.tls_setup import (
                TLSSetupError,
                client_for_run,
                embedded_server_context,
            )

            s = self.settings
            tls, declared = None, dict(s.declared)
            if s.tls is not None:
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
                self.embedded = EmbeddedSCP(profile,
                                            tls=embedded_server_context(tls, profile)).start()
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
