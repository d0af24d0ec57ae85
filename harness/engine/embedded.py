"""The embedded reference SCP: a :class:`StorageSCP` on its own thread and event loop.

Running it apart from the harness's loop means the SCP under test and the SCUs testing it
never share a scheduler: a slow store in one cannot stall the other's timeouts.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.scp.profile import Profile
from harness.scp.server import StorageSCP


def embedded_profile(**overrides: object) -> Profile:
    """The conformant profile ``dicom-harness run`` tests by default: a short ARTIM so the
    timer scenarios finish in seconds (the value is declared, so they are checked exactly)."""
    settings: dict[str, object] = {"artim_timeout": 3.0, "idle_timeout": 600.0}
    settings.update(overrides)
    return Profile(**settings)  # type: ignore[arg-type]


def declared_from_profile(profile: Profile) -> dict[str, Any]:
    """The embedded SCP knows its own behaviour: declare it, so INFO checks become MUST."""
    out: dict[str, Any] = {"duplicate_sop_instance": profile.duplicate_sop_instance,
                           "artim_timeout": profile.artim_timeout,
                           "max_associations": profile.max_associations,
                           "max_pdu": profile.max_pdu}
    if profile.require_called_aet:
        out["called_ae_enforced"] = True
    if profile.calling_aet_allow:
        out["calling_aet_allow"] = list(profile.calling_aet_allow)
    return out


class EmbeddedSCP:
    """``with EmbeddedSCP(profile) as scp: scp.port``; stops and cleans up on exit."""

    def __init__(self, profile: Profile | None = None, storage_dir: str | Path | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.profile = profile or Profile()
        self.tls = tls
        self._storage_dir = storage_dir
        self.host = host
        self._port = port
        self.scp: StorageSCP | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        assert self.scp is not None, "EmbeddedSCP is not started"
        return self.scp.port

    @property
    def storage_dir(self) -> Path:
        assert self.scp is not None, "EmbeddedSCP is not started"
        return self.scp.storage_dir

    def start(self, timeout: float = 10.0) -> EmbeddedSCP:
        self._thread = threading.Thread(target=self._run, name="embedded-scp", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("embedded reference SCP did not start within "
                               f"{timeout:g} s")
        if self._error is not None:
            raise RuntimeError(f"embedded reference SCP failed to start: {self._error}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.scp = StorageSCP(self.profile, self._storage_dir, host=self.host,
                                  port=self._port, tls=self.tls)
            loop.run_until_complete(self.scp.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.scp.stop())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> EmbeddedSCP:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
