"""The YAML step vocabulary: step names of scenario files -> declaration, doc and function.

``@step(name, Params)`` registers an operation: ``Params`` is the frozen dataclass declaring
its parameters (:mod:`harness.engine.steps.params`), the function's docstring is its
documentation. The loader checks every ``- name: {...}`` against :data:`STEPS`; the runner
calls ``STEPS[name].func``; ``dicom-harness list --steps`` and ``docs/steps.md`` are
generated from the same entries.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, is_dataclass
from typing import Any

from harness.engine.context import ScenarioRun
from harness.engine.steps.params import Param, declared, problems
from harness.scu.outcome import Outcome

StepFunc = Callable[[ScenarioRun, dict[str, Any], str], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One operation of the vocabulary."""

    name: str
    declaration: type
    doc: str
    func: StepFunc

    @property
    def parameters(self) -> tuple[Param, ...]:
        return declared(self.declaration)

    @property
    def params(self) -> frozenset[str]:
        """The parameter names (what the registry held before parameters were typed)."""
        return frozenset(p.name for p in self.parameters)

    def problems(self, values: dict[str, Any]) -> list[str]:
        """What is wrong with a scenario's parameters for this step (empty: nothing)."""
        return problems(self.declaration, values)


STEPS: dict[str, StepSpec] = {}


def step(name: str, declaration: type) -> Callable[[StepFunc], StepFunc]:
    """Register ``func`` as the operation ``name`` with the parameters ``declaration``."""
    if not is_dataclass(declaration):
        raise TypeError(f"step {name!r}: parameters must be declared as a dataclass")

    def register(func: StepFunc) -> StepFunc:
        doc = inspect.getdoc(func)
        if not doc:
            raise TypeError(f"step {name!r}: {func.__name__} needs a docstring (its docs)")
        STEPS[name] = StepSpec(name, declaration, doc, func)
        return func
    return register


@dataclass(frozen=True, kw_only=True)
class NoParams:
    """A step that takes no parameters."""
