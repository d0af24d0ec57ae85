"""DIMSE command sets (PS3.7 6.3, 9.3, Annex E); the modules are split by job in the next commit."""

from harness.wire.dimse.decode import *  # noqa: F403
