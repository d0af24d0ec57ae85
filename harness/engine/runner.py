"""Running scenarios against a target and turning what happened into verdicts.

For each scenario: run its steps, judge each step's expectations (graded MUST / SHOULD),
apply the universal checks, check stored data where a storage directory is known, run a
liveness probe after negative scenarios, and reduce all checks to one outcome. A scenario
never outlives its time budget: a hang is a failed check, never a hung harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import traceback
from collections.abc import Callable
from typing import Any

from harness import __version__
from harness.engine.context import ScenarioRun, Target
from harness.engine.expect import as_list, judge, matches
from harness.engine.model import NOT_RUN_TARGET_DOWN, Scenario, Step
from harness.engine.steps import STEPS, TLS_REQUIREMENTS, op_associate, op_release, op_store
from harness.engine.storage import StorageInspector, compare, outside_writes
from harness.scu.outcome import Outcome
from harness.wire.constants import MESSAGE_ID_BEING_RESPONDED_TO

_WIND_DOWN = ("release", "abort", "reset", "fin", "expect_close", "sleep")
DEFAULT_EXPECT = {"associate": "accepted", "store": "response", "echo": "response",
                  "release": "release", "wait_response": "response"}
ProgressFn = Callable[[Scenario, dict[str, Any]], None]


TARGET_DOWN = "the SCP stopped accepting connections after this scenario"


class Runner:
    def __init__(self, target: Target, *, progress: ProgressFn | None = None,
                 recovery_timeout: float = 40.0, max_duration: float | None = None) -> None:
        self.target = target
        self.recovery_timeout = recovery_timeout
        self.progress = progress
        self.max_duration = max_duration
        self.observed: dict[str, Any] = {}
        self.inspector = StorageInspector(target.storage_dir) if target.storage_dir else None
        self.target_down: dict[str, Any] | None = None  # {"after": id, "detail": why}
        self.stopped: dict[str, Any] | None = None  # the run hit --max-duration
        self._suspect = False  # the last scenario gave a reason to check the target is up

    async def run(self, scenarios: list[Scenario]) -> dict[str, Any]:
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        deadline = t0 + self.max_duration if self.max_duration else None
        results: list[dict[str, Any]] = []
        for index, sc in enumerate(scenarios):
            if self.target_down is not None:
                after = self.target_down["after"]
                result = self._not_run(sc, index, "skip", _not_run_down(after))
            elif deadline is not None and time.monotonic() >= deadline:
                if self.stopped is None:  # the time ran out between two scenarios
                    self._stop_at_max_duration(during=None)
                result = self._not_run(sc, index, "error", "not run: the run reached "
                                       f"--max-duration {self.max_duration:g} s")
            else:
                self._suspect = False
                result = await self._bounded(sc, index, deadline)
                if self._suspect or result["outcome"] == "error":
                    await self._check_target_alive(sc, result, results)
            results.append(result)
            if self.progress is not None:
                self.progress(sc, result)
        return self.results(results, started, time.monotonic() - t0)

    async def _bounded(self, sc: Scenario, index: int, deadline: float | None) -> dict[str, Any]:
        """run_one under two bounds: the scenario's own budget (plus what the checks after it
        may take) and what is left of --max-duration. Whatever the target does (slow drip,
        half-open sockets, connections that never close), the scenario ends."""
        probe = ScenarioRun(sc, self.target, {})
        limit = _budget(probe) + self.recovery_timeout + 4 * probe.timeout + 10.0
        by_run = deadline is not None and deadline - time.monotonic() < limit
        if deadline is not None:
            limit = max(0.0, min(limit, deadline - time.monotonic()))
        start = time.monotonic()
        try:
            return await asyncio.wait_for(self.run_one(sc, index), limit)
        except TimeoutError:
            why = (f"stopped: the run reached --max-duration {self.max_duration:g} s while "
                   "this scenario ran" if by_run else
                   f"stopped: the scenario and its checks took more than {limit:.0f} s")
            if by_run:
                self._stop_at_max_duration(during=sc.id)
            return self._not_run(sc, index, "error", why, time.monotonic() - start)

    def _not_run(self, sc: Scenario, index: int, outcome: str, why: str,
                 duration: float = 0.0) -> dict[str, Any]:
        run = ScenarioRun(sc, self.target, {})
        run.index = index + 1
        return self._result(run, outcome, duration, observed=why)

    def _stop_at_max_duration(self, during: str | None) -> None:
        """Record that the run reached --max-duration (``during``: the scenario it cut)."""
        self.stopped = {"reason": "max-duration", "limit_s": self.max_duration,
                        "during": during}

    async def _check_target_alive(self, sc: Scenario, result: dict[str, Any],
                                  results: list[dict[str, Any]]) -> None:
        """A target that no longer accepts TCP connections after a scenario crashed (or shut
        down) during it: that is the scenario's finding, and nothing after it can run.
        Checked only after a scenario whose connection was closed without a PDU or that
        could not run (a check after every scenario would itself load some SCPs)."""
        if await self._accepts():
            return
        # Could not connect before sending anything: the target was down when it began.
        cannot_connect = result["outcome"] == "error" and "cannot connect" in \
            result["observed"] and not result["trace"]
        if cannot_connect and not results:
            # Unreachable from the start: nothing to blame; the rest cannot run either.
            result["observed"] = (f"target {self.target.host}:{self.target.port} does not "
                                  f"accept connections; {result['observed']}")
            self.target_down = {"after": None, "detail": result["observed"]}
            return
        if cannot_connect and not results[-1]["observed"].startswith(TARGET_DOWN):
            # Down before this scenario began: the previous one is the finding.
            previous = results[-1]
            self._mark_down(previous, f"{TARGET_DOWN} (the next scenario could not connect)")
            self.target_down = {"after": previous["id"], "detail": previous["observed"]}
            result.update(self._not_run(sc, 0, "skip", _not_run_down(previous["id"])))
            return
        start = time.monotonic()
        while time.monotonic() - start < self.recovery_timeout:
            await asyncio.sleep(1.0)
            if await self._accepts():
                came_back = time.monotonic() - start
                self._mark_down(result, f"{TARGET_DOWN} (it accepted connections again "
                                        f"{came_back:.0f} s later)")
                return
        self._mark_down(result, f"{TARGET_DOWN} (still refused {self.recovery_timeout:g} s "
                                "later)")
        self.target_down = {"after": sc.id, "detail": result["observed"]}

    def _mark_down(self, result: dict[str, Any], observed: str) -> None:
        check = {"name": "SCP still accepts connections", "severity": "must",
                 "outcome": "fail", "expected": "the SCP keeps accepting associations "
                 "(a peer's errors end one association, not the service)",
                 "observed": observed, "reference": "PS3.8 9.1.4 Note 1; PS3.8 7.3"}
        result["checks"].insert(0, check)
        result["outcome"] = "fail"
        result["observed"] = f"{observed}; {result['observed']}"

    async def _accepts(self) -> bool:
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection(self.target.host,
                                                                   self.target.port), 5.0)
        except (OSError, TimeoutError):
            return False
        # An A-ABORT as the first PDU makes the SCP close at once (PS3.8 9.2.3, Sta2 +
        # Evt16 -> AA-2): a bare close would hold one of its association slots until ARTIM,
        # and an SCP that counts idle connections would start refusing real ones.
        with contextlib.suppress(OSError):
            w.write(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")
        w.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(w.wait_closed(), 2.0)
        return True

    async def run_one(self, sc: Scenario, index: int = 0) -> dict[str, Any]:
        run = ScenarioRun(sc, self.target, self.observed)
        run.index = index + 1
        run.inspector = self.inspector
        start = time.monotonic()
        missing = [r for r in sc.requires if not self.target.declared.get(r)]
        if missing and missing[0] in TLS_REQUIREMENTS:
            return self._result(run, "skip", 0.0, observed=TLS_REQUIREMENTS[missing[0]])
        if missing:
            return self._result(run, "skip", time.monotonic() - start,
                                observed=f"needs the target profile to declare "
                                         f"{', '.join(missing)}")
        budget = _budget(run)
        error: str | None = None
        try:
            await asyncio.wait_for(self._steps(run), budget)
        except TimeoutError:
            run.check("scenario time budget", "must", False, f"done within {budget:g} s",
                      "the scenario did not finish (hang)", "PS3.8 9.1.4")
        except Exception as exc:  # the harness itself failed: outcome error, with the reason
            error = f"{type(exc).__name__}: {exc}"
            run.notes.append(traceback.format_exc(limit=6))
        finally:
            run.close_all()
        for deferred in run.deferred:
            await deferred()
        run.universal.received_findings(run.trace, run.our_max, run.echoed)
        run.universal.emit(run)
        if sc.negative and error is None:
            await self._probe(run)
        # A connection closed without a PDU, or a connect that failed: the target may be down.
        self._suspect = any(o.kind in ("close", "error") for o in run.step_outcomes)
        outcome = "error" if error else _reduce(run, sc)
        if outcome in ("pass", "info") and run.skip_reason is not None:
            # Not negotiated is not a verdict on the SCP: recorded, never a failure.
            return self._result(run, "skip", time.monotonic() - start,
                                observed=f"not applicable to this target: {run.skip_reason}")
        return self._result(run, outcome, time.monotonic() - start, error=error)

    async def _steps(self, run: ScenarioRun) -> None:
        ended: dict[str, str] = {}  # association name -> why it can carry no more steps
        for number, step in enumerate(run.scenario.steps, 1):
            if step.assoc in ended and step.op not in ("associate", "connect"):
                run.check(f"step {number}: {step.op}", "info", None, "run",
                          f"not run: the association had already ended ({ended[step.assoc]})")
                continue
            if run.skip_reason is not None and step.op not in _WIND_DOWN:
                # What the scenario needs was not negotiated: later steps would only wait
                # for answers to requests never sent.
                run.check(f"step {number}: {step.op}", "info", None, "run",
                          "not run: an earlier step did not apply")
                continue
            spec = STEPS[step.op]
            out = await spec.func(run, step.params, step.assoc)
            if out.kind == "skipped" and out.extra.get("not_negotiated"):
                run.skip_reason = out.detail
                run.observed.setdefault("not_tested", {})[run.scenario.id] = out.detail
            kept_open = step.op == "release" and step.params.get("close") is False
            if out.kind in ("rejected", "abort", "close", "hang") or (
                    out.kind == "release" and not kept_open) or (
                    step.op == "associate" and out.kind != "accepted"):
                ended[step.assoc] = out.describe()
            elif step.op in ("associate", "connect"):
                ended.pop(step.assoc, None)
            run.step_outcomes.append(out)
            if out.kind == "error":
                raise HarnessStepError(f"step {number} ({step.op}): {out.detail}")
            await self._judge(run, number, step, out)

    async def _judge(self, run: ScenarioRun, number: int, step: Step, out: Outcome) -> None:
        sc = run.scenario
        expect = dict(step.expect)
        for key, override in (expect.pop("declared", None) or {}).items():
            name, sep, wanted = str(key).partition("=")
            have = self.target.declared.get(name)
            if (sep and have is not None and str(have) == wanted) or (not sep and have):
                expect.update(override)
        label = f"step {number}: {step.op}" + (f" ({step.assoc})" if step.assoc != "main"
                                               else "")
        if out.kind == "skipped":
            run.check(label, "info", None, "run", f"not applicable: {out.detail}")
            return
        refs = ", ".join(sc.references)
        spec = expect.get("outcome", _default_expect(step))
        if spec is not None:
            mentioned = " ".join(p for _g, ps in _grades(spec) for p in ps).lower()
            for severity, verdict, text in judge(spec, out, sc.severity):
                run.check(label, severity, verdict == "pass", text, out.describe(), refs)
            if out.kind == "hang" and "hang" not in mentioned:
                run.check(f"{label}: answer in time", "must", False,
                          "an answer, an A-ABORT or a close", out.describe(), "PS3.8 9.1.4")
        if "contexts" in expect:
            self._context_results(run, label, expect["contexts"], out)
        if "within" in expect:
            limit = float(expect["within"])
            run.check(f"{label}: time", sc.severity, out.elapsed <= limit, f"<= {limit:g} s",
                      f"{out.elapsed:.3f} s", refs)
        if "responses" in expect:
            self._responses(run, label, expect["responses"], out)
        if "stored" in expect:
            await self._stored(run, label, str(expect["stored"]), out)
        if "record" in expect:
            key = str(expect["record"])
            run.observed[key] = out.describe() if key != "artim_timeout_s" else round(
                out.elapsed, 2)
            run.check(f"{label}: recorded {key}", "info", None, "recorded for the "
                      "conformance statement", out.describe())

    def _context_results(self, run: ScenarioRun, label: str, spec: dict[Any, Any],
                         out: Outcome) -> None:
        """Presentation context results (PS3.8 Table 9-18) by context ID, graded like
        outcomes: ``{7: {must: [1, 2, 3], should: [3]}}``."""
        ac = out.extra.get("ac")
        if ac is None:
            return
        results = {pc.context_id: pc.result for pc in ac.presentation_contexts}
        for cid, want in spec.items():
            got = results.get(int(cid))
            for grade, allowed in _grades(want):
                severity = {"must": "must", "should": "should"}.get(grade, "info")
                ok = got in [int(a) for a in allowed]
                run.check(f"{label}: context {cid} result", severity, ok,
                          f"result {' or '.join(map(str, allowed))}",
                          f"result {got}" if got is not None else "no result item",
                          "PS3.8 9.3.3.2, Table 9-18")

    def _responses(self, run: ScenarioRun, label: str, spec: Any, out: Outcome) -> None:
        """Message IDs Being Responded To (and optionally statuses) of collected responses."""
        if out.kind in ("abort", "close"):
            run.check(f"{label}: responses", "info", None, "all responses",
                      f"{len(out.responses)} response(s) before the association ended")
            return
        spec = spec if isinstance(spec, dict) else {"ids": spec}
        want = [int(x) for x in spec.get("ids", [])]
        any_order = spec.get("order") == "any"
        got = [int(m.command.elements.get(MESSAGE_ID_BEING_RESPONDED_TO, -1))  # type: ignore[call-overload]
               for m in out.responses]
        ok = sorted(got) == sorted(want) if any_order else got == want
        run.check(f"{label}: responses", "must", ok,
                  f"Message IDs Being Responded To {want}" + (" in any order" if any_order
                                                               else ""),
                  f"{got}", "PS3.7 9.3.1.2, D.3.3.3")
        statuses = spec.get("statuses")
        if statuses:
            severity = str(spec.get("severity", run.scenario.severity))
            for i, (pattern, msg) in enumerate(zip(statuses, out.responses, strict=False)):
                one = Outcome("response", message=msg)
                run.check(f"{label}: response {i + 1} status", severity,
                          any(matches(p, one) for p in as_list(pattern)),
                          " or ".join(as_list(pattern)), one.describe(),
                          ", ".join(run.scenario.references))

    async def _stored(self, run: ScenarioRun, label: str, mode: str, out: Outcome) -> None:
        sent = out.extra.get("sent")
        name = f"{label}: stored data"
        if mode == "any":
            return
        if self.inspector is None:
            run.check(name, "info", None, f"stored: {mode}",
                      "skipped: no --storage-dir, the stored data cannot be checked")
            return
        if sent is None:
            run.check(name, "info", None, f"stored: {mode}", "skipped: nothing was sent")
            return
        sev = run.scenario.severity
        refs = "PS3.4 B.2.2; PS3.7 Annex C.5"
        if mode == "sent":
            found = []
            for _ in range(20):
                found = self.inspector.find(sent.sop_instance_uid)
                if found:
                    break
                await asyncio.sleep(0.1)
            if not found:
                run.check(name, sev, False, "the instance stored", "no file with SOP Instance "
                          f"UID {sent.sop_instance_uid}", refs)
                return
            problems = compare(found[-1].path, sent.data, sent.transfer_syntax)
            if problems is None:
                run.check(name, "info", None, "stored object equal to what was sent",
                          "stored in another encoding; a malformed data set cannot be compared "
                          "element by element", refs)
                return
            run.check(name, sev, not problems, "stored object equal to what was sent",
                      "; ".join(problems[:4]) or "equal", refs)
        elif mode == "none":
            await asyncio.sleep(0.2)
            found = self.inspector.find(sent.sop_instance_uid)
            run.check(name, sev, not found, "nothing stored (failure means not performed)",
                      ", ".join(f.path.name for f in found) or "nothing stored", refs)
        elif mode == "consistent":
            # Success/Warning: stored as sent; Failure: nothing; abort/close: nothing partial.
            category = (out.category or "").lower()
            follow = "sent" if category in ("success", "warning") else (
                "none" if out.kind == "response" else "not-partial")
            await self._stored(run, label, follow, out)
            return
        elif mode == "not-partial":
            # Judged when the scenario is over: the SCP gets to handle the abort first.
            run.deferred.append(lambda: self._not_partial(run, name, sent))
        outside = outside_writes(self.inspector.directory, run.started,
                                 [sent.sop_instance_uid])
        if outside:
            run.check(f"{label}: nothing outside", "must", False,
                      "nothing written outside the storage directory",
                      ", ".join(map(str, outside[:3])), "PS3.15 (security); PS3.4 B.2")

    async def _not_partial(self, run: ScenarioRun, name: str, sent: Any) -> None:
        """After an abort: nothing kept, or (if the SCP had it all) the complete object."""
        assert self.inspector is not None
        await asyncio.sleep(0.5)
        found = self.inspector.find(sent.sop_instance_uid)
        broken = [f for f in self.inspector.new_since(run.started) if not f.readable]
        partial = [f for f in found if compare(f.path, sent.data, sent.transfer_syntax)
                   or f.size < len(sent.data)]
        shown = [f.path.name for f in partial + broken]
        kept = "the complete object kept" if found and not shown else "nothing kept"
        run.check(name, "must", not shown, "nothing partial kept after the abort",
                  ("partial: " + ", ".join(shown)) if shown else kept, "PS3.8 7.3; PS3.7 9.2.4")

    async def _probe(self, run: ScenarioRun) -> None:
        """Liveness: a new association, one store and a release must still work."""
        probe = ScenarioRun(run.scenario, self.target, {})
        probe.index = 10_000 + run.index
        try:
            setup = await asyncio.wait_for(op_associate(probe, {}, "probe"), run.timeout + 1)
            stored = await asyncio.wait_for(op_store(probe, {}, "probe"), run.timeout + 1) \
                if setup.kind == "accepted" else setup
            if setup.kind == "accepted":
                await asyncio.wait_for(op_release(probe, {}, "probe"), run.timeout + 1)
            # An SCP that accepts no CT context is alive if it accepts the association.
            ok = (stored.kind == "response" and (stored.category or "") in (
                "Success", "Warning")) or (stored.kind == "skipped" and setup.kind ==
                                           "accepted")
            observed = stored.describe()
        except (TimeoutError, OSError) as exc:
            ok, observed = False, f"probe failed: {exc or 'timeout'}"
        finally:
            probe.close_all()
        if not ok:
            recovered = await self._recover(run)
            observed += (f"; the SCP recovered after {recovered:.1f} s" if recovered is not None
                         else "; it had not recovered when the next scenario started")
        run.check("SCP alive after the scenario", "must", ok,
                  "a new association and a store succeed (liveness probe)", observed,
                  "PS3.8 9.1.4 Note 1")

    async def _recover(self, run: ScenarioRun) -> float | None:
        """Wait (bounded) until the target accepts a store again, so one scenario's damage
        does not spill into the next ones; returns how long it took."""
        start = time.monotonic()
        while time.monotonic() - start < self.recovery_timeout:
            await asyncio.sleep(1.0)
            probe = ScenarioRun(run.scenario, self.target, {})
            probe.index = 20_000 + run.index
            try:
                setup = await asyncio.wait_for(op_associate(probe, {}, "probe"), run.timeout)
                if setup.kind == "accepted":
                    await asyncio.wait_for(op_release(probe, {}, "probe"), run.timeout)
                    return time.monotonic() - start
            except (TimeoutError, OSError):
                pass
            finally:
                probe.close_all()
        return None

    def _result(self, run: ScenarioRun, outcome: str, duration: float,
                observed: str = "", error: str | None = None) -> dict[str, Any]:
        sc = run.scenario
        failing = [c for c in run.checks if c.outcome in ("fail", "warn")]
        steps = [c for c in run.checks if c.name.startswith("step")]
        shown = failing or [c for c in run.checks if c.outcome == "info"] or steps[-2:] or \
            run.checks[-1:]
        if error:
            observed = f"harness error: {error}"
        elif not observed:
            observed = "; ".join(f"{c.name}: {c.observed}" for c in shown[:4])
        expected = sc.expected or "; ".join(f"{c.name}: {c.expected}" for c in shown[:4])
        return {
            "id": sc.id, "title": sc.title, "group": sc.group, "group_title": sc.group_title,
            "severity": sc.severity, "outcome": outcome, "references": sc.references,
            "expected": expected, "observed": observed, "duration_s": round(duration, 4),
            "tags": sc.tags, "conformance_statement": sc.conformance_statement,
            "description": sc.description, "checks": [c.to_dict() for c in run.checks],
            "trace": run.trace.to_list(), "source": sc.where,
        }

    def results(self, scenarios: list[dict[str, Any]], started: dt.datetime,
                duration: float) -> dict[str, Any]:
        counts = {"total": len(scenarios), "passed": 0, "failed": 0, "warned": 0,
                  "skipped": 0, "errored": 0, "info": 0}
        key = {"pass": "passed", "fail": "failed", "warn": "warned", "skip": "skipped",
               "error": "errored", "info": "info"}
        for result in scenarios:
            counts[key[result["outcome"]]] += 1
        t = self.target
        obs = self.observed
        return {
            "harness_version": __version__,
            "started_at": started.isoformat(timespec="seconds"),
            "duration_s": round(duration, 3),
            "target": {"host": t.host, "port": t.port, "called_aet": t.called_aet,
                       "calling_aet": t.calling_aet,
                       "implementation_class_uid": obs.get("implementation_class_uid"),
                       "implementation_version_name": obs.get("implementation_version_name"),
                       "embedded": t.embedded,
                       "storage_dir": str(t.storage_dir) if t.storage_dir else None},
            "summary": counts,
            # Extensions: the target stopped accepting connections (after which scenario),
            # and the run stopped at --max-duration.
            "target_down": self.target_down,
            "stopped": self.stopped,
            "scenarios": scenarios,
            "conformance": conformance_statement(obs),
        }


class HarnessStepError(RuntimeError):
    pass


def _budget(run: ScenarioRun) -> float:
    """Seconds a scenario may take: every step's own wait plus slack, never unbounded."""
    from harness.engine.steps import close_timeout

    total = 5.0
    for step in run.scenario.steps:
        wait = step.params.get("timeout")
        if step.op == "expect_close" or isinstance(wait, str):
            total += close_timeout(run, wait if wait is not None else run.timeout)
        elif isinstance(wait, int | float):
            total += float(wait)
        else:
            total += run.timeout
        framing = step.params.get("framing") or {}
        if framing.get("trickle_delay"):
            total += 120.0  # trickling is slow on purpose; bounded by its data size
    return min(total + run.timeout, 900.0)


