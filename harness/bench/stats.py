"""Measurement containers of the benchmark: a latency histogram, a throughput time series.

Both take constant memory per store (a 100,000-store run holds no more than a 1,000-store
one): latencies go into log-spaced buckets with a bounded relative error (``PRECISION``),
throughput into fixed time buckets. Both merge, so worker processes report them back and
the parent adds them up. ``percentile`` is the exact nearest-rank definition used to check
the histogram and for small samples (repetitions of a comparison).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Relative width of one latency bucket: a reported percentile is within 1% of the truth.
PRECISION = 0.01
MIN_LATENCY_S = 1e-6  # everything faster lands in bucket 0
MAX_LATENCY_S = 3600.0
_LOG_STEP = math.log1p(PRECISION)
BUCKETS = int(math.log(MAX_LATENCY_S / MIN_LATENCY_S) / _LOG_STEP) + 2

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The middle value (mean of the two middle ones for an even count); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def bucket_of(seconds: float) -> int:
    if seconds <= MIN_LATENCY_S:
        return 0
    return min(BUCKETS - 1, int(math.log(seconds / MIN_LATENCY_S) / _LOG_STEP) + 1)


def bucket_upper(index: int) -> float:
    """The largest latency (seconds) that falls in bucket ``index``."""
    return MIN_LATENCY_S * math.exp(index * _LOG_STEP)


@dataclass(slots=True)
class LatencyHistogram:
    """Per-store latencies in log-spaced buckets; exact count, minimum, maximum and sum."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total_s: float = 0.0
    min_s: float = math.inf
    max_s: float = 0.0

    def add(self, seconds: float) -> None:
        index = bucket_of(seconds)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds
        if seconds < self.min_s:
            self.min_s = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)
        self.min_s = min(self.min_s, other.min_s)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in seconds, within ``PRECISION`` of the exact value."""
        if not self.count:
            return math.nan
        if not 0 <= q <= 100:
            raise ValueError(f"percentile {q} outside 0..100")
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                # The bucket's upper bound, but never outside what was really seen.
                return min(max(bucket_upper(index), self.min_s), self.max_s)
        return self.max_s

    def cdf(self, points: int = 200) -> list[tuple[float, float]]:
        """(latency ms, fraction of stores at or below it), at most ``points`` steps."""
        if not self.count:
            return []
        out: list[tuple[float, float]] = []
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            upper = min(max(bucket_upper(index), self.min_s), self.max_s)
            out.append((upper * 1e3, seen / self.count))
        if len(out) > points:
            step = len(out) / points
            keep = {int(i * step) for i in range(points)} | {len(out) - 1}
            out = [p for i, p in enumerate(out) if i in keep]
        return out

    def summary_ms(self) -> dict[str, float]:
        """The Bench JSON ``latency_ms`` mapping: p50, p90, p99, max (and mean, min)."""
        if not self.count:
            return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0, "min": 0.0}
        out = {f"p{q}": round(self.percentile(q) * 1e3, 4) for q in PERCENTILES}
        out["max"] = round(self.max_s * 1e3, 4)
        out["mean"] = round(self.total_s / self.count * 1e3, 4)
        out["min"] = round(self.min_s * 1e3, 4)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "count": self.count,
                "total_s": self.total_s, "min_s": self.min_s if self.count else None,
                "max_s": self.max_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        hist = cls({int(k): int(v) for k, v in data["counts"].items()}, int(data["count"]),
                   float(data["total_s"]))
        hist.min_s = math.inf if data.get("min_s") is None else float(data["min_s"])
        hist.max_s = float(data["max_s"])
        return hist


# Width of one raw time bucket; reports downsample to at most SERIES_POINTS points.
SERIES_STEP_S = 0.05
SERIES_POINTS = 240


@dataclass(slots=True)
class ThroughputSeries:
    """Instances and bytes completed per fixed time bucket since ``origin`` (monotonic s)."""

    origin: float
    step_s: float = SERIES_STEP_S
    instances: list[int] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)

    def add(self, when: float, nbytes: int) -> None:
        index = int((when - self.origin) / self.step_s)
        if index < 0:
            index = 0
        inst = self.instances
        if index >= len(inst):
            grow = index + 1 - len(inst)
            inst.extend([0] * grow)
            self.nbytes.extend([0] * grow)
        inst[index] += 1
        self.nbytes[index] += nbytes

    def merge(self, other: ThroughputSeries) -> None:
        shift = round((other.origin - self.origin) / self.step_s)
        for i, (n, b) in enumerate(zip(other.instances, other.nbytes, strict=True)):
            index = max(0, i + shift)
            if index >= len(self.instances):
                grow = index + 1 - len(self.instances)
                self.instances.extend([0] * grow)
                self.nbytes.extend([0] * grow)
            self.instances[index] += n
            self.nbytes[index] += b

    def points(self, max_points: int = SERIES_POINTS) -> list[dict[str, float]]:
        """[{t_s, instances_per_s, mb_per_s}], buckets merged to at most ``max_points``."""
        n = len(self.instances)
        if not n:
            return []
        group = max(1, math.ceil(n / max_points))
        out = []
        for start in range(0, n, group):
            inst = sum(self.instances[start:start + group])
            nb = sum(self.nbytes[start:start + group])
            width = self.step_s * min(group, n - start)
            out.append({"t_s": round((start + min(group, n - start)) * self.step_s, 3),
                        "instances_per_s": round(inst / width, 1),
                        "mb_per_s": round(nb / width / 1e6, 3)})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "step_s": self.step_s, "instances": self.instances,
                "nbytes": self.nbytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThroughputSeries:
        return cls(float(data["origin"]), float(data["step_s"]), list(data["instances"]),
                   list(data["nbytes"]))


def merge_counts(into: dict[str, int], more: Iterable[tuple[str, int]]) -> dict[str, int]:
    for key, n in more:
        into[key] = into.get(key, 0) + n
    return into
