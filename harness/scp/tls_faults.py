"""TLS behaviour of the reference SCP: its server context, and the TLS faults of a profile.

The faults make the SCP deviate in the ways group L must catch (old versions, weak suites,
no client verification, a bad certificate, plain DICOM on the TLS port), so that each TLS
scenario is proven able to fail (tests/_fault_map.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from typing import Any

from harness.net.acceptor_server import AcceptorServer, readable
from harness.net.tls import TLSOptions
from harness.scp.profile import Profile

_TLS_RECORD_HANDSHAKE = 0x16  # first byte of a ClientHello record


def embedded_server_context(certs: Any, profile: Profile) -> ssl.SSLContext:
    """The embedded SCP's context from a generated ``CertSet``: mutual TLS, the profile's
    certificate faults applied (its context faults follow in :func:`apply_context_faults`)."""
    cert, key = certs.server_cert, certs.server_key
    if profile.has("tls_expired_cert"):
        cert, key = certs.bad("expired")
    elif profile.has("tls_self_signed_cert"):
        cert, key = certs.bad("self-signed")
    return TLSOptions(cert=str(cert), key=str(key), ca=str(certs.ca),
                      require_client_cert=True).server_context()


def apply_context_faults(ctx: ssl.SSLContext, profile: Profile) -> ssl.SSLContext:
    if profile.has("tls_old_versions") or profile.has("tls_weak_ciphers"):
        ctx.set_ciphers("ALL:eNULL:aNULL:@SECLEVEL=0" if profile.has("tls_weak_ciphers")
                        else "DEFAULT:@SECLEVEL=0")
    if profile.has("tls_old_versions"):
        with warnings.catch_warnings():  # offering TLS 1.0 is the fault
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    if profile.has("tls_no_tls13"):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if profile.has("tls_only_tls13"):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if profile.has("tls_no_client_verify") or profile.has("tls_weak_ciphers"):
        # An anonymous suite cannot carry a certificate request: accepting them means not
        # authenticating clients either.
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def start_sniffing(server: AcceptorServer, host: str) -> int:
    """``tls_plaintext_fallback``: listen for ``server`` (an AcceptorServer with ``tls``)
    and peek at each connection's first byte; a TLS handshake record gets TLS, anything
    else plain DICOM (a dual-mode port, the fault). ``server.close()`` ends it (it cancels
    the accepting task, which closes the socket)."""
    sock = socket.create_server((host, server.port), backlog=128)
    return server.accept_with(lambda listening: _accept_sniffing(server, listening), sock)


async def _accept_sniffing(server: AcceptorServer, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            conn, _addr = await loop.sock_accept(sock)
            task = loop.create_task(_serve_one(loop, server, conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        sock.close()


async def _serve_one(loop: asyncio.AbstractEventLoop, server: AcceptorServer,
                     conn: socket.socket) -> None:
    try:
        await asyncio.wait_for(readable(loop, conn), server.config.artim_timeout)
        first = conn.recv(1, socket.MSG_PEEK)
    except (TimeoutError, OSError):
        conn.close()
        return
    await server.adopt(conn, tls=first[:1] == bytes([_TLS_RECORD_HANDSHAKE]))
