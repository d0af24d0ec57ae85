"""The Locust user that stores DICOM instances, and the hooks that feed the Bench JSON.

Importing this module imports Locust, which monkey-patches the standard library for gevent:
only ``dicom-harness bench --locust`` (through the locustfile in ``locustfiles/``) or a
user's own locustfile should import it, never the rest of the harness.

:class:`DicomStoreUser` keeps one association open per simulated user (or opens a new one
every ``--dicom-stores-per-association`` stores) and sends the bench workload's C-STOREs
one at a time, each with a fresh SOP Instance UID. Every store is reported to Locust:
request type ``C-STORE``, name ``<workload> <SOP class>``, response time from the first
byte sent to the response decoded, size the data set bytes; a non-Success status (PS3.4
Annex B.2.3, PS3.7 Annex C) is a failure named by its code and meaning. Association
failures (connection refused, A-ASSOCIATE-RJ, A-ABORT, time-outs) are reported as
``A-ASSOCIATE`` failures with their reason; an association lost during a store also fails
that store.

Options (all prefixed ``--dicom-`` so they never clash with Locust's) are parsed on the
master and handed to the workers by Locust. Each process keeps a :class:`Tally`; workers
send theirs with every report to the master, which writes ``bench.json``/``bench.html``
when Locust quits (see :mod:`harness.bench.locust_feed`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import User, constant, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.bench.locust_client import BlockingAssociation, StoreFailure
from harness.bench.locust_feed import RunInfo, Tally, bench_doc, write_reports
from harness.bench.sender import SenderConfig
from harness.bench.workload import (
    PlanCache,
    UidSource,
    Workload,
    WorkloadError,
    build_workload,
    new_nonce,
    resolve_transfer_syntax,
)
from harness.net.address import parse_address
from harness.wire.constants import DEFAULT_CALLED_AE, LOCUST_CALLING_AE
from harness.wire.status import classify, describe
from harness.wire.uid import uid_name

log = logging.getLogger("dicom-harness")

STORE = "C-STORE"
ASSOCIATE = "A-ASSOCIATE"
RETRY_DELAY_S = 0.5  # after a failed association, before the user tries again


def _options(parser: Any) -> None:
    group = parser.add_argument_group("dicom-harness", "C-STORE load on a DICOM Storage SCP")
    group.add_argument("--dicom-target", default="", metavar="HOST:PORT",
                       help="the Storage SCP to load")
    group.add_argument("--dicom-called-aet", default=DEFAULT_CALLED_AE, metavar="AET")
    group.add_argument("--dicom-calling-aet", default=LOCUST_CALLING_AE, metavar="AET")
    group.add_argument("--dicom-workload", default="tiny", metavar="tiny|ct|mr|cr|us|mg|DIR",
                       help="synthetic profile or a folder of Part 10 files (on every worker)")
    group.add_argument("--dicom-transfer-syntax", default="explicit", metavar="TS")
    group.add_argument("--dicom-stores-per-association", type=int, default=0, metavar="N",
                       help="release and open a new association every N stores (0: keep it)")
    group.add_argument("--dicom-max-pdu", type=int, default=0, metavar="BYTES",
                       help="largest P-DATA-TF to send (0: the peer's maximum)")
    group.add_argument("--dicom-timeout", type=float, default=30.0, metavar="S",
                       help="seconds without progress before an association fails")
    group.add_argument("--dicom-no-nodelay", action="store_true", default=False,
                       help="leave Nagle's algorithm on")
    group.add_argument("--dicom-seed", type=int, default=0, metavar="N")
    group.add_argument("--dicom-report-dir", default="", metavar="DIR",
                       help="write bench.json and bench.html here when Locust quits")
    group.add_argument("--dicom-json", default="", metavar="FILE",
                       help="also write the Bench JSON here")
    group.add_argument("--dicom-no-html", action="store_true", default=False)


class _Process:
    """What the users of one Locust process share: workload, framed messages, the tally."""

    def __init__(self) -> None:
        self.workload: Workload | None = None
        self.workload_key: tuple[str, str, int] | None = None
        self.cache = PlanCache()
        self.tally = Tally()
        self.nonce = new_nonce()
        self.streams = 0
        self.env: Environment | None = None
        self.per_worker: dict[str, Tally] = {}  # master: what each worker reported
        self.run_info: RunInfo | None = None

    def workload_for(self, opts: Any) -> Workload:
        ts = resolve_transfer_syntax(opts.dicom_transfer_syntax)
        key = (opts.dicom_workload, ts, opts.dicom_seed)
        if self.workload is None or self.workload_key != key:
            self.workload = build_workload(opts.dicom_workload, ts, seed=opts.dicom_seed)
            self.workload_key = key
            self.cache = PlanCache()
        return self.workload

    def next_stream(self) -> int:
        self.streams += 1
        return self.streams


_PROC = _Process()


def sender_config(opts: Any) -> SenderConfig:
    try:
        host, port = parse_address(opts.dicom_target)
    except ValueError as exc:
        raise ValueError(f"--dicom-target {opts.dicom_target!r}: {exc}") from None
    return SenderConfig(host, port, opts.dicom_called_aet, opts.dicom_calling_aet,
                        opts.dicom_max_pdu, 1, not opts.dicom_no_nodelay, opts.dicom_timeout)


def status_text(code: int) -> str:
    return f"status 0x{code:04X} {classify(code)}: {describe(code).meaning}"


def _misconfigured(env: Environment, reason: str) -> None:
    """One line in the log, exit status 2, and this Locust process quits (once)."""
    if env.process_exit_code == 2:
        return
    log.error("dicom-harness: %s", reason)
    env.process_exit_code = 2
    if env.runner is not None:
        gevent.spawn(env.runner.quit)


class DicomStoreUser(User):
    """One simulated SCU: an association of its own, one C-STORE at a time."""

    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.assoc: BlockingAssociation | None = None
        self.in_store = False
        self.cfg: SenderConfig | None = None
        self.names: dict[str, str] = {}
        self.uids: UidSource | None = None
        self.per_association = 0
        self.seq = 0  # UIDs sent by this user so far: each association goes on from here

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        try:
            cfg = sender_config(opts)
            workload = _PROC.workload_for(opts)
        except ValueError as exc:  # WorkloadError too
            _misconfigured(self.environment, str(exc))
            return
        self.cfg = cfg  # set last: store_one idles while it is None
        self.uids = UidSource(_PROC.nonce, _PROC.next_stream())
        self.per_association = max(0, int(opts.dicom_stores_per_association))
        self.names = {t.sop_class: f"{workload.name} {uid_name(t.sop_class)}"
                      for t in workload.templates}

    def _open(self) -> BlockingAssociation | None:
        assert self.cfg is not None and self.uids is not None
        workload = _PROC.workload_for(self.environment.parsed_options)
        assoc = BlockingAssociation(self.cfg, workload, self.uids, _PROC.cache, self.seq)
        started = time.perf_counter()
        try:
            neg = assoc.open()
        except StoreFailure as exc:
            self._association_failed(exc, time.perf_counter() - started)
            time.sleep(RETRY_DELAY_S)  # gevent's sleep: Locust patched time
            return None
        _PROC.tally.established(neg.setup_s, neg.to_dict())
        self.environment.events.request.fire(
            request_type=ASSOCIATE, name="association", response_time=neg.setup_s * 1e3,
            response_length=0, exception=None, context={})
        return assoc

    def _association_failed(self, exc: StoreFailure, elapsed_s: float) -> None:
        _PROC.tally.failure(exc.kind, exc.reason)
        self.environment.events.request.fire(
            request_type=ASSOCIATE, name="association", response_time=elapsed_s * 1e3,
            response_length=0, exception=StoreFailure(exc.kind, f"{exc.kind}: {exc.reason}"),
            context={})

    def store_one(self) -> None:
        """The task: one C-STORE (opening the association first when needed)."""
        if self.cfg is None:  # misconfigured: the process is quitting
            time.sleep(1.0)
            return
        if self.assoc is None:
            self.assoc = self._open()
            if self.assoc is None:
                return
        assoc = self.assoc
        sent_at = time.time()
        self.in_store = True
        try:
            answer = assoc.store()
        except StoreFailure as exc:
            self.in_store = False
            self.seq = assoc.next_seq
            self.assoc = None
            _PROC.tally.failure(exc.kind, exc.reason)
            name = self.names.get(assoc.current_sop_class, STORE)
            self.environment.events.request.fire(
                request_type=STORE, name=name, response_time=(time.time() - sent_at) * 1e3,
                response_length=0, exception=StoreFailure(exc.kind, f"{exc.kind}: {exc.reason}"),
                context={})
            return
        self.in_store = False
        self.seq = assoc.next_seq
        _PROC.tally.store(sent_at, answer.latency_s, answer.status, answer.nbytes)
        # PS3.4 B.2.3: 0000H is Success; Warning (B000H, B007H, B006H) still means stored.
        failed = classify(answer.status) not in ("Success", "Warning")
        self.environment.events.request.fire(
            request_type=STORE, name=self.names[answer.sop_class],
            response_time=answer.latency_s * 1e3, response_length=answer.nbytes,
            exception=StoreFailure("status", status_text(answer.status)) if failed else None,
            context={"status": f"0x{answer.status:04X}"})
        if self.per_association and assoc.stores >= self.per_association:
            self.assoc = None
            try:
                assoc.release()
            except StoreFailure as exc:
                self._association_failed(exc, 0.0)

    tasks = [store_one]

    def on_stop(self) -> None:
        assoc, self.assoc = self.assoc, None
        if assoc is None:
            return
        if self.in_store:
            # Killed mid-store (Locust's stop without --stop-timeout): the SCP may or may not
            # have stored it, so it is counted, as a failure, and the association aborted.
            _PROC.tally.interrupted += 1
            self.environment.events.request.fire(
                request_type=STORE, name="interrupted", response_time=0, response_length=0,
                exception=StoreFailure("interrupted", "interrupted: the test stopped during "
                                       "the store (use --stop-timeout)"), context={})
            assoc.abort()
            return
        if assoc.sock is not None:  # the test is ending: do not wait long for A-RELEASE-RP
            assoc.sock.settimeout(min(5.0, assoc.cfg.timeout))
        with contextlib.suppress(StoreFailure):
            assoc.release()


# --- feeding the Bench JSON ----------------------------------------------------------------

def _init(environment: Environment, **_kw: Any) -> None:
    _PROC.env = environment
    opts = environment.parsed_options
    if opts is not None:
        # Build the workload now, before the clock of -t runs: the dataset factory's first
        # use (pydicom, faker) takes a second or more. A worker builds it from its own
        # options; if the master's differ, users rebuild it at their start.
        with contextlib.suppress(ValueError, WorkloadError, OSError):
            _PROC.workload_for(opts)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        def report(client_id: str, data: dict[str, Any]) -> None:
            data["dicom_harness"] = _PROC.tally.take()
        environment.events.report_to_master.add_listener(report)  # type: ignore[no-untyped-call]
    elif isinstance(runner, MasterRunner):
        def collect(client_id: str, data: dict[str, Any]) -> None:
            part = data.get("dicom_harness")
            if part is not None:
                _PROC.per_worker.setdefault(client_id, Tally()).add(part)
        environment.events.worker_report.add_listener(collect)  # type: ignore[no-untyped-call]


def _test_start(environment: Environment, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        cfg = sender_config(opts)
        workload = _PROC.workload_for(opts)
    except ValueError as exc:  # WorkloadError too
        _misconfigured(environment, str(exc))
        return
    host, port = cfg.host, cfg.port
    _PROC.run_info = RunInfo(
        host=host, port=port, called_aet=opts.dicom_called_aet,
        calling_aet=opts.dicom_calling_aet,
        workload={"name": workload.name, "instance_bytes": workload.instance_bytes,
                  "description": workload.description, "kind": workload.kind,
                  "templates": len(workload.templates),
                  "sop_classes": sorted({t.sop_class for t in workload.templates})},
        transfer_syntax=workload.transfer_syntax, nodelay=not opts.dicom_no_nodelay,
        max_pdu=opts.dicom_max_pdu, stores_per_association=opts.dicom_stores_per_association,
        mode="master" if isinstance(environment.runner, MasterRunner) else "local",
        users=int(getattr(opts, "num_users", 0) or 0),
        spawn_rate=getattr(opts, "spawn_rate", None),
        run_time_s=getattr(opts, "run_time", None))


def _locust_stats(environment: Environment) -> dict[str, Any]:
    """Locust's own totals, per request name, for cross-checking."""
    runner = environment.runner
    assert runner is not None
    out: dict[str, Any] = {}
    for (name, method), entry in sorted(runner.stats.entries.items()):
        out[f"{method} {name}"] = {"requests": entry.num_requests,
                                   "failures": entry.num_failures}
    out["errors"] = {str(err.error): err.occurrences
                     for err in runner.stats.errors.values()}
    return out


