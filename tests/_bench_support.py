"""Shared helpers of the bench tests: an SCP we can look into, a silent server, HTML checks."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from pydicom import dcmread


def stored_uids(folder: Path) -> list[str]:
    """SOP Instance UIDs of every file the reference SCP stored in ``folder``."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            out.append(str(dcmread(path, stop_before_pixels=True).SOPInstanceUID))
    return out


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never sends a byte; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def free_port() -> int:
    """A loopback port with nothing listening on it (closed right after being found)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExternalRefs(HTMLParser):
    """Collects everything that would make a page load something from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag in ("script", "link", "iframe", "img", "object", "embed"):
            self.refs.append(f"<{tag}>")
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.refs.append(f"{tag} {name}={value}")
            if name == "style" and value and "url(" in value:
                self.refs.append(f"{tag} style url()")


def external_refs(html: str) -> tuple[list[str], set[str]]:
    parser = ExternalRefs()
    parser.feed(html)
    refs = list(parser.refs)
    if "@import" in html or "url(" in html:
        refs.append("CSS url()/@import")
    return refs, parser.tags
