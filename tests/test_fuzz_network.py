"""Network fuzzing of ``dicom-harness serve`` as a standing test (issue 14, item 5).

Seeded mutations of a valid C-STORE exchange (and non-DICOM streams), see ``tests/_fuzz.py``,
played against a ``dicom-harness serve`` subprocess a batch at a time. After every batch:
- the SCP's stderr holds only its own log lines (no traceback, no "Fatal error", no
  "internal error" from the last-resort handler);
- every file in the storage directory has a store log line with Success or a Warning (so a
  response was sent: the SCP logs a store after answering it), and nothing was written next
  to the storage directory;
and every ``PROBE_EVERY`` cases a C-ECHO on a fresh association must be answered (no hang),
and the SCP's resident memory stays within ``RSS_MARGIN`` of its first probe.

The CI run is ``CI_CASES`` cases of seed ``HARNESS_FUZZ_SEED`` (default 14); the long run
(``-m fuzz_long``) is ``LONG_CASES``. A failing batch is saved as JSON case files
(under ``HARNESS_FUZZ_FAILURES``, default ``$TMPDIR/dicom-harness-fuzz-failures``, one
directory per failure, named in the failure message):
copy the offending one to ``tests/data/fuzz/`` and it is replayed by
``test_regression_corpus`` from then on.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path

import pytest

from harness.scp.storage import safe_name
from tests._fuzz import (
    CORPUS,
    RELEASE_RP,
    Case,
    Serve,
    answered_as_expected,
    make_case,
    play,
    probe,
    rss,
    serve,
    stderr_problems,
)

SEED = int(os.environ.get("HARNESS_FUZZ_SEED", "14"))
CI_CASES = int(os.environ.get("HARNESS_FUZZ_CASES", "3000"))
LONG_CASES = 20_000
BATCH = 24
PROBE_EVERY = 240
RSS_MARGIN = 48 << 20

_STORE_LINE = re.compile(r" store assoc=\d+ id=\d+ .* status=(0x[0-9A-F]{4}) (\S+)$")


def _answered_files(stderr: Path) -> set[str]:
    """Files the SCP logged as stored with Success or a Warning."""
    out: set[str] = set()
    for line in stderr.read_text(errors="replace").splitlines():
        m = _STORE_LINE.search(line)
        if m and (m.group(1) == "0x0000" or m.group(1).startswith("0xB")):
            out.add(m.group(2))
    return out


def _oracle_failures(scp: Serve, root: Path) -> list[str]:
    problems = [f"stderr: {line}" for line in stderr_problems(scp.stderr)[:5]]
    unanswered: set[str] = set()
    for _attempt in range(3):
        # A store still in progress (the peer stopped waiting for it) may be renamed into
        # place a moment before its log line: look again before calling it unanswered.
        stored = {p.name for p in scp.storage.iterdir()
                  if p.is_file() and not p.name.startswith(".")}
        unanswered = stored - _answered_files(scp.stderr)
        if not unanswered:
            break
        time.sleep(0.5)
    problems += [f"file without Success: {name}" for name in sorted(unanswered)[:5]]
    outside = {p.name for p in root.iterdir()} - {"store", "serve.stderr"}
    problems += [f"written outside the storage directory: {name}" for name in sorted(outside)]
    problems += [f"nested in the storage directory: {p}" for p in scp.storage.rglob("*")
                 if p.parent != scp.storage][:5]
    return problems


def _save(cases: list[Case], problems: list[str]) -> Path:
    target = Path(os.environ.get("HARNESS_FUZZ_FAILURES") or _save.default)  # type: ignore[attr-defined]
    target = target / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    for case in cases:
        (target / f"{case.name}.json").write_text(case.to_json())
    (target / "problems.txt").write_text("\n".join(problems) + "\n")
    return target


def _campaign(tmp_path: Path, seed: int, cases: int) -> dict[str, int]:
    """Run ``cases`` cases; assert the oracles; return figures for the README."""
    root = tmp_path / "scp"
    root.mkdir()
    # Not under tmp_path: pytest removes old temporary directories, the cases must stay.
    _save.default = Path(tempfile.gettempdir()) / "dicom-harness-fuzz-failures"  # type: ignore[attr-defined]
    figures = {"cases": 0, "probes": 0, "closed_by_scp": 0, "stored": 0, "rss_first": 0,
               "rss_max": 0}
    with serve(root) as scp:

        async def main() -> None:
            for start in range(0, cases, BATCH):
                batch = [make_case(seed, i) for i in range(start, min(cases, start + BATCH))]
                outcomes = await asyncio.gather(*(play(scp.port, c, quiet=0.1, until=RELEASE_RP)
                                                 for c in batch))
                figures["cases"] += len(batch)
                figures["closed_by_scp"] += sum(o.closed_by_scp for o in outcomes)
                if (start // BATCH) % (PROBE_EVERY // BATCH) == 0 or \
                        start + BATCH >= cases:
                    alive = await probe(scp.port)
                    figures["probes"] += 1
                    if not alive:
                        where = _save(batch, ["no answer to the liveness probe"])
                        pytest.fail(f"SCP hung after case {batch[-1].name}: cases in {where}")
                    now = rss(scp.pid)
                    figures["rss_first"] = figures["rss_first"] or now
                    figures["rss_max"] = max(figures["rss_max"], now)
                    if now > figures["rss_first"] + RSS_MARGIN:
                        where = _save(batch, [f"RSS {now} B"])
                        pytest.fail(f"SCP memory grew to {now >> 20} MB from "
                                    f"{figures['rss_first'] >> 20} MB: cases in {where}")
                problems = _oracle_failures(scp, root)
                if problems:
                    where = _save(batch, problems)
                    pytest.fail(f"{len(problems)} oracle failure(s) in cases {batch[0].name}.."
                                f"{batch[-1].name} (saved in {where}):\n" + "\n".join(problems))

        asyncio.run(main())
        figures["stored"] = sum(1 for p in scp.storage.iterdir() if not p.name.startswith("."))
    return figures


def test_fuzz_ci(tmp_path: Path) -> None:
    started = time.monotonic()
    figures = _campaign(tmp_path, SEED, CI_CASES)
    print(f"fuzz seed {SEED}: {figures} in {time.monotonic() - started:.1f} s")
    assert figures["cases"] == CI_CASES
    assert figures["stored"] > 0  # the mutations leave some exchanges valid: stores happen


@pytest.mark.fuzz_long
def test_fuzz_long(tmp_path: Path) -> None:
    started = time.monotonic()
    figures = _campaign(tmp_path, SEED + 1, LONG_CASES)
    print(f"fuzz seed {SEED + 1}: {figures} in {time.monotonic() - started:.1f} s")
    assert figures["cases"] == LONG_CASES


# --- the regression corpus ----------------------------------------------------------------------

CORPUS_FILES = sorted(CORPUS.glob("*.json"))


@pytest.fixture(scope="module")
def corpus_scp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Serve, Path]:  # type: ignore[misc]
    root = tmp_path_factory.mktemp("corpus") / "scp"
    root.mkdir()
    with serve(root) as scp:
        yield scp, root


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_regression_corpus(corpus_scp: tuple[Serve, Path], path: Path) -> None:
    """Every saved case, replayed: the SCP answers (a response, a reject or an A-ABORT, or
    closes), stays alive, and the oracles hold."""
    scp, root = corpus_scp
    case = Case.from_json(path.read_text())

    async def main() -> None:
        out = await play(scp.port, case, quiet=1.0, until=RELEASE_RP)
        if case.expect is not None:
            assert answered_as_expected(case.expect, out.received), \
                f"{case.name}: expected {case.expect}, got {out.received[:64].hex()}"
        assert await probe(scp.port), f"{case.name}: the SCP no longer answers"

    asyncio.run(main())
    assert _oracle_failures(scp, root) == []
    if case.not_stored is not None:
        assert not (scp.storage / safe_name(case.not_stored)).exists(), "stored"
