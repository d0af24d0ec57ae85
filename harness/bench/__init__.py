"""Store throughput and latency benchmarks (``dicom-harness bench``).

Modules, each with one job: ``workload`` (instances encoded and framed once, UIDs patched
per store), ``sender`` (the lean asyncio load generator), ``workers`` (one point over K
processes), ``stats`` (latency histogram, throughput series), ``target`` (the reference SCP
as a subprocess, /proc probes), ``sink`` (fast receivers that measure the measurer),
``loopback`` (plain TCP copy rate), ``dcmtk`` (DCMTK storescu for comparison), ``runner``
(a whole run), ``result`` (Bench JSON), ``console``/``html``/``svg`` (output), ``cli``.
"""

from harness.bench.runner import BenchOptions, BenchUsageError, run
from harness.bench.stats import LatencyHistogram, ThroughputSeries, percentile

__all__ = ["BenchOptions", "BenchUsageError", "LatencyHistogram", "ThroughputSeries",
           "percentile", "run"]
