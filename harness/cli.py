"""The ``dicom-harness`` command line: run, list, serve, report, bench.

Exit status: 0 no failure, 1 at least one scenario failed (or a regression with
``--fail-on regression``), 2 usage error or target unreachable, with a one-line reason on
stderr. Nothing here prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.engine.target_options import (
    RUN,
    TargetUnreachable,
    add_target_arguments,
    called_aet,
    check_reachable,
)
from harness.net.address import parse_address
from harness.net.tls import add_server_arguments as add_tls_server_arguments

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_SIGPIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool cut off by `| head`


class UsageError(Exception):
    """Bad arguments or an unreachable target: one line on stderr, exit 2."""


def _host_port(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicom-harness",
        description="Conformance testing, simulation and benchmarking of DICOM Storage SCPs.")
    parser.add_argument("--version", action="version", version=f"dicom-harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the conformance suite against an SCP")
    # --target, AE titles, --timeout, --storage-dir, profiles, --tls*: shared with bench and
    # the pytest plugin (harness.engine.target_options); checked here by argparse.
    add_target_arguments(run, RUN, types={"target": _host_port, "timeout": _positive})
    run.add_argument("--suite", default=None, metavar="NAME|PATH",
                     help="scenario file, folder or suite name (default: all of scenarios/)")
    run.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                     help="select scenarios by id/title/group/tag words, with and/or/not")
    run.add_argument("--slow", action="store_true",
                     help="include scenarios tagged slow (large objects, floods)")
    run.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                     help="where the HTML report and results.json go (default reports/)")
    run.add_argument("--json", type=Path, default=None, metavar="FILE",
                     help="also write the results JSON here")
    run.add_argument("--junit", type=Path, default=None, metavar="FILE",
                     help="write JUnit XML here")
    run.add_argument("--max-duration", type=_positive, default=900.0, metavar="S",
                     help="bound for the whole run in seconds (default 900); scenarios not "
                          "finished by then are reported as errors")
    run.add_argument("--baseline", type=Path, default=None, metavar="OLD.json",
                     help="compare with an earlier results JSON")
    run.add_argument("--fail-on", choices=("failure", "regression"), default="failure",
                     help="exit 1 on any failure (default) or only on regressions against "
                          "--baseline")
    run.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    run.add_argument("-q", "--quiet", action="store_true", help="only the summary")

    lst = sub.add_parser("list", help="list the scenarios of a suite")
    lst.add_argument("--suite", default=None, metavar="NAME|PATH")
    lst.add_argument("-k", dest="keyword", default=None, metavar="EXPR")
    lst.add_argument("--slow", action="store_true", help="include scenarios tagged slow")
    lst.add_argument("--format", choices=("table", "ids", "json"), default="table")
    lst.add_argument("--steps", action="store_true",
                     help="list the steps a scenario file may use, with their parameters")

    serve = sub.add_parser("serve", help="run the reference Storage SCP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=11112)
    serve.add_argument("--aet", default=None, help="our AE title (default ANY-SCP)")
    serve.add_argument("--storage-dir", type=Path, default=Path("received"), metavar="DIR")
    serve.add_argument("--profile", type=Path, default=None, metavar="FILE",
                       help="behaviour profile YAML (faults, statuses, delays, policies)")
    serve.add_argument("--list-faults", action="store_true",
                       help="list the faults a profile can switch on, and exit")
    serve.add_argument("-q", "--quiet", action="store_true", help="no per-store log lines")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="N processes sharing the port, for throughput (POSIX; counters, "
                            "limits and rules are per process)")
    add_tls_server_arguments(serve)

    report = sub.add_parser("report", help="rebuild reports from a results JSON")
    report.add_argument("results", type=Path, metavar="RESULTS.json")
    report.add_argument("--baseline", type=Path, default=None, metavar="OLD.json")
    report.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR")
    report.add_argument("--junit", type=Path, default=None, metavar="FILE")

    bench = sub.add_parser("bench", help="measure store throughput and latency of an SCP")
    try:
        from harness.bench.cli import add_arguments
    except ImportError:  # the bench layer is optional at import time
        pass
    else:
        add_arguments(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "list":
            return cmd_list(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "bench":
            from harness.bench.cli import run_bench

            return int(run_bench(args))
    except UsageError as exc:
        # One line, as the exit status contract promises (a YAML error spans several).
        reason = (str(exc).strip().splitlines() or ["error"])[0]
        print(f"dicom-harness {args.command}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dicom-harness {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`dicom-harness list | head`): stop quietly, as
        # a shell tool does on SIGPIPE, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SIGPIPE
    return EXIT_USAGE


# --- run / list ----------------------------------------------------------------------------


def load_scenarios(suite: str | None, keyword: str | None, slow: bool) -> list[Any]:
    from harness.engine.loader import ScenarioError, load_suite, select

    try:
        scenarios = select(load_suite(suite), keyword)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if not slow:
        scenarios = [s for s in scenarios if "slow" not in s.tags]
    return scenarios


def cmd_list(args: argparse.Namespace) -> int:
    if args.steps:  # the step vocabulary, not a suite: nothing to load
        from harness.report.step_reference import print_steps

        print_steps()
        return EXIT_OK
    scenarios = load_scenarios(args.suite, args.keyword, args.slow)
    if args.format == "ids":
        for sc in scenarios:
            print(sc.id)
    elif args.format == "json":
        print(json.dumps([{"id": s.id, "title": s.title, "group": s.group,
                           "severity": s.severity, "references": s.references,
                           "tags": s.tags} for s in scenarios], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(scenarios)} scenarios")
        for col in ("id", "group", "severity", "title", "references"):
            table.add_column(col)
        for sc in scenarios:  # scenario files are user data: "[all-spaces]" is not markup
            table.add_row(*map(_escape, (sc.id, sc.group, sc.severity, sc.title,
                                         ", ".join(sc.references))))
        Console(width=200).print(table)
    return EXIT_OK


def _nothing_selected(suite: str | None, keyword: str | None, slow: bool) -> str:
    """Why a run has no scenario, naming only the options the user gave (an empty default
    suite is the loader's error, which says where it looked)."""
    given = [f"--suite {suite}"] if suite else []
    given += [f"-k {keyword!r}"] if keyword else []
    hint = "" if slow else " (scenarios tagged slow need --slow)"
    if given:
        return f"no scenario selected by {' and '.join(given)}{hint}"
    return f"no scenario selected: every scenario of the suite is tagged slow{hint}"


def cmd_run(args: argparse.Namespace) -> int:
    from harness.engine.context import Target, TargetProfileError, load_target_profile
    from harness.engine.embedded import EmbeddedSCP, declared_from_profile, embedded_profile
    from harness.scp.profile import Profile, ProfileError

    scenarios = load_scenarios(args.suite, args.keyword, args.slow)
    if not scenarios:
        raise UsageError(_nothing_selected(args.suite, args.keyword, args.slow))
    try:
        declared = load_target_profile(args.target_profile)
    except TargetProfileError as exc:
        raise UsageError(str(exc)) from None
    baseline = _load_results(args.baseline) if args.baseline else None
    if args.fail_on == "regression" and baseline is None:
        raise UsageError("--fail-on regression needs --baseline OLD.json")
    from harness.engine.tls_setup import (
        TLSSetupError,
        check_tls_handshake,
        client_for_run,
        embedded_server_context,
    )

    try:
        tls, declared = client_for_run(args, declared)
    except TLSSetupError as exc:
        raise UsageError(str(exc)) from None
    embedded: EmbeddedSCP | None = None
    if args.target is None:
        try:
            profile = Profile.load(args.scp_profile) if args.scp_profile else embedded_profile()
        except ProfileError as exc:
            raise UsageError(str(exc)) from None
        embedded = EmbeddedSCP(profile, tls=embedded_server_context(tls, profile)).start()
        host, port = "127.0.0.1", embedded.port
        storage = embedded.storage_dir
        called = called_aet(args.called_aet, profile.ae_title)
        declared = {**declared_from_profile(profile), **declared}
    else:
        host, port = args.target
        storage = args.storage_dir
        called = called_aet(args.called_aet)
        try:
            check_reachable(host, port, args.timeout)
        except TargetUnreachable as exc:
            raise UsageError(f"target {exc}") from None
        if storage is not None and not storage.is_dir():
            raise UsageError(f"--storage-dir {storage}: not a directory")
        if tls is not None:
            try:
                check_tls_handshake(host, port, tls, args.timeout)
            except TLSSetupError as exc:
                raise UsageError(str(exc)) from None
    target = Target(host, port, called, args.calling_aet, args.timeout, storage, declared,
                    embedded is not None, tls=tls)
    try:
        results = _run_with_progress(target, scenarios, args.quiet, args.max_duration)
    finally:
        if embedded is not None:
            embedded.stop()
    return _write_outputs(results, args, baseline)


def _run_with_progress(target: Any, scenarios: list[Any], quiet: bool,
                       max_duration: float | None = None) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from harness.engine.model import NOT_RUN_TARGET_DOWN
    from harness.engine.runner import Runner

    console = Console(stderr=False, highlight=False)
    styles = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim",
              "error": "bold magenta", "info": "cyan"}
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), console=console, transient=True,
                  disable=quiet or not console.is_terminal) as progress:
        task = progress.add_task("running scenarios", total=len(scenarios))

        down_told = False

        def report(sc: Any, result: dict[str, Any]) -> None:
            nonlocal down_told
            progress.advance(task)
            if result["observed"].startswith(NOT_RUN_TARGET_DOWN):
                # One line for all of them, not one per scenario.
                if not down_told and not quiet:
                    progress.console.print(f"[bold red]{_escape(result['observed'])}: the "
                                           "remaining scenarios are not run[/]")
                down_told = True
                return
            if not quiet:
                outcome = result["outcome"]
                line = (f"[{styles[outcome]}]{outcome.upper():5}[/] {_escape(sc.severity):6} "
                        f"{_escape(sc.id)}  [dim]{result['duration_s']:.2f}s[/]")
                if outcome in ("fail", "warn", "error"):
                    line += f"\n        [dim]{_escape(result['observed'][:200])}[/]"
                progress.console.print(line)

        runner = Runner(target, progress=report, max_duration=max_duration)
        return asyncio.run(runner.run(scenarios))


