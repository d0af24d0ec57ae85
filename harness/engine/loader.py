"""Loading scenario files (YAML under ``scenarios/``) into validated :class:`Scenario` objects.

A malformed file gives a :class:`ScenarioError` naming the file, the line and the field;
every step's parameters are checked against its typed declaration
(:mod:`harness.engine.steps.params`) as the file loads.
Parametrised scenarios (``parametrize: {name: [values]}``) expand into one scenario per
value, with ``${name}`` replaced in every string of their steps.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib.resources
import itertools
import re
from pathlib import Path
from typing import Any

import yaml

from harness.engine.model import GROUP_TITLES, SEVERITIES, Scenario, Step

# Where the default suite is, first found wins: inside the installed package (a wheel:
# setup.py maps the repository's scenarios/ onto harness._scenarios), then the repository's
# top-level scenarios/ (a checkout or an editable install, which has no harness/_scenarios).
PACKAGED_SUITE = Path(str(importlib.resources.files("harness").joinpath("_scenarios")))
SOURCE_SUITE = Path(__file__).resolve().parent.parent.parent / "scenarios"
SUITE_DIRS: tuple[Path, ...] = (PACKAGED_SUITE, SOURCE_SUITE)
SUITES_DIR = SOURCE_SUITE  # the folder one edits (kept name: tests and tools use it)
LINE_KEY = "__line__"

SCENARIO_KEYS = {"id", "title", "severity", "references", "steps", "description", "tags",
                 "negative", "requires", "conformance_statement", "timeout", "expected",
                 "parametrize", "group", LINE_KEY}
STEP_MODIFIERS = {"expect", "as", LINE_KEY}
EXPECT_KEYS = {"outcome", "stored", "within", "declared", "record", "responses", "contexts"}


class ScenarioError(ValueError):
    """A scenario file is invalid: the message says where and what."""


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINE_KEY] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _construct_mapping)


def strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != LINE_KEY}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


def suites_dir() -> Path:
    """The folder of the default suite: the first of :data:`SUITE_DIRS` that holds scenario
    files; a :class:`ScenarioError` naming every place looked at when none does."""
    for folder in SUITE_DIRS:
        if any(folder.glob("*.yaml")):
            return folder
    raise ScenarioError("no scenario files (*.yaml) in "
                        + " or ".join(str(d) for d in SUITE_DIRS)
                        + ": the installed package lacks its suite; reinstall dicom-harness, "
                        "or give --suite PATH")


def suite_paths(suite: str | None) -> list[Path]:
    """Files of a suite: a name under scenarios/ (default: all), a file or a folder."""
    if suite is None or suite in ("", "all", "default"):
        return sorted(suites_dir().glob("*.yaml"))
    path = Path(suite)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise ScenarioError(f"suite '{suite}': no scenario files (*.yaml) in folder {path}")
        return files
    base = suites_dir()
    named = sorted(p for p in base.glob("*.yaml") if p.stem == suite or p.stem.startswith(
        suite + "-") or p.stem.split("-")[0] == suite.lower())
    if named:
        return named
    raise ScenarioError(f"suite '{suite}': no such file, folder or suite name under {base} "
                        f"(known: {', '.join(p.stem for p in sorted(base.glob('*.yaml')))})")


def load_suite(suite: str | None = None) -> list[Scenario]:
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in suite_paths(suite):
        for sc in load_file(path):
            if sc.id in seen:
                raise ScenarioError(f"{sc.where}: scenario id '{sc.id}' already defined at "
                                    f"{seen[sc.id]}")
            seen[sc.id] = sc.where
            scenarios.append(sc)
    return scenarios


def load_file(path: Path) -> list[Scenario]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{path}{line}: invalid YAML: {problem}") from exc
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: a scenario file must be a mapping with 'group' and "
                            "'scenarios'")
    group = doc.get("group")
    if not isinstance(group, str) or not group:
        raise ScenarioError(f"{path}:{doc.get(LINE_KEY, 1)}: field 'group' is required "
                            f"(one of {', '.join(GROUP_TITLES)})")
    items = doc.get("scenarios")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{path}:{doc.get(LINE_KEY, 1)}: field 'scenarios' must be a "
                            "non-empty list")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ScenarioError(f"{path}:{doc.get(LINE_KEY, 1)}: field 'defaults' must be a "
                            "mapping of scenario fields")
    out: list[Scenario] = []
    for raw in items:
        if not isinstance(raw, dict):
            raise ScenarioError(f"{path}: every entry of 'scenarios' must be a mapping")
        merged = {**{k: v for k, v in defaults.items() if k != LINE_KEY}, **raw}
        out.extend(_expand(path, group, merged))
    return out


def _where(path: Path, raw: dict[str, Any]) -> str:
    return f"{path}:{raw.get(LINE_KEY, '?')}"


def _expand(path: Path, group: str, raw: dict[str, Any]) -> list[Scenario]:
    params = raw.get("parametrize")
    if not params:
        return [_scenario(path, group, raw, {})]
    if not isinstance(params, dict):
        raise ScenarioError(f"{_where(path, raw)}: 'parametrize' must map names to lists")
    names = [k for k in params if k != LINE_KEY]
    for name in names:
        if not isinstance(params[name], list) or not params[name]:
            raise ScenarioError(f"{_where(path, raw)}: parametrize '{name}' must be a "
                                "non-empty list")
    out = []
    seen: set[str] = set()
    for combo in itertools.product(*(params[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        sc = _scenario(path, group, _substitute(raw, values), values)
        base, n = sc.id, 2
        while sc.id in seen:  # two values with the same slug ("../x" and "..\\x")
            sc.id = f"{base[:-1]}-{n}]"
            n += 1
        seen.add(sc.id)
        out.append(sc)
    return out


_VAR = re.compile(r"\$\{(\w+)(?:\.(\w+))?\}")
_MISSING = object()


def _lookup(values: dict[str, Any], match: re.Match[str]) -> Any:
    value = values.get(match.group(1), _MISSING)
    if match.group(2) is not None and isinstance(value, dict):
        value = value.get(match.group(2), _MISSING)
    return value


def _substitute(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        full = _VAR.fullmatch(value)
        if full and full.group(1) in values:
            found = _lookup(values, full)
            # Keep the type (ints stay ints); a field a case does not set is absent (None).
            return None if found is _MISSING else strip_lines(found)

        def text(m: re.Match[str]) -> str:
            found = _lookup(values, m)
            return m.group(0) if found is _MISSING else str(found)

        return _VAR.sub(text, value)
    if isinstance(value, dict):
        return {_substitute(k, values) if isinstance(k, str) else k: _substitute(v, values)
                for k, v in value.items() if k != "parametrize"}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    return value


def _slug(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("name", "case")
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-").lower()


def _scenario(path: Path, group: str, raw: dict[str, Any], values: dict[str, Any]) -> Scenario:
    where = _where(path, raw)
    unknown = set(raw) - SCENARIO_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                            f"known: {', '.join(sorted(SCENARIO_KEYS - {LINE_KEY}))}")
    for key in ("id", "title"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ScenarioError(f"{where}: field '{key}' is required and must be a string")
    sid = raw["id"] + ("[" + ",".join(_slug(v) for v in values.values()) + "]" if values else "")
    severity = raw.get("severity", "must")
    if severity not in SEVERITIES:
        raise ScenarioError(f"{where}: scenario '{sid}': field 'severity' must be one of "
                            f"{', '.join(SEVERITIES)}, got {severity!r}")
    refs = raw.get("references")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ScenarioError(f"{where}: scenario '{sid}': field 'references' must be a non-empty "
                            "list of sections of the standard (every scenario cites what it "
                            "checks)")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise ScenarioError(f"{where}: scenario '{sid}': field 'steps' must be a non-empty list")
    steps = [_step(path, sid, i, s) for i, s in enumerate(steps_raw, 1)]
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise ScenarioError(f"{where}: scenario '{sid}': field 'tags' must be a list")
    if not isinstance(raw.get("requires") or [], list):  # a string would become its letters
        raise ScenarioError(f"{where}: scenario '{sid}': field 'requires' must be a list of "
                            "declarations")
    timeout = raw.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ScenarioError(f"{where}: scenario '{sid}': field 'timeout' must be a positive "
                            "number of seconds")
    return Scenario(
        id=sid, title=str(raw["title"]), group=str(raw.get("group", group)), severity=severity,
        references=list(refs), steps=steps, description=str(raw.get("description", "")).strip(),
        tags=[str(t) for t in tags], negative=bool(raw.get("negative", group >= "D")),
        requires=[str(r) for r in raw.get("requires") or []],
        conformance_statement=bool(raw.get("conformance_statement", False)),
        timeout=float(timeout) if timeout is not None else None,
        expected=str(raw.get("expected", "")).strip(), source=str(path),
        line=raw.get(LINE_KEY), params=values)


def _step(path: Path, sid: str, index: int, raw: Any) -> Step:
    from harness.engine.steps import STEPS  # the registry of operations

    where = f"{path}:{raw.get(LINE_KEY, '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: scenario '{sid}' step {index}: a step must be a mapping "
                            "like '- store: {...}'")
    ops = [k for k in raw if k not in STEP_MODIFIERS]
    if len(ops) != 1:
        raise ScenarioError(f"{where}: scenario '{sid}' step {index}: expected exactly one "
                            f"operation, found {', '.join(map(str, ops)) or 'none'}; "
                            f"operations: {', '.join(sorted(STEPS))}")
    op = ops[0]
    if op not in STEPS:
        # Typos anywhere in the name ("asociate"), or the same prefix ("stor" -> store*).
        close = difflib.get_close_matches(str(op), STEPS, n=3) or fnmatch.filter(
            STEPS, str(op)[:3] + "*")
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ScenarioError(f"{where}: scenario '{sid}' step {index}: unknown operation "
                            f"'{op}'{hint}; operations: {', '.join(sorted(STEPS))}")
    params = raw[op] if raw[op] is not None else {}
    if not isinstance(params, dict):
        raise ScenarioError(f"{where}: scenario '{sid}' step {index} ({op}): parameters must "
                            "be a mapping")
    # Typed parameters (harness.engine.steps.params): unknown keys, missing required ones
    # and wrong types are found here, when the file loads, not halfway through a run.
    wrong = STEPS[op].problems(strip_lines(params))
    if wrong:
        raise ScenarioError(f"{where}: scenario '{sid}' step {index} ({op}): {wrong[0]}")
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict):
        raise ScenarioError(f"{where}: scenario '{sid}' step {index} ({op}): 'expect' must be "
                            "a mapping")
    bad = set(expect) - EXPECT_KEYS - {LINE_KEY}
    if bad:
        raise ScenarioError(f"{where}: scenario '{sid}' step {index} ({op}): unknown "
                            f"expectation(s) {', '.join(sorted(map(str, bad)))}; known: "
                            f"{', '.join(sorted(EXPECT_KEYS))}")
    from harness.engine.expect import validate_expect

    problem = validate_expect(strip_lines(expect))
    if problem:
        raise ScenarioError(f"{where}: scenario '{sid}' step {index} ({op}): {problem}")
    return Step(op, strip_lines(params), strip_lines(expect), str(raw.get("as", "main")),
                raw.get(LINE_KEY))


_K_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Call,
            ast.Name, ast.Load, ast.Constant)


def select(scenarios: list[Scenario], expr: str | None) -> list[Scenario]:
    """Filter by a ``-k`` expression: words joined with and/or/not, matched against the id,
    title, group and tags (substring, case-insensitive), like pytest's ``-k``."""
    if not expr:
        return scenarios
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    py: list[str] = []
    for tok in tokens:
        low = tok.lower()
        if low in ("and", "or", "not", "(", ")"):
            py.append(low)
        else:
            py.append(f"_m({tok!r})")
    try:  # checked once, so a bad expression is reported even when nothing is to match
        tree = ast.parse(" ".join(py), mode="eval")
    except SyntaxError as exc:
        raise ScenarioError(f"-k {expr!r}: not a valid expression") from exc
    # Only and/or/not over words: "word(x)" or "()" parse, but would call a bool or make a tuple.
    if any(not isinstance(node, _K_NODES) or (isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id == "_m")) for node in ast.walk(tree)):
        raise ScenarioError(f"-k {expr!r}: not a valid expression")
    code = compile(tree, "<-k>", "eval")
    out = []
    for sc in scenarios:
        hay = " ".join([sc.id, sc.title, f"group:{sc.group}", *sc.tags,
                        *(f"tag:{t}" for t in sc.tags)]).lower()

        def _m(word: str, hay: str = hay) -> bool:
            return word.lower() in hay

        keep = eval(code, {"__builtins__": {}}, {"_m": _m})
        if keep:
            out.append(sc)
    return out
