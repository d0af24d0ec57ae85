"""TLS in the pytest plugin (``--dicom-tls*``) and in ``bench`` (``--tls``, ``--compare
plain``: the TLS/plain ratio measured in the same run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _plugin_support import plugin_args

from harness.cli import main
from harness.net.tlscerts import make_cert_set

pytest_plugins = ["pytester"]
UNUSED = [a for n in ("cacheprovider", "benchmark", "html", "metadata", "hypothesispytest",
                      "faker") for a in ("-p", f"no:{n}")]


def run_plugin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*plugin_args(), *UNUSED, "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_plugin_runs_tls_scenarios_against_the_embedded_scp(pytester: pytest.Pytester) -> None:
    result = run_plugin(pytester, "--dicom", "--dicom-tls", "-q", "-k",
                        "tls.version or tls.client-cert.missing or assoc.baseline")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 5, result.stdout.str()
    assert "failed" not in outcomes and "error" not in outcomes, result.stdout.str()


def test_plugin_skips_tls_group_without_tls(pytester: pytest.Pytester) -> None:
    result = run_plugin(pytester, "--dicom", "-q", "-rs", "-k", "tls.version")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 3 and "passed" not in outcomes, result.stdout.str()
    assert "target not TLS" in result.stdout.str()


def test_run_scenario_with_declared_keeps_tls(pytester: pytest.Pytester) -> None:
    # declared= makes a copy of the target: it must still speak TLS
    pytester.makepyfile(test_fixture_tls="""
        def test_tls_with_declared(run_scenario):
            result = run_scenario("tls.version.1-2-accepted", declared={"max_pdu": 16384})
            assert result["outcome"] == "pass", result["observed"]
    """)
    result = run_plugin(pytester, "--dicom-tls", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_plugin_bad_tls_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_plugin(pytester, "--dicom", "--dicom-tls-ca", "x.pem")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs --tls" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


# --- bench --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_bench_over_tls_with_plain_ratio(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "--tls", "--compare", "plain", "--instances", "200", "--json",
                 str(out), "--no-html", "-q", "--report-dir", str(tmp_path / "r")])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["errors"] == 0
    assert doc["instances"] == 200
    assert doc["statuses"] == {"0x0000": 200}
    assert doc["conditions"]["tls"] == {"min_version": "1.2"}
    plain = doc["plain"]
    assert plain["errors"] == 0 and plain["instances"] == 200
    assert plain["ratio"] > 0


@pytest.mark.parametrize("args,expected", [
    (["--compare", "plain"], "needs --tls"),
    (["--tls", "--tls-ca", "ca.pem"], "are for a --target"),
    (["--tls", "--target", "127.0.0.1:1", "--tls-ca", "/no/ca.pem"], "no such file"),
    (["--tls", "--target", "127.0.0.1:1", "--compare", "plain", "--tls-no-verify"],
     "needs --plain-target"),
])
def test_bench_tls_usage_errors(args: list[str], expected: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "-q", "--no-html", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected in err


def test_bench_handshake_failure_is_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from harness.engine.embedded import EmbeddedSCP, embedded_profile
    from harness.net.tls import TLSOptions

    certs = make_cert_set(tmp_path / "c")
    server = TLSOptions(cert=str(certs.server_cert), key=str(certs.server_key)).server_context()
    other = make_cert_set(tmp_path / "other")
    with EmbeddedSCP(embedded_profile(), tls=server) as scp:
        code = main(["bench", "-q", "--no-html", "--tls", "--target", f"127.0.0.1:{scp.port}",
                     "--tls-ca", str(other.ca), "--instances", "5"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "certificate verify failed" in err
