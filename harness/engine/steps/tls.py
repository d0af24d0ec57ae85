"""TLS steps (group L): handshake probes against a DICOM TLS port.

PS3.15 Annex B (secure transport connection profiles: B.10 Non-Downgrading BCP 195, B.12) and
BCP 195 (RFC 8996, RFC 9325) set the rules. Each probe opens its own connection with a
context built for it (offered versions, cipher suites, client certificate) and reports an
:class:`Outcome`: ``close`` when the SCP refused (handshake alert or a close after it),
otherwise the A-ASSOCIATE answer on that connection. A probe this client cannot make (this
OpenSSL will not offer what it asks for) is ``skipped`` with the reason, never a FAIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Literal

from harness.engine.context import ScenarioRun
from harness.engine.steps.association import (
    TIMEOUT_SHOWN,
    RQParams,
    associate_on,
    build_rq,
    close_timeout,
)
from harness.engine.steps.common import tls_server_name
from harness.engine.steps.params import param
from harness.engine.steps.registry import NoParams, step
from harness.net.connection import ConnectionClosed, PeerTimeout
from harness.net.tls import TLSClient, describe
from harness.scu.client import SimulatedSCU
from harness.scu.outcome import Outcome

# Scenario ``requires`` entries of the TLS group -> why the scenario is skipped without them.
TLS_REQUIREMENTS = {
    "tls": "target not TLS: run with --tls (and --tls-ca / --tls-cert / --tls-key for a "
           "--target)",
    "tls_mutual": "the target profile does not declare mutual TLS (tls: {mutual: true})",
}
# OpenSSL reasons that mean *this client* could not offer what the probe asks for.
_CLIENT_SIDE = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH",
                "NO SHARED CIPHER", "UNSUPPORTED_PROTOCOL")
_BAD_CLIENT_CERTS = ("client-untrusted", "client-expired", "client-self-signed")

def _tls(run: ScenarioRun) -> TLSClient:
    tls = run.target.tls
    assert isinstance(tls, TLSClient), "TLS steps run only when the target speaks TLS"
    return tls


def _skip(run: ScenarioRun, reason: str) -> Outcome:
    run.skip_reason = reason
    return Outcome("skipped", reason)


def _client_cert(run: ScenarioRun, which: str) -> tuple[str, str] | Outcome | None:
    """``default`` (the configured one), ``none``, or one of the bad client certificates."""
    if which in ("default", "none"):
        return None
    if which not in _BAD_CLIENT_CERTS:
        return Outcome("error", f"client_cert {which!r}: use default, none or "
                                f"{', '.join(_BAD_CLIENT_CERTS)}")
    tls = _tls(run)
    certs = tls.certs
    if which == "client-expired" and certs is None:
        return _skip(run, "an expired client certificate from the target's trusted CA needs "
                          "that CA's key; the harness has it only for the embedded SCP")
    if certs is None:
        from harness.net.tlscerts import make_cert_set

        if tls.foreign_certs is None:
            tls.foreign_certs = make_cert_set()  # a CA the target cannot trust
        certs = tls.foreign_certs
    cert, key = certs.bad(which)
    return str(cert), str(key)


def _observe(run: ScenarioRun, info: dict[str, Any]) -> None:
    seen = run.observed.setdefault("tls", {})
    for key in ("version", "cipher", "peer_subject", "peer_issuer", "peer_not_after"):
        if info.get(key) is not None:
            seen.setdefault(key, info[key])


async def _handshake(run: ScenarioRun, ctx: ssl.SSLContext, name: str) -> SimulatedSCU | Outcome:
    target = run.target
    start = time.monotonic()
    try:
        scu = await SimulatedSCU.connect(target.host, target.port, timeout=run.timeout,
                                         trace=run.trace, assoc_id=run.next_assoc_id(), tls=ctx,
                                         server_hostname=tls_server_name(run))
    except PeerTimeout as exc:
        return Outcome("hang", str(exc), time.monotonic() - start)
    except ConnectionClosed as exc:
        cause = exc.__cause__
        text = str(getattr(cause, "reason", None) or cause or exc).upper()
        if any(mark in text for mark in _CLIENT_SIDE) and "ALERT" not in text:
            return _skip(run, f"this client could not offer it: {exc}")
        run.check("TLS handshake", "info", None, "recorded", f"refused: {exc}")
        return Outcome("close", f"TLS handshake refused: {exc}", time.monotonic() - start)
    run.associations[name] = scu
    return scu


@dataclass(frozen=True, kw_only=True)
class TLSAssociateParams(RQParams):
    min_version: str | None = param("lowest TLS version offered (1.0, 1.1, 1.2, 1.3)",
                                    shown="the client's")
    max_version: str | None = param("highest TLS version offered", shown="the client's")
    ciphers: str | None = param("OpenSSL cipher list offered (TLS 1.2 and below)",
                                shown="the client's")
    client_cert: Literal["default", "none", "client-untrusted", "client-expired",
                         "client-self-signed"] = param("client certificate to present",
                                                       "default")
    prefer_tls13: bool = param("when TLS 1.2 is chosen, check that the SCP really lacks "
                               "TLS 1.3 (SHOULD prefer it)", False)
    timeout: float | None = param("seconds to wait for the A-ASSOCIATE answer",
                                  shown=TIMEOUT_SHOWN)


@step("tls_associate", TLSAssociateParams)
async def op_tls_associate(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """TLS handshake offering only the given versions / cipher suites / client certificate
    (default, none, client-untrusted, client-expired, client-self-signed), then
    A-ASSOCIATE-RQ on that connection. close = the SCP refused."""
    tls = _tls(run)
    which = str(params.get("client_cert", "default"))
    cert = _client_cert(run, which)
    if isinstance(cert, Outcome):
        return cert
    try:
        ctx = tls.variant(min_version=params.get("min_version"),
                          max_version=params.get("max_version"),
                          ciphers=params.get("ciphers"), client_cert=cert,
                          with_client_cert=which == "default")
    except (ssl.SSLError, ValueError) as exc:
        return _skip(run, f"this client cannot offer {params}: {exc}")
    scu = await _handshake(run, ctx, name)
    if isinstance(scu, Outcome):
        return scu
    transport = scu.conn.transport
    info = describe(transport.get_extra_info("ssl_object")) if transport else {}
    if which == "default" and not any(params.get(k) for k in ("ciphers", "min_version",
                                                               "max_version")):
        _observe(run, info)  # the SCP's own choice, for the conformance statement
    run.check("TLS handshake", "info", None, "recorded",
              f"{info['version']} {info.get('cipher')}, SCP certificate "
              f"{info.get('peer_subject') or '(not read)'}" if info.get("version") else
              "finished on our side; the SCP had already ended the session")
    out = await associate_on(run, scu, params)
    if out.kind == "close":
        reason = scu.requestor.stream.close_error
        run.check("TLS connection", "info", None, "recorded",
                  f"the SCP closed it after the handshake, before answering the "
                  f"A-ASSOCIATE-RQ ({reason or 'no TLS alert'}); TLS 1.3 reports a refused "
                  "client certificate only then")
    if params.get("prefer_tls13") and info.get("version") == "TLSv1.2":
        await _check_tls13_preference(run, tls, name)
    out.extra["tls"] = info
    out.detail = (f"{info.get('version')} {info.get('cipher')}; {out.detail}").strip("; ")
    return out


async def _check_tls13_preference(run: ScenarioRun, tls: TLSClient, name: str) -> None:
    """TLS 1.2 was chosen although 1.3 was offered: does the SCP support 1.3 at all?"""
    probe = await _handshake(run, tls.variant(min_version="1.3"), f"{name}-tls13")
    supported = isinstance(probe, SimulatedSCU)
    if isinstance(probe, SimulatedSCU):
        probe.conn.reset()
    run.check("TLS 1.3 preferred when supported", "should", not supported,
              "TLS 1.3 chosen when offered (if supported)",
              "TLS 1.2 chosen, yet a TLS 1.3-only handshake succeeds" if supported else
              "TLS 1.2 chosen; TLS 1.3 not supported", "PS3.15 B.12")
    run.skip_reason = None  # a refused 1.3-only probe is an answer, not a skip


@step("tls_server_cert", NoParams)
async def op_tls_server_cert(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Inspect the SCP's certificate: not expired, not self-signed, names the target host,
    chains to --tls-ca (each a check)."""
    from cryptography import x509

    tls = _tls(run)
    scu = await _handshake(run, tls.variant(with_client_cert=True), name)
    if isinstance(scu, Outcome):
        return scu
    transport = scu.conn.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    scu.conn.reset()  # a probe: do not wait for the SCP's close_notify
    if not der:
        return Outcome("unexpected", "the SCP sent no certificate")
    info = describe(ssl_object)
    _observe(run, info)
    cert = x509.load_der_x509_certificate(der)
    now = dt.datetime.now(dt.UTC)
    refs = "PS3.15 B.12, RFC 9325 7"
    run.check("certificate validity period", "must",
              cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
              "now within notBefore..notAfter",
              f"{cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}",
              refs)
    self_signed = cert.issuer == cert.subject
    run.check("certificate issued by a CA", "should", not self_signed,
              "not self-signed", f"issuer {cert.issuer.rfc4514_string()}", refs)
    host = tls.options.server_hostname or run.target.host
    names = _cert_names(cert)
    run.check("certificate names the target", "should", _name_matches(host, names),
              f"{host} in subjectAltName", ", ".join(names) or "no subjectAltName", "RFC 6125")
    if tls.options.verify:
        verified = await _handshake(run, tls.context, f"{name}-verify")
        ok = not isinstance(verified, Outcome)
        if isinstance(verified, SimulatedSCU):
            verified.conn.reset()
        run.check("certificate chain verifies", "must", ok,
                  f"verifies against {tls.options.ca or 'the system CAs'}",
                  "verified" if ok else verified.detail if isinstance(verified, Outcome)
                  else "failed", refs)
    return Outcome("sent", f"certificate {cert.subject.rfc4514_string()}")


