"""The step reference, generated from the step declarations: ``dicom-harness list --steps`` on
the terminal (rich, or plain text when the output is not a terminal) and ``docs/steps.md``.

Regenerate the Markdown file with ``python -m harness.report.step_reference docs/steps.md``;
``tests/test_step_params.py`` fails when it is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.engine.steps import STEPS, StepSpec
from harness.engine.steps.params import Param

REGENERATE = "python -m harness.report.step_reference docs/steps.md"
COMMON = ("Every step also takes `as: NAME` (the association it runs on; default `main`) and "
          "`expect: {...}` (what it must give); see README's Scenario files section.")


def sections() -> list[tuple[str, list[StepSpec]]]:
    """The steps grouped by the module that implements them, in registration order; each
    group titled by its module's docstring (up to the colon)."""
    out: dict[str, list[StepSpec]] = {}
    for spec in STEPS.values():
        module = sys.modules[spec.func.__module__]
        title = (module.__doc__ or spec.func.__module__).split(":", 1)[0].strip()
        out.setdefault(title, []).append(spec)
    return list(out.items())


def describe(p: Param) -> str:
    """A parameter's doc, with its allowed values when they are a closed list."""
    return p.doc + (f" (one of: {', '.join(p.choices)})" if p.choices else "")


def plain() -> str:
    """The reference as plain text (a pipe, a file, a dumb terminal)."""
    lines: list[str] = [COMMON, ""]
    for title, specs in sections():
        lines += [f"== {title} ==", ""]
        for spec in specs:
            lines.append(spec.name)
            lines += [f"    {line}" for line in spec.doc.splitlines()]
            for p in spec.parameters:
                lines.append(f"    - {p.name} ({p.type_text}; default {p.default_text}): "
                             f"{describe(p)}")
            if not spec.parameters:
                lines.append("    (no parameters)")
            lines.append("")
    return "\n".join(lines)


def print_steps(out: TextIO | None = None) -> None:
    """``dicom-harness list --steps``: rich tables on a terminal, plain text otherwise."""
    out = out or sys.stdout
    if not out.isatty():
        out.write(plain() + "\n")
        return
    console = Console(file=out)
    console.print(Text(COMMON))
    for title, specs in sections():
        console.rule(Text(title, style="bold"))
        for spec in specs:
            console.print(Text(spec.name, style="bold cyan"), Text(spec.doc))
            if not spec.parameters:
                console.print(Text("  (no parameters)", style="dim"))
                continue
            table = Table(box=SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
            table.add_column("parameter", no_wrap=True)
            # Shares of the width: the doc gets most of it, the type more than the default.
            table.add_column("type", ratio=3, overflow="fold")
            table.add_column("default", ratio=2, overflow="fold")
            table.add_column("doc", ratio=6, overflow="fold")
            for p in spec.parameters:  # Text, not markup: docs hold "[invoked, performed]"
                table.add_row(Text(p.name), Text(p.type_text), Text(p.default_text),
                              Text(describe(p)))
            console.print(table)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """``docs/steps.md``: every step, its docstring and a table of its parameters."""
    lines = ["# Scenario steps", "",
             "<!-- Generated from the step declarations in harness/engine/steps/; do not edit. "
             f"Regenerate: {REGENERATE} -->", "",
             "The operations a scenario file's `steps:` may use, generated from their "
             "declarations in `harness/engine/steps/` (`dicom-harness list --steps` prints the "
             "same). The loader checks every step against them when a file loads: an unknown "
             "parameter, a missing required one or a value of the wrong type is one error line "
             "naming the file, the scenario, the step and the parameter. A `null` counts as "
             "not given.", "", COMMON, ""]
    for title, specs in sections():
        lines.append(f"- {title}: " + ", ".join(f"[`{s.name}`](#{s.name})"
                                                 for s in specs))
    lines.append("")
    for title, specs in sections():
        lines += [f"## {title}", ""]
        for spec in specs:
            lines += [f"### {spec.name}", "", " ".join(spec.doc.split()), ""]
            if not spec.parameters:
                lines += ["No parameters.", ""]
                continue
            lines += ["| parameter | type | default | description |", "|---|---|---|---|"]
            lines += [f"| `{p.name}` | `{_cell(p.type_text)}` | {_cell(p.default_text)} | "
                      f"{_cell(describe(p))} |" for p in spec.parameters]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    path = Path(args[0])
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(markdown(), encoding="utf-8")
    tmp.replace(path)  # never a half-written file
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
