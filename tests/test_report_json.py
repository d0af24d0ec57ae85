"""Results JSON on disk (harness/report/jsonio.py): atomic write, load with clear errors."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from harness.report import ReportError, load_results, write_json
from harness.report.jsonio import validate_results

SAMPLE = Path(__file__).parent / "data" / "sample-results.json"


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "harness_version": "0.1.0",
        "target": {"host": "127.0.0.1", "port": 104},
        "scenarios": [{"id": "a", "outcome": "pass"}],
    }
    data.update(extra)
    return data


def test_round_trip_of_the_sample(tmp_path: Path) -> None:
    original = json.loads(SAMPLE.read_text(encoding="utf-8"))
    out = write_json(original, tmp_path / "r.json")
    assert out == tmp_path / "r.json"
    assert load_results(out) == original


def test_text_is_utf8_not_escaped(tmp_path: Path) -> None:
    out = write_json(minimal(note="Müller^Jürgen \x07"), tmp_path / "r.json")
    text = out.read_text(encoding="utf-8")
    assert "Müller^Jürgen" in text and text.endswith("}\n")
    assert load_results(out)["note"] == "Müller^Jürgen \x07"


def test_write_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.json"
    write_json(minimal(), target)
    inode_before = target.stat().st_ino
    write_json(minimal(duration_s=2.5), target)
    assert load_results(target)["duration_s"] == 2.5
    # os.replace swaps in a new file rather than rewriting the old one in place.
    assert target.stat().st_ino != inode_before
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    write_json(minimal(), target)
    before = target.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_json(minimal(duration_s=9.0), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_non_finite_numbers_and_objects_become_json(tmp_path: Path) -> None:
    class Finding:
        def to_dict(self) -> dict[str, str]:
            return {"field": "x"}

    data = minimal(duration_s=math.nan, extra=[math.inf, Finding(), b"\x01\x02", tmp_path])
    text = write_json(data, tmp_path / "r.json").read_text(encoding="utf-8")
    loaded = json.loads(text)  # strict JSON: would fail on NaN
    assert "NaN" not in text and "Infinity" not in text
    assert loaded["duration_s"] is None
    assert loaded["extra"] == [None, {"field": "x"}, "0102", str(tmp_path)]


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ReportError) as info:
        load_results(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="directory"):
        load_results(tmp_path)


def test_invalid_json_gives_the_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"harness_version": "0.1.0",\n  "target": }', encoding="utf-8")
    with pytest.raises(ReportError) as info:
        load_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid JSON at line 2 column")


def test_binary_garbage_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReportError, match="not UTF-8"):
        load_results(path)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "expected a JSON object at the top level, found an array"),
        ({"target": {}, "scenarios": []}, "missing required key 'harness_version'"),
        ({"harness_version": "x"}, "missing required keys 'target', 'scenarios'"),
        (minimal(scenarios={}), "key 'scenarios' must be an array, found an object"),
        (minimal(target="127.0.0.1"), "key 'target' must be an object, found a string"),
        (minimal(harness_version=1), "key 'harness_version' must be a string, found a number"),
        (minimal(scenarios=[{"id": "a", "outcome": "pass"}, 3]),
         "scenarios[1] must be an object, found a number"),
        (minimal(scenarios=[{"id": "x.y"}]),
         "scenarios[0] (id 'x.y'): missing required key 'outcome'"),
        (minimal(scenarios=[{"outcome": "pass"}]), "scenarios[0]: missing required key 'id'"),
        (minimal(scenarios=[{"id": "q", "outcome": "passed"}]), "unknown outcome 'passed'"),
    ],
)
def test_structural_problems_are_explained(tmp_path: Path, data: Any, fragment: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError) as info:
        load_results(path)
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_optional_keys_may_be_absent() -> None:
    assert validate_results(minimal()) is None
    assert validate_results(minimal(scenarios=[])) is None
