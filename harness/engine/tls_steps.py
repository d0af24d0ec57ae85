"""Old import path of the TLS steps, now :mod:`harness.engine.steps.tls` (kept so that code
importing ``harness.engine.tls_steps`` keeps working)."""

from __future__ import annotations

from harness.engine.steps.tls import *  # noqa: F403
from harness.engine.steps.tls import TLS_REQUIREMENTS

__all__ = ["TLS_REQUIREMENTS"]
