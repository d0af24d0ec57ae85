"""Benchmark: how long `dicom-harness run` takes against the embedded reference SCP.

Targets (issue: complete suite): the default run (without `slow`) under 60 s and the full
suite (with `--slow`) under 5 minutes on a 2-core machine. Opt-in: `-m bench`. The times
are written to reports/bench-suite.json and printed; README quotes the latest run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"default": 60.0, "with-slow": 300.0}


def _run(tmp_path: Path, *extra: str) -> tuple[float, dict[str, object]]:
    report = tmp_path / "report"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-q", "--report-dir",
                           str(report), *extra], capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    elapsed = time.perf_counter() - start
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    results = json.loads((report / "results.json").read_text())
    return elapsed, results["summary"]


@pytest.mark.parametrize("mode", list(TARGETS))
def test_suite_duration(mode: str, tmp_path: Path) -> None:
    extra = ("--slow",) if mode == "with-slow" else ()
    elapsed, summary = _run(tmp_path, *extra)
    out = ROOT / "reports" / "bench-suite.json"
    out.parent.mkdir(exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    data[mode] = {"seconds": round(elapsed, 1), "target_seconds": TARGETS[mode],
                  "summary": summary}
    out.write_text(json.dumps(data, indent=2))
    print(f"\ndicom-harness run ({mode}): {elapsed:.1f} s for {summary['total']} scenarios "
          f"(target {TARGETS[mode]:.0f} s)")
    assert summary["failed"] == 0 and summary["errored"] == 0
    assert elapsed < TARGETS[mode]
