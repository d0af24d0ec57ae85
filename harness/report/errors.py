"""The one exception type of the report layer."""

from __future__ import annotations


class ReportError(Exception):
    """A results file cannot be read or used; the message names the file and what is wrong."""
