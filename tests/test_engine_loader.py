"""Scenario loading (harness/engine/loader.py): the shipped suite, errors that say where and
what, parametrisation, ``-k`` selection and suite paths."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from harness.engine.loader import (
    SUITES_DIR,
    ScenarioError,
    load_file,
    load_suite,
    select,
    suite_paths,
)
from harness.engine.model import GROUP_TITLES, SEVERITIES, Scenario, Step
from harness.engine.steps import STEPS

SUITE_FILES = sorted(SUITES_DIR.glob("*.yaml"))

GOOD = """\
group: A
scenarios:
  - id: demo.one
    title: One store
    references: [PS3.8 9.3.3]
    steps:
      - associate: {}
        expect: {outcome: accepted}
      - store: {}
      - release: {}
"""


def write(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def one(tmp_path: Path, scenario: str, group: str = "A") -> Path:
    """A file with one scenario (``scenario`` is its YAML body, indented as under '- ')."""
    body = textwrap.indent(textwrap.dedent(scenario).strip(), "  ")
    return write(tmp_path, f"group: {group}\nscenarios:\n{body}\n")


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    return str(info.value)


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line of ``path`` containing ``needle``."""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# --- the shipped suite ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> list[Scenario]:
    return load_suite()


@pytest.mark.parametrize("path", SUITE_FILES, ids=[p.stem for p in SUITE_FILES])
def test_every_scenario_file_loads(path: Path) -> None:
    scenarios = load_file(path)
    assert scenarios
    for sc in scenarios:
        assert sc.source == str(path)
        assert sc.group in GROUP_TITLES
        assert sc.severity in SEVERITIES
        assert sc.steps and all(step.op in STEPS for step in sc.steps)
        assert sc.line is not None and sc.line > 1


def test_suite_has_all_groups_and_unique_ids(suite: list[Scenario]) -> None:
    assert len(SUITE_FILES) >= 11
    ids = [sc.id for sc in suite]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert {sc.group for sc in suite} == set(GROUP_TITLES)


def test_every_scenario_cites_the_standard(suite: list[Scenario]) -> None:
    for sc in suite:
        assert sc.references, sc.id
        # DICOM first; the TLS group (L) also cites BCP 195's RFCs, which PS3.15 B.12 adopts.
        assert any(ref.startswith("PS3.") for ref in sc.references), sc.id
        for ref in sc.references:
            assert re.match(r"PS3\.\d+|RFC \d+", ref), f"{sc.id}: reference {ref!r}"


def test_ids_are_selectable_words(suite: list[Scenario]) -> None:
    # ids go on command lines (-k) and into JUnit names: no spaces, one dotted family
    for sc in suite:
        assert " " not in sc.id and sc.id == sc.id.strip(), sc.id
        assert re.match(r"[a-z]+\.[a-z0-9-]+", sc.id), sc.id


def test_well_formed_file(tmp_path: Path) -> None:
    [sc] = load_file(write(tmp_path, GOOD))
    assert sc.id == "demo.one" and sc.group == "A" and sc.severity == "must"
    assert [s.op for s in sc.steps] == ["associate", "store", "release"]
    assert sc.steps[0] == Step("associate", {}, {"outcome": "accepted"}, "main", 7)
    assert sc.where.endswith("case.yaml:3")
    assert not sc.negative  # group A and B are positive by default


# --- errors name the file, the line and the field ---------------------------------------------


def test_invalid_yaml_reports_parser_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("title: One store", "title: [unclosed"))
    message = error_of(path)
    assert str(path) in message and "invalid YAML" in message
    reported = int(re.search(re.escape(str(path)) + r":(\d+)", message).group(1))  # type: ignore[union-attr]
    # the parser notices the unclosed flow sequence at or after the line it starts on
    assert reported >= line_of(path, "[unclosed")


def test_missing_group(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD.replace("group: A\n", "")))
    assert re.search(r"case\.yaml:\d+: field 'group' is required", message), message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "- just\n- a list\n"))
    assert "case.yaml" in message and "mapping" in message


@pytest.mark.parametrize("field", ["id", "title"])
def test_missing_id_or_title(tmp_path: Path, field: str) -> None:
    text = GOOD.replace("  - id: demo.one\n    title: One store\n",
                        "  - id: demo.one\n" if field == "title" else "  - title: One store\n")
    path = write(tmp_path, text)
    message = error_of(path)
    assert f"{path}:3:" in message and f"'{field}'" in message


