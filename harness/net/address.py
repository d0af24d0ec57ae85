"""Target addresses: ``HOST:PORT`` parsing and a reachability probe, for every front end
(the command line, the bench, the pytest plugin)."""

from __future__ import annotations

import socket


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:104`` for IPv6) -> (host, port); ValueError with the reason."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:11112), got {text!r}")
    return host.strip("[]"), int(port)


def unreachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Why nothing answers a TCP connect at ``host:port`` within ``timeout``, or None."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            return None
    except OSError as exc:
        return f"{host}:{port} unreachable: {exc.strerror or exc}"