def _cert_names(cert: Any) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)]


def _name_matches(host: str, names: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in names:
        if ip is not None:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(name) == ip:
                    return True
            continue
        if name.lower() == host.lower() or (name.startswith("*.") and "." in host and
                                            host.split(".", 1)[1].lower() == name[2:].lower()):
            return True
    return False


@dataclass(frozen=True, kw_only=True)
class TimeoutParams:
    timeout: float | None = param("seconds to wait for the SCP's answer or close",
                                  shown=TIMEOUT_SHOWN)


@step("plaintext_associate", TimeoutParams)
async def op_plaintext_associate(run: ScenarioRun, params: dict[str, Any],
                                 name: str) -> Outcome:
    """Plain (non-TLS) A-ASSOCIATE-RQ on the TLS port: close = refused."""
    wait = float(params.get("timeout") or run.timeout)
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(run.target.host, run.target.port), wait)
    except (OSError, TimeoutError) as exc:
        return Outcome("error", f"cannot connect: {exc}")
    got = b""
    try:
        rq = build_rq(run, {}).encode()
        run.trace.record(0, "sent", "A-ASSOCIATE-RQ", len(rq) - 6, "in plain TCP")
        writer.write(rq)
        deadline = start + wait
        while len(got) < 1 << 16:
            chunk = await asyncio.wait_for(reader.read(4096), max(0.0, deadline - time.monotonic()))
            if not chunk:
                break
            got += chunk
            if got[:1] in (b"\x02", b"\x03", b"\x07") and len(got) >= 6 and \
                    len(got) >= 6 + int.from_bytes(got[2:6], "big"):
                break  # a whole DICOM PDU in the clear: the answer, no need to wait
    except TimeoutError:
        return Outcome("hang", f"connection still open after {wait:g} s; received "
                               f"{got[:8].hex() or 'nothing'}", time.monotonic() - start)
    except OSError as exc:  # after TimeoutError, which is an OSError too
        return Outcome("close", f"reset ({exc})", time.monotonic() - start)
    finally:
        writer.close()
    elapsed = time.monotonic() - start
    if got[:1] == b"\x02":
        return Outcome("accepted", "A-ASSOCIATE-AC in plain TCP on the TLS port", elapsed)
    if got[:1] in (b"\x03", b"\x07"):
        return Outcome("rejected" if got[:1] == b"\x03" else "abort",
                       f"a plain DICOM PDU ({got[:10].hex()}) on the TLS port", elapsed)
    what = "a TLS alert" if got[:1] == b"\x15" else (f"{len(got)} byte(s)" if got else "nothing")
    return Outcome("close", f"closed after sending {what}", elapsed)


