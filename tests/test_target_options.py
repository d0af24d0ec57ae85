"""The target options are the same in the three front ends (run, bench, the pytest plugin):
same flags, same defaults except the differences declared on purpose, each flag in README;
and the one reachability check. The options are read back from the real parsers."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _plugin_support import plugin_args

from harness import pytest_plugin
from harness.cli import build_parser
from harness.engine.embedded import EmbeddedSCP, embedded_profile
from harness.engine.target_options import (
    BENCH,
    PLUGIN,
    RUN,
    TargetUnreachable,
    check_reachable,
)
from harness.net.tls import TLSOptions
from harness.net.tlscerts import CertSet, make_cert_set

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
CI_DOC = README.parent / "docs" / "ci.md"

# name -> default in every front end that has it; flags are --NAME (run, bench) and
# --dicom-NAME (plugin). Issue 17 item 2 lists them.
SHARED: dict[str, Any] = {
    "target": None, "called-aet": None, "calling-aet": "HARNESS", "timeout": 10.0,
    "storage-dir": None, "target-profile": None, "scp-profile": None,
    "tls": False, "tls-ca": None, "tls-cert": None, "tls-key": None, "tls-no-verify": False,
    "tls-min-version": "1.2", "tls-server-name": None,
}
# The differences kept on purpose (target_options.py says why), nothing else.
DIFFERENT: dict[tuple[str, str], Any] = {
    (BENCH, "calling-aet"): "HARNESS-BENCH",
    (BENCH, "timeout"): 30.0,
}
NOT_IN: dict[str, set[str]] = {BENCH: {"storage-dir", "target-profile"}}
# Flags the plugin had before the shared table, which CI pipelines call.
PLUGIN_ALIASES = {"target-profile": ["--dicom-profile", "--dicom-target-profile"]}


def _argparse_options(command: str) -> dict[str, dict[str, Any]]:
    """flag -> {default, dest, choices} of a ``dicom-harness`` sub-command."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out: dict[str, dict[str, Any]] = {}
    for action in sub.choices[command]._actions:
        for flag in action.option_strings:
            out[flag] = {"default": action.default, "dest": action.dest,
                         "choices": tuple(action.choices or ())}
    return out


class _RecordingGroup:
    """Stands in for pytest's option group: records what the plugin declares."""

    def __init__(self) -> None:
        self.options: dict[str, dict[str, Any]] = {}

    def addoption(self, *names: str, **attrs: Any) -> None:
        for name in names:
            self.options[name] = {"default": attrs.get("default"),
                                  "dest": attrs.get("dest"),
                                  "choices": tuple(attrs.get("choices") or ()),
                                  "names": names}


class _RecordingParser:
    def __init__(self) -> None:
        self.group = _RecordingGroup()

    def getgroup(self, name: str, description: str = "") -> _RecordingGroup:
        return self.group


def _plugin_options() -> dict[str, dict[str, Any]]:
    parser = _RecordingParser()
    pytest_plugin.pytest_addoption(parser)  # type: ignore[arg-type]
    return parser.group.options


def _flags(front: str, name: str) -> list[str]:
    if front == PLUGIN:
        return PLUGIN_ALIASES.get(name, [f"--dicom-{name}"])
    return [f"--{name}"]


FRONT_OPTIONS = {RUN: lambda: _argparse_options("run"), BENCH: lambda: _argparse_options("bench"),
                 PLUGIN: _plugin_options}
CASES = [(front, name) for front in (RUN, BENCH, PLUGIN) for name in SHARED
         if name not in NOT_IN.get(front, set())]


@pytest.mark.parametrize(("front", "name"), CASES, ids=[f"{f}:{n}" for f, n in CASES])
def test_front_ends_declare_the_same_target_options(front: str, name: str) -> None:
    options = FRONT_OPTIONS[front]()
    expected = DIFFERENT.get((front, name), SHARED[name])
    for flag in _flags(front, name):
        assert flag in options, f"{front} lacks {flag}"
        assert options[flag]["default"] == expected, (front, flag, options[flag]["default"])
        assert type(options[flag]["default"]) is type(expected), (front, flag)


