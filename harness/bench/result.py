"""The Bench JSON: merging per-process results and laying out the stable keys.

Stable keys (DESIGN.md "Bench JSON"): ``harness_version``, ``target``, ``workload``
{name, instance_bytes}, ``conditions`` {associations, workers, tcp_nodelay, max_pdu,
async_window, transfer_syntax, cpu, cores}, ``instances``, ``duration_s``,
``instances_per_s``, ``mb_per_s``, ``latency_ms`` {p50, p90, p99, max}, ``statuses``
{"0x0000": n}, ``errors``. Everything else is an extension: the top level describes the
last point of a sweep and ``sweep`` lists every point with the same keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.bench.stats import LatencyHistogram, ThroughputSeries, median
from harness.wire.status import classify

# The keys DESIGN.md fixes; tests check every result carries them.
STABLE_KEYS = ("harness_version", "target", "workload", "conditions", "instances",
               "duration_s", "instances_per_s", "mb_per_s", "latency_ms", "statuses",
               "errors")
STABLE_CONDITIONS = ("associations", "workers", "tcp_nodelay", "max_pdu", "async_window",
                     "transfer_syntax", "cpu", "cores")
STABLE_LATENCY = ("p50", "p90", "p99", "max")


@dataclass(slots=True)
class Merged:
    """Every process's share of one run, added up."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    series: ThroughputSeries | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    instances: int = 0
    nbytes: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0
    session_start: float = 0.0
    session_end: float = 0.0
    setup_s: list[float] = field(default_factory=list)
    negotiated: dict[str, Any] | None = None
    associations_ok: int = 0
    sent_total: int = 0
    sender_cpu_s: float = 0.0  # CPU the generator used (this process and its workers)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def session_s(self) -> float:
        return max(0.0, self.session_end - self.session_start)

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.duration_s / 1e6 if self.duration_s > 0 else 0.0

    @property
    def cpu_us_per_instance(self) -> float:
        return self.sender_cpu_s / self.sent_total * 1e6 if self.sent_total else 0.0

    @property
    def session_instances_per_s(self) -> float:
        return self.sent_total / self.session_s if self.session_s > 0 else 0.0


def merge(parts: list[dict[str, Any]]) -> Merged:
    out = Merged()
    starts, ends, s_starts, s_ends = [], [], [], []
    for part in parts:
        if "failed" in part:
            out.errors += 1
            out.error_messages.append(str(part["failed"]))
            continue
        out.histogram.merge(LatencyHistogram.from_dict(part["histogram"]))
        series = ThroughputSeries.from_dict(part["series"])
        if out.series is None:
            out.series = series
        else:
            out.series.merge(series)
        for code, n in part["statuses"].items():
            out.statuses[int(code)] = out.statuses.get(int(code), 0) + int(n)
        out.instances += int(part["instances"])
        out.nbytes += int(part["nbytes"])
        out.errors += int(part["errors"])
        out.error_messages += [str(m) for m in part["error_messages"]]
        starts.append(float(part["start"]))
        ends.append(float(part["end"]))
        s_starts.append(float(part["session_start"]))
        s_ends.append(float(part["session_end"]))
        out.setup_s += [float(s) for s in part["setup_s"]]
        out.negotiated = out.negotiated or part["negotiated"]
        out.associations_ok += int(part["associations_ok"])
        out.sent_total += int(part["sent_total"])
    if starts:
        out.start, out.end = min(starts), max(ends)
        out.session_start, out.session_end = min(s_starts), max(s_ends)
    out.error_messages = out.error_messages[:20]
    return out


def status_key(code: int) -> str:
    return f"0x{code:04X}"


def point_dict(merged: Merged, conditions: dict[str, Any]) -> dict[str, Any]:
    """One measurement point with the stable keys first, then the extensions."""
    setup_ms = sorted(s * 1e3 for s in merged.setup_s)
    statuses = {status_key(c): n for c, n in sorted(merged.statuses.items())}
    non_success = sum(n for c, n in merged.statuses.items() if c != 0x0000)
    return {
        "conditions": conditions,
        "instances": merged.instances,
        "duration_s": round(merged.duration_s, 6),
        "instances_per_s": round(merged.instances_per_s, 1),
        "mb_per_s": round(merged.mb_per_s, 2),
        "latency_ms": merged.histogram.summary_ms(),
        "statuses": statuses,
        "errors": merged.errors,
        # extensions
        "non_success": non_success,
        "status_categories": _categories(merged.statuses),
        "error_messages": merged.error_messages,
        "associations_established": merged.associations_ok,
        "setup_ms": {"mean": round(sum(setup_ms) / len(setup_ms), 3) if setup_ms else None,
                     "max": round(setup_ms[-1], 3) if setup_ms else None,
                     "p50": round(median(setup_ms), 3) if setup_ms else None},
        "session": {"instances": merged.sent_total, "duration_s": round(merged.session_s, 6),
                    "instances_per_s": round(merged.session_instances_per_s, 1),
                    "what": "every store incl. warm-up, from TCP connect to release"},
        "negotiated": merged.negotiated,
        "generator_cpu": {"cpu_s": round(merged.sender_cpu_s, 3),
                          "us_per_instance": round(merged.cpu_us_per_instance, 1)},
        "series": merged.series.points() if merged.series is not None else [],
        "latency_cdf": [[round(ms, 4), round(f, 5)] for ms, f in merged.histogram.cdf()],
    }


def _categories(statuses: dict[int, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, n in statuses.items():
        key = str(classify(code))
        out[key] = out.get(key, 0) + n
    return out


def bench_document(*, started_at: str, target: dict[str, Any], workload: dict[str, Any],
                   points: list[dict[str, Any]], extra: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The whole Bench JSON: stable keys of the last point on top, every point in ``sweep``."""
    last = points[-1]
    doc: dict[str, Any] = {"harness_version": __version__, "started_at": started_at,
                           "target": target, "workload": workload}
    doc.update(last)
    doc["sweep"] = points
    doc.update(extra or {})
    return doc


def ratio_summary(values_ours: list[float], values_theirs: list[float]) -> float | None:
    """Median of ours over median of theirs (None when theirs is zero or missing)."""
    a, b = median(values_ours), median(values_theirs)
    if not values_ours or not values_theirs or not b or b != b:
        return None
    return round(a / b, 3)


def paired_ratio(values_ours: list[float], values_theirs: list[float]) -> float | None:
    """Median of the per-repetition ratios: each pair ran back to back, so slow drift of a
    shared machine cancels out of every pair."""
    pairs = [a / b for a, b in zip(values_ours, values_theirs, strict=False) if b > 0]
    return round(median(pairs), 3) if pairs else None


def write_json(doc: dict[str, Any], path: Path) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
