"""From a Locust run to the Bench JSON and bench.html: per-process tallies, merged on the master.

Locust's own statistics round response times to whole milliseconds, too coarse for stores
that take 0.1 ms; so every process also keeps a :class:`Tally` (the bench's latency
histogram and throughput series, statuses, bytes, association failures). A Locust worker
sends the part gathered since its last report with every report to the master
(``report_to_master``); the master adds them up per worker (``worker_report``) and, when
Locust quits, writes ``bench.json`` (the stable Bench JSON plus a ``locust`` section that
names the workers that took part) and ``bench.html`` with the single-machine bench's page.

Times are wall-clock (``time.time``) so that tallies from several machines line up.
Nothing here imports Locust.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.result import Merged, bench_document, point_dict, write_json
from harness.bench.stats import LatencyHistogram, ThroughputSeries
from harness.bench.target import machine

MAX_MESSAGES = 20


@dataclass(slots=True)
class Tally:
    """What one process (or, merged, the whole run) measured."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    series: ThroughputSeries | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    instances: int = 0  # stores answered (any status)
    nbytes: int = 0  # data set bytes of answered stores
    failures: dict[str, int] = field(default_factory=dict)  # association failures by kind
    messages: list[str] = field(default_factory=list)
    interrupted: int = 0  # stores cut short by the end of the test
    associations: int = 0  # associations established
    setup_s: list[float] = field(default_factory=list)
    negotiated: dict[str, Any] | None = None
    first: float = 0.0  # wall time the first store was sent
    last: float = 0.0  # wall time the last answer arrived

    # --- recording (in the process that sends) --------------------------------------------
    def store(self, sent_at: float, latency_s: float, status: int, nbytes: int) -> None:
        done = sent_at + latency_s
        if self.series is None:
            self.series = ThroughputSeries(sent_at)
            self.first = sent_at
        self.first = min(self.first, sent_at)
        self.last = max(self.last, done)
        self.histogram.add(latency_s)
        self.series.add(done, nbytes)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.instances += 1
        self.nbytes += nbytes

    def failure(self, kind: str, message: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if len(self.messages) < MAX_MESSAGES and message not in self.messages:
            self.messages.append(message)

    def established(self, setup_s: float, negotiated: dict[str, Any]) -> None:
        self.associations += 1
        if len(self.setup_s) < 10000:
            self.setup_s.append(setup_s)
        self.negotiated = self.negotiated or negotiated

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    # --- shipping between processes -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"histogram": self.histogram.to_dict(),
                "series": self.series.to_dict() if self.series is not None else None,
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "instances": self.instances, "nbytes": self.nbytes,
                "failures": dict(self.failures), "messages": list(self.messages),
                "interrupted": self.interrupted, "associations": self.associations,
                "setup_s": list(self.setup_s), "negotiated": self.negotiated,
                "first": self.first, "last": self.last}

    def take(self) -> dict[str, Any]:
        """What was recorded since the last ``take``, as plain data; the tally restarts."""
        out = self.to_dict()
        self.histogram = LatencyHistogram()
        self.series = None
        self.statuses = {}
        self.instances = self.nbytes = self.interrupted = self.associations = 0
        self.failures = {}
        self.messages = []
        self.setup_s = []
        self.first = self.last = 0.0
        return out

    def add(self, part: dict[str, Any]) -> None:
        """Merge a ``to_dict``/``take`` result into this tally."""
        had = self.instances
        self.histogram.merge(LatencyHistogram.from_dict(part["histogram"]))
        if part["series"] is not None:
            series = ThroughputSeries.from_dict(part["series"])
            if self.series is None:
                self.series = series
            elif series.origin < self.series.origin:
                series.merge(self.series)  # keep the earliest origin: merge() clamps at 0
                self.series = series
            else:
                self.series.merge(series)
        for code, n in part["statuses"].items():
            self.statuses[int(code)] = self.statuses.get(int(code), 0) + int(n)
        self.instances += int(part["instances"])
        self.nbytes += int(part["nbytes"])
        for kind, n in part["failures"].items():
            self.failures[kind] = self.failures.get(kind, 0) + int(n)
        for message in part["messages"]:
            if len(self.messages) < MAX_MESSAGES and message not in self.messages:
                self.messages.append(str(message))
        self.interrupted += int(part["interrupted"])
        self.associations += int(part["associations"])
        self.setup_s += [float(s) for s in part["setup_s"]][:10000 - len(self.setup_s)]
        self.negotiated = self.negotiated or part["negotiated"]
        if part["instances"]:
            first, last = float(part["first"]), float(part["last"])
            self.first = first if had == 0 else min(self.first, first)
            self.last = max(self.last, last)

    def merged(self) -> Merged:
        """The bench's :class:`Merged` view, for ``point_dict``."""
        return Merged(histogram=self.histogram, series=self.series, statuses=self.statuses,
                      instances=self.instances, nbytes=self.nbytes, errors=self.errors,
                      error_messages=self.messages, start=self.first, end=self.last,
                      session_start=self.first, session_end=self.last,
                      setup_s=self.setup_s, negotiated=self.negotiated,
                      associations_ok=self.associations, sent_total=self.instances)


