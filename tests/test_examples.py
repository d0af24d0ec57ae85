"""The examples under examples/ run as part of the project's tests, so they cannot rot.

The pytest examples run in a pytest subprocess with the plugin loaded; the interop scripts
run against the real peers (pynetdicom's storescp, DCMTK's storescp when installed) with a
couple of scenarios, and must pass the run's exit status through and stop their peer.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _plugin_support import plugin_args

from harness.pytest_plugin import scenarios

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DCMTK_STORESCP = Path("/usr/bin/storescp")
# Plugins of this environment the example run does not need (benchmark too: the project's
# pytest configuration must work without it, conftest.py).
UNUSED_PLUGINS = [arg for name in ("cacheprovider", "benchmark", "html", "metadata",
                                   "hypothesispytest", "faker") for arg in ("-p", f"no:{name}")]


def run_examples(tmp_path: Path, *files: str) -> tuple[int, dict[str, str], str]:
    """Run pytest on example files; return exit status, test name -> outcome, output."""
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *plugin_args(), *UNUSED_PLUGINS, "-q",
         f"--junitxml={junit}", "--basetemp", str(tmp_path / "base"),
         *(str(EXAMPLES / f) for f in files)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    outcomes: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            kinds = [child.tag for child in case if child.tag in
                     ("failure", "error", "skipped")]
            outcomes[str(case.get("name"))] = kinds[0] if kinds else "passed"
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def _constant(path: Path, name: str) -> str:
    """A module-level string constant of an example, read without importing the example."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise LookupError(f"{path}: no constant {name}")


def test_examples_pass(tmp_path: Path) -> None:
    pytest.importorskip("pynetdicom")
    selected = [sc.id for sc in scenarios(_constant(EXAMPLES / "test_my_scp.py", "SELECTED"))]
    assert len(selected) >= 3, "the example's selection matches (almost) nothing"

    code, outcomes, output = run_examples(tmp_path, "test_my_scp.py",
                                          "test_with_reference_scp.py")
    assert code == 0, output
    assert {f"test_conformance[{sid}]" for sid in selected} <= set(outcomes), output
    assert {"test_store_is_acknowledged_and_kept", "test_every_kind_of_instance", "test_echo",
            "test_sender_delivers_everything", "test_sender_sees_failures[out-of-resources]",
            "test_two_scps_at_once"} <= set(outcomes), output
    assert set(outcomes.values()) == {"passed"}, output


def _peer_port(output: str) -> int:
    found = re.search(r"--target 127\.0\.0\.1:(\d+)", output)
    assert found, output
    return int(found.group(1))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def run_interop(script: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "REPORT_DIR": str(tmp_path / "reports")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "interop" / script), "--no-html",
                           "-q", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.interop
def test_interop_pynetdicom_reports_exit_status_and_stops_its_peer(tmp_path: Path) -> None:
    """pynetdicom rejects protocol versions with extra bits set (a MUST failure): exit 1."""
    pytest.importorskip("pynetdicom")
    code, output = run_interop("run_against_pynetdicom.py", tmp_path, "-k",
                               "assoc.baseline or protocol-version-other-bits")
    assert code == 1, output
    report = tmp_path / "reports" / "pynetdicom"
    results = json.loads((report / "results.json").read_text())
    outcomes = {s["id"]: s["outcome"] for s in results["scenarios"]}
    assert outcomes["assoc.baseline"] == "pass", output
    assert (report / "junit.xml").is_file() and (report / "peer.log").is_file()
    assert not _listening(_peer_port(output))


@pytest.mark.interop
@pytest.mark.skipif(not DCMTK_STORESCP.exists(), reason="DCMTK storescp not installed")
def test_interop_dcmtk_passes_and_stops_its_peer(tmp_path: Path) -> None:
    code, output = run_interop("run_against_dcmtk.py", tmp_path, "-k",
                               "assoc.baseline or store.echo")
    assert code == 0, output
    assert (tmp_path / "reports" / "dcmtk" / "results.json").is_file()
    assert not _listening(_peer_port(output))


@pytest.mark.interop
@pytest.mark.skipif(not Path("/usr/sbin/Orthanc").exists(), reason="Orthanc not installed")
def test_interop_orthanc_finds_its_defect_and_stops_its_peer(tmp_path: Path) -> None:
    """Orthanc answers result 3 (not 4) for a supported class with no supported syntax."""
    code, output = run_interop("run_against_orthanc.py", tmp_path, "-k",
                               "store.echo or assoc.unsupported-transfer-syntax")
    assert code == 1, output
    results = json.loads((tmp_path / "reports" / "orthanc" / "results.json").read_text())
    outcomes = {s["id"]: s["outcome"] for s in results["scenarios"]}
    assert outcomes == {"store.echo": "pass", "assoc.unsupported-transfer-syntax": "fail"}
    assert not _listening(_peer_port(output))


def test_interop_missing_peer_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "REPORT_DIR": str(tmp_path / "reports"),
           "STORESCP": str(tmp_path / "no-such-storescp")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "interop" / "run_against_dcmtk.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
