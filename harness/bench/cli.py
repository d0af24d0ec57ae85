"""``dicom-harness bench``: its arguments and its entry point (hooked in by harness.cli).

Arguments that can be wrong in ways argparse cannot see (lists, ranges, combinations) are
checked in :func:`run_bench` so a mistake costs one line on stderr and exit status 2.
Exit status: 0 run complete without errors (non-success statuses are results, reported),
1 errors during the run (associations refused, aborted, timed out), 2 usage error or
target unreachable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.bench.locust_run import add_arguments as locust_arguments
from harness.bench.runner import COMPARE_MODES, BenchOptions, BenchUsageError
from harness.bench.workload import PROFILE_KINDS, WorkloadError, resolve_transfer_syntax
from harness.engine.target_options import BENCH, DEFAULT_CALLED_AET, add_target_arguments
from harness.net.address import parse_address

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --target, AE titles, --timeout, --scp-profile, --tls*: shared with run and the pytest
    # plugin (harness.engine.target_options); left as text here and checked in run_bench,
    # so that a bad value costs one line, not argparse's usage block.
    add_target_arguments(parser, BENCH)
    parser.add_argument("--associations", default="1", metavar="N[,N...]",
                        help="concurrent associations; a list is a sweep (default 1)")
    parser.add_argument("--instances", default=None, metavar="M",
                        help="measured stores per association (default by workload: "
                             "tiny 2000, ct 200, mr 500, cr/us 20, mg 4)")
    parser.add_argument("--duration", default=None, metavar="S",
                        help="measure for S seconds instead of a count")
    parser.add_argument("--workload", default="tiny", metavar="|".join(PROFILE_KINDS) + "|DIR",
                        help="synthetic profile or a folder of Part 10 files (default tiny)")
    parser.add_argument("--workers", default="1", metavar="K",
                        help="processes sharing the associations (default 1)")
    parser.add_argument("--compare", action="append", default=[], metavar="dcmtk|loopback",
                        help="also run DCMTK storescu on the same workload, or a plain "
                             "loopback TCP copy of the same bytes (repeatable, or a,b)")
    parser.add_argument("--repeat", default="1", metavar="R",
                        help="repetitions with --compare dcmtk, order alternating (default 1)")
    parser.add_argument("--storescu", type=Path, default=Path("/usr/bin/storescu"),
                        metavar="PATH", help="DCMTK storescu for --compare dcmtk")
    parser.add_argument("--target-pid", default=None, metavar="PID",
                        help="report this process's CPU time and peak RSS (the SCP's)")
    parser.add_argument("--window", default="1", metavar="N",
                        help="asynchronous operations window to ask for (default 1; 0 = "
                             "unlimited); the peer's answer decides")
    parser.add_argument("--warmup", default=None, metavar="N",
                        help="unmeasured stores per association first (default 10%% of M, "
                             "at most 50 and 64 MB)")
    parser.add_argument("--transfer-syntax", default="explicit", metavar="TS",
                        help="explicit, implicit, big or a UID (generated workloads)")
    parser.add_argument("--no-nodelay", action="store_true",
                        help="leave Nagle's algorithm on (shows the ~40 ms delayed-ACK stall)")
    parser.add_argument("--max-pdu", default="0", metavar="BYTES",
                        help="largest P-DATA-TF PDU to send (default 0: the peer's maximum)")
    parser.add_argument("--seed", default="0", metavar="N", help="dataset factory seed")
    parser.add_argument("--uvloop", action="store_true",
                        help="use uvloop if installed (pip install dicom-harness[fast])")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the Bench JSON here")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                        help="where bench.html and bench.json go (default reports/)")
    parser.add_argument("--no-html", action="store_true", help="do not write bench.html")
    locust_arguments(parser)  # --locust: distributed load (harness.bench.locust_run)
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no table")
    parser.add_argument("--plain-target", default=None, metavar="HOST:PORT",
                        help="with --tls --compare plain and a --target: the same SCP's "
                             "plain TCP port")


def _int(text: str | None, flag: str, *, low: int = 0) -> int | None:
    if text is None:
        return None
    try:
        value = int(str(text), 0)
    except ValueError:
        raise BenchUsageError(f"{flag} {text!r}: expected an integer") from None
    if value < low:
        raise BenchUsageError(f"{flag} {text}: must be at least {low}")
    return value


def _required_int(text: str, flag: str, *, low: int = 0) -> int:
    value = _int(text, flag, low=low)
    assert value is not None
    return value


def _float(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BenchUsageError(f"{flag} {text!r}: expected a number of seconds") from None
    if not value > 0:
        raise BenchUsageError(f"{flag} {text}: must be positive")
    return value


def parse_associations(text: str) -> list[int]:
    values: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise BenchUsageError(f"--associations {text!r}: expected positive integers "
                                  "separated by commas (e.g. 1,2,4,8)")
        values.append(int(part))
    return values


def parse_target(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    try:
        return parse_address(text)
    except ValueError as exc:
        raise BenchUsageError(f"--target: {exc}") from None


def bench_called_aet(text: str | None) -> str:
    """``--called-aet``, ANY-SCP when not given (also for the bench's own reference SCP)."""
    return DEFAULT_CALLED_AET if text is None else text


def check_ae_title(text: str, flag: str) -> str:
    """An AE title (PS3.5 6.2 AE): 1-16 printable ASCII characters, no backslash."""
    if not text.strip() or len(text) > 16 or "\\" in text or \
            not all(32 <= ord(c) < 127 for c in text):
        raise BenchUsageError(f"{flag} {text!r}: an AE title is 1 to 16 printable ASCII "
                              "characters without backslash")
    return text


def _tls_options(args: argparse.Namespace) -> object:
    from harness.net.tls import TLSConfigError, client_options

    try:
        options = client_options(args)
        if options is not None and args.target is not None:
            options.client_context()  # files readable, key matching: checked now
        elif options is not None and (args.tls_ca or args.tls_cert or args.tls_key):
            raise TLSConfigError("--tls-ca / --tls-cert / --tls-key are for a --target; the "
                                 "embedded SCP uses certificates made for the run")
    except TLSConfigError as exc:
        raise BenchUsageError(str(exc)) from None
    return options


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Validate and convert; ``BenchUsageError`` names the offending flag."""
    called = check_ae_title(bench_called_aet(args.called_aet), "--called-aet")
    check_ae_title(args.calling_aet, "--calling-aet")
    compare = [c.strip() for item in args.compare for c in item.split(",") if c.strip()]
    unknown = [c for c in compare if c not in COMPARE_MODES]
    if unknown:
        raise BenchUsageError(f"--compare {unknown[0]!r}: known: {', '.join(COMPARE_MODES)}")
    try:
        ts = resolve_transfer_syntax(args.transfer_syntax)
    except WorkloadError as exc:
        raise BenchUsageError(f"--transfer-syntax: {exc}") from None
    return BenchOptions(
        target=parse_target(args.target), called_aet=called,
        calling_aet=args.calling_aet, associations=parse_associations(args.associations),
        instances=_int(args.instances, "--instances", low=1),
        duration=_float(args.duration, "--duration"), workload=args.workload,
        workers=_required_int(args.workers, "--workers", low=1), compare=compare,
        repeat=_required_int(args.repeat, "--repeat", low=1),
        target_pid=_int(args.target_pid, "--target-pid", low=1),
        window=_required_int(args.window, "--window"),
        warmup=_int(args.warmup, "--warmup"), transfer_syntax=ts,
        nodelay=not args.no_nodelay, max_pdu=_int(args.max_pdu, "--max-pdu") or 0,
        timeout=_float(args.timeout, "--timeout") or 30.0, seed=_int(args.seed, "--seed") or 0,
        storescu=args.storescu, uvloop=args.uvloop, scp_profile=args.scp_profile,
        tls=_tls_options(args), plain_target=parse_target(args.plain_target))


def run_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.bench.console import RichUI, print_results
    from harness.bench.html import write_html
    from harness.bench.result import write_json
    from harness.bench.runner import run

    if args.locust is not None or args.locust_file:  # Locust in a child process
        from harness.bench.locust_run import run_locust

        return run_locust(args)
    try:
        opts = options_from_args(args)
        console = Console(highlight=False)
        if not console.is_terminal:  # a log file: wide enough for the whole table
            console = Console(highlight=False, width=150)
        doc = run(opts, RichUI(console, enabled=not args.quiet))
    except BenchUsageError as exc:
        print(f"dicom-harness bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    written = []
    try:
        written.append(write_json(doc, args.report_dir / "bench.json"))
        if args.json is not None:
            written.append(write_json(doc, args.json))
        if not args.no_html:
            written.append(write_html(doc, args.report_dir / "bench.html"))
    except OSError as exc:
        print(f"dicom-harness bench: cannot write reports: {exc.strerror or exc}: "
              f"{exc.filename or ''}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print_results(doc, console)
    for path in written:
        print(f"{path.suffix.lstrip('.')}: {path}")
    return EXIT_ERRORS if doc["summary"]["errors"] else EXIT_OK
