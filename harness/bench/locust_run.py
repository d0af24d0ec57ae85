"""``dicom-harness bench --locust [LOCUST ARGS...]``: the bench's options handed to Locust.

This module does not import Locust (Locust monkey-patches the standard library at import):
it checks the options and the target here, in the harness's own process, then runs
``python -m locust -f <harness/bench/locustfiles/dicom_store.py>`` as a child with the
bench's target, AE titles, workload and report options translated to ``--dicom-*`` options,
followed by everything the user wrote after ``--locust`` (``--headless -u N -r R -t T``,
``--master``, ``--worker --master-host H``, ``--processes``, ``--csv``, ...).

Without ``--target`` a local or master run starts the reference SCP (``dicom-harness
serve``) on a free loopback port, as the single-machine bench does; a worker never checks
or starts a target: its options come from the master.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from harness.bench.runner import BenchUsageError
from harness.bench.target import ReferenceSCP, TargetError
from harness.bench.workload import WorkloadError, build_workload, close_workload
from harness.engine.target_options import TargetUnreachable, check_reachable

EXIT_USAGE = 2
LOCUSTFILE = Path(__file__).with_name("locustfiles") / "dicom_store.py"
MISSING_EXTRA = ("dicom-harness bench: --locust needs Locust, which is not installed: "
                 "pip install 'dicom-harness[locust]'")
DEFAULT_STOP_TIMEOUT = "10"  # let every user finish its store: the counts then add up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--locust", nargs=argparse.REMAINDER, default=None,
                        metavar="LOCUST ARGS",
                        help="drive the load with Locust (pip install dicom-harness[locust]); "
                             "everything after it goes to Locust, e.g. --headless -u 8 -r 8 "
                             "-t 30s, --master, --worker --master-host HOST")
    parser.add_argument("--stores-per-association", default="0", metavar="N",
                        help="with --locust: each user releases and reopens its association "
                             "every N stores (default 0: keep it open)")
    parser.add_argument("--locust-file", action="store_true",
                        help="print the path of the shipped locustfile (for locust -f) and "
                             "exit")


# Single-machine bench options that mean nothing under Locust: (dest, default, what instead).
NOT_WITH_LOCUST: tuple[tuple[str, object, str], ...] = (
    ("associations", "1", "Locust's -u USERS (one association per user)"),
    ("instances", None, "Locust's -t TIME"),
    ("duration", None, "Locust's -t TIME"),
    ("workers", "1", "Locust's --processes N or --master/--worker"),
    ("compare", [], "the single-machine bench"),
    ("repeat", "1", "the single-machine bench"),
    ("window", "1", "one store at a time per user"),
    ("warmup", None, "Locust's -r RATE ramp-up"),
    ("target_pid", None, "the single-machine bench"),
    ("uvloop", False, "Locust's gevent loop"),
)


def locust_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("locust", "gevent"))


def _flag(rest: list[str], *names: str) -> bool:
    return any(arg == n or arg.startswith(n + "=") for arg in rest for n in names)


def locust_command(args: argparse.Namespace, target: tuple[str, int] | None,
                   rest: list[str]) -> list[str]:
    """The child's command line: our translated options first, the user's after them (so
    the user's win where both set one)."""
    from harness.bench.cli import bench_called_aet

    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
           "--dicom-called-aet", bench_called_aet(args.called_aet),
           "--dicom-calling-aet", args.calling_aet,
           "--dicom-workload", str(args.workload),
           "--dicom-transfer-syntax", str(args.transfer_syntax),
           "--dicom-stores-per-association", str(args.stores_per_association),
           "--dicom-max-pdu", str(args.max_pdu), "--dicom-timeout", str(args.timeout),
           "--dicom-seed", str(args.seed)]
    if target is not None:
        cmd += ["--dicom-target", f"{target[0]}:{target[1]}"]
    if args.no_nodelay:
        cmd.append("--dicom-no-nodelay")
    if not _flag(rest, "--worker"):
        cmd += ["--dicom-report-dir", str(args.report_dir)]
        if args.json is not None:
            cmd += ["--dicom-json", str(args.json)]
        if args.no_html:
            cmd.append("--dicom-no-html")
        if not _flag(rest, "--stop-timeout"):
            cmd += ["--stop-timeout", DEFAULT_STOP_TIMEOUT]
    return cmd + rest


def _check(args: argparse.Namespace) -> None:
    """What can be wrong before Locust starts, each as one line (BenchUsageError)."""
    from harness.bench.cli import _int, bench_called_aet, check_ae_title, parse_target
    from harness.bench.workload import resolve_transfer_syntax

    for dest, default, instead in NOT_WITH_LOCUST:
        if getattr(args, dest, default) != default:
            flag = "--" + dest.replace("_", "-")
            raise BenchUsageError(f"{flag} does not apply with --locust: use {instead}")
    check_ae_title(bench_called_aet(args.called_aet), "--called-aet")
    check_ae_title(args.calling_aet, "--calling-aet")
    for flag, value in (("--stores-per-association", args.stores_per_association),
                        ("--max-pdu", args.max_pdu), ("--seed", args.seed)):
        _int(value, flag)
    if args.max_pdu and int(args.max_pdu, 0) and int(args.max_pdu, 0) < 16:
        raise BenchUsageError(f"--max-pdu {args.max_pdu}: must be 0 (the peer's) or >= 16")
    try:
        if float(args.timeout) <= 0:
            raise ValueError
    except ValueError:
        raise BenchUsageError(f"--timeout {args.timeout!r}: expected a positive number of "
                              "seconds") from None
    try:
        ts = resolve_transfer_syntax(args.transfer_syntax)
        close_workload(build_workload(str(args.workload), ts, seed=int(args.seed, 0)))
    except WorkloadError as exc:
        raise BenchUsageError(str(exc)) from None
    parse_target(args.target)


def run_locust(args: argparse.Namespace) -> int:
    """Entry point of ``bench --locust`` and ``bench --locust-file``; returns the exit status."""
    if args.locust_file:
        print(LOCUSTFILE)
        return 0
    if not locust_installed():
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_USAGE
    from harness.bench.cli import parse_target

    rest = list(args.locust or [])
    worker = _flag(rest, "--worker")
    scp: ReferenceSCP | None = None
    try:
        _check(args)
        target = parse_target(args.target)
        if target is not None and not worker:
            try:
                check_reachable(*target, timeout=min(float(args.timeout), 5.0))
            except TargetUnreachable as exc:
                raise TargetError(f"target {exc}") from None
        elif target is None and not worker:
            scp = ReferenceSCP(profile=args.scp_profile)
            scp.start()
            target = ("127.0.0.1", scp.port)
            print(f"reference SCP (dicom-harness serve) on 127.0.0.1:{scp.port}", flush=True)
    except (BenchUsageError, TargetError) as exc:
        print(f"dicom-harness bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_child(locust_command(args, target, rest))
    finally:
        if scp is not None:
            scp.stop()


def _run_child(cmd: list[str]) -> int:
    """Run Locust in the foreground; Ctrl-C and SIGTERM go to it, and we wait for it to
    write its statistics and our reports."""
    child = subprocess.Popen(cmd)
    previous = signal.signal(signal.SIGTERM, lambda *_a: child.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the child got the same SIGINT from the terminal; wait for it
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.kill()
            child.wait(10)
