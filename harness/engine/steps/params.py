"""Typed step parameters: how a step declares what it accepts, and the check run at load time.

A step's parameters are the fields of a frozen dataclass: the annotation is the YAML type
accepted, the default is what the step uses when the key is absent (no default: required),
and :func:`param`'s ``doc`` is one line for ``dicom-harness list --steps`` and
``docs/steps.md``. The loader calls :func:`problems` for every step of every scenario when a
file loads, so a typo or a wrong type is one error line naming the file, the scenario, the
step and the parameter, before anything is sent.

The types understood are the ones YAML produces: ``bool``, ``int``, ``float`` (an int is
accepted), ``str``, ``None``, ``Literal[...]``, unions, ``list[X]``, ``dict[K, V]``, ``Any`` and
``TypedDict`` classes and nested declarations (a mapping whose keys are checked too). A
null is accepted for any optional parameter or mapping key, as if it were not given: a
parametrised ``${case.field}`` that a case does not set becomes null.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

__all__ = ["Param", "Unset", "declared", "param", "problems", "type_text"]


class Unset:
    """The default of a parameter the step works out at run time (``shown`` says how)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = Unset()


def param(doc: str, default: Any = UNSET, *, required: bool = False,
          shown: str | None = None, choices: Iterable[str] = ()) -> Any:
    """A parameter field: its one-line ``doc``; its ``default`` (UNSET: the step works it out
    at run time, and ``shown`` says how in the docs) or ``required=True``; ``choices``: the
    only values allowed, for a vocabulary kept as data elsewhere (data set kinds,
    malformers)."""
    metadata = {"doc": doc, "shown": shown, "choices": tuple(choices)}
    if required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter, as the docs and the loader see it."""

    name: str
    type: Any
    default: Any
    required: bool
    doc: str
    shown: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def type_text(self) -> str:
        # null is accepted for every optional parameter: not worth saying on each one.
        members = [a for a in _members(self.type) if a is not type(None)]
        return " | ".join(type_text(a) for a in members)

    @property
    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.shown:
            return self.shown
        if isinstance(self.default, Unset) or self.default is None:
            return "-"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)


@functools.cache  # declarations are classes, fixed at import: read each once
def declared(declaration: type) -> tuple[Param, ...]:
    """The parameters of a step's declaration (a dataclass), in declaration order."""
    hints = get_type_hints(declaration)
    out = []
    for f in dataclasses.fields(declaration):
        required = f.default is MISSING and f.default_factory is MISSING
        default = None if required else f.default
        out.append(Param(f.name, hints[f.name], default, required, str(f.metadata.get("doc", "")),
                         f.metadata.get("shown"), tuple(f.metadata.get("choices", ()))))
    return tuple(out)


def problems(declaration: type, values: dict[str, Any]) -> list[str]:
    """What is wrong with a step's parameters (YAML values) against its declaration: unknown
    keys, missing required ones, values of the wrong type. Empty when all is well."""
    params = {p.name: p for p in declared(declaration)}
    out: list[str] = []
    unknown = sorted(str(k) for k in values if k not in params)
    if unknown:
        out.append(f"unknown parameter(s) {', '.join(unknown)}; known: "
                   f"{', '.join(sorted(params)) or 'none'}")
    for p in params.values():
        if p.name not in values:
            if p.required:
                out.append(f"parameter '{p.name}' is required ({p.doc})")
            continue
        value = values[p.name]
        if value is None and not p.required:
            continue  # null: as if not given (what a case of parametrize leaves unset)
        wrong = _mismatch(value, p.type)
        if wrong:
            out.append(f"parameter '{p.name}' {wrong}")
        elif p.choices and value is not None and value not in p.choices:
            out.append(f"parameter '{p.name}' must be one of {', '.join(p.choices)}, got "
                       f"{_describe(value)}")
    return out


def _mismatch(value: Any, tp: Any) -> str | None:
    """Why ``value`` does not fit ``tp`` (``must be ..., got ...``), or None when it fits."""
    if _fits(value, tp):
        return None
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return "; ".join(problems(tp, value))  # type: ignore[arg-type]
    if _is_typeddict(tp) and isinstance(value, dict):
        keys = get_type_hints(tp)
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            return (f"has unknown key(s) {', '.join(unknown)}; known: "
                    f"{', '.join(sorted(keys))}")
        for key, sub in value.items():
            inner = None if sub is None else _mismatch(sub, keys[key])
            if inner:
                return f"key '{key}' {inner}"
    for container, origin in ((list, list), (dict, dict)):
        if isinstance(value, container) and any(get_origin(a) is origin for a in _members(tp)):
            for member in _members(tp):
                if get_origin(member) is not origin:
                    continue
                items = list(enumerate(value)) if isinstance(value, list) else \
                    list(value.items())
                arg = get_args(member)[0 if origin is list else 1]
                for key, sub in items:
                    inner = _mismatch(sub, arg)
                    if inner:
                        where = f"item {key + 1}" if origin is list else f"key '{key}'"
                        return f"{where} {inner}"
    return f"must be {type_text(tp)}, got {_describe(value)}"


def _members(tp: Any) -> tuple[Any, ...]:
    return get_args(tp) if _is_union(tp) else (tp,)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType)


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def _fits(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is None or tp is type(None):
        return value is None
    if _is_union(tp):
        return any(_fits(value, a) for a in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        # YAML's true is not the 1 of a Literal[1] (nor 1 the string "1").
        return any(value == a and type(value) is type(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):  # the parameters of a step, nested
        return isinstance(value, dict) and not problems(tp, value)  # type: ignore[arg-type]
    if _is_typeddict(tp):
        keys = get_type_hints(tp)
        return isinstance(value, dict) and all(k in keys and (v is None or _fits(v, keys[k]))
                                               for k, v in value.items())
    if origin is list:
        return isinstance(value, list) and all(_fits(v, get_args(tp)[0]) for v in value)
    if origin is dict:
        key_t, value_t = get_args(tp)
        return isinstance(value, dict) and all(_fits(k, key_t) and _fits(v, value_t)
                                               for k, v in value.items())
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    raise TypeError(f"parameter type {tp!r} is not one the loader can check")


_NAMES = {bool: "bool", int: "int", float: "number", str: "str", type(None): "null",
          list: "list", dict: "mapping"}


def type_text(tp: Any) -> str:
    """A parameter type as the docs show it: ``int | "auto" | "omit"``, ``list[int]``."""
    if tp is Any:
        return "any"
    if tp is None:
        return "null"
    if _is_union(tp):
        return " | ".join(type_text(a) for a in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"mapping of {getattr(tp, 'TYPE_NAME', getattr(tp, '__name__', 'parameters'))}"
    if _is_typeddict(tp):
        return "{" + ", ".join(f"{k}: {type_text(v)}" for k, v in
                               get_type_hints(tp).items()) + "}"
    if origin is list:
        return f"list[{type_text(get_args(tp)[0])}]"
    if origin is dict:
        key_t, value_t = get_args(tp)
        return "mapping" if (key_t, value_t) == (str, Any) else \
            f"mapping[{type_text(key_t)}: {type_text(value_t)}]"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{_NAMES.get(type(value), type(value).__name__)} {text}"
