"""TLS for one ``run``: the client context, the embedded SCP's server context, declarations.

``run --tls`` with a ``--target`` uses the user's ``--tls-*`` files; with no target the
embedded reference SCP serves TLS with a certificate set made for the run (a private CA,
mutual TLS required), so the whole suite and the TLS group (L) run against it. The
target profile's ``tls: {mutual, min_version}`` becomes the flat declarations the TLS
scenarios test (``tls``, ``tls_mutual``, ``tls_min_version``).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from harness.net.tls import (
    DEFAULT_MIN_VERSION,
    TLSClient,
    TLSConfigError,
    TLSOptions,
    check_declaration,
    client_options,
    handshake_error_text,
)


class TLSSetupError(ValueError):
    """Bad TLS configuration or a failed first handshake: one line, exit 2."""


def client_for_run(args: Any, declared: dict[str, Any]) -> tuple[
        TLSClient | None, dict[str, Any]]:
    """(client, declarations) for ``run``'s arguments. Without a target the client holds the
    generated certificates (``client.certs``): :func:`embedded_server_context` gives the
    embedded SCP's context from them."""
    declared = dict(declared)
    try:
        policy = check_declaration(declared.pop("tls", None))
        options = client_options(args)
        if options is None:
            return None, declared
        certs = None
        if args.target is None:
            for flag in ("tls_ca", "tls_cert", "tls_key"):
                if getattr(args, flag):
                    raise TLSConfigError(f"--{flag.replace('_', '-')} is for a --target; "
                                         "the embedded SCP uses certificates made for the run")
            from harness.net.tlscerts import make_cert_set

            certs = make_cert_set()
            options = TLSOptions(cert=str(certs.client_cert), key=str(certs.client_key),
                                 ca=str(certs.ca), verify=True,
                                 min_version=options.min_version)
            policy = {"mutual": True, **policy}
        client = TLSClient(options, options.client_context(), certs)
    except TLSConfigError as exc:
        raise TLSSetupError(str(exc)) from None
    policy.setdefault("min_version", DEFAULT_MIN_VERSION)  # BCP 195's floor
    declared.update(tls=policy, tls_mutual=bool(policy.get("mutual")),
                    tls_min_version=policy["min_version"])
    return client, declared


def embedded_server_context(client: TLSClient | None, profile: Any) -> ssl.SSLContext | None:
    """The embedded SCP's server context (mutual TLS, the profile's TLS faults), or None."""
    if client is None or client.certs is None:
        return None
    from harness.scp.tls_faults import embedded_server_context as build

    return build(client.certs, profile)


def check_tls_handshake(host: str, port: int, tls: TLSClient, timeout: float) -> None:
    """One handshake before the run, so a wrong CA, host name or client certificate is one
    clear line (exit 2) instead of every scenario erroring."""
    name = tls.options.server_hostname or host
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                tls.context.wrap_socket(raw, server_hostname=name,
                                        suppress_ragged_eofs=False) as conn:
            conn.do_handshake()
            # TLS 1.3: an SCP refuses our client certificate only after our Finished; its
            # alert arrives within a round trip, while a content SCP waits for the
            # A-ASSOCIATE-RQ (so the short read times out, and that is the good case).
            conn.settimeout(min(timeout, 1.0))
            try:
                if conn.recv(1) == b"":
                    raise TLSSetupError(f"target {host}:{port}: the SCP closed the TLS "
                                        "connection right after the handshake (our client "
                                        "certificate refused or missing?)")
            except TimeoutError:
                pass
    except ssl.SSLEOFError:
        raise TLSSetupError(f"target {host}:{port}: the SCP closed the TLS connection during "
                            "or right after the handshake (our client certificate refused "
                            "or missing?)") from None
    except ssl.SSLError as exc:
        raise TLSSetupError(f"target {host}:{port}: {handshake_error_text(exc)}") from None
    except TimeoutError:
        raise TLSSetupError(f"target {host}:{port}: TLS handshake timed out after "
                            f"{timeout:g} s (is it a TLS port?)") from None
    except OSError as exc:
        raise TLSSetupError(f"target {host}:{port}: TLS handshake failed: "
                            f"{exc.strerror or exc} (is it a TLS port?)") from None
