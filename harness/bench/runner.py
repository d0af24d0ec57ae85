"""A whole bench run: the target, every sweep point, the comparisons, the Bench JSON.

For each ``--associations`` value the runner measures the load generator against the
target; with ``--compare dcmtk`` it runs DCMTK ``storescu`` on the same workload right
before or after (the order alternates across ``--repeat`` repetitions so drift hits both
alike); with ``--compare loopback`` it measures a plain socket copy of the same bytes.
Without a target it starts the reference SCP (``dicom-harness serve``) as a subprocess.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.bench import dcmtk
from harness.bench.loopback import measure_loopback
from harness.bench.result import (
    Merged,
    bench_document,
    merge,
    paired_ratio,
    point_dict,
    ratio_summary,
)
from harness.bench.sender import ADVERTISED_MAX_PDU, SenderConfig
from harness.bench.target import ProcessProbe, ReferenceSCP, TargetError
from harness.bench.target import machine as machine_info
from harness.bench.workers import event_loop_name, run_point, shares
from harness.bench.workload import (
    UidSource,
    Workload,
    WorkloadError,
    build_workload,
    close_workload,
    new_nonce,
    write_part10_files,
)
from harness.engine.target_options import (
    BENCH,
    DEFAULT_CALLED_AET,
    TargetUnreachable,
    check_reachable,
    option_default,
)
from harness.wire.constants import EXPLICIT_VR_LE

# Stores per association when neither --instances nor --duration is given.
DEFAULT_INSTANCES = {"tiny": 2000, "ct": 200, "mr": 500, "cr": 20, "us": 20, "mg": 4}
DEFAULT_INSTANCES_OTHER = 200
WARMUP_BYTES = 64 << 20  # warm-up per association stops short of this many bytes
LOOPBACK_MIN_BYTES = 512 << 20  # enough for a stable loopback figure
LOOPBACK_FILES_MIN_BYTES = 256 << 20
LOOPBACK_FILES_MAX_BYTES = 1 << 30  # written to disk, then removed
COMPARE_MODES = ("dcmtk", "loopback", "plain")
DCMTK_STREAM = 900000  # UID streams of the files written for storescu


class BenchUsageError(ValueError):
    """Bad options or an unreachable target: the CLI prints it on one line, exit 2."""


@dataclass(slots=True)
class BenchOptions:
    target: tuple[str, int] | None = None
    called_aet: str = DEFAULT_CALLED_AET
    calling_aet: str = option_default("calling-aet", BENCH)
    associations: list[int] = field(default_factory=lambda: [1])
    instances: int | None = None
    duration: float | None = None
    workload: str = "tiny"
    workers: int = 1
    compare: list[str] = field(default_factory=list)
    repeat: int = 1
    target_pid: int | None = None
    window: int = 1
    warmup: int | None = None
    transfer_syntax: str = EXPLICIT_VR_LE
    nodelay: bool = True
    max_pdu: int = 0
    timeout: float = option_default("timeout", BENCH)
    seed: int = 0
    storescu: Path = dcmtk.STORESCU
    uvloop: bool = False
    scp_profile: Path | None = None
    tls: Any = None  # harness.net.tls.TLSOptions: store over TLS
    plain_target: tuple[str, int] | None = None  # --compare plain against an external target


class Phase(Protocol):
    def __call__(self, completed: int) -> None: ...


class UI(Protocol):
    """What the runner tells the user while it works (console.py implements it)."""

    def phase(self, label: str, total: int | None) -> contextlib.AbstractContextManager[
            Phase]: ...

    def note(self, text: str) -> None: ...


class SilentUI:
    @contextlib.contextmanager
    def phase(self, label: str, total: int | None) -> Iterator[Phase]:
        yield lambda completed: None

    def note(self, text: str) -> None:
        return None


def scratch_dir(need: int) -> str | None:
    """Memory-backed /dev/shm when it has room: writing storescu's input files to a disk
    just before a measurement would leave write-back running during it."""
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
    except OSError:
        return None
    return str(shm) if stat.f_bavail * stat.f_frsize > 2 * need + (256 << 20) else None


def own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (forked workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime + dcmtk.children_cpu()


def default_instances(workload: Workload) -> int:
    return DEFAULT_INSTANCES.get(workload.kind or "", DEFAULT_INSTANCES_OTHER)


def default_warmup(workload: Workload, instances: int | None) -> int:
    count = 50 if instances is None else min(50, instances // 10)
    by_bytes = max(1, WARMUP_BYTES // max(1, workload.instance_bytes))
    return max(0, min(count, by_bytes))


def validate(opts: BenchOptions) -> None:
    if opts.instances is not None and opts.duration is not None:
        raise BenchUsageError("give --instances or --duration, not both")
    if opts.instances is not None and opts.instances < 1:
        raise BenchUsageError(f"--instances {opts.instances}: must be at least 1")
    if opts.duration is not None and not opts.duration > 0:
        raise BenchUsageError(f"--duration {opts.duration}: must be positive")
    if not opts.associations or any(n < 1 or n > 1000 for n in opts.associations):
        raise BenchUsageError("--associations: each value must be 1..1000")
    if opts.workers < 1 or opts.workers > 64:
        raise BenchUsageError(f"--workers {opts.workers}: must be 1..64")
    if opts.window < 0 or opts.window > 65535:
        raise BenchUsageError(f"--window {opts.window}: must be 0..65535 (0: unlimited)")
    if opts.warmup is not None and opts.warmup < 0:
        raise BenchUsageError(f"--warmup {opts.warmup}: must be 0 or more")
    if opts.max_pdu and opts.max_pdu < 16:
        raise BenchUsageError(f"--max-pdu {opts.max_pdu}: must be 0 (the peer's) or >= 16")
    if opts.repeat < 1:
        raise BenchUsageError(f"--repeat {opts.repeat}: must be at least 1")
    unknown = [c for c in opts.compare if c not in COMPARE_MODES]
    if unknown:
        raise BenchUsageError(f"--compare {', '.join(unknown)}: known: {', '.join(COMPARE_MODES)}")
    if "dcmtk" in opts.compare:
        if opts.duration is not None:
            raise BenchUsageError("--compare dcmtk needs --instances (storescu sends files)")
        if not dcmtk.available(dcmtk.DcmtkConfig(opts.storescu)):
            raise BenchUsageError(f"--compare dcmtk: {opts.storescu} not found or not "
                                  "executable")
    if "plain" in opts.compare and opts.tls is None:
        raise BenchUsageError("--compare plain measures TLS against plain TCP: it needs --tls")
    if "plain" in opts.compare and opts.target is not None and opts.plain_target is None:
        raise BenchUsageError("--compare plain with --target needs --plain-target HOST:PORT "
                              "(the same SCP's plain TCP port)")
    if opts.target_pid is not None and not Path(f"/proc/{opts.target_pid}").exists():
        raise BenchUsageError(f"--target-pid {opts.target_pid}: no such process")


@dataclass(slots=True)
class _Target:
    host: str
    port: int
    embedded: ReferenceSCP | None
    tls: Any = None  # the client TLSOptions when the target is reached over TLS
    plain: tuple[str, int] | None = None  # the same SCP over plain TCP (--compare plain)


@contextlib.contextmanager
def _target(opts: BenchOptions) -> Iterator[_Target]:
    if opts.target is not None:
        host, port = opts.target
        try:
            check_reachable(host, port, min(opts.timeout, 5.0))
        except TargetUnreachable as exc:
            raise BenchUsageError(f"target {exc}") from None
        if opts.tls is not None:
            _check_tls(host, port, opts)
        yield _Target(host, port, None, opts.tls, opts.plain_target)
        return
    if opts.tls is not None:
        with _embedded_tls(opts) as target:
            yield target
        return
    scp = ReferenceSCP(profile=opts.scp_profile)
    try:
        scp.start()
    except TargetError as exc:
        raise BenchUsageError(str(exc)) from None
    try:
        yield _Target("127.0.0.1", scp.port, scp)
    finally:
        scp.stop()


def _check_tls(host: str, port: int, opts: BenchOptions) -> None:
    from harness.engine.tls_setup import TLSSetupError, check_tls_handshake
    from harness.net.tls import TLSClient, TLSConfigError

    try:
        check_tls_handshake(host, port, TLSClient(opts.tls, opts.tls.client_context()),
                            min(opts.timeout, 10.0))
    except (TLSSetupError, TLSConfigError) as exc:
        raise BenchUsageError(str(exc)) from None


@contextlib.contextmanager
def _embedded_tls(opts: BenchOptions) -> Iterator[_Target]:
    """The reference SCP serving TLS with certificates made for the run (mutual TLS, as the
    run's embedded SCP); with --compare plain, a second one on plain TCP, same profile."""
    from harness.net.tls import TLSOptions
    from harness.net.tlscerts import make_cert_set

    certs = make_cert_set()
    tls_scp = ReferenceSCP(profile=opts.scp_profile, extra_args=[
        "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
        "--tls-ca", str(certs.ca), "--tls-require-client-cert"])
    plain_scp = ReferenceSCP(profile=opts.scp_profile) if "plain" in opts.compare else None
    try:
        for scp in (tls_scp, plain_scp):
            if scp is not None:
                scp.start()
        client = TLSOptions(cert=str(certs.client_cert), key=str(certs.client_key),
                            ca=str(certs.ca), min_version=opts.tls.min_version)
        yield _Target("127.0.0.1", tls_scp.port, tls_scp, client,
                      ("127.0.0.1", plain_scp.port) if plain_scp is not None else None)
    except TargetError as exc:
        raise BenchUsageError(str(exc)) from None
    finally:
        for scp in (tls_scp, plain_scp):
            if scp is not None:
                scp.stop()
        shutil.rmtree(certs.directory, ignore_errors=True)


def run(opts: BenchOptions, ui: UI | None = None) -> dict[str, Any]:
    """Run the bench and return the Bench JSON document."""
    ui = ui or SilentUI()
    validate(opts)
    try:
        workload = build_workload(opts.workload, opts.transfer_syntax, seed=opts.seed)
    except WorkloadError as exc:
        raise BenchUsageError(str(exc)) from None
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    instances = opts.instances
    if instances is None and opts.duration is None:
        instances = default_instances(workload)
    warmup = default_warmup(workload, instances) if opts.warmup is None else opts.warmup
    try:
        with _target(opts) as target:
            run_ = _Run(opts, workload, target, instances, warmup, ui)
            points = [run_.point(n) for n in opts.associations]
            target_doc = run_.target_doc()
    finally:
        close_workload(workload)
    workload_doc = {"name": workload.name, "instance_bytes": workload.instance_bytes,
                    "description": workload.description, "kind": workload.kind,
                    "templates": len(workload.templates),
                    "sop_classes": sorted({t.sop_class for t in workload.templates}),
                    "skipped_files": workload.skipped[:20]}
    return bench_document(started_at=started_at, target=target_doc, workload=workload_doc,
                          points=points, extra={"summary": summarize(points)})


def _add_ratio(got: dict[str, Any], merged: Merged, definition: str) -> None:
    """Our rate as a share of a plain copy's, in a loopback result."""
    got["ratio"] = round(merged.mb_per_s / got["mb_per_s"], 3) if got["mb_per_s"] else None
    got["ratio_definition"] = definition


def _settle_disk() -> None:
    """Write back dirty pages first, so that one disk-writing measurement does not pay for
    the write-back of the one before it."""
    with contextlib.suppress(OSError):
        os.sync()


class _Run:
    def __init__(self, opts: BenchOptions, workload: Workload, target: _Target,
                 instances: int | None, warmup: int, ui: UI) -> None:
        self.opts = opts
        self.workload = workload
        self.target = target
        self.instances = instances
        self.warmup = warmup
        self.ui = ui
        self.machine = machine_info()
        self.first: Merged | None = None
        self.dcmtk_cfg = dcmtk.DcmtkConfig(opts.storescu, opts.called_aet, "STORESCU",
                                           opts.max_pdu, opts.nodelay,
                                           max(60.0, opts.timeout * 20))
        self.pid = opts.target_pid or (target.embedded.pid if target.embedded else None)

    def config(self) -> SenderConfig:
        o = self.opts
        return SenderConfig(self.target.host, self.target.port, o.called_aet, o.calling_aet,
                            o.max_pdu, o.window, o.nodelay, o.timeout,
                            sendfile=self.target.tls is None, tls=self.target.tls)

    def ours(self, associations: int, label: str) -> tuple[Merged, dict[str, Any] | None]:
        total = None if self.instances is None else associations * (self.instances +
                                                                    self.warmup)
        probe = ProcessProbe(self.pid) if self.pid else None
        if probe is not None:
            probe.begin()
        cpu = own_cpu()
        with self.ui.phase(label, total) as update:
            parts = run_point(self.config(), self.workload, associations=associations,
                              workers=self.opts.workers, instances=self.instances,
                              duration=self.opts.duration, warmup=self.warmup,
                              nonce=new_nonce(), progress=update, use_uvloop=self.opts.uvloop)
        merged = merge(parts)
        merged.sender_cpu_s = own_cpu() - cpu
        process = None
        if probe is not None:
            probe.end()
            process = probe.result(merged.session_s)
        self.first = self.first or merged
        return merged, process

    def point(self, associations: int) -> dict[str, Any]:
        o = self.opts
        compare_dcmtk = "dcmtk" in o.compare
        reps = o.repeat if compare_dcmtk else 1
        ours: list[tuple[Merged, dict[str, Any] | None]] = []
        theirs: list[dcmtk.DcmtkRun] = []
        with self._dcmtk_files(associations, compare_dcmtk) as files:
            for rep in range(reps):
                order = ("ours", "dcmtk") if rep % 2 == 0 else ("dcmtk", "ours")
                for who in order:
                    label = f"{associations} assoc" + (f", run {rep + 1}/{reps}" if reps > 1
                                                       else "")
                    if who == "ours":
                        if "loopback" in o.compare:
                            _settle_disk()
                        ours.append(self.ours(associations, f"harness  {label}"))
                    elif compare_dcmtk and files is not None:
                        theirs.append(self._storescu(associations, files, rep, label))
        # With repetitions, the point reports the median one (by end-to-end rate).
        ranked = sorted(range(len(ours)), key=lambda i: ours[i][0].session_instances_per_s)
        merged, process = ours[ranked[(len(ranked) - 1) // 2]]
        point = point_dict(merged, self.conditions(associations, merged))
        if process is not None:
            point["target_process"] = process
        if len(ours) > 1:
            point["repetitions"] = [_brief(m) for m, _p in ours]
        if compare_dcmtk:
            point["compare"] = self._compare_doc(ours, theirs)
        if "loopback" in o.compare:
            point["loopback"] = self._loopback(associations, merged)
        if "plain" in o.compare:
            point["plain"] = self._plain(associations, merged)
        if self.target.tls is not None:
            point["conditions"]["tls"] = {"min_version": self.target.tls.min_version}
        return point

    # --- TLS against plain TCP ------------------------------------------------------------
    def _plain(self, associations: int, tls: Merged) -> dict[str, Any]:
        """The same workload over plain TCP to the same SCP (its plain port), right after
        the TLS measurement: ratio = TLS rate / plain rate (1.0 = TLS costs nothing)."""
        assert self.target.plain is not None
        host, port = self.target.plain
        o = self.opts
        cfg = SenderConfig(host, port, o.called_aet, o.calling_aet, o.max_pdu, o.window,
                           o.nodelay, o.timeout)
        with self.ui.phase(f"plain TCP  {associations} assoc", None):
            parts = run_point(cfg, self.workload, associations=associations,
                              workers=o.workers, instances=self.instances,
                              duration=o.duration, warmup=self.warmup, nonce=new_nonce(),
                              progress=None, use_uvloop=o.uvloop)
        plain = merge(parts)
        return {"target": f"{host}:{port}", "instances": plain.instances,
                "instances_per_s": round(plain.instances_per_s, 1),
                "mb_per_s": round(plain.mb_per_s, 2), "errors": plain.errors,
                "ratio": round(tls.instances_per_s / plain.instances_per_s, 3)
                if plain.instances_per_s else None,
                "ratio_definition": "TLS instances/s divided by plain TCP instances/s, "
                                    "same SCP, same workload, measured back to back"}

    # --- DCMTK --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _dcmtk_files(self, associations: int, wanted: bool) -> Iterator[Path | None]:
        if not wanted:
            yield None
            return
        need = 2 * associations * (self.instances or 0) * self.workload.instance_bytes
        root = Path(tempfile.mkdtemp(prefix="dicom-harness-storescu-", dir=scratch_dir(need)))
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _storescu(self, associations: int, root: Path, rep: int, label: str) -> dcmtk.DcmtkRun:
        assert self.instances is not None
        nonce = new_nonce()
        folders = []
        with self.ui.phase(f"writing files for storescu ({label})", None):
            for i in range(associations):
                folder = root / f"a{i}"
                write_part10_files(self.workload, folder, self.instances,
                                   UidSource(nonce, DCMTK_STREAM + i))
                folders.append(folder)
            startup = write_part10_files(self.workload, root / "startup", associations,
                                         UidSource(nonce, DCMTK_STREAM + 90000))
        with self.ui.phase(f"storescu {label}", None):
            return dcmtk.run(self.dcmtk_cfg, self.target.host, self.target.port, folders,
                             self.instances * associations, startup)

    def _compare_doc(self, ours: list[tuple[Merged, dict[str, Any] | None]],
                     theirs: list[dcmtk.DcmtkRun]) -> dict[str, Any]:
        ours_session = [m.session_instances_per_s for m, _p in ours]
        ours_measured = [m.instances_per_s for m, _p in ours]
        dcmtk_net = [r.net_instances_per_s for r in theirs]
        dcmtk_raw = [r.instances_per_s for r in theirs]
        return {
            "tool": "dcmtk", "storescu": str(self.dcmtk_cfg.storescu),
            "version": dcmtk.version(self.dcmtk_cfg), "env": self.dcmtk_cfg.env_record,
            "repetitions": len(theirs),
            "order": "alternating (ours first on odd repetitions, storescu first on even)",
            "ours_session_instances_per_s": [round(v, 1) for v in ours_session],
            "ours_measured_instances_per_s": [round(v, 1) for v in ours_measured],
            "dcmtk_instances_per_s": [round(v, 1) for v in dcmtk_raw],
            "dcmtk_net_instances_per_s": [round(v, 1) for v in dcmtk_net],
            "dcmtk_startup_s": [round(r.startup_s, 4) for r in theirs],
            "ours_cpu_us_per_instance": [round(m.cpu_us_per_instance, 1) for m, _p in ours],
            "dcmtk_cpu_us_per_instance": [round(r.cpu_us_per_instance, 1) for r in theirs],
            "cpu_ratio": paired_ratio([r.cpu_us_per_instance for r in theirs],
                                      [m.cpu_us_per_instance for m, _p in ours]),
            "dcmtk_errors": [e for r in theirs for e in r.errors][:10],
            "ratio": paired_ratio(ours_session, dcmtk_net),
            "ratio_of_medians": ratio_summary(ours_session, dcmtk_net),
            "ratio_measured_vs_raw": paired_ratio(ours_measured, dcmtk_raw),
            "ratio_definition": "median over repetitions of ours / storescu, each pair run "
                                "back to back; ours: every store, TCP connect to release; "
                                "storescu: wall time minus a one-file storescu run",
        }

    # --- loopback -----------------------------------------------------------------------
    def _loopback(self, associations: int, merged: Merged) -> dict[str, Any]:
        template = self.workload.templates[0]
        data = template.data()[:1 << 20]
        # The same bytes, in the large writes a plain copy would use.
        payload = (data * (-(-(1 << 20) // len(data))))[:1 << 20]
        total = max(merged.nbytes, LOOPBACK_MIN_BYTES)
        host = self.target.host if self.target.host in ("127.0.0.1", "::1") else "127.0.0.1"
        with self.ui.phase(f"loopback copy, {associations} connection(s)", None):
            got = measure_loopback(total, associations, payload, host)
        _add_ratio(got, merged, "bench MB/s (data set bytes) / plain TCP copy MB/s")
        got["files"] = self._loopback_files(associations, merged, payload, host)
        return got

    def _loopback_files(self, associations: int, merged: Merged, payload: bytes,
                        host: str) -> dict[str, Any]:
        """The same copy into one file per instance: what plain storing costs here."""
        record = max(1, len(self.workload.templates[0].data()))
        total = min(max(merged.nbytes, LOOPBACK_FILES_MIN_BYTES), LOOPBACK_FILES_MAX_BYTES)
        # Same file system as the embedded SCP's storage; else the system's temporary one.
        embedded = self.target.embedded
        directory = str(embedded.storage_dir.parent) if embedded is not None else None
        free = shutil.disk_usage(directory or tempfile.gettempdir()).free
        if free < 2 * total:
            return {"skipped": f"{free >> 20} MiB free on disk, {2 * total >> 20} MiB needed",
                    "mb_per_s": 0.0, "ratio": None}
        _settle_disk()
        with self.ui.phase(f"loopback copy into files, {associations} connection(s)", None):
            got = measure_loopback(total, associations, payload, host, record=record,
                                   directory=directory)
        _add_ratio(got, merged, "bench MB/s / plain TCP copy MB/s into one file per instance "
                   "(temporary name, then rename)")
        return got

    # --- documents ------------------------------------------------------------------------
    def conditions(self, associations: int, merged: Merged) -> dict[str, Any]:
        o = self.opts
        neg = merged.negotiated or {}
        return {
            "associations": associations,
            "workers": len(shares(associations, o.workers)),
            "tcp_nodelay": o.nodelay,
            "max_pdu": neg.get("send_pdu"),
            "async_window": neg.get("window", 1),
            "transfer_syntax": self.workload.transfer_syntax,
            "cpu": self.machine["cpu"],
            "cores": self.machine["cores"],
            # extensions
            "tcp_nodelay_target": True if self.target.embedded is not None else None,
            "peer_max_pdu": neg.get("peer_max_pdu"),
            "advertised_max_pdu": ADVERTISED_MAX_PDU,
            "requested_window": o.window,
            "instance_bytes": self.workload.instance_bytes,
            "instances_per_association": self.instances,
            "duration_limit_s": o.duration,
            "warmup_per_association": self.warmup,
            "event_loop": event_loop_name(o.uvloop),
            "platform": self.machine["platform"],
            "python": self.machine["python"],
        }

    def target_doc(self) -> dict[str, Any]:
        neg = (self.first.negotiated if self.first is not None else None) or {}
        t = self.target
        return {"host": t.host, "port": t.port, "called_aet": self.opts.called_aet,
                "implementation_class_uid": neg.get("implementation_class_uid"),
                "implementation_version_name": neg.get("implementation_version_name"),
                "kind": "reference SCP (dicom-harness serve, subprocess)" if t.embedded
                else "external", "pid": self.pid}


def _brief(m: Merged) -> dict[str, Any]:
    return {"instances": m.instances, "duration_s": round(m.duration_s, 4),
            "instances_per_s": round(m.instances_per_s, 1), "mb_per_s": round(m.mb_per_s, 2),
            "session_instances_per_s": round(m.session_instances_per_s, 1),
            "errors": m.errors}


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers over the sweep (the HTML page and the console show them)."""
    best = max(points, key=lambda p: p["instances_per_s"])
    out: dict[str, Any] = {
        "points": len(points),
        "best": {"associations": best["conditions"]["associations"],
                 "instances_per_s": best["instances_per_s"], "mb_per_s": best["mb_per_s"]},
        "errors": sum(p["errors"] for p in points),
        "non_success": sum(p["non_success"] for p in points),
    }
    ratios = {str(p["conditions"]["associations"]): p["compare"]["ratio"] for p in points
              if "compare" in p}
    if ratios:
        out["dcmtk_ratio_by_associations"] = ratios
    loop = {str(p["conditions"]["associations"]): p["loopback"]["ratio"] for p in points
            if "loopback" in p}
    if loop:
        out["loopback_ratio_by_associations"] = loop
    return out

