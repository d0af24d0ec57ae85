"""Text from scenario files, results and the target reaches the terminal as text, never as
rich markup: ``security.calling-ae-syntax[all-spaces]`` keeps its ``[all-spaces]``, a title
or an Error Comment holding ``[/]`` neither vanishes nor crashes the console."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.bench.console import print_results
from harness.cli import main
from harness.report import print_summary

AE_IDS = [f"security.calling-ae-syntax[{name}]"
          for name in ("all-spaces", "backslash", "control-char", "non-ascii")]
SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "sample-results.json").read_text(encoding="utf-8"))
# Each would be eaten as a style tag, or raise MarkupError ("[/]" closes nothing).
MARKUP = "[bold]x[/bold] [red] [/] [link=file:///etc] trailing\\"

SUITE = """\
group: A
scenarios:
  - id: demo.markup
    title: "A title with [bold]markup[/bold] and a stray [/] (${mode})"
    references: ["PS3.8 9.3.3 [x]"]
    parametrize:
      mode: ["[red]", "plain"]
    steps:
      - associate: {}
        expect: {outcome: accepted}
      - release: {}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the run writes reports/ in the current folder


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_list_prints_parametrised_ids_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "-k", "calling-ae-syntax"]) == 0
    out = capsys.readouterr().out
    for sid in AE_IDS:
        assert len(lines_with(out, sid)) == 1, out


def test_run_prints_parametrised_ids_exactly(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "-k", "calling-ae-syntax", "--no-html",
                   "--report-dir", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert status == 0, out
    for sid in AE_IDS:
        assert len(lines_with(out, f" {sid} ")) == 1, out


def test_markup_in_a_scenario_file_is_printed_as_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "markup.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    assert main(["list", "--suite", str(suite)]) == 0
    out = capsys.readouterr().out
    assert len(lines_with(out, "demo.markup[red]")) == 1
    assert len(lines_with(out, "demo.markup[plain]")) == 1
    assert "[bold]markup[/bold] and a stray [/] ([red])" in out
    assert "PS3.8 9.3.3 [x]" in out
    status = main(["run", "--suite", str(suite), "--no-html", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert len(lines_with(out, " demo.markup[red] ")) == 1, out
    assert len(lines_with(out, " demo.markup[plain] ")) == 1, out


def render_summary(results: dict[str, Any]) -> str:
    console = Console(record=True, width=300, color_system=None, force_terminal=False)
    print_summary(results, console)
    return console.export_text()


def test_summary_prints_ids_titles_and_error_comments_as_text() -> None:
    results = copy.deepcopy(SAMPLE)
    failed = next(s for s in results["scenarios"] if s["outcome"] == "fail")
    failed["id"] = AE_IDS[0]
    failed["title"] = f"title {MARKUP}"
    failed["observed"] = f"0xA700 with Error Comment '{MARKUP}' from AE [PACS]"
    text = render_summary(results)
    assert f"{AE_IDS[0]}  title {MARKUP}" in text
    assert f"Error Comment '{MARKUP}' from AE [PACS]" in text


def test_regressions_print_ids_as_text(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base, now = copy.deepcopy(SAMPLE), copy.deepcopy(SAMPLE)
    for doc, outcome in ((base, "pass"), (now, "fail")):
        scenario = doc["scenarios"][0]
        scenario.update(id=AE_IDS[1], outcome=outcome)
    (tmp_path / "base.json").write_text(json.dumps(base), encoding="utf-8")
    (tmp_path / "now.json").write_text(json.dumps(now), encoding="utf-8")
    assert main(["report", str(tmp_path / "now.json"), "--baseline",
                 str(tmp_path / "base.json"), "--report-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert f"REGRESSION {AE_IDS[1]}: pass -> fail" in out


def bench_doc(message: str) -> dict[str, Any]:
    point = {
        "conditions": {"associations": 1, "tcp_nodelay": True, "max_pdu": 16384,
                       "async_window": 1, "cores": 2, "cpu": "CPU [v2]"},
        "instances": 10, "instances_per_s": 100.0, "mb_per_s": 1.5,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
        "setup_ms": {"mean": 0.5}, "non_success": 1, "errors": 1,
        "error_messages": [message],
    }
    return {"target": {"host": "pacs[1]", "port": 104, "kind": "external"},
            "workload": {"name": "ct[small]", "instance_bytes": 1000}, "sweep": [point]}


def test_bench_results_print_target_text_as_text() -> None:
    console = Console(record=True, width=300, color_system=None, force_terminal=False)
    print_results(bench_doc(f"status 0xA700: {MARKUP}"), console)
    text = console.export_text()
    assert "pacs[1]:104 (external), workload ct[small]" in text
    assert "CPU [v2]" in text
    assert f"error: status 0xA700: {MARKUP}" in text
