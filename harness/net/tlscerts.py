"""Test certificates made at run time with ``cryptography`` (never committed keys).

A :class:`CertSet` is a private CA with a server certificate (localhost, 127.0.0.1, ::1) and
a client certificate, plus the deliberately bad ones the TLS scenarios and tests need:
expired, wrong host, self-signed, and a client certificate from a CA nobody trusts.
Keys are RSA 2048 (what DCMTK's BCP 195 profiles and every OpenSSL accept).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(slots=True)
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dicom-harness test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_ca(cn: str = "dicom-harness test CA") -> Issued:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued | None, cn: str, hosts: tuple[str, ...] = LOCAL_NAMES, *,
          client: bool = False, expired: bool = False) -> Issued:
    """A leaf certificate signed by ``ca`` (self-signed when ``ca`` is None)."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=60), now - dt.timedelta(days=30)) if expired
                  else (now - dt.timedelta(days=1), now + dt.timedelta(days=30)))
    issuer = ca.cert.subject if ca is not None else _name(cn)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False)
    return Issued(builder.sign(ca.key if ca is not None else key, hashes.SHA256()), key)


def write_pair(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    """``stem.pem`` (certificate) and ``stem.key`` (unencrypted PKCS#8, mode 0600)."""
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(issued.key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return cert_path, key_path


@dataclass(slots=True)
class CertSet:
    """Paths of one generated set, all in ``directory``."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def bad(self, name: str) -> tuple[Path, Path]:
        """A deliberately bad certificate and its key, made on first use: ``expired``,
        ``wrong-host``, ``self-signed`` (server), ``client-untrusted``, ``client-expired``,
        ``client-self-signed``."""
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        if cert.exists():
            return cert, key
        ca = _load_ca(self)
        made = {
            "expired": lambda: issue(ca, "expired server", expired=True),
            "wrong-host": lambda: issue(ca, "elsewhere.invalid", ("elsewhere.invalid",)),
            "self-signed": lambda: issue(None, "self-signed server"),
            "client-untrusted": lambda: issue(make_ca("untrusted CA"), "untrusted client",
                                              (), client=True),
            "client-expired": lambda: issue(ca, "expired client", (), client=True,
                                            expired=True),
            "client-self-signed": lambda: issue(None, "self-signed client", (), client=True),
        }
        if name not in made:
            raise KeyError(f"no bad certificate named {name!r}; known: {', '.join(made)}")
        return write_pair(made[name](), self.directory, name)


def _load_ca(certs: CertSet) -> Issued:
    cert = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    key = serialization.load_pem_private_key((certs.directory / "ca.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return Issued(cert, key)


def make_cert_set(directory: str | Path | None = None) -> CertSet:
    """A CA, a server certificate for the loopback names and a client certificate."""
    d = Path(directory) if directory is not None else Path(
        tempfile.mkdtemp(prefix="dicom-harness-tls-"))
    d.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    ca_path, _ca_key = write_pair(ca, d, "ca")
    server_cert, server_key = write_pair(issue(ca, "localhost"), d, "server")
    client_cert, client_key = write_pair(issue(ca, "HARNESS", (), client=True), d, "client")
    return CertSet(d, ca_path, server_cert, server_key, client_cert, client_key)