def _write(exit_code: int, **_kw: Any) -> None:
    """Locust has stopped (and the workers' last reports are in): write the reports."""
    env = _PROC.env
    if env is None or env.parsed_options is None or isinstance(env.runner, WorkerRunner):
        return
    opts = env.parsed_options
    report_dir = Path(opts.dicom_report_dir) if opts.dicom_report_dir else None
    json_file = Path(opts.dicom_json) if opts.dicom_json else None
    info = _PROC.run_info
    if info is None or (report_dir is None and json_file is None):
        return
    if isinstance(env.runner, MasterRunner):
        workers = _PROC.per_worker
    else:
        workers = {f"local-{os.getpid()}": _PROC.tally}
    total = Tally()
    for tally in workers.values():
        total.add(tally.to_dict())
    if info.users == 0 and env.runner is not None:
        info.users = env.runner.target_user_count or 0
    doc = bench_doc(total, workers, info, _locust_stats(env))
    try:
        for path in write_reports(doc, report_dir, json_file, not opts.dicom_no_html):
            print(f"{path.suffix.lstrip('.')}: {path}", flush=True)
    except OSError as exc:
        log.error("dicom-harness: cannot write reports: %s", exc)


# Locust's event hooks are untyped: registered here, once, when Locust imports this module.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_test_start)  # type: ignore[no-untyped-call]
events.quit.add_listener(_write)  # type: ignore[no-untyped-call]
