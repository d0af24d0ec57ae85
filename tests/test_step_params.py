"""Typed step parameters (harness/engine/steps/params.py): the loader rejects unknown keys,
wrong types and missing required parameters when a file loads, with one line naming the file,
scenario, step and parameter; every declaration is documented; ``dicom-harness list --steps``
and docs/steps.md are generated from the declarations."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_type_hints

import pytest

from harness.engine.loader import SUITES_DIR, ScenarioError, load_file, load_suite
from harness.engine.steps import STEPS
from harness.engine.steps.params import Unset
from harness.engine.steps.store import FramingSpec
from harness.report import step_reference
from harness.scu.client import Framing

ROOT = Path(__file__).resolve().parent.parent


def scenario_file(tmp_path: Path, step: str) -> Path:
    """A file whose scenario 'demo.typed' has ``step`` as its step 2."""
    path = tmp_path / "typed.yaml"
    path.write_text(textwrap.dedent(f"""\
        group: A
        scenarios:
          - id: demo.typed
            title: Typed parameters
            references: [PS3.8 9.3.3]
            steps:
              - associate: {{}}
              - {step}
              - release: {{}}
        """), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message  # one line
    return message


def test_unknown_parameter_is_rejected_at_load(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "release: {timeout: 5, closed: false}")
    message = load_error(path)
    assert message.startswith(f"{path}:8: scenario 'demo.typed' step 2 (release): ")
    assert "unknown parameter(s) closed; known: close, timeout" in message


def test_wrong_type_is_rejected_at_load(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "store: {message_id: seven}")
    message = load_error(path)
    assert message == (f"{path}:8: scenario 'demo.typed' step 2 (store): parameter "
                       "'message_id' must be int, got str 'seven'")


def test_bool_is_not_an_int_nor_a_quoted_number_a_number(tmp_path: Path) -> None:
    assert "parameter 'max_pdu' must be int, got bool True" in load_error(
        scenario_file(tmp_path, "associate: {max_pdu: true}"))
    assert "parameter 'seconds' must be number, got str '0.5'" in load_error(
        scenario_file(tmp_path, "sleep: {seconds: '0.5'}"))


def test_missing_required_parameter_is_rejected_at_load(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "send_bytes: {repeat: 2}")
    message = load_error(path)
    assert message.startswith(f"{path}:8: scenario 'demo.typed' step 2 (send_bytes): ")
    assert "parameter 'hex' is required (the bytes, as hex)" in message


def test_nested_mapping_keys_and_values_are_checked(tmp_path: Path) -> None:
    message = load_error(scenario_file(tmp_path, "store: {framing: {data_split: [4]}}"))
    assert "(store): parameter 'framing' has unknown key(s) data_split; known:" in message
    assert "data_splits" in message
    message = load_error(scenario_file(tmp_path, "store: {framing: {data_splits: [x]}}"))
    assert "parameter 'framing' key 'data_splits' item 1 must be int, got str 'x'" in message
    message = load_error(scenario_file(
        tmp_path, "send_pdu: {pdu: {type: associate-rq, params: {max_pdus: 1}}}"))
    assert "key 'params' unknown parameter(s) max_pdus" in message


def test_literal_choices_and_closed_lists(tmp_path: Path) -> None:
    message = load_error(scenario_file(tmp_path, "expect_close: {timeout: artm}"))
    assert "parameter 'timeout' must be number | \"artim\" | \"idle\", got str 'artm'" in message
    message = load_error(scenario_file(tmp_path, "store: {malform: no-such-fault}"))
    assert "parameter 'malform' must be one of " in message and "bad-vr" in message


def test_null_counts_as_not_given_and_good_values_load(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "store: {timeout: null, framing: {max_pdu: null}, "
                                   "context: CT, group_length: omit, command: {'0700': null}}")
    (scenario,) = load_file(path)
    assert scenario.steps[1].params["timeout"] is None
    assert scenario.steps[1].params["group_length"] == "omit"


def test_a_cli_run_reports_a_wrong_type_in_one_line(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "expect_nothing: {seconds: [1]}")
    done = subprocess.run([sys.executable, "-m", "harness", "list", "--suite", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"dicom-harness list: {path}:8: scenario 'demo.typed' step 2 (expect_nothing): parameter "
        "'seconds' must be number, got list [1]"]


def test_the_whole_suite_loads_under_the_typed_declarations() -> None:
    scenarios = load_suite()
    assert len(scenarios) >= 176 and len(list(SUITES_DIR.glob("*.yaml"))) >= 10
    for sc in scenarios:
        for step in sc.steps:
            assert not STEPS[step.op].problems(step.params), (sc.id, step.op)


def test_every_step_and_every_parameter_is_documented() -> None:
    assert len(STEPS) >= 28
    for name, spec in STEPS.items():
        assert dataclasses.is_dataclass(spec.declaration), name
        assert spec.declaration.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
        assert spec.doc.strip(), f"step {name} has no docstring"
        for p in spec.parameters:
            assert p.doc.strip() and "\n" not in p.doc, f"{name}.{p.name}: no one-line doc"
            assert p.type_text, f"{name}.{p.name}: no type"
            assert p.default_text, f"{name}.{p.name}: no default shown"


def test_framing_keys_are_the_framing_fields() -> None:
    fields = {f.name for f in dataclasses.fields(Framing)}
    assert set(get_type_hints(FramingSpec)) == fields - {"interleave"}


def test_docs_steps_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "steps.md"
    assert path.read_text(encoding="utf-8") == step_reference.markdown(), (
        f"docs/steps.md is out of date: run `{step_reference.REGENERATE}`")


def test_list_steps_plain_text_when_not_a_terminal() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "list", "--steps"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\x1b[" not in out and "━" not in out and "─" not in out  # no rich styling
    for name, spec in STEPS.items():
        assert f"\n{name}\n" in out
        for p in spec.parameters:
            assert f"- {p.name} ({p.type_text}; default {p.default_text}): " in out
    assert "- max_pdu (int; default 16384): Maximum Length sub-item" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_list_steps_rich_tables_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich folds long cells at 80 columns
    out = _Terminal()
    step_reference.print_steps(out)
    text = out.getvalue()
    assert "[invoked, performed]" in text  # docs are text, never rich markup
    for name in STEPS:
        assert name in text
    assert "parameter" in text and "default" in text


def _literal_gets(node: ast.AST) -> list[tuple[str, object]]:
    """``params.get("name", <literal>)`` calls under ``node``: the defaults the code uses."""
    found = []
    for call in ast.walk(node):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "get" and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "params" and len(call.args) == 2
                and isinstance(call.args[0], ast.Constant)):
            try:
                found.append((str(call.args[0].value), ast.literal_eval(call.args[1])))
            except ValueError:  # a computed default (run.timeout, next(...)): declared UNSET
                continue
    return found


def test_declared_defaults_are_the_ones_the_code_uses() -> None:
    # The function still reads the YAML mapping, so its literal defaults and the declared ones
    # (what the docs show) must agree: read both, for the step and the helpers it calls.
    compared = 0
    for name, spec in STEPS.items():
        func = inspect.unwrap(spec.func)
        tree = ast.parse(inspect.getsource(sys.modules[func.__module__]))
        defs = {n.name: n for n in tree.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        node = defs[func.__name__]
        called = {c.func.id for c in ast.walk(node)
                  if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        declared = {p.name: p for p in spec.parameters}
        for part in [node, *(defs[c] for c in called if c in defs)]:
            for key, value in _literal_gets(part):
                p = declared.get(key)
                if p is None or p.required or isinstance(p.default, Unset):
                    continue
                assert p.default == value, f"{name}.{key}: declared {p.default!r}, code {value!r}"
                compared += 1
    assert compared >= 20  # not vacuous