@dataclass(frozen=True, kw_only=True)
class StallParams:
    send: Literal["nothing", "partial-hello"] = param("what to send before stalling",
                                                      "partial-hello")
    timeout: float | Literal["artim", "idle"] = param(
        "seconds to wait for the SCP to close; artim = the declared ARTIM + 5 s", "artim")


@step("tls_stall", StallParams)
async def op_tls_stall(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Open TCP and stall the TLS handshake (send: nothing | partial-hello); wait for the
    SCP to close (timeout: seconds or artim)."""
    wait = close_timeout(run, params.get("timeout", "artim"))
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(run.target.host, run.target.port), run.timeout)
    except (OSError, TimeoutError) as exc:
        return Outcome("error", f"cannot connect: {exc}")
    try:
        if params.get("send", "partial-hello") == "partial-hello":
            # A TLS record header announcing a 512-byte handshake record, then silence.
            writer.write(bytes.fromhex("1603010200") + b"\x01\x00\x01\xfc\x03\x03")
        try:
            while await asyncio.wait_for(reader.read(4096),
                                         max(0.0, start + wait - time.monotonic())):
                pass
        except TimeoutError:
            raise
        except OSError:  # reset: closed too (TimeoutError is an OSError, hence above)
            pass
    except TimeoutError:
        return Outcome("hang", f"still open after {wait:g} s", time.monotonic() - start)
    finally:
        writer.close()
    elapsed = time.monotonic() - start
    return Outcome("close", f"closed after {elapsed:.1f} s", elapsed)


@step("tls_close_notify", TimeoutParams)
async def op_tls_close_notify(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Associate, release, then see how the SCP ends the TLS connection: close_notify, or
    TCP FIN without it (recorded)."""
    tls = _tls(run)
    ctx = tls.variant(with_client_cert=True)
    rq = build_rq(run, {}).encode()
    wait = float(params.get("timeout") or run.timeout)
    how = await asyncio.to_thread(_close_probe, run.target.host, run.target.port, ctx, rq, wait)
    run.observed.setdefault("tls", {})["close_after_release"] = how
    return Outcome("sent", how)


def _close_probe(host: str, port: int, ctx: ssl.SSLContext, rq: bytes, wait: float) -> str:
    """Blocking: a plain ssl socket tells close_notify (recv gives b"") from a bare FIN
    (SSLEOFError), which asyncio's transport does not."""
    from harness.wire.pdu import ReleaseRQ

    with socket.create_connection((host, port), timeout=wait) as raw, \
            ctx.wrap_socket(raw, suppress_ragged_eofs=False) as tls_sock:
        tls_sock.sendall(rq)
        if _read_pdu(tls_sock)[:1] != b"\x02":
            return "association not accepted: no release to observe"
        tls_sock.sendall(ReleaseRQ().encode())
        if _read_pdu(tls_sock)[:1] != b"\x06":
            return "no A-RELEASE-RP"
        try:
            while tls_sock.recv(4096):
                pass
        except ssl.SSLEOFError:
            return "the SCP closed TCP without close_notify"
        except TimeoutError:
            pass  # PS3.8 7.2: closing is the requestor's job; answer: our close_notify
        except OSError as exc:
            return f"connection reset ({exc})"
        else:
            return "the SCP sent close_notify, then closed"
        try:
            tls_sock.unwrap()
        except ssl.SSLEOFError:
            return ("left open by the SCP after A-RELEASE-RP; our close_notify answered by a "
                    "TCP close without close_notify")
        except TimeoutError:
            return (f"left open by the SCP after A-RELEASE-RP; no answer to our close_notify "
                    f"within {wait:g} s")
        except OSError as exc:
            return f"left open by the SCP; our close_notify answered by a reset ({exc})"
        return "left open by the SCP after A-RELEASE-RP; our close_notify answered in kind"


def _read_pdu(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while len(data) < 6 or len(data) < 6 + int.from_bytes(data[2:6], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@step("tls_renegotiation", NoParams)
async def op_tls_renegotiation(run: ScenarioRun, params: dict[str, Any], name: str) -> Outcome:
    """Renegotiation cannot be started from Python's ssl: records why (skip)."""
    version = run.observed.get("tls", {}).get("version") or "unknown"
    return _skip(run, "Python's ssl module has no call that starts a TLS renegotiation, so "
                      "the harness cannot probe it; under TLS 1.3 (negotiated here: "
                      f"{version}) renegotiation does not exist (RFC 8446 4.1.2)")