def test_bad_severity(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    title: One store\n",
                                        "    title: One store\n    severity: may\n"))
    message = error_of(path)
    assert f"{path}:3:" in message and "'severity'" in message and "'may'" in message
    assert "must, should, info" in message


@pytest.mark.parametrize("refs", ["[]", "PS3.8 9.3", "[1, 2]"])
def test_references_must_be_a_non_empty_list_of_strings(tmp_path: Path, refs: str) -> None:
    path = write(tmp_path, GOOD.replace("[PS3.8 9.3.3]", refs))
    message = error_of(path)
    assert f"{path}:3:" in message and "'references'" in message and "demo.one" in message


def test_unknown_scenario_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    title: One store\n",
                                        "    title: One store\n    severity_: must\n"))
    message = error_of(path)
    assert f"{path}:3:" in message and "severity_" in message and "known:" in message


@pytest.mark.parametrize(("typo", "hint"), [("asociate", "associate"), ("stor", "store"),
                                            ("relase", "release")])
def test_unknown_operation_with_hint(tmp_path: Path, typo: str, hint: str) -> None:
    path = write(tmp_path, GOOD.replace("      - store: {}", f"      - {typo}: {{}}"))
    message = error_of(path)
    assert f"{path}:{line_of(path, f'- {typo}:')}:" in message
    assert f"unknown operation '{typo}'" in message and "step 2" in message
    assert re.search(r"did you mean [^?]*\b" + hint + r"\b", message), message


def test_unknown_operation_without_any_close_name(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      - store: {}", "      - zzzzqqq: {}"))
    message = error_of(path)
    assert "unknown operation 'zzzzqqq'" in message and "did you mean" not in message
    assert "operations:" in message and "associate" in message


def test_two_operations_in_one_step(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      - store: {}", "      - store: {}\n        echo: {}"))
    message = error_of(path)
    assert "exactly one operation" in message and "store, echo" in message


def test_unknown_step_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      - store: {}", "      - store: {kindd: ct}"))
    message = error_of(path)
    assert f"{path}:{line_of(path, 'kindd')}:" in message
    assert "(store): unknown parameter(s) kindd" in message and "known:" in message
    assert "kind" in message.split("known:")[1]


def test_step_parameters_must_be_a_mapping(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD.replace("      - store: {}", "      - store: [1]")))
    assert "(store): parameters must be a mapping" in message


def test_unknown_expectation_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{outcome: accepted}", "{outcome: accepted, stroed: sent}"))
    message = error_of(path)
    assert f"{path}:{line_of(path, '- associate')}:" in message  # the step's line
    assert "unknown expectation(s) stroed" in message and "stored" in message


@pytest.mark.parametrize("pattern", ["acepted", "'rejected:1,2'", "'abort:x,1'", "0xZZZZ",
                                     "'rejected:\u00b2,*,*'", "not:nothing", "5",
                                     "{must: [bogus]}", "{mustnt: [accepted]}", "{must: 7}"])
def test_bad_outcome_pattern(tmp_path: Path, pattern: str) -> None:
    path = write(tmp_path, GOOD.replace("{outcome: accepted}", f"{{outcome: {pattern}}}"))
    message = error_of(path)  # a ScenarioError, never a TypeError on odd YAML
    assert f"{path}:{line_of(path, '- associate')}:" in message
    assert "step 1 (associate)" in message and "expect.outcome" in message


def test_bad_stored_mode(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{outcome: accepted}", "{stored: partially}"))
    message = error_of(path)
    assert f"{path}:{line_of(path, '- associate')}:" in message
    assert "expect.stored" in message and "'partially'" in message


def test_bad_within(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD.replace("{outcome: accepted}", "{within: -1}")))
    assert "expect.within" in message


def test_bad_timeout_and_tags_and_requires(tmp_path: Path) -> None:
    for extra, field in (("timeout: 0", "'timeout'"), ("tags: slow", "'tags'"),
                         ("requires: calling_aet_allow", "'requires'")):
        path = write(tmp_path, GOOD.replace("    title: One store\n",
                                            f"    title: One store\n    {extra}\n"))
        message = error_of(path)
        assert f"{path}:3:" in message and field in message, message


def test_defaults_must_be_a_mapping(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD.replace("group: A\n", "group: A\ndefaults: 5\n")))
    assert "'defaults'" in message


