"""TLS options (harness/net/tls.py, engine/tls_setup.py, cli.py): contexts from real
certificates made at test time, and every bad configuration is one line on stderr, exit 2."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.embedded import EmbeddedSCP, embedded_profile
from harness.net.connection import ConnectionClosed
from harness.net.requestor import Requestor
from harness.net.tls import TLSConfigError, TLSOptions, check_declaration, describe
from harness.net.tlscerts import CertSet, make_cert_set
from harness.scu.client import SimulatedSCU


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # reports/ never lands in the repository


@pytest.fixture
def tls_scp(certs: CertSet) -> Iterator[EmbeddedSCP]:
    """The reference SCP serving mutual TLS with the generated server certificate."""
    server = TLSOptions(cert=str(certs.server_cert), key=str(certs.server_key),
                        ca=str(certs.ca), require_client_cert=True).server_context()
    with EmbeddedSCP(embedded_profile(), tls=server) as scp:
        yield scp


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def client(certs: CertSet, **kw: object) -> TLSOptions:
    options = TLSOptions(cert=str(certs.client_cert), key=str(certs.client_key),
                         ca=str(certs.ca))
    for key, value in kw.items():
        setattr(options, key, value)
    return options


def test_mutual_tls_association_and_session_description(certs: CertSet,
                                                         tls_scp: EmbeddedSCP) -> None:
    async def go() -> dict[str, object]:
        scu = await SimulatedSCU.connect("127.0.0.1", tls_scp.port, timeout=5,
                                         tls=client(certs).client_context())
        try:
            info = describe(scu.conn.transport.get_extra_info("ssl_object"))
            out = await scu.associate(scu.build_rq("ANY-SCP"))
            assert out.kind == "accepted", out.describe()
            assert (await scu.release()).kind == "release"
            return info
        finally:
            scu.close()

    info = asyncio.run(go())
    assert info["version"] in ("TLSv1.2", "TLSv1.3")
    assert info["cipher"]
    assert "CN=localhost" in str(info["peer_subject"])


def test_server_hostname_is_the_name_checked(certs: CertSet) -> None:
    """--tls-server-name: the certificate is checked for that name, not the address."""
    cert, key = certs.bad("wrong-host")  # made for elsewhere.invalid only
    server = TLSOptions(cert=str(cert), key=str(key), ca=str(certs.ca)).server_context()

    async def go(port: int, name: str | None) -> str:
        try:
            scu = await SimulatedSCU.connect("127.0.0.1", port, timeout=5, server_hostname=name,
                                             tls=client(certs).client_context())
        except ConnectionClosed as exc:
            return str(exc)
        scu.close()
        return "connected"

    with EmbeddedSCP(embedded_profile(), tls=server) as scp:
        assert asyncio.run(go(scp.port, "elsewhere.invalid")) == "connected"
        assert "certificate verify failed" in asyncio.run(go(scp.port, None))


def test_run_checks_every_association_against_tls_server_name(certs: CertSet) -> None:
    """`run --tls-server-name`: not only the pre-run handshake check but every scenario's
    associations check the certificate for that name (a certificate made for another name
    than the address, as behind a load balancer)."""
    cert, key = certs.bad("wrong-host")  # made for elsewhere.invalid only
    server = TLSOptions(cert=str(cert), key=str(key), ca=str(certs.ca)).server_context()
    with EmbeddedSCP(embedded_profile(), tls=server) as scp:
        code = main(["run", "--tls", "--target", f"127.0.0.1:{scp.port}", "--tls-ca",
                     str(certs.ca), "--tls-cert", str(certs.client_cert), "--tls-key",
                     str(certs.client_key), "--tls-server-name", "elsewhere.invalid",
                     "-k", "assoc.baseline", "-q", "--json", "out.json"])
    results = json.loads(Path("out.json").read_text())
    [baseline] = [r for r in results["scenarios"] if r["id"] == "assoc.baseline"]
    assert baseline["outcome"] == "pass", baseline["observed"]
    assert code == 0


def test_client_without_certificate_is_refused_by_mutual_scp(certs: CertSet,
                                                            tls_scp: EmbeddedSCP) -> None:
    async def go() -> str:
        ctx = client(certs, cert=None, key=None).client_context()
        try:
            scu = await SimulatedSCU.connect("127.0.0.1", tls_scp.port, timeout=5, tls=ctx)
        except Exception as exc:  # TLS 1.2: refused in the handshake
            return f"handshake: {exc}"
        try:  # TLS 1.3: the alert comes after our Finished
            return (await scu.associate(scu.build_rq("ANY-SCP"))).kind
        finally:
            scu.close()

    result = asyncio.run(go())
    assert result == "close" or result.startswith("handshake"), result


def test_half_close_under_tls_sends_fin_and_keeps_reading(certs: CertSet,
                                                          tls_scp: EmbeddedSCP) -> None:
    """asyncio's TLS transport has no write_eof: the FIN goes out on the raw socket, and the
    SCP (a DICOM peer that gets FIN is done, PS3.8 Evt17) closes."""
    async def go() -> bool:
        req = await Requestor.connect("127.0.0.1", tls_scp.port, timeout=5,
                                      tls=client(certs).client_context())
        assert not req.conn.transport.can_write_eof()
        req.conn.half_close()
        return await req.conn.wait_closed(5.0)

    assert asyncio.run(go())


def test_declaration_is_validated() -> None:
    assert check_declaration({"mutual": True, "min_version": 1.3}) == {
        "mutual": True, "min_version": "1.3"}
    for bad in ("yes", {"mutal": True}, {"mutual": "yes"}, {"min_version": "0.9"}):
        with pytest.raises(TLSConfigError):
            check_declaration(bad)


def test_old_versions_can_be_offered_by_the_probe_context(certs: CertSet) -> None:
    """The TLS 1.0/1.1 scenarios rely on this OpenSSL still offering them at SECLEVEL 0."""
    from harness.net.tls import TLSClient

    tls = TLSClient(client(certs), client(certs).client_context())
    ctx = tls.variant(min_version="1.0", max_version="1.0")
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1


# --- bad configuration: one line, exit 2 -----------------------------------------------------


def test_missing_ca_file(capsys: pytest.CaptureFixture[str], tls_scp: EmbeddedSCP) -> None:
    code = main(["run", "--tls", "--target", f"127.0.0.1:{tls_scp.port}", "--tls-ca",
                 "/no/such/ca.pem", "-q"])
    assert code == 2
    assert "--tls-ca /no/such/ca.pem: no such file" in one_error_line(capsys.readouterr().err)


def test_key_not_matching_certificate(certs: CertSet, capsys: pytest.CaptureFixture[str],
                                      tls_scp: EmbeddedSCP) -> None:
    code = main(["run", "--tls", "--target", f"127.0.0.1:{tls_scp.port}", "--tls-ca",
                 str(certs.ca), "--tls-cert", str(certs.client_cert), "--tls-key",
                 str(certs.server_key), "-q"])
    assert code == 2
    assert "does not match" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("case", ["untrusted-ca", "wrong-host", "no-client-cert"])
def test_handshake_failure(case: str, certs: CertSet, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str], tls_scp: EmbeddedSCP) -> None:
    args = ["run", "--tls", "--target", f"127.0.0.1:{tls_scp.port}", "-q", "--timeout", "5"]
    if case == "untrusted-ca":
        args += ["--tls-ca", str(make_cert_set(tmp_path / "other").ca)]
    elif case == "wrong-host":
        args += ["--tls-ca", str(certs.ca), "--tls-server-name", "elsewhere.invalid",
                 "--tls-cert", str(certs.client_cert), "--tls-key", str(certs.client_key)]
    else:
        args += ["--tls-ca", str(certs.ca)]
    code = main(args)
    line = one_error_line(capsys.readouterr().err)
    assert code == 2, line
    assert line.startswith("dicom-harness run: target 127.0.0.1:")
    expected = {"untrusted-ca": "certificate verify failed",
                "wrong-host": "Hostname mismatch", "no-client-cert": "client certificate"}[case]
    assert expected in line


def test_plain_port_is_a_handshake_failure(capsys: pytest.CaptureFixture[str],
                                           certs: CertSet) -> None:
    with EmbeddedSCP(embedded_profile()) as plain:
        code = main(["run", "--tls", "--target", f"127.0.0.1:{plain.port}", "--tls-ca",
                     str(certs.ca), "-q", "--timeout", "5"])
    assert code == 2
    assert "TLS handshake" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("args,expected", [
    (["run", "--tls-ca", "x.pem"], "--tls-ca needs --tls"),
    (["run", "--tls", "--tls-cert", "x.pem"], "is for a --target"),
    (["serve", "--tls-cert", "x.pem"], "needs both --tls-cert and --tls-key"),
    (["serve", "--tls-ca", "x.pem"], "--tls-ca needs --tls-cert and --tls-key"),
    (["serve", "--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"], "no such file"),
])
def test_usage_errors(args: list[str], expected: str,
                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert expected in one_error_line(capsys.readouterr().err)


def test_serve_wrong_key_and_mutual_without_ca(certs: CertSet,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--tls-cert", str(certs.server_cert), "--tls-key",
                 str(certs.client_key)]) == 2
    assert "does not match" in one_error_line(capsys.readouterr().err)
    assert main(["serve", "--tls-cert", str(certs.server_cert), "--tls-key",
                 str(certs.server_key), "--tls-require-client-cert"]) == 2
    assert "needs --tls-ca" in one_error_line(capsys.readouterr().err)
    junk = Path("junk.pem")
    junk.write_text("not a certificate\n")
    assert main(["serve", "--tls-cert", str(junk), "--tls-key", str(certs.server_key)]) == 2
    assert "not a PEM certificate" in one_error_line(capsys.readouterr().err)


def test_target_profile_tls_declaration_errors(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "target.yaml"
    profile.write_text("tls: {mutual: maybe}\n")
    assert main(["run", "--tls", "--target-profile", str(profile), "-q"]) == 2
    assert "tls.mutual" in one_error_line(capsys.readouterr().err)
