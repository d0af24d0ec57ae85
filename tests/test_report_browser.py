"""The HTML report in a real browser (Debian's chromium, headless).

Command-line runs (--dump-dom, --screenshot) check rendering and the location-hash hooks;
a DevTools-protocol session clicks and types for real and watches every network request,
console message and exception of the page. The CDP client below talks over
``--remote-debugging-pipe`` (NUL-separated JSON on fds 3 and 4): no port is opened and no
extra package (playwright, websockets) is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import write_html

# -------------------- chromium helpers --------------------
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Flags that keep a headless run hermetic: no sandbox (root in CI), no GPU, no background
# traffic of the browser itself (so any network request seen comes from the page).
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium_binary() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def run_chromium(
    binary: str, args: list[str], profile: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """One command-line run (--dump-dom, --screenshot) with console messages on stderr."""
    return subprocess.run(
        [binary, *BASE_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class CDPError(RuntimeError):
    pass


class Browser:
    """A headless chromium driven over the DevTools protocol pipe."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="report-browser-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: chromium reads fd 3 and writes fd 4
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._proc = subprocess.Popen(
            [binary, *BASE_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from chromium")
        ready, _, _ = select.select([self._from_browser], [], [], remaining)
        if not ready:
            raise TimeoutError("no answer from chromium")
        chunk = os.read(self._from_browser, 1 << 16)
        if not chunk:
            raise CDPError("chromium closed the pipe")
        self._buffer += chunk

    def _messages(self) -> list[dict[str, Any]]:
        out = []
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            out.append(json.loads(raw))
        return out

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            for message in self._messages():
                if message.get("id") == wanted:
                    if "error" in message:
                        raise CDPError(f"{method}: {message['error']}")
                    result: dict[str, Any] = message.get("result", {})
                    return result
                self.events.append(message)
            self._pump(deadline)

    def wait_event(self, method: str, session: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.events.extend(self._messages())
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            self._pump(deadline)

    def new_page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        return Page(self, session)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=5)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab: navigation, evaluation, real mouse and keyboard input, and what it logged."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def events(self, method: str) -> list[dict[str, Any]]:
        self.browser.events.extend(self.browser._messages())
        return [e for e in self.browser.events
                if e.get("method") == method and e.get("sessionId") == self.session]

    def navigate(self, url: str) -> None:
        # Drop a stale load event so the wait below is for this navigation.
        for event in self.events("Page.loadEventFired"):
            self.browser.events.remove(event)
        self.call("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (after scrolling it into view)."""
        box = self.evaluate(
            "(() => { const el = document.querySelector(" + json.dumps(selector) + ");"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {
                "type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1,
            })

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", {"text": text})

    def press(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {
                "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code,
            })

    def wait_for(self, expression: str, timeout: float = 5.0) -> Any:
        """Poll ``expression`` until it is truthy (debounced input settles, etc.)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)


# -------------------- tests --------------------

BINARY = chromium_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")

SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "sample-results.json").read_text(encoding="utf-8")
)
IDS = [s["id"] for s in SAMPLE["scenarios"]]
BY_ID = {s["id"]: s for s in SAMPLE["scenarios"]}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_html(SAMPLE, tmp_path_factory.mktemp("report") / "report.html")


class Scenarios(HTMLParser):
    """From dumped DOM: every scenario <details> with its hidden/open state, and <body> attrs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.details_open: list[bool] = []
        self.body: dict[str, str | None] = {}
        self._current: str | None = None
        self._in_sid = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        if tag == "details":
            self.details_open.append("open" in a)
        if tag == "details" and "scenario" in classes:
            self._current = a["id"]
            self.rows[a["id"] or ""] = {"hidden": "hidden" in a, "open": "open" in a,
                                        "outcome": a.get("data-outcome")}
        if tag == "code" and "sid" in classes:
            self._in_sid = True

    def handle_data(self, data: str) -> None:
        if self._in_sid and self._current:
            self.rows[self._current]["sid"] = data
            self._in_sid = False

    def visible(self) -> set[str]:
        return {r["sid"] for r in self.rows.values() if not r["hidden"]}


def dump(report: Path, tmp_path: Path, fragment: str = "") -> tuple[Scenarios, str]:
    result = run_chromium(BINARY or "", ["--dump-dom", report.as_uri() + fragment],
                          tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Uncaught" not in result.stderr, result.stderr
    assert "Refused to" not in result.stderr, result.stderr  # a CSP violation
    return Scenarios(result.stdout), result.stdout


def test_dump_dom_renders_every_scenario(report: Path, tmp_path: Path) -> None:
    dom, html = dump(report, tmp_path)
    assert dom.body.get("data-js") == "ready"  # the script ran to its end
    assert sorted(r["sid"] for r in dom.rows.values()) == sorted(IDS)
    assert dom.visible() == set(IDS)
    assert re.search(r'<output id="f-count"[^>]*>25 scenarios</output>', html)


def test_dump_dom_filter_and_unfold_from_hash(report: Path, tmp_path: Path) -> None:
    dom, html = dump(report, tmp_path, "#outcome=fail&open=all")
    failing = {sid for sid, s in BY_ID.items() if s["outcome"] == "fail"}
    assert dom.visible() == failing
    assert "Showing 4 of 25 scenarios" in html
    # groups without a visible scenario are hidden too
    assert re.search(r'<section class="group" id="g-5" data-group="E" hidden', html)
    # every <details> is unfolded, the traces included
    assert all(dom.details_open) and len(dom.details_open) > len(IDS)


def test_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    result = run_chromium(BINARY or "", [f"--screenshot={shot}", "--window-size=1280,2000",
                                         report.as_uri()], tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a blank page compresses to a few KB


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    instance = Browser(BINARY or "")
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture()
def page(browser: Browser, report: Path) -> Page:
    tab = browser.new_page()
    # Any alert() reaching the page would be recorded here.
    tab.call("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"
    })
    tab.navigate(report.as_uri())
    return tab


VISIBLE = ("Array.from(document.querySelectorAll('details.scenario:not([hidden]) code.sid'))"
           ".map(e => e.textContent)")


def visible(page: Page) -> set[str]:
    return set(page.evaluate(VISIBLE))


def test_clicks_and_typing_filter_the_list(page: Page) -> None:
    assert visible(page) == set(IDS)
    # untick "Pass" and "Info": their rows disappear
    page.click("label.chip.o-pass input")
    page.click("label.chip.o-info input")
    expected = {sid for sid, s in BY_ID.items() if s["outcome"] not in ("pass", "info")}
    assert visible(page) == expected
    assert page.evaluate("location.hash") == "#outcome=fail%2Cerror%2Cwarn%2Cskip"
    # choose a severity with the keyboard-free select API, as a user's change would
    page.evaluate("(() => { const s = document.getElementById('f-severity'); s.value = 'must';"
                  " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    assert visible(page) == {sid for sid in expected if BY_ID[sid]["severity"] == "must"}
    # reset, then type in the search box (real key events, debounced)
    page.click("#f-reset")
    assert page.wait_for(f"({VISIBLE}).length === {len(IDS)}")
    page.click("#f-q")
    page.type_text("duplicate")
    assert page.wait_for(f"({VISIBLE}).length === 2")
    assert visible(page) == {"store.duplicate.same-message-id", "store.duplicate.sop-instance"}
    assert page.evaluate("document.getElementById('f-count').textContent") == (
        "Showing 2 of 25 scenarios")
    # search matches observed text as well, several words must all match
    page.evaluate("document.getElementById('f-q').value = ''")
    page.type_text("0117H path")
    assert page.wait_for(f"({VISIBLE}).length === 1")
    assert visible(page) == {"security.path-uid"}


def test_summary_card_filters_and_slash_focuses_search(page: Page) -> None:
    page.click("a.card.o-warn")
    warned = {sid for sid, s in BY_ID.items() if s["outcome"] == "warn"}
    assert visible(page) == warned
    assert page.evaluate("location.hash") == "#outcome=warn"
    page.click("footer")  # move focus away from any control
    page.press("/", "Slash", 191)
    assert page.evaluate("document.activeElement.id") == "f-q"


def test_hash_navigation_and_folding(page: Page, report: Path) -> None:
    # changing the hash of the open page (a bookmark, the back button) re-applies filters
    page.evaluate("location.hash = 'outcome=error'")
    errored = {sid for sid, s in BY_ID.items() if s["outcome"] == "error"}
    assert page.wait_for(f"({VISIBLE}).length === {len(errored)}")
    assert visible(page) == errored
    page.evaluate("location.hash = 'group=J&severity=should&q=ae%20title'")
    assert page.wait_for(f"({VISIBLE}).length === 1")
    assert visible(page) == {"security.ae-title-syntax.control-char"}
    assert page.evaluate("document.getElementById('f-severity').value") == "should"
    # a link to a scenario hidden by the filter shows it
    page.evaluate("location.hash = 's-rsp.fields'")
    assert page.wait_for("!document.getElementById('s-rsp.fields').hidden")
    assert page.evaluate("document.getElementById('s-rsp.fields').open") is True
    # a pass row is folded; clicking its summary unfolds it
    page.navigate(report.as_uri())
    sel = '[id="s-assoc.baseline"]'
    assert page.evaluate(f"document.querySelector('{sel}').open") is False
    page.click(f"{sel} > summary")
    assert page.evaluate(f"document.querySelector('{sel}').open") is True
    assert page.evaluate(f"document.querySelector('{sel} details.trace').open") is False
    page.click("#f-expand")
    assert page.evaluate(
        "Array.from(document.querySelectorAll('#scenarios details')).every(d => d.open)")
    page.click("#f-collapse")
    assert page.evaluate("Array.from(document.querySelectorAll('details')).some(d => d.open)") \
        is False


def test_print_expands_everything_and_hides_filters(page: Page) -> None:
    page.call("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert page.evaluate("getComputedStyle(document.getElementById('filters')).display") \
            == "none"
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        assert page.evaluate("Array.from(document.querySelectorAll('details')).every(d => d.open)")
        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
        assert page.evaluate(
            "document.querySelector('details.scenario.o-pass').open") is False
    finally:
        page.call("Emulation.setEmulatedMedia", {"media": ""})


def test_page_is_quiet_and_offline(page: Page, report: Path) -> None:
    # exercise the page a little, then look at everything it did
    page.click("label.chip.o-fail input")
    page.click("#f-expand")
    urls = [e["params"]["request"]["url"] for e in page.events("Network.requestWillBeSent")]
    assert urls and set(urls) == {report.as_uri()}
    assert page.events("Runtime.exceptionThrown") == []
    errors = [e["params"] for e in page.events("Runtime.consoleAPICalled")
              if e["params"]["type"] in ("error", "warning", "assert")]
    assert errors == []
    logged = [e["params"]["entry"] for e in page.events("Log.entryAdded")
              if e["params"]["entry"]["level"] in ("error", "warning")]
    assert logged == []  # CSP violations and failed loads would be reported here
    assert page.evaluate("window.__alerts") == []
    aet = page.evaluate(
        "Array.from(document.querySelectorAll('.meta dd'))"
        ".map(d => d.textContent).find(t => t.includes('alert'))")
    assert aet == "<script>alert(1)</script>"