def _escape(text: str) -> str:
    """Text from scenario files, results or the target, made literal for rich markup."""
    from rich.markup import escape

    return escape(str(text))


def _load_results(path: Path) -> dict[str, Any]:
    from harness.report import ReportError, load_results

    try:
        return load_results(path)
    except ReportError as exc:
        raise UsageError(str(exc)) from None


def write_outputs(results: dict[str, Any], *, report_dir: Path | None, json_path: Path | None,
                  junit_path: Path | None, baseline: dict[str, Any] | None,
                  html: bool = True) -> tuple[dict[str, Path], Any]:
    """Write the report files a run asked for; return their paths and the comparison."""
    from harness.report import (
        REPORT_FILES,
        compare,
        write_html,
        write_json,
        write_junit,
        write_report_dir,
    )

    paths: dict[str, Path] = {}
    try:
        if report_dir is not None:
            if html:
                paths.update(write_report_dir(results, report_dir, baseline=baseline))
            else:
                paths["json"] = write_json(results, report_dir / REPORT_FILES["json"])
        if json_path is not None:
            paths["json"] = write_json(results, json_path)
        if junit_path is not None:
            paths["junit"] = write_junit(results, junit_path)
        if html and report_dir is None:
            paths["html"] = write_html(results, Path("reports") / REPORT_FILES["html"],
                                       baseline=baseline)
    except OSError as exc:
        raise UsageError(f"cannot write reports: {exc.strerror or exc}: "
                         f"{exc.filename or ''}") from None
    comparison = compare(results, baseline) if baseline is not None else None
    return paths, comparison


