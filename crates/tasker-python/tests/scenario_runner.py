"""The pytest replay of tests/scenarios/*.yaml (docs/bindings.md §9), with real Python handlers that follow each
file's script through ``tasker_core.Worker``. It mirrors tasker_shared_ffi::scenario, the Rust reference runner:
the same replay rules, the same checks, and a failure lists every difference with the observed state."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import tasker_core
from tasker_core import _native, testing
from tasker_core.errors import PermanentError, RetryableError, TaskerError
from tasker_core.worker import OverrunLease, Worker

MISSING = object()


class Stop(Exception):
    """An unexpected error that ends the replay, as in the reference runner."""


class ScenarioFailed(AssertionError):
    pass


def _scripted_exception(base: type, failure: Dict[str, Any]) -> BaseException:
    """A handler exception whose class name is the script's ``error_class`` (default: the base's name)."""
    name = failure.get("error_class") or base.__name__
    cls = base if name == base.__name__ else type(name, (base,), {})
    message = failure.get("message") or "scripted failure"
    if base is RetryableError:
        ms = failure.get("retry_after_ms")
        return cls(message, retry_after=None if ms is None else ms / 1000)
    return cls(message, code=failure.get("code"))


def _event_line(e: tasker_core.Event) -> str:
    """An event as scenario files write it (docs/bindings.md §9, rule 6): `task.completed`, `step.claimed b#2`."""
    if e.step_name is None:
        return e.name
    return f"{e.name} {e.step_name}#{e.attempt}" if (e.attempt or 0) > 0 else f"{e.name} {e.step_name}"


def _describe(want: Any) -> str:
    return want if isinstance(want, str) else want["kind"]


def _error_mismatch(e: TaskerError, want: Any) -> Optional[str]:
    if isinstance(want, str):
        want = {"kind": want}
    if e.code != want["kind"]:
        return f"expected error {want['kind']}, found {e.code} ({e})"
    contains = want.get("message_contains")
    if contains is not None and contains not in str(e):
        return f"expected the message to contain {contains!r}, found {str(e)!r}"
    details = want.get("details")
    if details is not None and not _native.json_contains(e.details, details):
        return f"expected details to include {details}, found {e.details}"
    return None


class Replay:
    def __init__(self, scenario: Dict[str, Any], url: str) -> None:
        self.s = scenario
        self.url = url
        self.client = tasker_core.Client.connect(
            url, clock=scenario.get("clock", "manual"), event_capacity=1 << 16
        )
        self.sub = self.client.subscribe()
        self.handlers = scenario.get("handlers") or {}
        self.worker: Optional[Worker] = None
        self.events: List[tasker_core.Event] = []
        self.tasks: Dict[str, tasker_core.Task] = {}
        self.saved: Dict[str, tasker_core.StepContext] = {}
        self.claims: List[Dict[str, Any]] = []
        self.problems: List[str] = []

    # -- the host handler that follows the script -----------------------------------------------------------

    def _handle(self, ctx: tasker_core.StepContext) -> Any:
        outcome = _native.script_outcome(self.handlers, ctx.step_name, ctx.handler_key, ctx.attempt)
        if outcome == "overrun_lease":
            raise OverrunLease()
        ((kind, payload),) = outcome.items()
        if kind == "succeed":
            return payload
        if kind == "fail_retryable":
            raise _scripted_exception(RetryableError, payload)
        raise _scripted_exception(PermanentError, payload)

    # -- replay ---------------------------------------------------------------------------------------------

    def expect_outcome(self, at: str, fn: Any, want: Any) -> Any:
        try:
            value = fn()
        except TaskerError as e:
            if want is None:
                raise Stop(f"{at}: unexpected error ({e.code}): {e}") from e
            problem = _error_mismatch(e, want)
            if problem:
                self.problems.append(f"{at}: {problem}")
            return MISSING
        if want is not None:
            self.problems.append(f"{at}: expected error {_describe(want)}, but the call succeeded")
            return MISSING
        return value

    def replay(self) -> None:
        for i, t in enumerate(self.s.get("templates") or []):
            self.register(f"templates[{i}]", t)
        keys = sorted({st.handler_key for tpl in self.client.templates() for st in tpl.steps})
        if keys:
            self.worker = Worker(
                self.client,
                1,
                worker_id="scenario",
                lease=self.s.get("lease_ms", 30000) / 1000,
                # Leases move only with the scenario's clock and its `reap` actions.
                heartbeat_interval=0.0,
                maintenance_interval=0.0,
                enforce_deadlines=False,
            )
            for key in keys:
                self.worker.handle(key, self._handle)
        for i, t in enumerate(self.s.get("tasks") or []):
            self.create(f"tasks[{i}]", t)
        script = self.s.get("script")
        if script is None:
            script = ["run"]
        for i, action in enumerate(script):
            if isinstance(action, str):
                name, arg = action, {}
            else:
                ((name, arg),) = action.items()
                arg = {} if arg is None else arg
            self.act(f"script[{i}] {name}", name, arg)
        self.collect_events()
        expect = self.s.get("expect") or {}
        if expect.get("templates") is not None:
            found = [f"{t.namespace}/{t.name}@{t.version}" for t in self.client.templates()]
            if found != expect["templates"]:
                self.problems.append(f"expect.templates: expected {expect['templates']}, found {found}")
        for alias, want in sorted((expect.get("tasks") or {}).items()):
            self.check_task(f"expect.tasks.{alias}", alias, want)
        for alias in sorted(self.tasks):
            self.check_trail(alias)
        if self.sub.dropped > 0:
            self.problems.append(f"the event subscription dropped {self.sub.dropped} events")

    def register(self, at: str, t: Dict[str, Any]) -> None:
        if "definition" in t:
            fn = lambda: self.client.register_template(t["definition"])  # noqa: E731
        elif "text" in t:
            fn = lambda: self.client.register_template(t["text"])  # noqa: E731
        else:
            spec = dict(t["pattern"])
            fn = lambda: testing.register_pattern(self.client, spec.pop("pattern"), **spec)  # noqa: E731
        reg = self.expect_outcome(at, fn, t.get("expect_error"))
        if reg is not MISSING and t.get("expect_created") is not None and reg.created != t["expect_created"]:
            self.problems.append(f"{at}.created: expected {t['expect_created']}, found {reg.created}")

    def create(self, at: str, t: Dict[str, Any]) -> None:
        task = self.expect_outcome(
            at,
            lambda: self.client.create_task(
                t["namespace"],
                t["name"],
                version=t.get("version"),
                context=t.get("context"),
                idempotency_key=t.get("idempotency_key"),
                tags=t.get("tags"),
                initiator="scenario",
                reason=self.s["name"],
                priority=t.get("priority"),
                delay=t["delay_ms"] / 1000 if t.get("delay_ms") is not None else None,
            ),
            t.get("expect_error"),
        )
        if task is MISSING:
            return
        other = t.get("same_as")
        if other is not None:
            if other not in self.tasks:
                raise Stop(f"{at}.same_as: no task has alias {other!r}")
            if self.tasks[other].id != task.id:
                self.problems.append(
                    f"{at}: expected the task of {other!r} ({self.tasks[other].id}), found a new task {task.id}"
                )
        if t.get("alias"):
            self.tasks[t["alias"]] = task

    def task_id(self, at: str, alias: str) -> str:
        if alias not in self.tasks:
            raise Stop(f"{at}: no task has alias {alias!r}")
        return self.tasks[alias].id

    def session(self, at: str) -> tasker_core.WorkerSession:
        if self.worker is None:
            raise Stop(f"{at}: no template is registered, so nothing can be claimed")
        return self.worker.session

    def act(self, at: str, name: str, a: Dict[str, Any]) -> None:
        try:
            self._act(at, name, a)
        except TaskerError as e:
            raise Stop(f"{at}: {e}") from e

    def _act(self, at: str, name: str, a: Any) -> None:
        if name == "run":
            if self.worker is None:
                return
            report = self.worker.run_until_idle(
                batch_size=1, max_claims=a.get("max_claims"), auto_advance_clock=False
            )
            for c in report.calls:
                if c.rejected:
                    self.problems.append(f"{at}: the outcome of {c.step_name}#{c.attempt} was rejected ({c.rejected})")
                self.claims.append(
                    {"task_id": c.task_id, "step_name": c.step_name, "attempt": c.attempt,
                     "dependency_results": c.dependency_results}
                )
        elif name == "advance_ms":
            self.client.advance_clock(a / 1000)
        elif name == "reap":
            r = self.client.reap_expired_leases(1000)
            er, ef = a.get("expect_retried"), a.get("expect_failed")
            if (er is not None and er != r.retried) or (ef is not None and ef != r.failed):
                self.problems.append(
                    f"{at}: expected retried {er} and failed {ef}, found {r.retried} and {r.failed}"
                )
        elif name == "create_task":
            self.create(at, a)
        elif name == "cancel":
            tid = self.task_id(at, a["task"])
            self.expect_outcome(at, lambda: self.client.cancel_task(tid, a.get("reason")), a.get("expect_error"))
        elif name == "run_now":
            tid = self.task_id(at, a["task"])
            self.expect_outcome(at, lambda: self.client.run_task_now(tid), a.get("expect_error"))
        elif name == "retry":
            tid = self.task_id(at, a["task"])
            self.expect_outcome(at, lambda: self.client.retry_task(tid), a.get("expect_error"))
        elif name == "resolve_task":
            tid = self.task_id(at, a["task"])
            self.expect_outcome(at, lambda: self.client.resolve_task(tid, a.get("reason")), a.get("expect_error"))
        elif name == "resolve_step":
            tid = self.task_id(at, a["task"])
            step = next((s for s in self.client.steps(tid) if s.name == a["step"]), None)
            if step is None:
                raise Stop(f"{at}: task {a['task']!r} has no step {a['step']!r}")
            self.expect_outcome(
                at, lambda: self.client.resolve_step(step.id, a.get("result")), a.get("expect_error")
            )
        elif name == "claim":
            got = self.session(at).claim(1, wait=0.0)
            if a.get("expect_none"):
                if got:
                    self.problems.append(f"{at}: expected nothing claimable, claimed {got[0].step_name}#{got[0].attempt}")
                return
            if not got:
                raise Stop(f"{at}: expected a claimable step, found none")
            ctx = got[0]
            if a.get("expect_step") is not None and a["expect_step"] != ctx.step_name:
                self.problems.append(f"{at}: expected to claim {a['expect_step']!r}, claimed {ctx.step_name!r}")
            if a.get("expect_attempt") is not None and a["expect_attempt"] != ctx.attempt:
                self.problems.append(f"{at}: expected attempt {a['expect_attempt']}, claimed attempt {ctx.attempt}")
            self.claims.append(
                {"task_id": ctx.task_id, "step_name": ctx.step_name, "attempt": ctx.attempt,
                 "dependency_results": ctx.dependency_results}
            )
            if a.get("as"):
                self.saved[a["as"]] = ctx
        elif name == "complete":
            ctx = self.saved_claim(at, a["claim"])
            result = a["result"] if "result" in a else {"ok": True, "step": ctx.step_name}
            session = self.session(at)
            self.expect_outcome(at, lambda: session.complete(ctx.token, result), a.get("expect_error"))
        elif name == "fail":
            ctx = self.saved_claim(at, a["claim"])
            session = self.session(at)
            ms = a.get("retry_after_ms")
            self.expect_outcome(
                at,
                lambda: session.fail(
                    ctx.token,
                    kind=a.get("kind", "retryable"),
                    message=a.get("message") or "scripted failure",
                    error_class=a.get("error_class"),
                    retry_after=None if ms is None else ms / 1000,
                    code=a.get("code"),
                ),
                a.get("expect_error"),
            )
        elif name == "check":
            self.collect_events()
            for alias, want in sorted(a.items()):
                self.check_task(f"{at}.{alias}", alias, want)
        elif name == "register_schedule":
            s = self.expect_outcome(
                at,
                lambda: self.client.register_schedule(
                    a["name"],
                    a["namespace"],
                    a["template"],
                    a["cron"],
                    context=a.get("context"),
                    version=a.get("version"),
                    timezone=a.get("timezone"),
                    priority=a.get("priority"),
                    misfire=a.get("misfire"),
                ),
                a.get("expect_error"),
            )
            if s is not MISSING:
                self.check_schedule(at, s, a.get("expect"))
        elif name in ("pause_schedule", "resume_schedule", "remove_schedule"):
            method = getattr(self.client, name)
            s = self.expect_outcome(at, lambda: method(a["schedule"]), a.get("expect_error"))
            if s is not MISSING:
                self.check_schedule(at, s, a.get("expect"))
        elif name == "fire_schedules":
            self.fire_schedules(at, a)
        elif name == "check_schedules":
            for schedule, want in sorted(a.items()):
                self.check_schedule(f"{at}.{schedule}", self.client.schedule(schedule), want)
        else:
            raise Stop(f"{at}: unknown action {name!r}")

    def fire_schedules(self, at: str, a: Dict[str, Any]) -> None:
        """One pass, its counts checked; each entry of ``tasks`` names the task the pass created for a schedule
        (its last task, which no alias may name yet)."""
        r = self.client.fire_schedules()
        for key, found in (("fired", r.fired), ("missed", r.missed), ("failed", r.failed)):
            want = a.get(f"expect_{key}")
            if want is not None and want != found:
                self.problems.append(f"{at}: expected {key} {want}, found {found}")
        for alias, schedule in sorted((a.get("tasks") or {}).items()):
            tid = self.client.schedule(schedule).last_task_id
            if tid is None:
                raise Stop(f"{at}.tasks.{alias}: schedule {schedule!r} has created no task")
            if any(t.id == tid for t in self.tasks.values()):
                raise Stop(f"{at}.tasks.{alias}: the last task of schedule {schedule!r} is not new to this pass")
            self.tasks[alias] = self.client.task(tid)

    def check_schedule(self, at: str, s: tasker_core.Schedule, want: Optional[Dict[str, Any]]) -> None:
        """A ScheduleExpectation: absent keys are not checked; times are RFC 3339, compared as instants with the
        aware datetime the client returns, and None (``null``) asserts there is none."""
        if want is None:
            return
        for key in ("paused", "fired", "missed"):
            if key in want and want[key] != getattr(s, key):
                self.problems.append(f"{at}.{key}: expected {want[key]!r}, found {getattr(s, key)!r}")
        for key in ("next_fire_at", "last_fire_at"):
            if key not in want:
                continue
            expected: Optional[datetime] = None
            if want[key] is not None:
                try:
                    # fromisoformat reads a trailing Z only from Python 3.11 on.
                    expected = datetime.fromisoformat(str(want[key]).replace("Z", "+00:00"))
                except ValueError as e:
                    self.problems.append(f"{at}.{key}: malformed expectation {want[key]!r} ({e})")
                    continue
                if expected.tzinfo is None:
                    self.problems.append(f"{at}.{key}: malformed expectation {want[key]!r} (no time zone)")
                    continue
            found = getattr(s, key)
            if expected != found:
                shown = lambda t: "none" if t is None else t.astimezone(timezone.utc).isoformat()  # noqa: E731
                self.problems.append(f"{at}.{key}: expected {shown(expected)}, found {shown(found)}")

    def saved_claim(self, at: str, name: str) -> tasker_core.StepContext:
        if name not in self.saved:
            raise Stop(f"{at}: no claim was kept as {name!r}")
        return self.saved[name]

    def collect_events(self) -> None:
        self.events.extend(self.sub.drain())

    def event_lines(self, task_id: str) -> List[str]:
        return [_event_line(e) for e in self.events if e.task_id == task_id]

    # -- checks ---------------------------------------------------------------------------------------------

    def check_task(self, at: str, alias: str, want: Dict[str, Any]) -> None:
        if alias not in self.tasks:
            self.problems.append(f"{at}: no task has alias {alias!r}")
            return
        tid = self.tasks[alias].id
        task = self.client.task(tid)
        ctx = self.client.execution_context(tid)
        p = self.problems
        for key, found in (
            ("state", task.state),
            ("execution_status", ctx.execution_status),
            ("recommended_action", ctx.recommended_action),
        ):
            if key in want and want[key] != found:
                p.append(f"{at}.{key}: expected {want[key]}, found {found}")
        steps_want = want.get("steps")
        all_steps = want.get("all_steps")
        if steps_want is not None or all_steps is not None:
            explain = self.client.explain(tid)
            steps = self.client.steps(tid)
            names = {s.name for s in steps}
            for n in sorted(steps_want or {}):
                if n not in names:
                    p.append(f"{at}.steps.{n}: the task has no such step")
            for s in steps:
                w = (steps_want or {}).get(s.name)
                if w is None:
                    if all_steps is None:
                        if steps_want is not None:
                            p.append(f"{at}.steps: step {s.name} is not listed (list it or add all_steps)")
                        continue
                    w = all_steps
                r = next((r for r in explain.steps if r.step_id == s.id), None)
                self.check_step(f"{at}.steps.{s.name}", tid, s, r, w)
        if "events" in want:
            self.collect_events()
            found = self.event_lines(tid)
            if found != want["events"]:
                p.append(f"{at}.events: {self.sequence_diff(want['events'], found)}")

    @staticmethod
    def sequence_diff(want: List[str], found: List[str]) -> str:
        first = next((i for i, (a, b) in enumerate(zip(want, found)) if a != b), min(len(want), len(found)))
        return (
            f"sequences differ from position {first} (expected {len(want)} events, found {len(found)}); "
            f"expected from there: {want[first:]}; found from there: {found[first:]}"
        )

    def check_step(self, at: str, tid: str, s: Any, r: Any, w: Dict[str, Any]) -> None:
        p = self.problems
        for key in ("state", "attempts"):
            if key in w and w[key] != getattr(s, key):
                p.append(f"{at}.{key}: expected {w[key]}, found {getattr(s, key)}")
        if "result" in w and w["result"] != s.result:
            p.append(f"{at}.result: expected {json.dumps(w['result'])}, found {json.dumps(s.result)}")
        if "error" in w:
            we, e = w["error"], s.error
            if we is None:
                if e is not None:
                    p.append(f"{at}.error: expected none, found {e.error_class}: {e.message}")
            elif e is None:
                p.append(f"{at}.error: expected {we}, found none")
            else:
                for key in ("error_class", "code", "retryable"):
                    if key in we and we[key] != getattr(e, key):
                        p.append(f"{at}.error.{key}: expected {we[key]!r}, found {getattr(e, key)!r}")
                if "message_contains" in we and we["message_contains"] not in e.message:
                    p.append(f"{at}.error.message: expected it to contain {we['message_contains']!r}, found {e.message!r}")
        if "ready" in w and (r is None or w["ready"] != r.ready):
            p.append(f"{at}.ready: expected {w['ready']}, found {None if r is None else r.ready}")
        if "blocked_by_failure" in w and (r is None or w["blocked_by_failure"] != r.blocked_by_failure):
            p.append(f"{at}.blocked_by_failure: expected {w['blocked_by_failure']}, found {None if r is None else r.blocked_by_failure}")
        if "claims" in w:
            found = [c for c in self.claims if c["task_id"] == tid and c["step_name"] == s.name]
            attempts = [c["attempt"] for c in found]
            wanted = [c["attempt"] for c in w["claims"]]
            if attempts != wanted:
                p.append(f"{at}.claims: expected attempts {wanted}, found {attempts}")
            else:
                for c, f in zip(w["claims"], found):
                    if c.get("dependency_results") is not None and c["dependency_results"] != f["dependency_results"]:
                        p.append(
                            f"{at}.claims[attempt {c['attempt']}].dependency_results: expected "
                            f"{c['dependency_results']}, found {f['dependency_results']}"
                        )

    def check_trail(self, alias: str) -> None:
        """Every event of the task must match its transition rows one for one: events follow commits. Rows and
        events are compared by (from_state, to_state[, attempt]), which needs no copy of the engine's naming."""
        tid = self.task_id("trail", alias)
        trail = self.client.transitions(tid)
        task_rows = [(r.from_state, r.to_state) for r in trail.task]
        task_events = [(e.from_state, e.to_state) for e in self.events if e.task_id == tid and e.step_id is None]
        if task_rows != task_events:
            self.problems.append(
                f"tasks.{alias}: task events {task_events} do not match the task's transition rows {task_rows}"
            )
        step_ids: List[str] = []
        for r in trail.steps:
            if r.step_id not in step_ids:
                step_ids.append(r.step_id)
        for sid in step_ids:
            rows = [(r.from_state, r.to_state, r.attempt) for r in trail.steps if r.step_id == sid]
            events = [(e.from_state, e.to_state, e.attempt or 0) for e in self.events if e.step_id == sid]
            if rows != events:
                self.problems.append(f"tasks.{alias}: events of step {sid} {events} do not match its transition rows {rows}")

    def observe_all(self) -> Dict[str, Any]:
        self.collect_events()
        out: Dict[str, Any] = {}
        for alias, t in sorted(self.tasks.items()):
            try:
                out[alias] = {
                    "state": self.client.task(t.id).state,
                    "steps": {
                        s.name: {
                            "state": s.state,
                            "attempts": s.attempts,
                            "result": s.result,
                            "error": None if s.error is None else f"{s.error.error_class}: {s.error.message}",
                        }
                        for s in self.client.steps(t.id)
                    },
                    "events": self.event_lines(t.id),
                }
            except TaskerError as e:
                out[alias] = {"unavailable": str(e)}
        return out


def run(scenario: Dict[str, Any], url: str) -> Dict[str, Any]:
    """Replays ``scenario`` on a fresh store at ``url``; raises ScenarioFailed listing every difference."""
    r = Replay(scenario, url)
    try:
        try:
            r.replay()
        except Stop as stop:
            r.problems.append(str(stop))
        observed = r.observe_all()
    finally:
        if r.worker is not None:
            r.worker.stop()
        r.client.close()
    if r.problems:
        lines = [f"scenario {scenario['name']} failed on {url}:"]
        lines += [f"  - {p}" for p in r.problems]
        lines.append("observed:")
        lines.append(json.dumps(observed, indent=2, default=str))
        raise ScenarioFailed("\n".join(lines))
    return observed