def test_aliases_share_one_dest() -> None:
    options = _plugin_options()
    dests = {options[flag]["dest"] for flag in PLUGIN_ALIASES["target-profile"]}
    assert dests == {"dicom_profile"}  # what settings_from_config reads


def test_tls_versions_are_the_same_everywhere() -> None:
    run, bench, plugin = (FRONT_OPTIONS[f]() for f in (RUN, BENCH, PLUGIN))
    assert run["--tls-min-version"]["choices"] == bench["--tls-min-version"]["choices"] == \
        plugin["--dicom-tls-min-version"]["choices"] == ("1.0", "1.1", "1.2", "1.3")


def test_bench_lacks_only_what_it_cannot_use() -> None:
    bench = _argparse_options("bench")
    for name in NOT_IN[BENCH]:
        assert f"--{name}" not in bench


@pytest.mark.parametrize("front", [RUN, BENCH, PLUGIN])
def test_every_target_flag_is_documented(front: str) -> None:
    text = README.read_text(encoding="utf-8") + CI_DOC.read_text(encoding="utf-8")
    for name in SHARED:
        if name in NOT_IN.get(front, set()):
            continue
        for flag in _flags(front, name)[:1]:
            assert f"`{flag}" in text or f"{flag}`" in text, f"{flag} ({front}) not in docs"


def test_help_covers_every_flag() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("run", "bench"):
        text = sub.choices[command].format_help()
        for name in SHARED:
            if name not in NOT_IN.get(command, set()):
                assert f"--{name}" in text, (command, name)


# --- the one reachability check ------------------------------------------------------------


def test_check_reachable_passes_a_listening_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable("127.0.0.1", server.getsockname()[1], 2.0)


def test_check_reachable_names_a_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connect is refused
        with pytest.raises(TargetUnreachable, match=rf"^127\.0\.0\.1:{port} unreachable: "):
            check_reachable("127.0.0.1", port, 2.0)


# --- --dicom-tls-server-name: new in the plugin with the shared table, and wired ------------


@pytest.fixture
def tls_target(tmp_path: Path) -> Iterator[tuple[int, CertSet]]:
    """The reference SCP serving mutual TLS with a certificate for the loopback names."""
    certs = make_cert_set(tmp_path / "certs")
    server = TLSOptions(cert=str(certs.server_cert), key=str(certs.server_key),
                        ca=str(certs.ca), require_client_cert=True).server_context()
    with EmbeddedSCP(embedded_profile(), tls=server) as scp:
        yield scp.port, certs


@pytest.mark.parametrize(("name", "holds"), [("localhost", True),
                                             ("elsewhere.invalid", False)])
def test_plugin_tls_server_name_is_the_name_checked(pytester: pytest.Pytester,
                                                    tls_target: tuple[int, CertSet],
                                                    name: str, holds: bool) -> None:
    """tls.server-certificate checks that the certificate names --dicom-tls-server-name
    (a SHOULD: FAILED with --dicom-strict when it does not)."""
    port, certs = tls_target
    result = pytester.runpytest(
        *plugin_args(), "-p", "no:cacheprovider", "-q", "-k", "tls.server-certificate",
        "--dicom-strict", "--dicom-target", f"127.0.0.1:{port}", "--dicom-timeout", "5",
        "--dicom-tls", "--dicom-tls-ca", str(certs.ca), "--dicom-tls-cert",
        str(certs.client_cert), "--dicom-tls-key", str(certs.client_key),
        "--dicom-tls-server-name", name)
    outcomes = result.parseoutcomes()
    if holds:
        assert outcomes.get("passed") == 1 and "failed" not in outcomes, result.stdout.str()
    else:
        assert outcomes.get("failed") == 1, result.stdout.str()
        assert "elsewhere.invalid in subjectAltName" in result.stdout.str()
