"""TLS for DICOM connections (PS3.15 Annex B secure transport, BCP 195): SSLContext building.

Everything cryptographic is Python's ``ssl`` module (OpenSSL); this module only turns the
command-line / profile options into contexts, turns OpenSSL's errors into one-line
messages (:class:`TLSConfigError`), and describes a finished handshake (version, cipher,
peer certificate subject) for traces and the observed conformance statement.
"""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PS3.15 B.10 / B.12, BCP 195 (RFC 8996): TLS 1.2 or later; older versions are not used.
VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
DEFAULT_MIN_VERSION = "1.2"
# TLS 1.2 suites of the reference SCP: forward secrecy and AEAD only, as RFC 9325 4.2
# recommends (TLS 1.3 suites are all AEAD already).
BCP195_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"


class TLSConfigError(ValueError):
    """A TLS option cannot be used (missing file, key not matching, bad version): one line."""


def tls_version(text: str | float) -> ssl.TLSVersion:
    key = str(text).strip().removeprefix("TLSv").removeprefix("tls")
    if key not in VERSIONS:
        raise TLSConfigError(f"TLS version {text!r}: use one of {', '.join(VERSIONS)}")
    return VERSIONS[key]


def _readable(option: str, path: str | Path | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise TLSConfigError(f"{option} {p}: no such file")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise TLSConfigError(f"{option} {p}: {exc.strerror}") from None
    return str(p)


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).replace("_", " ").lower()


@dataclass(slots=True)
class TLSOptions:
    """The TLS options of one endpoint (client or server), as given by the user.

    Client: ``ca`` verifies the SCP (system CAs when None), ``cert``/``key`` is our client
    certificate, ``verify=False`` skips verification. Server: ``cert``/``key`` is the SCP's
    certificate, ``ca`` verifies client certificates, ``require_client_cert`` makes them
    mandatory (mutual TLS).
    """

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    verify: bool = True
    min_version: str = DEFAULT_MIN_VERSION
    require_client_cert: bool = False
    server_hostname: str | None = None  # client: name checked against the certificate

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = tls_version(self.min_version)
        if self.verify:
            if not self._load_ca(ctx):
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self._load_chain(ctx)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        if self.cert is None or self.key is None:
            raise TLSConfigError("TLS on the SCP needs both --tls-cert and --tls-key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = tls_version(self.min_version)
        ctx.set_ciphers(BCP195_CIPHERS)
        self._load_chain(ctx)
        if self._load_ca(ctx):
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else \
                ssl.CERT_OPTIONAL
        elif self.require_client_cert:
            raise TLSConfigError("--tls-require-client-cert needs --tls-ca (the CA that "
                                 "signs client certificates)")
        return ctx

    def _load_ca(self, ctx: ssl.SSLContext) -> bool:
        """Trust ``ca`` in ``ctx``; False when none is given."""
        ca = _readable("--tls-ca", self.ca)
        if ca is None:
            return False
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"--tls-ca {ca}: not a PEM CA certificate "
                                 f"({_ssl_reason(exc)})") from None
        return True

    def _load_chain(self, ctx: ssl.SSLContext) -> None:
        if (self.cert is None) != (self.key is None):
            raise TLSConfigError("--tls-cert and --tls-key go together")
        cert = _readable("--tls-cert", self.cert)
        key = _readable("--tls-key", self.key)
        if cert is None or key is None:
            return
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            reason = _ssl_reason(exc)
            if "key values mismatch" in reason:
                raise TLSConfigError(f"--tls-key {key} does not match the certificate "
                                     f"{cert}") from None
            if "pem lib" in reason:
                reason = "not a PEM certificate and unencrypted PEM key"
            raise TLSConfigError(f"--tls-cert {cert} / --tls-key {key}: cannot load "
                                 f"({reason})") from None


def describe(ssl_object: Any) -> dict[str, Any]:
    """Version, cipher and peer certificate subject of a finished handshake."""
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    try:
        peer = ssl_object.getpeercert()
    except ValueError:  # the peer already ended the session (a TLS 1.3 alert after Finished)
        return {"version": ssl_object.version(), "cipher": cipher[0] if cipher else None}
    out: dict[str, Any] = {"version": ssl_object.version(),
                           "cipher": cipher[0] if cipher else None,
                           "cipher_bits": cipher[2] if cipher else None}
    if peer:
        out["peer_subject"] = subject_text(peer.get("subject", ()))
        out["peer_issuer"] = subject_text(peer.get("issuer", ()))
        out["peer_not_after"] = peer.get("notAfter")
    else:  # not verified: getpeercert() is empty, the DER form is still there
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            from cryptography import x509

            cert = x509.load_der_x509_certificate(der)
            out["peer_subject"] = cert.subject.rfc4514_string()
            out["peer_issuer"] = cert.issuer.rfc4514_string()
            out["peer_not_after"] = cert.not_valid_after_utc.isoformat()
    return out