def test_defaults_apply_to_every_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("group: A\n", "group: A\ndefaults: {severity: should, "
                                                      "tags: [x]}\n"))
    [sc] = load_file(path)
    assert sc.severity == "should" and sc.tags == ["x"]


def test_empty_scenarios_list(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "group: A\nscenarios: []\n"))
    assert "'scenarios'" in message


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "a-first.yaml")
    second = write(tmp_path, GOOD.replace("group: A", "group: B"), "b-second.yaml")
    with pytest.raises(ScenarioError) as info:
        load_suite(str(tmp_path))
    message = str(info.value)
    assert f"{second}:3" in message and f"{first}:3" in message and "demo.one" in message


@pytest.mark.parametrize(("params", "text"), [("{n: 5}", "parametrize 'n' must be a non-empty "
                                                        "list"),
                                              ("{n: []}", "must be a non-empty list"),
                                              ("[1, 2]", "'parametrize' must map names")])
def test_non_list_parametrize(tmp_path: Path, params: str, text: str) -> None:
    path = write(tmp_path, GOOD.replace("    title: One store\n",
                                        f"    title: One store\n    parametrize: {params}\n"))
    message = error_of(path)
    assert f"{path}:3:" in message and text in message


def test_error_in_a_parametrised_copy_names_the_copy(tmp_path: Path) -> None:
    path = one(tmp_path, """
        - id: demo.p
          title: t
          references: [PS3.8 1]
          parametrize: {op: [store, stroe]}
          steps:
            - associate: {}
            - "${op}": {}
        """)
    message = error_of(path)
    assert "demo.p[stroe]" in message and "unknown operation 'stroe'" in message


# --- parametrisation ------------------------------------------------------------------------


def test_parametrize_expands_with_types_kept(tmp_path: Path) -> None:
    path = one(tmp_path, """
        - id: demo.p
          title: "Version ${version} ${case.name}"
          references: [PS3.8 9.3.2]
          parametrize:
            version: [3, 32769]
            case:
              - {name: a, framing: {packing: together}, max: 64}
              - {name: b, framing: {data_splits: [1, 2]}}
          steps:
            - associate: {protocol_version: "${version}", max_pdu: "${case.max}"}
            - store: {framing: "${case.framing}", kind: "x-${version}"}
        """)
    scenarios = load_file(path)
    assert [s.id for s in scenarios] == ["demo.p[3,a]", "demo.p[3,b]", "demo.p[32769,a]",
                                        "demo.p[32769,b]"]
    first = scenarios[0]
    assert first.title == "Version 3 a"
    assert first.steps[0].params["protocol_version"] == 3  # full match keeps the int
    assert first.steps[0].params["max_pdu"] == 64
    assert first.steps[1].params["framing"] == {"packing": "together"}  # a mapping, no lines
    assert first.steps[1].params["kind"] == "x-3"  # inside text: the text of the value
    second = scenarios[1]
    assert second.steps[0].params["max_pdu"] is None  # a key case b does not set
    assert second.steps[1].params["framing"] == {"data_splits": [1, 2]}
    assert first.params["version"] == 3 and scenarios[2].params["version"] == 32769
    assert all(s.line == first.line for s in scenarios)


def test_parametrize_unknown_variable_is_left_alone(tmp_path: Path) -> None:
    path = one(tmp_path, """
        - id: demo.p
          title: "${other}"
          references: [PS3.8 1]
          parametrize: {x: [1]}
          steps:
            - associate: {called_ae: "${other}"}
        """)
    [sc] = load_file(path)
    assert sc.title == "${other}" and sc.steps[0].params["called_ae"] == "${other}"


def test_colliding_slugs_get_unique_ids(tmp_path: Path) -> None:
    path = one(tmp_path, """
        - id: demo.uid
          title: t
          references: [PS3.15 1]
          parametrize: {uid: ["../x", "..\\\\x", "..//x", "1.2"]}
          steps:
            - associate: {}
        """)
    ids = [s.id for s in load_file(path)]
    assert ids == ["demo.uid[..-x]", "demo.uid[..-x-2]", "demo.uid[..-x-3]", "demo.uid[1.2]"]


