"""Percentiles, the latency histogram and the throughput series of harness.bench.stats."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bench.stats import (
    PRECISION,
    LatencyHistogram,
    ThroughputSeries,
    median,
    percentile,
)

latencies = st.lists(st.floats(min_value=2e-6, max_value=100.0, allow_nan=False),
                     min_size=1, max_size=300)


def test_percentile_nearest_rank() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 5) == 15
    assert percentile(values, 30) == 20
    assert percentile(values, 40) == 20
    assert percentile(values, 50) == 35
    assert percentile(values, 100) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile(list(range(1, 101)), 90) == 90


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([3.0], 0) == 3.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert math.isnan(median([]))


@settings(max_examples=40, deadline=None)
@given(latencies, st.sampled_from([0, 1, 50, 90, 99, 99.9, 100]))
def test_histogram_percentile_within_precision(values: list[float], q: float) -> None:
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    exact = percentile(values, q)
    got = hist.percentile(q)
    assert abs(got - exact) <= exact * PRECISION * 1.01 + 1e-12, (got, exact)
    assert hist.count == len(values)
    assert hist.max_s == max(values)
    assert hist.min_s == min(values)


@settings(max_examples=20, deadline=None)
@given(latencies, latencies)
def test_histogram_merge_equals_one_histogram(a: list[float], b: list[float]) -> None:
    one, left, right = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for v in a + b:
        one.add(v)
    for v in a:
        left.add(v)
    for v in b:
        right.add(v)
    left.merge(LatencyHistogram.from_dict(right.to_dict()))
    assert left.counts == one.counts
    assert left.count == one.count
    assert left.max_s == one.max_s and left.min_s == one.min_s
    for q in (50, 90, 99):
        assert left.percentile(q) == one.percentile(q)


def test_histogram_memory_does_not_grow_with_stores() -> None:
    hist = LatencyHistogram()
    for i in range(50_000):
        hist.add(0.0002 + (i % 7) * 1e-5)
    assert len(hist.counts) < 20  # buckets, not samples


def test_summary_and_cdf() -> None:
    hist = LatencyHistogram()
    assert hist.summary_ms()["p50"] == 0.0
    for ms in range(1, 101):
        hist.add(ms / 1000)
    summary = hist.summary_ms()
    assert set(summary) >= {"p50", "p90", "p99", "max"}
    assert summary["max"] == 100.0
    assert 49.5 <= summary["p50"] <= 50.5
    assert 98.0 <= summary["p99"] <= 100.0
    cdf = hist.cdf(points=20)
    assert len(cdf) <= 21
    assert cdf[-1][1] == 1.0
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(cdf))


def test_series_points_and_merge() -> None:
    series = ThroughputSeries(origin=100.0, step_s=0.5)
    for i in range(10):
        series.add(100.0 + i * 0.1, 1000)  # 10 stores in 1 s
    points = series.points()
    assert [p["t_s"] for p in points] == [0.5, 1.0]
    assert sum(p["instances_per_s"] * 0.5 for p in points) == pytest.approx(10)
    other = ThroughputSeries(origin=100.5, step_s=0.5)
    other.add(100.6, 500)
    series.merge(ThroughputSeries.from_dict(other.to_dict()))
    assert sum(series.instances) == 11
    assert series.instances[1] == 6  # 100.5..101.0 got the merged store
    assert sum(series.nbytes) == 10500


def test_series_downsamples() -> None:
    series = ThroughputSeries(origin=0.0, step_s=0.01)
    for i in range(1000):
        series.add(i * 0.01, 1)
    points = series.points(max_points=50)
    assert len(points) <= 50
    assert sum(p["instances_per_s"] for p in points) * 0.2 == pytest.approx(1000, rel=0.01)