def _write_outputs(results: dict[str, Any], args: argparse.Namespace,
                   baseline: dict[str, Any] | None) -> int:
    paths, comparison = write_outputs(results, report_dir=args.report_dir, json_path=args.json,
                                      junit_path=args.junit, baseline=baseline,
                                      html=not args.no_html)
    _print_summary(results, comparison)
    for label, path in sorted(paths.items()):
        print(f"{label}: {path}")
    if args.fail_on == "regression":
        return EXIT_FAIL if comparison is not None and comparison.regressions else EXIT_OK
    return EXIT_FAIL if results["summary"]["failed"] else EXIT_OK


def _print_summary(results: dict[str, Any], comparison: Any) -> None:
    from rich.console import Console

    from harness.report import print_summary

    console = Console(highlight=False)
    print_summary(results, console)
    if comparison is not None:
        console.print(f"against the baseline: {len(comparison.regressions)} regression(s), "
                      f"{len(comparison.new_failures)} new failure(s), "
                      f"{len(comparison.fixed)} fixed")
        for change in comparison.regressions[:20]:
            console.print(f"  [bold red]REGRESSION[/] {_escape(change.id)}: "
                          f"{_escape(change.before)} -> {_escape(change.after)}")


def cmd_report(args: argparse.Namespace) -> int:
    results = _load_results(args.results)
    baseline = _load_results(args.baseline) if args.baseline else None
    from harness.report import REPORT_FILES, write_html, write_junit

    paths: dict[str, Path] = {}
    try:
        paths["html"] = write_html(results, args.report_dir / REPORT_FILES["html"],
                                   baseline=baseline)
        if args.junit is not None:
            paths["junit"] = write_junit(results, args.junit)
    except OSError as exc:
        raise UsageError(f"cannot write reports: {exc.strerror or exc}") from None
    from harness.report import compare

    _print_summary(results, compare(results, baseline) if baseline else None)
    for label, path in sorted(paths.items()):
        print(f"{label}: {path}")
    return EXIT_OK