@dataclass(slots=True)
class RunInfo:
    """What the Bench JSON says about the run besides the measurements."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    workload: dict[str, Any]
    transfer_syntax: str
    nodelay: bool
    max_pdu: int
    stores_per_association: int
    mode: str  # local | master
    users: int = 0
    spawn_rate: float | None = None
    run_time_s: float | None = None
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def bench_doc(total: Tally, workers: dict[str, Tally], info: RunInfo,
              locust_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Bench JSON of a Locust run (one point; ``locust`` names the workers)."""
    merged = total.merged()
    mach = machine()
    neg = total.negotiated or {}
    conditions = {
        "associations": info.users, "workers": max(1, len(workers)),
        "tcp_nodelay": info.nodelay, "max_pdu": neg.get("send_pdu"), "async_window": 1,
        "transfer_syntax": info.transfer_syntax, "cpu": mach["cpu"], "cores": mach["cores"],
        # extensions
        "peer_max_pdu": neg.get("peer_max_pdu"), "requested_max_pdu": info.max_pdu,
        "instance_bytes": info.workload.get("instance_bytes"),
        "stores_per_association": info.stores_per_association,
        "event_loop": "gevent (Locust)", "platform": mach["platform"],
        "python": mach["python"],
    }
    point = point_dict(merged, conditions)
    point["session"]["what"] = "first store sent to last answer, every Locust worker"
    point["failures_by_kind"] = dict(sorted(total.failures.items()))
    point["interrupted"] = total.interrupted
    worker_rows = []
    for wid, tally in sorted(workers.items()):
        m = tally.merged()
        worker_rows.append({"id": wid, "instances": tally.instances,
                            "instances_per_s": round(m.instances_per_s, 1),
                            "mb_per_s": round(m.mb_per_s, 2),
                            "statuses": {f"0x{c:04X}": n for c, n in
                                         sorted(tally.statuses.items())},
                            "errors": tally.errors, "associations": tally.associations})
    target = {"host": info.host, "port": info.port, "called_aet": info.called_aet,
              "implementation_class_uid": neg.get("implementation_class_uid"),
              "implementation_version_name": neg.get("implementation_version_name"),
              "kind": "external"}
    locust = {"mode": info.mode, "workers": worker_rows, "users": info.users,
              "spawn_rate": info.spawn_rate, "run_time_s": info.run_time_s,
              "calling_aet": info.calling_aet}
    if locust_stats is not None:
        locust["stats"] = locust_stats
    summary = {"points": 1, "errors": point["errors"], "non_success": point["non_success"],
               "best": {"associations": info.users,
                        "instances_per_s": point["instances_per_s"],
                        "mb_per_s": point["mb_per_s"]}}
    return bench_document(started_at=info.started_at, target=target,
                          workload=info.workload, points=[point],
                          extra={"summary": summary, "locust": locust})


def write_reports(doc: dict[str, Any], report_dir: Path | None, json_file: Path | None,
                  html: bool) -> list[Path]:
    from harness.bench.html import write_html

    written: list[Path] = []
    if report_dir is not None:
        written.append(write_json(doc, report_dir / "bench.json"))
        if html:
            written.append(write_html(doc, report_dir / "bench.html"))
    if json_file is not None:
        written.append(write_json(doc, json_file))
    return written
