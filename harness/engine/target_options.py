"""The target options, declared once for every front end, and the one reachability check.

``dicom-harness run``, ``dicom-harness bench`` and the pytest plugin all ask which SCP to
talk to and how: ``--target``, the AE titles, ``--timeout``, ``--storage-dir``, the target
and reference-SCP profiles and the ``--tls*`` client options. :data:`TARGET_OPTIONS` is that
list (name, default, metavar, help); :func:`add_target_arguments` puts it on an argparse
parser (``run``, ``bench``) and :func:`add_target_options` on pytest's option group, with
the ``--dicom-`` prefix. Turning the text into values stays with each front end, because
each reports a bad value its own documented way (argparse's exit 2, the bench's single
``dicom-harness bench: ...`` line, a ``pytest.UsageError``): they pass their converters as
``types``.

Where a default differs between front ends the difference is declared here, with its reason
(:attr:`TargetOption.defaults`); everything else is one default for all three.

Not here: the shipped locustfile's ``--dicom-*`` options (harness.bench.locust_user). They
live on Locust's own parser, in Locust's process, and ``bench --locust`` fills them in from
the bench's options; their defaults are Locust's (``HARNESS-LOCUST``, an empty target for
its web form).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.net.address import unreachable
from harness.net.tls import DEFAULT_MIN_VERSION, VERSIONS
from harness.wire.constants import BENCH_CALLING_AE, DEFAULT_CALLED_AE, DEFAULT_CALLING_AE

RUN, BENCH, PLUGIN = "run", "bench", "plugin"
FRONT_ENDS = (RUN, BENCH, PLUGIN)
PLUGIN_PREFIX = "dicom-"  # pytest's options share one namespace: ours start with --dicom-

DEFAULT_CALLED_AET = DEFAULT_CALLED_AE  # what the reference SCP answers to
TLS_GROUP = "TLS (PS3.15 Annex B)"


@dataclass(frozen=True, slots=True)
class TargetOption:
    """One option: ``name`` is the flag without dashes or prefix (``called-aet`` is
    ``--called-aet`` for run and bench, ``--dicom-called-aet`` for the plugin)."""

    name: str
    help: str  # "{opt}" stands for the front end's prefix: --{opt}target, --{opt}tls
    default: Any = None
    metavar: str | None = None
    flag: bool = False  # store_true
    choices: tuple[str, ...] | None = None
    type: Callable[[str], Any] | None = None  # a converter that cannot fail (Path)
    group: str | None = None  # argparse argument group title
    fronts: tuple[str, ...] = FRONT_ENDS  # the front ends that have it
    # Per front end, where it differs on purpose (the reason is in the comment at the row):
    defaults: Mapping[str, Any] = field(default_factory=dict)
    helps: Mapping[str, str] = field(default_factory=dict)
    # Extra spellings before the name, per front end (the first spelling names the dest).
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def default_for(self, front: str) -> Any:
        return self.defaults.get(front, self.default)

    def help_for(self, front: str) -> str:
        opt = PLUGIN_PREFIX if front == PLUGIN else ""
        return self.helps.get(front, self.help).replace("{opt}", opt)

    def flags_for(self, front: str) -> list[str]:
        prefix = "--" + (PLUGIN_PREFIX if front == PLUGIN else "")
        return [prefix + name for name in (*self.aliases.get(front, ()), self.name)]

    def dest_for(self, front: str) -> str:
        return self.flags_for(front)[0].lstrip("-").replace("-", "_")


TARGET_OPTIONS: tuple[TargetOption, ...] = (
    TargetOption("target", metavar="HOST:PORT",
                 help="the SCP to test (default: an embedded reference SCP)",
                 helps={BENCH: "the SCP to measure (default: start the reference SCP)",
                        PLUGIN: "collect the conformance suite and run it against this SCP"}),
    # None: ANY-SCP for a --target, the embedded reference SCP's own title (its profile's,
    # ANY-SCP unless the profile says otherwise) without one; the bench always says ANY-SCP.
    TargetOption("called-aet", metavar="AET",
                 help=f"Called AE title of the target (default {DEFAULT_CALLED_AET})"),
    # The bench calls itself HARNESS-BENCH so that its load stands apart from conformance
    # runs in the SCP's logs and in calling-AE policies (README, bench section).
    TargetOption("calling-aet", default=DEFAULT_CALLING_AE, metavar="AET",
                 help=f"our Calling AE title (default {DEFAULT_CALLING_AE})",
                 defaults={BENCH: BENCH_CALLING_AE},
                 helps={BENCH: f"our Calling AE title (default {BENCH_CALLING_AE})"}),
    # The bench's timeout means something else: no progress at all for that long while
    # streaming (50 MB mammograms over several associations), hence 30 s, not 10 s.
    TargetOption("timeout", default=10.0, metavar="S",
                 help="seconds to wait for any answer from the target (default 10)",
                 defaults={BENCH: 30.0},
                 helps={BENCH: "seconds without progress before an association fails "
                               "(default 30)"}),
    # The bench only sends: it checks neither what was stored nor declared behaviour.
    TargetOption("storage-dir", metavar="DIR", type=Path, fronts=(RUN, PLUGIN),
                 help="where the target writes what it receives: enables the stored-data "
                      "checks"),
    TargetOption("target-profile", metavar="FILE", type=Path, fronts=(RUN, PLUGIN),
                 help="YAML of what the target declares about itself (checked as MUST)",
                 aliases={PLUGIN: ("profile",)}),  # --dicom-profile came first
    TargetOption("scp-profile", metavar="FILE", type=Path,
                 help="behaviour profile of the embedded reference SCP (faults, policies; "
                      "no --{opt}target)"),
    TargetOption("tls", flag=True, default=False, group=TLS_GROUP,
                 help="speak DICOM over TLS (with no --target: the embedded SCP serves TLS "
                      "with certificates made for the run)",
                 helps={PLUGIN: "speak DICOM over TLS (with no --dicom-target: the embedded "
                                "SCP serves TLS with certificates made for the session)"}),
    TargetOption("tls-ca", metavar="FILE", group=TLS_GROUP,
                 help="PEM CA certificate(s) that sign the SCP's certificate (default: the "
                      "system CAs)"),
    TargetOption("tls-cert", metavar="FILE", group=TLS_GROUP,
                 help="our client certificate (PEM), for SCPs requiring mutual TLS"),
    TargetOption("tls-key", metavar="FILE", group=TLS_GROUP,
                 help="the private key of --{opt}tls-cert (PEM, unencrypted)"),
    TargetOption("tls-no-verify", flag=True, default=False, group=TLS_GROUP,
                 help="do not verify the SCP's certificate (nor its host name)"),
    TargetOption("tls-min-version", default=DEFAULT_MIN_VERSION, choices=tuple(VERSIONS),
                 group=TLS_GROUP,
                 help=f"lowest TLS version we offer (default {DEFAULT_MIN_VERSION})"),
    TargetOption("tls-server-name", metavar="NAME", group=TLS_GROUP,
                 help="host name the SCP's certificate must carry (default: the "
                      "--{opt}target host)"),
)


def option_default(name: str, front: str) -> Any:
    """The declared default of option ``name`` in ``front``: for the front ends' own
    settings records, so that they cannot drift from the flags."""
    return next(o for o in TARGET_OPTIONS if o.name == name).default_for(front)


def options_for(front: str) -> list[TargetOption]:
    return [o for o in TARGET_OPTIONS if front in o.fronts]


def _kwargs(option: TargetOption, front: str,
            types: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": option.dest_for(front), "help": option.help_for(front),
                              "default": option.default_for(front)}
    if option.flag:
        kwargs["action"] = "store_true"
        return kwargs
    convert = types.get(option.name, option.type)
    if convert is not None:
        kwargs["type"] = convert
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    if option.choices is not None:
        kwargs["choices"] = option.choices
    return kwargs


def add_target_arguments(parser: Any, front: str,
                         types: Mapping[str, Callable[[str], Any]] | None = None) -> None:
    """The target options of ``front`` (``run`` or ``bench``) on an argparse parser; the
    TLS ones in their own help section. ``types``: converters by option name."""
    groups: dict[str, Any] = {}
    for option in options_for(front):
        target = parser
        if option.group is not None:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            target = groups[option.group]
        target.add_argument(*option.flags_for(front), **_kwargs(option, front, types or {}))


def add_target_options(group: Any,
                       types: Mapping[str, Callable[[str], Any]] | None = None) -> None:
    """The same options on pytest's option group, spelled ``--dicom-...``."""
    for option in options_for(PLUGIN):
        group.addoption(*option.flags_for(PLUGIN), **_kwargs(option, PLUGIN, types or {}))


def called_aet(given: str | None, embedded_title: str | None = None) -> str:
    """The Called AE title to use: the one given, else the embedded SCP's, else ANY-SCP
    (an empty one counts as not given, as it always has for run and the plugin)."""
    if given:
        return given
    return embedded_title if embedded_title is not None else DEFAULT_CALLED_AET


class TargetUnreachable(ValueError):
    """Nothing accepts a TCP connection at the target: ``HOST:PORT unreachable: reason``."""


def check_reachable(host: str, port: int, timeout: float) -> None:
    """Fail fast, before any scenario or measurement, when nothing listens at the target
    (one TCP connect, at most 5 s); each front end reports it as its usage error."""
    reason = unreachable(host, port, timeout)
    if reason is not None:
        raise TargetUnreachable(reason)