# --- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.scp.profile import FAULTS, Profile, ProfileError
    from harness.scp.server import SERVE_KEEP_RECORDS, StorageSCP

    if args.list_faults:
        for name, text in sorted(FAULTS.items()):
            print(f"{name:26} {text}")
        return EXIT_OK
    try:
        profile = Profile.load(args.profile) if args.profile else Profile()
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    if args.aet:
        profile.ae_title = args.aet
    from harness.net.tls import TLSConfigError, server_options

    try:
        tls_options = server_options(args)
        tls = tls_options.server_context() if tls_options is not None else None
    except TLSConfigError as exc:
        raise UsageError(str(exc)) from None
    if tls is not None and args.workers != 1:
        raise UsageError("--workers with TLS is not supported (use one process)")
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: not a TCP port")
    try:
        args.storage_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--storage-dir {args.storage_dir}: {exc.strerror}") from None
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.workers != 1:
        from harness.scp.workers import serve_workers

        if not 1 <= args.workers <= 256:
            raise UsageError(f"--workers {args.workers}: 1-256")
        return serve_workers(profile, args.storage_dir, host=args.host, port=args.port,
                             workers=args.workers)
    return asyncio.run(_serve(StorageSCP(profile, args.storage_dir, host=args.host,
                                         port=args.port, trace=False,
                                         keep_records=SERVE_KEEP_RECORDS, tls=tls), profile))


async def _serve(scp: Any, profile: Any) -> int:
    try:
        await scp.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {scp.host}:{scp.server.port}: "
                         f"{exc.strerror or exc}") from None
    faults = f" faults: {', '.join(sorted(profile.faults))}" if profile.faults else ""
    tls = " (TLS)" if scp.server.tls is not None else ""
    print(f"dicom-harness serve: {profile.ae_title} listening on {scp.host}:{scp.port}{tls}, "
          f"storing in {scp.storage_dir}{faults}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Finished stores are already renamed into place; stopping only drops unfinished ones.
    await scp.stop()
    print(f"dicom-harness serve: stopped after {scp.records_total} store(s)", flush=True)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
