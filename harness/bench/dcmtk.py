"""DCMTK ``storescu`` as the reference sender, run on the same workload and target.

The workload's instances are written once per repetition as Part 10 files (unique SOP
Instance UIDs, one folder per association) and sent by one ``storescu`` process per
association, all started together. DCMTK leaves Nagle's algorithm on unless the
environment variable ``TCP_NODELAY`` is set to a non-zero number (DCMTK envvars.txt; the
library logs "disabling Nagle algorithm as requested at runtime"), so it runs with
``TCP_NODELAY=1`` whenever the bench itself runs with TCP_NODELAY.

A storescu run's wall time includes process start, data dictionary load, association set-up
and release; ``startup_s`` measures exactly that by sending a single file, and ``net`` rates
subtract it (in DCMTK's favour: our own figure keeps our association set-up).
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.wire.constants import DCMTK_CALLING_AE, DEFAULT_CALLED_AE

STORESCU = Path("/usr/bin/storescu")


@dataclass(slots=True)
class DcmtkConfig:
    storescu: Path = STORESCU
    called_aet: str = DEFAULT_CALLED_AE
    calling_aet: str = DCMTK_CALLING_AE
    max_send_pdu: int = 0  # 0: the peer's maximum (DCMTK's default behaviour)
    nodelay: bool = True
    timeout: float = 600.0

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TCP_NODELAY": "1" if self.nodelay else "0"}

    @property
    def env_record(self) -> dict[str, str]:
        return {"TCP_NODELAY": "1" if self.nodelay else "0"}


@dataclass(slots=True)
class DcmtkRun:
    instances: int
    wall_s: float
    startup_s: float
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # user + system CPU of the storescu processes
    startup_cpu_s: float = 0.0

    @property
    def cpu_us_per_instance(self) -> float:
        """Sender CPU per store, start-up cost taken out (robust on a busy machine)."""
        net = max(0.0, self.cpu_s - self.startup_cpu_s)
        return net / self.instances * 1e6 if self.instances else 0.0

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def net_instances_per_s(self) -> float:
        net = self.wall_s - self.startup_s
        return self.instances / net if net > 0 else self.instances_per_s


def available(cfg: DcmtkConfig) -> bool:
    return os.access(cfg.storescu, os.X_OK)


def version(cfg: DcmtkConfig) -> str:
    try:
        out = subprocess.run([str(cfg.storescu), "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.strip().splitlines()[0] if out.strip() else "unknown"
    return first.strip("$ ").removeprefix("dcmtk: ")


def command(cfg: DcmtkConfig, host: str, port: int, source: Path) -> list[str]:
    args = [str(cfg.storescu), "-aec", cfg.called_aet, "-aet", cfg.calling_aet, "-nh"]
    if cfg.max_send_pdu:
        args += ["--max-send-pdu", str(max(4096, min(131072, cfg.max_send_pdu)))]
    if source.is_dir():
        args.append("+sd")
    return [*args, host, str(port), str(source)]


def children_cpu() -> float:
    """CPU seconds of every waited-for child process so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_all(cfg: DcmtkConfig, host: str, port: int, sources: list[Path]) -> tuple[
        float, float, list[str]]:
    """Start one storescu per source at once; (wall time until the last one exits, their
    CPU time, errors)."""
    cpu = children_cpu()
    started = time.monotonic()
    procs = [subprocess.Popen(command(cfg, host, port, s), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=cfg.env)
             for s in sources]
    errors: list[str] = []
    try:
        for proc in procs:
            left = max(1.0, cfg.timeout - (time.monotonic() - started))
            _out, err = proc.communicate(timeout=left)
            if proc.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()
                errors.append(f"storescu exited with {proc.returncode}: "
                              f"{tail[-1] if tail else ''}")
    except subprocess.TimeoutExpired:
        errors.append(f"storescu did not finish within {cfg.timeout:g} s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    return time.monotonic() - started, children_cpu() - cpu, errors


def run(cfg: DcmtkConfig, host: str, port: int, folders: list[Path], instances: int,
        startup_files: list[Path]) -> DcmtkRun:
    """Send every file of ``folders`` (one storescu each, together) after measuring the
    start-up cost with one single-file storescu per folder (so forking receivers pay alike).
    """
    startup_s, startup_cpu, startup_errors = _run_all(cfg, host, port, startup_files)
    wall, cpu, errors = _run_all(cfg, host, port, folders)
    return DcmtkRun(instances, wall, startup_s, startup_errors + errors, cpu, startup_cpu)
