"""Expectations: outcome patterns and their MUST / SHOULD grading.

An outcome pattern is a string matched against an :class:`~harness.scu.outcome.Outcome`:

- ``accepted``, ``rejected``, ``rejected:R,S,N`` (``*`` wildcards), ``abort``,
  ``abort:S,R``, ``close``, ``hang``, ``release``, ``sent``, ``response``, ``unexpected``;
- status categories ``success``, ``warning``, ``failure``, ``cancel``, ``pending``,
  ``illegal`` (from the PS3.7 Annex C table, never the high nibble alone);
- status codes ``0x0210`` and ranges ``0xC000-0xCFFF``;
- ``any``; ``not:PATTERN``; ``ended`` (abort or close).

A graded spec is either patterns (a string or a list, judged at the scenario's severity) or
a mapping ``{must: [...], should: [...], must_not: [...], should_not: [...]}``.
"""

from __future__ import annotations

from typing import Any

from harness.scu.outcome import Outcome

KINDS = {"accepted", "rejected", "abort", "close", "hang", "release", "sent", "response",
         "unexpected", "skipped", "error"}
CATEGORIES = {"success", "warning", "failure", "cancel", "pending", "illegal"}
GRADES = ("must", "should", "must_not", "should_not", "info")


def _parse_int(text: str) -> int:
    return int(text, 0)


def pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str) or not pattern:
        return f"outcome pattern must be a non-empty string, got {pattern!r}"
    p = pattern.strip().lower()
    if p.startswith("not:"):
        return pattern_problem(p[4:])
    if p in KINDS or p in CATEGORIES or p in ("any", "ended"):
        return None
    head, _, tail = p.partition(":")
    if head in ("rejected", "abort") and tail:
        parts = tail.split(",")
        want = 3 if head == "rejected" else 2
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        if len(parts) != want or not all(x == "*" or (x.isascii() and x.isdigit())
                                         for x in parts):
            return f"pattern {pattern!r}: expected {head}:{','.join(['N'] * want)} (or *)"
        return None
    if p.startswith("0x"):
        try:
            lo, _, hi = p.partition("-")
            _parse_int(lo)
            if hi:
                _parse_int(hi)
        except ValueError:
            return f"pattern {pattern!r}: not a status code or range like 0xC000-0xCFFF"
        return None
    return (f"unknown outcome pattern {pattern!r}; use one of {', '.join(sorted(KINDS))}, "
            f"{', '.join(sorted(CATEGORIES))}, rejected:R,S,N, abort:S,R, 0xNNNN[-0xNNNN], any, "
            "ended, not:PATTERN")


def matches(pattern: str, out: Outcome) -> bool:
    p = pattern.strip().lower()
    if p.startswith("not:"):
        return not matches(p[4:], out)
    if p == "any":
        return True
    if p == "ended":
        return out.kind in ("abort", "close")
    if p in KINDS:
        return out.kind == p
    if p in CATEGORIES:
        return out.kind == "response" and (out.category or "").lower() == p
    head, _, tail = p.partition(":")
    if head == "rejected" and out.kind == "rejected":
        return _fields_match(tail, (out.result, out.source, out.reason))
    if head == "abort" and out.kind == "abort":
        return _fields_match(tail, (out.source, out.reason))
    if p.startswith("0x") and out.kind == "response" and out.status is not None:
        lo, _, hi = p.partition("-")
        low = _parse_int(lo)
        high = _parse_int(hi) if hi else low
        return low <= out.status <= high
    return False


def _fields_match(spec: str, values: tuple[int | None, ...]) -> bool:
    for want, got in zip(spec.split(","), values, strict=False):
        if want != "*" and (got is None or int(want) != got):
            return False
    return True


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    # A scalar (``outcome: 5``) is one pattern, reported as invalid, not a TypeError.
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def graded(spec: Any, default_severity: str) -> list[tuple[str, list[str]]]:
    """Normalise a spec to [(grade, patterns)], grade in must/should/must_not/should_not."""
    if isinstance(spec, dict):
        return [(g, as_list(spec[g])) for g in GRADES if g in spec]
    grade = "should" if default_severity == "should" else (
        "info" if default_severity == "info" else "must")
    return [(grade, as_list(spec))]


def validate_expect(expect: dict[str, Any]) -> str | None:
    spec = expect.get("outcome")
    if spec is not None:
        if isinstance(spec, dict):
            bad = set(spec) - set(GRADES)
            if bad:
                return (f"expect.outcome: unknown grade(s) {', '.join(sorted(bad))}; use "
                        f"{', '.join(GRADES)}")
        for _grade, patterns in graded(spec, "must"):
            for pat in patterns:
                problem = pattern_problem(pat)
                if problem:
                    return f"expect.outcome: {problem}"
    contexts = expect.get("contexts")
    if contexts is not None and (not isinstance(contexts, dict) or
                                 not all(str(k).isdigit() for k in contexts)):
            return "expect.contexts must map presentation context IDs to allowed results"
    stored = expect.get("stored")
    if stored is not None and stored not in ("sent", "none", "any", "not-partial",
                                             "consistent"):
        return (f"expect.stored must be sent, none, not-partial, consistent or any, got "
                f"{stored!r}")
    within = expect.get("within")
    if within is not None and (not isinstance(within, int | float) or within <= 0):
        return f"expect.within must be a positive number of seconds, got {within!r}"
    return None


def judge(spec: Any, out: Outcome, default_severity: str) -> list[tuple[str, str, str]]:
    """[(severity, verdict, expected-text)] for each grade of ``spec`` against ``out``.

    verdict is ``pass`` or ``fail`` (the caller turns a failed should into ``warn``).
    """
    results = []
    for grade, patterns in graded(spec, default_severity):
        if not patterns:
            continue
        hit = any(matches(p, out) for p in patterns)
        if grade in ("must", "should", "info"):
            ok, text = hit, " or ".join(patterns)
        else:
            ok, text = not hit, "not " + " / ".join(patterns)
        severity = {"must": "must", "must_not": "must", "should": "should",
                    "should_not": "should"}.get(grade, "info")
        results.append((severity, "pass" if ok else "fail", text))
    return results
