"""``dicom-harness bench`` on the command line: arguments, errors, exit status, report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench.cli import parse_associations, parse_target
from harness.bench.runner import BenchUsageError
from harness.cli import main
from tests._bench_support import external_refs, free_port


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["bench", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, never a traceback
    assert lines[0].startswith("dicom-harness bench: ")
    return lines[0]


@pytest.mark.parametrize(("argv", "says"), [
    (["--associations", "1,x"], "--associations"),
    (["--associations", "0"], "--associations"),
    (["--associations", ""], "--associations"),
    (["--instances", "0"], "--instances"),
    (["--instances", "many"], "--instances"),
    (["--instances", "5", "--duration", "2"], "not both"),
    (["--duration", "-1"], "--duration"),
    (["--workers", "0"], "--workers"),
    (["--compare", "orthanc"], "--compare"),
    (["--target", "localhost"], "HOST:PORT"),
    (["--target", "127.0.0.1:70000"], "HOST:PORT"),
    (["--workload", "no-such-kind-or-folder"], "workload"),
    (["--transfer-syntax", "1.2.840.10008.1.2.1.99"], "deflated"),
    (["--window", "-3"], "--window"),
    (["--calling-aet", "SEVENTEEN-CHARS-X"], "--calling-aet"),
    (["--called-aet", "BAD\\AE"], "--called-aet"),
    (["--target-pid", "999999999"], "--target-pid"),
    (["--compare", "dcmtk", "--duration", "1"], "--instances"),
    (["--compare", "dcmtk", "--instances", "2", "--storescu", "/nonexistent/storescu"],
     "not found"),
])
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                   says: str) -> None:
    line = _usage_error(capsys, *argv)
    assert says in line


def test_unreachable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    line = _usage_error(capsys, "--target", f"127.0.0.1:{port}", "--instances", "3")
    assert "unreachable" in line and str(port) in line


def test_parsers() -> None:
    assert parse_associations("1,2, 4,8") == [1, 2, 4, 8]
    assert parse_target("[::1]:104") == ("::1", 104)
    assert parse_target(None) is None
    with pytest.raises(BenchUsageError):
        parse_associations("1,-2")


def test_default_run_measures_the_reference_scp(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """No --target: the CLI starts `dicom-harness serve` itself, measures it, stops it."""
    extra = tmp_path / "extra.json"
    code = main(["bench", "--instances", "8", "--associations", "1,2", "--report-dir",
                 str(tmp_path / "rep"), "--json", str(extra)])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((tmp_path / "rep" / "bench.json").read_text())
    assert doc == json.loads(extra.read_text())
    assert doc["target"]["kind"].startswith("reference SCP")
    assert [p["conditions"]["associations"] for p in doc["sweep"]] == [1, 2]
    assert doc["errors"] == 0
    assert "inst/s" in out and "bench.html" in out  # the table and the written files
    html = (tmp_path / "rep" / "bench.html").read_text()
    refs, tags = external_refs(html)
    assert refs == [], refs  # self-contained: nothing loaded from anywhere
    assert html.count("<svg") == 3  # throughput over time, latency CDF, concurrency sweep
    assert {"table", "svg", "polyline"} <= tags
    assert "Throughput against concurrency" in html


def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "reject.yaml"
    profile.write_text("faults: [reject_all]\n")
    code = main(["bench", "--instances", "3", "--scp-profile", str(profile), "--report-dir",
                 str(tmp_path), "--no-html", "-q"])
    assert code == 1
    assert not (tmp_path / "bench.html").exists()
    assert json.loads((tmp_path / "bench.json").read_text())["errors"] == 1
    capsys.readouterr()
