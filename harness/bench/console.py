"""Console side of the bench: a live progress bar per phase and the results table (rich).

The progress bar shows only on a terminal and never with ``--quiet``; the table and the
comparison lines always print (to standard output), so a CI log keeps the numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from harness.bench.runner import Phase


class RichUI:
    """Progress bars on a terminal (transient: they vanish when a phase ends)."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal

    @contextlib.contextmanager
    def phase(self, label: str, total: int | None) -> Iterator[Phase]:
        if not self.enabled:
            yield lambda completed: None
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(escape(label), total=total)

            def update(completed: int) -> None:
                progress.update(task, completed=completed)

            yield update

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, markup=False)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_results(doc: dict[str, Any], console: Console) -> None:
    wl = doc["workload"]
    first = doc["sweep"][0]["conditions"]
    console.print(
        f"[bold]bench[/] {escape(str(doc['target']['host']))}:{doc['target']['port']} "
        f"({escape(str(doc['target']['kind']))}), workload {escape(str(wl['name']))} "
        f"({wl['instance_bytes']:,} bytes), TCP_NODELAY {'on' if first['tcp_nodelay'] else 'OFF'}, "
        f"PDU {first['max_pdu']}, window {first['async_window']}, {first['cores']} cores "
        f"{escape(str(first['cpu']))}", highlight=False)
    table = Table(show_edge=False)
    for col in ("assoc", "instances", "inst/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                "setup ms", "non-success", "errors"):
        table.add_column(col, justify="right")
    for p in doc["sweep"]:
        lat = p["latency_ms"]
        table.add_row(str(p["conditions"]["associations"]), f"{p['instances']:,}",
                      _fmt(p["instances_per_s"]), _fmt(p["mb_per_s"], 2), _fmt(lat["p50"], 3),
                      _fmt(lat["p90"], 3), _fmt(lat["p99"], 3), _fmt(lat["max"], 3),
                      _fmt(p["setup_ms"]["mean"], 2),
                      _styled(p["non_success"]), _styled(p["errors"]))
    console.print(table)
    for p in doc["sweep"]:
        n = p["conditions"]["associations"]
        if "compare" in p:
            c = p["compare"]
            console.print(
                f"  {n} assoc: harness {_fmt(_mid(c['ours_session_instances_per_s']))} inst/s "
                f"vs DCMTK storescu {_fmt(_mid(c['dcmtk_net_instances_per_s']))} inst/s "
                f"(TCP_NODELAY={c['env']['TCP_NODELAY']}): ratio [bold]{_fmt(c['ratio'], 2)}x"
                f"[/]; sender CPU per store {_fmt(_mid(c['ours_cpu_us_per_instance']))} us vs "
                f"{_fmt(_mid(c['dcmtk_cpu_us_per_instance']))} us", highlight=False)
            for err in c["dcmtk_errors"][:3]:
                console.print(f"    [red]{escape(str(err))}[/]", highlight=False)
        if "loopback" in p:
            lb = p["loopback"]
            console.print(
                f"  {n} assoc: {_fmt(p['mb_per_s'])} MB/s vs plain loopback copy "
                f"{_fmt(lb['mb_per_s'])} MB/s: ratio [bold]{_fmt(lb['ratio'], 2)}[/]",
                highlight=False)
            files = lb.get("files") or {}
            if files.get("skipped"):
                console.print(f"  {n} assoc: copy into files skipped: "
                              f"{escape(str(files['skipped']))}",
                              highlight=False)
            elif files:
                console.print(
                    f"  {n} assoc: {_fmt(p['mb_per_s'])} MB/s vs plain loopback copy into one "
                    f"file per instance {_fmt(files['mb_per_s'])} MB/s: ratio "
                    f"[bold]{_fmt(files['ratio'], 2)}[/]", highlight=False)
        if "plain" in p:
            pl = p["plain"]
            console.print(
                f"  {n} assoc: over TLS {_fmt(p['instances_per_s'])} inst/s vs plain TCP "
                f"{_fmt(pl['instances_per_s'])} inst/s: TLS/plain ratio "
                f"[bold]{_fmt(pl['ratio'], 2)}[/]", highlight=False)
        if "target_process" in p and p["target_process"].get("available"):
            tp = p["target_process"]
            console.print(f"  {n} assoc: target pid {tp['pid']} used {tp['cpu_s']} s CPU "
                          f"({tp['cpu_percent']}%), peak RSS {tp['peak_rss_mib']} MiB",
                          highlight=False)
        for msg in p["error_messages"][:5]:
            # The target's words (an Error Comment, a reason): text, never markup.
            console.print(f"  [red]error[/]: {escape(str(msg))}", highlight=False)


def _mid(values: list[float]) -> float | None:
    from harness.bench.stats import median

    return median(values) if values else None


def _styled(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"
