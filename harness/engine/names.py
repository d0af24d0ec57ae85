"""Human names of UIDs (SOP classes, transfer syntaxes) for reports and console output."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)
def uid_name(uid: str) -> str:
    try:
        from pydicom._uid_dict import UID_dictionary

        entry = UID_dictionary.get(uid)
    except ImportError:  # pragma: no cover - pydicom layout changed
        entry = None
    return str(entry[0]) if entry else uid