def _default_expect(step: Step) -> str | None:
    """What a step without ``expect.outcome`` must give: setup steps must just work."""
    if step.op == "store" and (step.params.get("wait") is False or
                               (step.params.get("framing") or {}).get("abort_at")):
        return "sent"
    return DEFAULT_EXPECT.get(step.op)


def _grades(spec: Any) -> list[tuple[str, list[str]]]:
    if isinstance(spec, dict):
        return [(g, as_list(v)) for g, v in spec.items()]
    return [("must", as_list(spec))]


def _not_run_down(after: str | None) -> str:
    """The observed text of a scenario not run because the target is down."""
    return f"{NOT_RUN_TARGET_DOWN} (" + (
        f"it stopped accepting connections after {after})" if after else
        "it accepted no connection)")


def _reduce(run: ScenarioRun, sc: Scenario) -> str:
    outcomes = {c.outcome for c in run.checks}
    if "fail" in outcomes:
        return "fail"
    if "warn" in outcomes:
        return "warn"
    return "info" if sc.severity == "info" else "pass"


def conformance_statement(obs: dict[str, Any]) -> dict[str, Any]:
    from harness.wire.uid import uid_name

    accepted = [{"sop_class": uid, "name": uid_name(uid), "transfer_syntaxes": sorted(ts)}
                for uid, ts in sorted(obs.get("accepted", {}).items())]
    rejected = [{"sop_class": uid, "name": uid_name(uid), "result": result}
                for uid, result in sorted(obs.get("rejected", {}).items())
                if uid not in obs.get("accepted", {})]
    keys = ("max_pdu", "async_window", "ae_title_policy", "duplicate_sop_instance_policy",
            "artim_timeout_s", "implementation_class_uid", "implementation_version_name",
            "transfer_syntax_choice", "pipelining", "cancel_policy")
    out: dict[str, Any] = {"accepted": accepted, "rejected": rejected}
    out.update({k: obs.get(k) for k in keys})
    if obs.get("tls"):  # only over TLS: version, cipher, certificate, how it ended
        out["tls"] = dict(obs["tls"])
    # Extensions: transfer syntaxes refused for an abstract syntax the SCP accepts otherwise,
    # and the scenarios that did not apply because of what was (not) negotiated.
    out["rejected_transfer_syntaxes"] = [
        {"sop_class": uid, "name": uid_name(uid), "transfer_syntax": ts,
         "transfer_syntax_name": uid_name(ts), "result": result}
        for (uid, ts), result in sorted(obs.get("rejected_ts", {}).items())
        if ts not in obs.get("accepted", {}).get(uid, set())]
    out["not_tested"] = [{"scenario": sid, "reason": why}
                         for sid, why in sorted(obs.get("not_tested", {}).items())]
    if out["async_window"] is None and obs.get("accepted"):
        out["async_window"] = [1, 1]
    return out
