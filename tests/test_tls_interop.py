"""DICOM over TLS with a real peer: DCMTK's storescp / storescu (+tls, OpenSSL) on 127.0.0.1.

Both ways, mutual TLS included: our SCU (the TLS group and stores) against ``storescp +tls
-rc``, and ``storescu +tls`` against ``dicom-harness serve --tls-* --tls-require-client-cert``.
Certificates are made at test time (harness.net.tlscerts).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _peers import free_port, stop_group, wait_listening

from harness.cli import main
from harness.net.tlscerts import CertSet, make_cert_set

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(not Path("/usr/bin/storescp").exists(),
                                 reason="DCMTK is not installed (apt-get install dcmtk)")]
sys.path.insert(0, str(Path(__file__).parent))
ARTIM = 3




@contextlib.contextmanager
def _process(cmd: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "TCP_NODELAY": "1"})
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def storescp(certs: CertSet, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """DCMTK storescp over TLS requiring a client certificate from our CA (mutual TLS)."""
    store = tmp_path / "received"
    store.mkdir()
    port = free_port()
    cmd = ["/usr/bin/storescp", "--fork", "+tls", str(certs.server_key), str(certs.server_cert),
           "+cf", str(certs.ca), "-rc", "-ta", str(ARTIM), "-od", str(store), "+xa", str(port)]
    with _process(cmd, port):
        yield port, store


def _client_args(certs: CertSet) -> list[str]:
    return ["--tls", "--tls-ca", str(certs.ca), "--tls-cert", str(certs.client_cert),
            "--tls-key", str(certs.client_key)]


def _run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "results.json"
    code = main(["run", "-q", "--no-html", "--report-dir", str(tmp_path / "r"), "--json",
                 str(out), *args])
    return code, json.loads(out.read_text())


def test_tls_group_against_dcmtk_storescp(certs: CertSet, storescp: tuple[int, Path],
                                          tmp_path: Path) -> None:
    port, _store = storescp
    profile = tmp_path / "target.yaml"
    profile.write_text(f'tls: {{mutual: true, min_version: "1.2"}}\nartim_timeout: {ARTIM}\n')
    code, results = _run(tmp_path, "--target", f"127.0.0.1:{port}", "--timeout", "5",
                         "--target-profile", str(profile), "-k", "group:L", *_client_args(certs))
    outcomes = {r["id"]: r for r in results["scenarios"]}
    errors = {i: r["observed"] for i, r in outcomes.items() if r["outcome"] == "error"}
    assert not errors
    failures = {i: r["observed"] for i, r in outcomes.items() if r["outcome"] == "fail"}
    assert not failures
    assert code == 0
    for sid in ("tls.version.1-2-accepted", "tls.version.old-refused[1.0]",
                "tls.cipher.weak-refused[null-encryption]", "tls.client-cert.missing-refused",
                "tls.client-cert.bad-refused[client-untrusted]", "tls.plaintext-refused"):
        assert outcomes[sid]["outcome"] == "pass", (sid, outcomes[sid]["observed"])
    # Known DCMTK finding: a stalled handshake is not closed within ARTIM (-ta).
    assert outcomes["tls.handshake-stall"]["outcome"] in ("pass", "warn")
    # An expired certificate from the target's own CA needs that CA's key: skipped.
    assert outcomes["tls.client-cert.bad-refused[client-expired]"]["outcome"] == "skip"
    assert "CN=localhost" in results["conformance"]["tls"]["peer_subject"]


def test_our_stores_reach_dcmtk_over_mutual_tls(certs: CertSet, storescp: tuple[int, Path],
                                                tmp_path: Path) -> None:
    port, store = storescp
    code, results = _run(tmp_path, "--target", f"127.0.0.1:{port}", "--timeout", "5",
                         "--storage-dir", str(store), "-k", "store.transfer-syntax",
                         *_client_args(certs))
    assert code == 0, [(r["id"], r["observed"]) for r in results["scenarios"]]
    passed = [r for r in results["scenarios"] if r["outcome"] == "pass"]
    assert passed
    assert any(store.rglob("*"))


def test_aborts_and_timers_over_tls_against_dcmtk(certs: CertSet, storescp: tuple[int, Path],
                                                  tmp_path: Path) -> None:
    """SCU-side aborts by A-ABORT / RST / FIN at every point of a store (E) and release and
    timers (I) over TLS against storescp: no harness error, and DCMTK's known TCP findings
    (README) found over TLS too."""
    port, store = storescp
    profile = tmp_path / "target.yaml"
    profile.write_text(f"tls: {{mutual: true}}\nartim_timeout: {ARTIM}\n")
    _code, results = _run(tmp_path, "--target", f"127.0.0.1:{port}", "--timeout", "3",
                          "--target-profile", str(profile), "--storage-dir", str(store),
                          "-k", "group:E or group:I", *_client_args(certs))
    outcomes = {r["id"]: r for r in results["scenarios"]}
    assert {r["group"] for r in outcomes.values()} == {"E", "I"}
    errors = {i: r["observed"][:200] for i, r in outcomes.items() if r["outcome"] == "error"}
    assert not errors
    assert outcomes["release.normal"]["outcome"] == "fail"  # as over TCP
    assert outcomes["timeout.artim-no-request"]["outcome"] == "pass"
    fin = [r for i, r in outcomes.items() if i.endswith(",fin]")]
    assert fin and all(r["outcome"] in ("pass", "warn") for r in fin)


def test_our_scu_without_client_certificate_is_one_line(certs: CertSet,
                                                        storescp: tuple[int, Path],
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    port, _store = storescp
    code = main(["run", "-q", "--no-html", "--target", f"127.0.0.1:{port}", "--tls",
                 "--tls-ca", str(certs.ca)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"dicom-harness run: target 127.0.0.1:{port}:")


# --- DCMTK storescu against our SCP ------------------------------------------------------------


@pytest.fixture
def our_tls_scp(certs: CertSet, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    store = tmp_path / "ours"
    port = free_port()
    cmd = [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "-q",
           "--storage-dir", str(store), "--tls-cert", str(certs.server_cert), "--tls-key",
           str(certs.server_key), "--tls-ca", str(certs.ca), "--tls-require-client-cert"]
    with _process(cmd, port):
        yield port, store


def _source(tmp_path: Path, uid: str) -> Path:
    from _scp_support import make_ct, write_part10

    from harness.wire.constants import EXPLICIT_VR_LE

    return Path(write_part10(make_ct(uid), tmp_path / f"{uid}.dcm", EXPLICIT_VR_LE))


def _storescu(port: int, *tls: str, source: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/usr/bin/storescu", *tls, "-aec", "ANY-SCP", "127.0.0.1",
                           str(port), str(source)], capture_output=True, timeout=60)


def test_dcmtk_storescu_stores_over_mutual_tls(certs: CertSet, our_tls_scp: tuple[int, Path],
                                               tmp_path: Path) -> None:
    port, store = our_tls_scp
    uid = "1.2.826.0.1.3680043.2.1143.15.1"
    done = _storescu(port, "+tls", str(certs.client_key), str(certs.client_cert), "+cf",
                     str(certs.ca), source=_source(tmp_path, uid))
    assert done.returncode == 0, done.stderr.decode()
    assert [p.name for p in store.rglob("*.dcm")] == [f"{uid}.dcm"]


@pytest.mark.parametrize("case", ["no-certificate", "untrusted-ca"])
def test_dcmtk_storescu_refused_without_a_trusted_client_certificate(
        case: str, certs: CertSet, our_tls_scp: tuple[int, Path], tmp_path: Path) -> None:
    port, store = our_tls_scp
    source = _source(tmp_path, "1.2.826.0.1.3680043.2.1143.15.2")
    if case == "no-certificate":
        tls = ["+tla", "+cf", str(certs.ca)]
    else:
        other = make_cert_set(tmp_path / "other")
        tls = ["+tls", str(other.client_key), str(other.client_cert), "+cf", str(certs.ca)]
    done = _storescu(port, *tls, source=source)
    assert done.returncode != 0
    assert not list(store.rglob("*.dcm"))
