"""Results JSON on disk: atomic writing, and loading with a clear error for a bad file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.report.errors import ReportError
from harness.report.files import atomic_write_text
from harness.report.model import OUTCOME_LABELS

# What a results file must hold for the reports to mean anything (DESIGN.md "Results JSON").
REQUIRED_KEYS: dict[str, type] = {"harness_version": str, "target": dict, "scenarios": list}
REQUIRED_SCENARIO_KEYS: tuple[str, ...] = ("id", "outcome")


def write_json(results: Mapping[str, Any], path: Path) -> Path:
    """Write ``results`` to ``path`` atomically (temporary file, then os.replace).

    NaN and infinities, which JSON cannot carry, are written as null.
    """
    text = json.dumps(
        _finite(results), indent=2, ensure_ascii=False, allow_nan=False, default=_plain
    )
    return atomic_write_text(Path(path), text + "\n")


def _plain(value: Any) -> Any:
    """JSON form of an object the engine left in the results (a Finding, a Path, bytes...)."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _finite(value: Any) -> Any:
    """Copy of ``value`` with NaN/infinity replaced by null: JSON has no such numbers."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def load_results(path: Path) -> dict[str, Any]:
    """Read a results file; raise ReportError naming the file and the problem when unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: results file not found") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a results file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read results file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    problem = validate_results(data)
    if problem:
        raise ReportError(f"{path}: {problem}")
    assert isinstance(data, dict)
    return data


def validate_results(data: Any) -> str | None:
    """The first reason ``data`` is not a usable results object, or None when it is."""
    if not isinstance(data, dict):
        return f"expected a JSON object at the top level, found {_json_type(data)}"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        return "missing required key" + ("s " if len(missing) > 1 else " ") + ", ".join(
            repr(k) for k in missing
        )
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(data[key], kind):
            return f"key {key!r} must be {_json_name(kind)}, found {_json_type(data[key])}"
    for index, scenario in enumerate(data["scenarios"]):
        where = f"scenarios[{index}]"
        if not isinstance(scenario, dict):
            return f"{where} must be an object, found {_json_type(scenario)}"
        absent = [key for key in REQUIRED_SCENARIO_KEYS if key not in scenario]
        if absent:
            name = f" (id {scenario['id']!r})" if "id" in scenario else ""
            return f"{where}{name}: missing required key " + ", ".join(repr(k) for k in absent)
        if scenario["outcome"] not in OUTCOME_LABELS:
            return (
                f"{where} (id {scenario['id']!r}): unknown outcome {scenario['outcome']!r}, "
                f"expected one of {', '.join(OUTCOME_LABELS)}"
            )
    return None


def _json_name(kind: type) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return names.get(kind, kind.__name__)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
