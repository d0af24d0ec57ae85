"""A short run summary on the terminal (rich): counts by group and outcome, then the failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.model import (
    OUTCOME_LABELS,
    OUTCOMES,
    as_text,
    count_outcomes,
    group_of,
    group_titles,
    outcome_of,
    run_notes,
    scenario_id,
    scenarios,
    verdict,
)

# Column headings kept short so a group title fits on one line of an 80-column terminal.
HEADINGS: dict[str, str] = {
    "fail": "Fail", "error": "Err", "warn": "Warn", "pass": "Pass", "info": "Info", "skip": "Skip",
}
# rich styles per outcome and verdict; kept beside the labels they decorate.
STYLES: dict[str, str] = {
    "fail": "bold red",
    "error": "bold magenta",
    "warn": "yellow",
    "pass": "green",
    "info": "cyan",
    "skip": "dim",
}


def summary_table(results: Mapping[str, Any]) -> Table:
    """Counts per group (rows) and outcome (columns), with a total row."""
    items = scenarios(results)
    table = Table(
        title="Scenarios by group and outcome", title_justify="left", box=SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("Group", no_wrap=True, overflow="ellipsis", max_width=32)
    for outcome in OUTCOMES:
        heading = HEADINGS[outcome]
        table.add_column(heading, justify="right", style=STYLES[outcome], min_width=len(heading))
    table.add_column("All", justify="right", style="bold", min_width=3)
    for key, title in group_titles(items).items():
        counts = count_outcomes(s for s in items if group_of(s) == key)
        table.add_row(
            escape(f"{key}  {title}"),
            *(str(counts[o]) if counts[o] else "" for o in OUTCOMES),
            str(sum(counts.values())),
        )
    totals = count_outcomes(items)
    table.add_section()
    table.add_row("All", *(str(totals[o]) for o in OUTCOMES), str(sum(totals.values())))
    return table


def print_summary(results: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the counts table, every failed or errored scenario, and the verdict."""
    console = console or Console()
    items = scenarios(results)
    for note in run_notes(results):
        console.print(f"[bold red]{escape(note)}[/]")
    console.print(summary_table(results))
    bad = [s for s in items if outcome_of(s) in ("fail", "error")]
    if bad:
        console.print()
        console.print("[bold]Failures[/bold]")
    for scenario in bad:
        outcome = outcome_of(scenario)
        # Everything from the results is escaped: an SCP's Error Comment may contain "[".
        console.print(
            f"  [{STYLES[outcome]}]{OUTCOME_LABELS[outcome].upper()}[/] "
            f"{escape(scenario_id(scenario))}  {escape(as_text(scenario.get('title')))}"
        )
        observed = as_text(scenario.get("observed"))
        if observed:
            console.print(f"      observed: {escape(observed)}", highlight=False)
    result = verdict(count_outcomes(items))
    console.print()
    style = STYLES.get(result.key, "bold")
    console.print(f"Verdict: [{style}]{result.label}[/] ({escape(result.explanation)})")