def test_shipped_parametrisations_resolve(suite: list[Scenario]) -> None:
    by_id = {s.id: s for s in suite}
    version = by_id["assoc.protocol-version-other-bits[32769]"]
    assert version.steps[0].params["protocol_version"] == 32769
    window = by_id["assoc.async-window-offered[5-5]"]
    assert window.steps[0].params["async_window"] == [5, 5]
    for sc in suite:
        for step in sc.steps:
            assert "${" not in repr(step.params), f"{sc.id}: unresolved {step.params}"


# --- -k selection ---------------------------------------------------------------------------


def _sc(sid: str, group: str = "A", tags: tuple[str, ...] = (), title: str = "") -> Scenario:
    return Scenario(sid, title or f"title of {sid}", group, "must", ["PS3.8 1"],
                    [Step("associate", {})], tags=list(tags))


POOL = [_sc("assoc.baseline"), _sc("assoc.other", title="Something Special"),
        _sc("store.big", "B", ("slow",)), _sc("store.small", "B"),
        _sc("timeout.trickle", "I", ("slow", "timers"))]


@pytest.mark.parametrize(("expr", "expected"), [
    (None, [s.id for s in POOL]),
    ("", [s.id for s in POOL]),
    ("assoc.baseline", ["assoc.baseline"]),
    ("ASSOC", ["assoc.baseline", "assoc.other"]),
    ("special", ["assoc.other"]),  # title words count
    ("store and not slow", ["store.small"]),
    ("baseline or trickle", ["assoc.baseline", "timeout.trickle"]),
    ("not (assoc or store)", ["timeout.trickle"]),
    ("group:B", ["store.big", "store.small"]),
    ("group:i or group:a", ["assoc.baseline", "assoc.other", "timeout.trickle"]),
    ("tag:slow", ["store.big", "timeout.trickle"]),
    ("tag:slow and tag:timers", ["timeout.trickle"]),
    ("nothing-like-this", []),
])
def test_select(expr: str | None, expected: list[str]) -> None:
    assert [s.id for s in select(POOL, expr)] == expected


@pytest.mark.parametrize("expr", ["assoc and", "(assoc", "assoc baseline", "not", "or store",
                                  "store(x)", "()", "assoc ()", "(a) (b)"])
def test_select_invalid_expression(expr: str) -> None:
    with pytest.raises(ScenarioError, match="not a valid expression"):
        select(POOL, expr)
    with pytest.raises(ScenarioError):  # even with nothing to match against
        select([], expr)


def test_select_cannot_reach_python() -> None:
    # words are quoted, never evaluated: quotes are part of a substring
    assert select(POOL, "'os'") == [] and select(POOL, "os'") == []
    assert select(POOL, "__builtins__ or baseline") == [POOL[0]]
    with pytest.raises(ScenarioError):
        select(POOL, "__import__('os')")  # a word followed by "(" is no call


def test_select_on_the_suite(suite: list[Scenario]) -> None:
    chosen = select(suite, "group:E and not abort")
    assert chosen and all(s.group == "E" and "abort" not in s.id for s in chosen)
    assert {s.id for s in select(suite, "tag:slow")} >= {"store.large-object",
                                                         "resource.huge-object"}


# --- suite paths ------------------------------------------------------------------------------


def test_suite_paths_default_is_every_file() -> None:
    assert suite_paths(None) == SUITE_FILES
    assert suite_paths("all") == SUITE_FILES


@pytest.mark.parametrize("name", ["a-association", "a", "A"])
def test_suite_paths_by_name(name: str) -> None:
    assert suite_paths(name) == [SUITES_DIR / "a-association.yaml"]


def test_suite_paths_by_file_and_folder(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "x.yaml")
    write(tmp_path, GOOD.replace("demo.one", "demo.two"), "y.yaml")
    (tmp_path / "notes.txt").write_text("not a suite")
    assert suite_paths(str(first)) == [first]
    assert suite_paths(str(tmp_path)) == [first, tmp_path / "y.yaml"]
    assert [s.id for s in load_suite(str(tmp_path))] == ["demo.one", "demo.two"]


def test_unknown_suite_lists_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        suite_paths("no-such-suite")
    message = str(info.value)
    assert "'no-such-suite'" in message
    for path in SUITE_FILES:
        assert path.stem in message