def subject_text(name: Any) -> str:
    """``((('commonName', 'x'),), ...)`` from ``getpeercert()`` as ``CN=x, O=y``."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}
    parts = [f"{short.get(k, k)}={v}" for rdn in name for k, v in rdn]
    return ", ".join(parts)


def handshake_error_text(exc: BaseException) -> str:
    """A one-line reason for a failed handshake (certificate verify failures included)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {_ssl_reason(exc)}"
    return f"TLS handshake failed: {exc}"


@dataclass(slots=True)
class TLSClient:
    """What the engine needs to reach a TLS target: the context every association uses, the
    options it came from (probes build variants of it) and, for the embedded SCP, the
    generated certificate set (``harness.net.tlscerts.CertSet``, holds the CA key)."""

    options: TLSOptions
    context: ssl.SSLContext
    certs: Any = None
    foreign_certs: Any = None  # a CertSet from a CA the target cannot trust (made on use)

    def variant(self, *, min_version: str | None = None, max_version: str | None = None,
                ciphers: str | None = None, client_cert: tuple[str, str] | None = None,
                with_client_cert: bool = True, verify: bool = False) -> ssl.SSLContext:
        """A probe context: same CA, but the versions, ciphers and client certificate asked
        for; no verification unless ``verify`` (probes look at the SCP's choices)."""
        opts = self.options
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify and opts.verify:
            ctx.load_verify_locations(cafile=opts.ca) if opts.ca else ctx.load_default_certs()
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if min_version is not None or max_version is not None:
            # Old versions are only offered at security level 0 on OpenSSL 3.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # offering TLS 1.0/1.1 is the point of the probe
            warnings.simplefilter("ignore", DeprecationWarning)
            if min_version is not None:
                ctx.minimum_version = tls_version(min_version)
            if max_version is not None:
                ctx.maximum_version = tls_version(max_version)
        if ciphers is not None:
            ctx.set_ciphers(ciphers)  # ssl.SSLError when this OpenSSL has none of them
        if client_cert is not None:
            ctx.load_cert_chain(*client_cert)
        elif with_client_cert and opts.cert and opts.key:
            ctx.load_cert_chain(opts.cert, opts.key)
        return ctx


TLS_DECLARATION = {"mutual": bool, "min_version": str}


def check_declaration(value: Any) -> dict[str, Any]:
    """The target profile's ``tls:`` mapping, validated (one-line TLSConfigError)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TLSConfigError("target profile: tls must be a mapping like "
                             "{mutual: true, min_version: \"1.2\"}")
    unknown = set(value) - set(TLS_DECLARATION)
    if unknown:
        raise TLSConfigError(f"target profile: unknown tls key(s) {', '.join(sorted(unknown))}"
                             f"; known: {', '.join(TLS_DECLARATION)}")
    out = dict(value)
    if "mutual" in out and not isinstance(out["mutual"], bool):
        raise TLSConfigError("target profile: tls.mutual must be true or false")
    if "min_version" in out:
        out["min_version"] = str(out["min_version"])
        tls_version(out["min_version"])
    return out


def client_options(args: Any) -> TLSOptions | None:
    """TLSOptions from the parsed ``--tls*`` client flags (declared, for run, bench and the
    pytest plugin, in harness.engine.target_options); None without ``--tls``.
    Any other --tls-* flag without --tls is an error (it would silently do nothing)."""
    given = [flag for flag, value in (("--tls-ca", args.tls_ca), ("--tls-cert", args.tls_cert),
                                      ("--tls-key", args.tls_key),
                                      ("--tls-no-verify", args.tls_no_verify),
                                      ("--tls-server-name", args.tls_server_name))
             if value]
    if not args.tls:
        if given:
            raise TLSConfigError(f"{given[0]} needs --tls")
        return None
    return TLSOptions(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca,
                      verify=not args.tls_no_verify, min_version=args.tls_min_version,
                      server_hostname=args.tls_server_name)


def add_server_arguments(parser: Any) -> None:
    """``serve --tls-cert --tls-key [--tls-ca --tls-require-client-cert]``."""
    group = parser.add_argument_group("TLS (PS3.15 Annex B)")
    group.add_argument("--tls-cert", default=None, metavar="FILE",
                       help="serve TLS with this certificate (PEM; with --tls-key)")
    group.add_argument("--tls-key", default=None, metavar="FILE",
                       help="the private key of --tls-cert (PEM, unencrypted)")
    group.add_argument("--tls-ca", default=None, metavar="FILE",
                       help="CA certificate(s) that sign accepted client certificates")
    group.add_argument("--tls-require-client-cert", action="store_true",
                       help="mutual TLS: refuse clients without a certificate from --tls-ca")
    group.add_argument("--tls-min-version", default=DEFAULT_MIN_VERSION,
                       choices=("1.2", "1.3"), help="lowest TLS version accepted "
                                                    "(default 1.2)")


def server_options(args: Any) -> TLSOptions | None:
    if args.tls_cert is None and args.tls_key is None:
        for flag, value in (("--tls-ca", args.tls_ca),
                            ("--tls-require-client-cert", args.tls_require_client_cert)):
            if value:
                raise TLSConfigError(f"{flag} needs --tls-cert and --tls-key")
        return None
    return TLSOptions(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca,
                      require_client_cert=args.tls_require_client_cert,
                      min_version=args.tls_min_version)
