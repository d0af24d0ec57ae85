"""The DCMTK comparison: storescu on the same workload and target, TCP_NODELAY honoured."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.bench import dcmtk
from harness.bench.runner import BenchOptions, run
from harness.bench.target import ReferenceSCP
from harness.bench.workload import UidSource, build_workload, new_nonce, write_part10_files
from tests._bench_support import stored_uids

pytestmark = pytest.mark.skipif(not os.access(dcmtk.STORESCU, os.X_OK),
                                reason="DCMTK storescu not installed in /usr/bin")


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ReferenceSCP(tmp_path_factory.mktemp("store")) as server:
        yield server


def test_comparison_runs_and_both_senders_store(scp: ReferenceSCP) -> None:
    for old in scp.storage_dir.iterdir():
        old.unlink()
    doc = run(BenchOptions(target=("127.0.0.1", scp.port), workload="tiny", instances=12,
                           warmup=2, associations=[2], compare=["dcmtk"], repeat=2))
    c = doc["compare"]
    assert c["dcmtk_errors"] == []
    assert c["env"] == {"TCP_NODELAY": "1"}
    assert c["repetitions"] == 2 and len(c["dcmtk_net_instances_per_s"]) == 2
    assert c["ratio"] is not None and c["ratio"] > 0
    assert "storescu" in c["version"]
    assert doc["summary"]["dcmtk_ratio_by_associations"] == {"2": c["ratio"]}
    # ours: 2 runs x 2 associations x (2 + 12); storescu: 2 runs x 2 x (12 + 1 start-up file)
    uids = stored_uids(scp.storage_dir)
    assert len(uids) == 2 * 2 * 14 + 2 * 2 * 13
    assert len(set(uids)) == len(uids)


def test_storescu_command_line() -> None:
    cfg = dcmtk.DcmtkConfig(max_send_pdu=1 << 20, called_aet="PACS")
    cmd = dcmtk.command(cfg, "127.0.0.1", 104, Path("/tmp"))
    assert cmd[0] == str(dcmtk.STORESCU)
    assert cmd[cmd.index("-aec") + 1] == "PACS"
    assert cmd[cmd.index("--max-send-pdu") + 1] == "131072"  # clamped to DCMTK's range
    assert "+sd" in cmd and cmd[-3:] == ["127.0.0.1", "104", "/tmp"]
    assert dcmtk.DcmtkConfig(nodelay=False).env["TCP_NODELAY"] == "0"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
@pytest.mark.parametrize("value", ["1", "0"])
def test_dcmtk_honours_tcp_nodelay(scp: ReferenceSCP, tmp_path: Path, value: str) -> None:
    """What the comparison relies on: TCP_NODELAY=1 makes storescu disable Nagle."""
    wl = build_workload("tiny")
    [path] = write_part10_files(wl, tmp_path / "one", 1, UidSource(new_nonce(), 1))
    cfg = dcmtk.DcmtkConfig(nodelay=value == "1")
    proc = subprocess.run(["strace", "-f", "-e", "trace=setsockopt",
                           *dcmtk.command(cfg, "127.0.0.1", scp.port, path)],
                          env=cfg.env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert ("TCP_NODELAY, [1]" in proc.stderr) == (value == "1"), proc.stderr[-500:]
