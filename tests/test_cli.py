"""The ``dicom-harness`` command line (harness/cli.py): run, list, report and serve, their
outputs and exit statuses (0 no failure, 1 failure or regression, 2 usage / unreachable)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.datasets import encode_file, make_instance
from harness.engine.embedded import EmbeddedSCP, embedded_profile
from harness.engine.loader import load_suite
from harness.engine.loader import select as select_scenarios
from harness.engine.storage import StorageInspector
from harness.scp.profile import FAULTS
from harness.wire.constants import EXPLICIT_VR_LE

STORESCU = "/usr/bin/storescu"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the default --report-dir is ./reports: never write into the repository
    monkeypatch.chdir(tmp_path)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def results_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def fault_profile(tmp_path: Path, *faults: str) -> Path:
    path = tmp_path / "faulty.yaml"
    path.write_text(f"faults: [{', '.join(faults)}]\n")
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- run ------------------------------------------------------------------------------------------


def test_run_writes_the_report_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "out"]) == 0
    out = capsys.readouterr().out
    for name in ("report.html", "results.json", "junit.xml"):
        assert (tmp_path / "out" / name).stat().st_size > 0
        assert name in out
    results = results_of(tmp_path / "out" / "results.json")
    assert [s["id"] for s in results["scenarios"]] == ["assoc.baseline"]
    assert results["summary"]["passed"] == 1 and results["target"]["embedded"] is True
    html = (tmp_path / "out" / "report.html").read_text()
    assert "assoc.baseline" in html
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert "assoc.baseline" in junit and 'failures="0"' in junit


def test_run_json_and_junit_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "-k", "assoc.baseline or store.echo", "--report-dir", "rd", "--json",
                 "elsewhere/r.json", "--junit", "ci/j.xml", "-q"])
    assert code == 0
    results = results_of(tmp_path / "elsewhere" / "r.json")
    assert sorted(s["id"] for s in results["scenarios"]) == ["assoc.baseline", "store.echo"]
    assert (tmp_path / "ci" / "j.xml").read_text().count("<testcase") == 2
    assert (tmp_path / "rd" / "report.html").is_file()


def test_run_no_html(tmp_path: Path) -> None:
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "rd", "--no-html", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "rd").iterdir()) == ["results.json"]


def test_failing_run_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = fault_profile(tmp_path, "wrong_ae_echo")
    code = main(["run", "--scp-profile", str(profile), "-k", "assoc.baseline",
                 "--report-dir", "rd"])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "assoc.baseline" in out
    [result] = results_of(tmp_path / "rd" / "results.json")["scenarios"]
    assert result["outcome"] == "fail" and "AC fields" in result["observed"]


def test_run_against_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with EmbeddedSCP(embedded_profile()) as scp:
        code = main(["run", "--target", f"127.0.0.1:{scp.port}", "--storage-dir",
                     str(scp.storage_dir), "-k", "store.transfer-syntax and evrle",
                     "--report-dir", "rd", "--timeout", "3", "-q"])
        bad_dir = main(["run", "--target", f"127.0.0.1:{scp.port}", "--storage-dir",
                        str(tmp_path / "nowhere"), "-k", "assoc.baseline"])
    assert code == 0
    results = results_of(tmp_path / "rd" / "results.json")
    assert results["target"]["port"] == scp.port and results["target"]["embedded"] is False
    [result] = results["scenarios"]
    stored = [c for c in result["checks"] if c["name"].endswith("stored data")]
    assert stored and stored[0]["outcome"] == "pass"
    assert bad_dir == 2
    assert "nowhere" in one_error_line(capsys.readouterr().err)


def test_unreachable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main(["run", "--target", f"127.0.0.1:{port}", "-k", "assoc.baseline"]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert f"127.0.0.1:{port}" in line and "unreachable" in line
    assert not Path("reports").exists()


@pytest.mark.parametrize("target", ["nohost", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x",
                                    ":104", "127.0.0.1:70000", "127.0.0.1:0"])
def test_bad_target_syntax_exits_2(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--target", target])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "HOST:PORT" in err and repr(target) in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--timeout", "0"], ["--timeout", "soon"],
                                  ["--fail-on", "sometimes"]])
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", *argv])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_suite_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--suite", "no-such-suite"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no-such-suite" in line and "a-association" in line


def test_no_scenario_selected_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "nothing-matches-this"]) == 2
    assert "no scenario selected" in one_error_line(capsys.readouterr().err)
    assert main(["run", "-k", "assoc and"]) == 2
    assert "not a valid expression" in one_error_line(capsys.readouterr().err)


def test_malformed_suite_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("group: A\nscenarios:\n  - id: x.y\n    title: t\n    references: [PS3.8 1]\n"
                   "    steps:\n      - stroe: {}\n")
    assert main(["run", "--suite", str(bad)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{bad}:7" in line and "stroe" in line and "store" in line


@pytest.mark.parametrize(("text", "wanted"), [("artim: [1\n", "invalid YAML"),
                                              ("colour: blue\n", "colour"),
                                              ("- a list\n", "mapping")])
def test_malformed_target_profile_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          text: str, wanted: str) -> None:
    path = tmp_path / "declared.yaml"
    path.write_text(text)
    assert main(["run", "-k", "assoc.baseline", "--target-profile", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and wanted in line
    assert main(["run", "-k", "assoc.baseline", "--target-profile", "missing.yaml"]) == 2
    assert "missing.yaml" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("text", "wanted"), [("faults: [no_such_fault]\n", "no_such_fault"),
                                              ("faults: [1\n", "invalid YAML"),
                                              ("max_pdu: lots\n", "max_pdu")])
def test_malformed_scp_profile_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       text: str, wanted: str) -> None:
    path = tmp_path / "scp.yaml"
    path.write_text(text)
    assert main(["run", "-k", "assoc.baseline", "--scp-profile", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and wanted in line


def test_declared_target_profile_is_applied(tmp_path: Path) -> None:
    # the embedded SCP does not limit Calling AE titles: declaring that it does must fail
    declared = tmp_path / "declared.yaml"
    declared.write_text("calling_aet_allow: [HARNESS]\n")
    assert main(["run", "-k", "assoc.calling-ae-not-authorised", "--report-dir", "plain",
                 "-q"]) == 0
    [skipped] = results_of(tmp_path / "plain" / "results.json")["scenarios"]
    assert skipped["outcome"] == "skip"
    assert main(["run", "-k", "assoc.calling-ae-not-authorised", "--target-profile",
                 str(declared), "--report-dir", "declared", "-q"]) == 1


# --- baselines --------------------------------------------------------------------------------


def test_fail_on_regression_needs_a_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "assoc.baseline", "--fail-on", "regression"]) == 2
    assert "--baseline" in one_error_line(capsys.readouterr().err)
    assert main(["run", "-k", "assoc.baseline", "--baseline", "missing.json"]) == 2
    assert "missing.json" in one_error_line(capsys.readouterr().err)


def test_regressions_against_a_baseline(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    faulty = str(fault_profile(tmp_path, "wrong_ae_echo"))
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "good", "-q"]) == 0
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "bad", "-q",
                 "--scp-profile", faulty]) == 1
    good, bad = "good/results.json", "bad/results.json"
    capsys.readouterr()
    # passed before, fails now: a regression
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "r1", "-q", "--scp-profile",
                 faulty, "--baseline", good, "--fail-on", "regression"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    # failed before too: no regression, exit 0 although a scenario fails
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "r2", "-q", "--scp-profile",
                 faulty, "--baseline", bad, "--fail-on", "regression"]) == 0
    assert results_of(tmp_path / "r2" / "results.json")["summary"]["failed"] == 1
    # the default --fail-on failure ignores the baseline's verdicts
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "r3", "-q", "--scp-profile",
                 faulty, "--baseline", bad]) == 1
    # fixed since the baseline
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "r4", "-q", "--baseline", bad,
                 "--fail-on", "regression"]) == 0
    assert "1 fixed" in capsys.readouterr().out


# --- report -----------------------------------------------------------------------------------


def test_report_rebuilds_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "assoc.baseline", "--report-dir", "rd", "-q", "--no-html"]) == 0
    capsys.readouterr()
    assert main(["report", "rd/results.json", "--report-dir", "html", "--junit",
                 "html/j.xml", "--baseline", "rd/results.json"]) == 0
    out = capsys.readouterr().out
    html = (tmp_path / "html" / "report.html").read_text()
    assert "assoc.baseline" in html and "html/report.html" in out
    assert "assoc.baseline" in (tmp_path / "html" / "j.xml").read_text()


def test_report_on_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "missing.json"]) == 2
    assert "missing.json" in one_error_line(capsys.readouterr().err)
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", "bad.json"]) == 2
    assert "bad.json" in one_error_line(capsys.readouterr().err)
    (tmp_path / "wrong.json").write_text('{"scenarios": 3}')
    assert main(["report", "wrong.json"]) == 2
    assert "wrong.json" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "reports").exists()


# --- list -------------------------------------------------------------------------------------


def test_list_formats(capsys: pytest.CaptureFixture[str]) -> None:
    expected = [s.id for s in select_scenarios(load_suite(), "group:A and not tag:slow")]
    assert main(["list", "-k", "group:A", "--format", "ids"]) == 0
    assert capsys.readouterr().out.split() == expected
    assert main(["list", "-k", "group:A", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == expected
    assert set(listed[0]) >= {"id", "title", "group", "severity", "references", "tags"}
    assert main(["list", "-k", "assoc.baseline or dataset.garbage"]) == 0
    table = capsys.readouterr().out
    assert "2 scenarios" in table and "assoc.baseline" in table and "dataset.garbage" in table


def test_list_slow_and_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--format", "ids", "-k", "tag:slow"]) == 0
    assert capsys.readouterr().out.split() == []
    assert main(["list", "--format", "ids", "-k", "tag:slow", "--slow"]) == 0
    assert "store.large-object" in capsys.readouterr().out.split()
    assert main(["list", "--format", "ids", "--suite", "j"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids and all(i.startswith("security.") for i in ids)
    assert main(["list", "--suite", "nope"]) == 2


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


# --- serve ------------------------------------------------------------------------------------


def test_serve_list_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--list-faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FAULTS)
    assert sorted(line.split()[0] for line in lines) == sorted(FAULTS)


def test_serve_port_in_use_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--storage-dir", str(tmp_path / "s"),
                     "-q"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"127.0.0.1:{port}" in line and "cannot listen" in line


def test_serve_bad_profile_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = fault_profile(tmp_path, "not_a_fault")
    assert main(["serve", "--profile", str(profile), "--port", "0"]) == 2
    assert str(profile) in one_error_line(capsys.readouterr().err)


# --- the real process ---------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}


def test_process_unreachable_target(tmp_path: Path) -> None:
    port = closed_port()
    done = subprocess.run(_cli("run", "--target", f"127.0.0.1:{port}", "-k", "assoc.baseline"),
                          capture_output=True, text=True, timeout=60, env=_env(), cwd=tmp_path)
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert line.startswith("dicom-harness run: ") and f"127.0.0.1:{port}" in line


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


@pytest.mark.skipif(not Path(STORESCU).exists(), reason="DCMTK storescu not installed")
def test_serve_process_receives_from_storescu(tmp_path: Path) -> None:
    storage = tmp_path / "received"
    ds = make_instance("tiny", seed=3)
    source = tmp_path / "in.dcm"
    source.write_bytes(encode_file(ds, EXPLICIT_VR_LE))
    proc = subprocess.Popen(_cli("serve", "--port", "0", "--storage-dir", str(storage),
                                 "--aet", "TESTSCP"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=tmp_path)
    try:
        line = _read_line(proc, 30.0)
        assert "TESTSCP listening on 127.0.0.1:" in line and str(storage) in line, line
        port = int(line.split("listening on 127.0.0.1:")[1].split(",")[0])
        sent = subprocess.run([STORESCU, "-aet", "DCMTK", "-aec", "TESTSCP", "127.0.0.1",
                               str(port), str(source)], capture_output=True, text=True,
                              timeout=30)
        assert sent.returncode == 0, sent.stderr
        found = StorageInspector(storage).wait_for(str(ds.SOPInstanceUID), timeout=5.0)
        assert len(found) == 1 and found[0].readable
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped after 1 store(s)" in out
    assert "Traceback" not in err
    # the stored file stays in place after the stop, with nothing partial next to it
    [kept] = StorageInspector(storage).find(str(ds.SOPInstanceUID))
    assert kept.path.is_file()
    assert not [p for p in storage.rglob("*") if p.is_file() and p.suffix == ".part"]


# The console script installed next to the interpreter running the tests: a `dicom-harness`
# found on PATH may belong to another installation (another venv, a global pip install).
CONSOLE_SCRIPT = Path(sys.executable).parent / "dicom-harness"


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="console script not installed here")
def test_console_script_version(tmp_path: Path) -> None:
    done = subprocess.run([str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("dicom-harness ")


def test_list_into_a_closed_pipe_stops_without_a_traceback() -> None:
    # `dicom-harness list | head -0`: the reader is gone before the first line is written
    # (closing at once is safe: the interpreter takes far longer to start than this).
    proc = subprocess.Popen([sys.executable, "-m", "harness", "list", "--format", "ids"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
