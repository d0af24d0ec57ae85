"""The suite over TLS against the embedded reference SCP (``dicom-harness run --tls``).

The TLS group (L) must pass; the other groups must run unchanged over TLS (framing,
aborts, RST / FIN, trickling, timeouts) with no failure and no harness error. Without
``--tls`` the TLS group is skipped, "target not TLS", so the default run stays green.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "results.json"
    code = main(["run", "-q", "--no-html", "--report-dir", str(tmp_path / "r"), "--json",
                 str(out), *args])
    return code, json.loads(out.read_text())


def problems(results: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: f"{r['outcome']}: {r['observed'][:300]}" for r in results["scenarios"]
            if r["outcome"] in ("fail", "error", "warn")}


def test_tls_group_passes_against_the_embedded_scp(tmp_path: Path) -> None:
    code, results = run(tmp_path, "--tls", "-k", "group:L")
    assert code == 0
    assert not problems(results)
    by_id = {r["id"]: r for r in results["scenarios"]}
    assert all(r["group"] == "L" for r in by_id.values())
    # The refusals really were observed, not skipped.
    for sid in ("tls.version.old-refused[1.0]", "tls.version.old-refused[1.1]",
                "tls.cipher.weak-refused[null-encryption]", "tls.client-cert.missing-refused",
                "tls.client-cert.bad-refused[client-untrusted]",
                "tls.client-cert.bad-refused[client-expired]", "tls.plaintext-refused",
                "tls.handshake-stall", "tls.server-certificate"):
        assert by_id[sid]["outcome"] == "pass", (sid, by_id[sid]["observed"])
    # A probe this OpenSSL cannot make is a skip with its reason, never a verdict.
    rc4 = by_id["tls.cipher.weak-refused[rc4-3des-export]"]
    if rc4["outcome"] == "skip":
        assert "cannot offer" in rc4["observed"]
    tls = results["conformance"]["tls"]
    assert tls["version"] in ("TLSv1.2", "TLSv1.3")
    assert tls["cipher"]
    assert "CN=localhost" in tls["peer_subject"]
    # ... and in the HTML report's observed conformance statement.
    from harness.report import write_html

    html = write_html(results, tmp_path / "report.html").read_text()
    assert f"<dt>tls cipher</dt><dd>{tls['cipher']}</dd>" in html
    assert "<dt>tls peer subject</dt>" in html


def test_plain_run_has_no_tls_in_the_conformance_statement(tmp_path: Path) -> None:
    _code, results = run(tmp_path, "-k", "assoc.baseline")
    assert "tls" not in results["conformance"]


def test_tls_group_is_skipped_without_tls(tmp_path: Path) -> None:
    code, results = run(tmp_path, "-k", "group:L")
    assert code == 0
    assert {r["outcome"] for r in results["scenarios"]} == {"skip"}
    assert all("target not TLS" in r["observed"] for r in results["scenarios"])


def test_suite_runs_unchanged_over_tls(tmp_path: Path) -> None:
    """Framing (B), cancels and SCU aborts by A-ABORT / RST / FIN (E), malformed PDUs and
    the state machine (H), release, abort and timers (I), over TLS: same verdicts as over
    TCP. (The whole suite takes about a minute over TLS; see README.)"""
    code, results = run(tmp_path, "--tls", "-k",
                        "group:B or group:E or group:H or group:I")
    groups = {r["group"] for r in results["scenarios"]}
    assert groups == {"B", "E", "H", "I"}, groups
    assert not problems(results)
    assert code == 0
    fin = [r for r in results["scenarios"] if r["id"].endswith(",fin]")]
    assert fin and all(r["outcome"] == "pass" for r in fin)
    assert all(any(e.get("type") == "FIN sent" for e in r["trace"]) for r in fin)
