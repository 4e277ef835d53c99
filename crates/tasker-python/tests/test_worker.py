"""Workers: handler exceptions and how each is treated, tracebacks, run(), run_until_idle and the factories."""

from __future__ import annotations

import threading

import pytest

import tasker_core
from tasker_core import Client, PermanentError, RetryableError, Worker
from tasker_core import testing

ONE_STEP = {
    "namespace": "w",
    "name": "one",
    "version": "1.0.0",
    "defaults": {"retry": {"max_attempts": 3, "backoff": "none"}},
    "steps": [{"name": "work", "handler": "w.work"}],
}


def _one(client: Client) -> tasker_core.Task:
    client.register_template(ONE_STEP)
    return client.create_task("w", "one", context={})


def _step(client: Client, task: tasker_core.Task) -> tasker_core.Step:
    return client.steps(task.id)[0]


def test_retryable_error_with_retry_after_schedules_the_retry(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    task = _one(c)
    worker = Worker(c)
    calls = []

    @worker.handler("w.work")
    def work(ctx: tasker_core.StepContext) -> dict:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RetryableError("rate limited", retry_after=5)
        return {"done": True}

    report = worker.run_until_idle(auto_advance_clock=False)
    step = _step(c, task)
    assert (step.state, report.failed) == ("waiting_for_retry", 1)
    assert step.error.error_class == "RetryableError" and step.error.retryable
    assert (step.next_attempt_at - c.now()).total_seconds() == 5
    report = worker.run_until_idle()
    assert report.advanced_ms == 5000 and calls == [1, 2]
    assert c.task(task.id).state == "complete"
    assert _step(c, task).result == {"done": True}


def test_permanent_error_is_not_retried(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    task = _one(c)
    calls = []

    def work(ctx: tasker_core.StepContext) -> None:
        calls.append(ctx.attempt)
        raise PermanentError("card declined", code="declined")

    report = testing.run_until_idle(c, {"w.work": work})
    step = _step(c, task)
    assert calls == [1] and report.failed == 1
    assert step.state == "error" and step.error.code == "declined" and not step.error.retryable
    assert step.error.error_class == "PermanentError"
    assert c.task(task.id).state == "error"


def test_any_other_exception_is_retried_with_class_message_and_traceback(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    task = _one(c)

    def helper() -> None:
        raise KeyError("sku")

    def work(ctx: tasker_core.StepContext) -> None:
        helper()

    testing.run_until_idle(c, {"w.work": work})
    step = _step(c, task)
    assert step.state == "error" and step.attempts == 3  # retried until attempts ran out
    assert step.error.error_class == "KeyError" and "sku" in step.error.message and step.error.retryable
    text = "\n".join(step.error.backtrace)
    assert "Traceback (most recent call last)" in step.error.backtrace[0]
    assert "in helper" in text and "in work" in text and text.index("in work") < text.index("in helper")


def test_a_class_handler_and_handle(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    task = _one(c)

    class Work:
        def call(self, ctx: tasker_core.StepContext) -> dict:
            return {"class": True, "step": ctx.step_name}

    worker = Worker(c, concurrency=2)
    worker.handle("w.work", Work)
    worker.run_until_idle()
    assert _step(c, task).result == {"class": True, "step": "work"}
    with pytest.raises(TypeError):
        worker.handle("w.other", 42)
    with pytest.raises(TypeError):
        Worker(c, concurrency=0)
    with pytest.raises(TypeError):
        Worker("memory:")  # type: ignore[arg-type]


def test_run_processes_work_on_the_pool_and_stops_gracefully(tasker_client: Client) -> None:
    c = tasker_client
    tasks = testing.diamond(c, count=3).tasks
    worker = Worker(c, concurrency=4, claim_wait=0.05)
    seen = set()
    done = threading.Event()

    @worker.handler("testkit.noop")
    def noop(ctx: tasker_core.StepContext) -> dict:
        seen.add(threading.current_thread().name)
        if all(c.task(t.id).state == "complete" for t in tasks if t.id != ctx.task_id) and ctx.step_name == "end":
            done.set()
        return {}

    def stop_when_done() -> None:
        for _ in range(200):
            if all(c.task(t.id).state == "complete" for t in tasks):
                break
            done.wait(0.05)
        worker.stop()

    stopper = threading.Thread(target=stop_when_done)
    stopper.start()
    stats = worker.run(install_signal_handlers=False)
    stopper.join()
    assert all(c.task(t.id).state == "complete" for t in tasks)
    assert stats.completed == 12 and stats.outstanding == 0
    assert all(name.startswith("tasker-worker") for name in seen)


@pytest.mark.parametrize(
    "factory, args, name, steps",
    [
        (testing.linear, {"n": 4}, "linear_4", 4),
        (testing.diamond, {}, "diamond", 4),
        (testing.parallel, {"n": 3}, "parallel_3", 5),
        (testing.tree, {"depth": 2, "fanout": 2}, "tree_2x2", 7),
        (testing.mixed, {}, "mixed", None),
    ],
)
def test_every_factory_pattern_runs_until_idle(tasker_manual_client: Client, factory, args, name, steps) -> None:
    c = tasker_manual_client
    made = factory(c, count=2, **args)
    assert isinstance(made, tasker_core.PatternTasks)
    template, tasks = made.template, made.tasks
    assert template.name == name and template.namespace == "testkit" and len(tasks) == 2
    if steps is not None:
        assert len(template.steps) == steps
    report = testing.run_until_idle(c, {"testkit.noop": lambda ctx: {"step": ctx.step_name}})
    assert report.completed == 2 * len(template.steps)
    assert all(c.task(t.id).state == "complete" for t in tasks)


def test_pattern_template_and_custom_handler_keys(tasker_manual_client: Client) -> None:
    doc = testing.pattern_template("linear", n=2, handler_key="shop.{step}")
    assert [s["handler"] for s in doc["steps"]] == ["shop.step_1", "shop.step_2"] or len(doc["steps"]) == 2
    with pytest.raises(tasker_core.ValidationError):
        testing.pattern_template("hexagon")


def test_run_until_idle_times_out_loudly(tasker_client: Client) -> None:
    _one(tasker_client)

    def slow(ctx: tasker_core.StepContext) -> None:
        raise RetryableError("again", retry_after=60)

    with pytest.raises(tasker_core.TimeoutError):
        testing.run_until_idle(tasker_client, {"w.work": slow}, timeout=0.3)


def test_a_result_json_cannot_hold_fails_only_that_step(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    (task,) = testing.parallel(c, n=2).tasks

    def handler(ctx: tasker_core.StepContext) -> object:
        return {"when": object()} if ctx.step_name == "branch_1" else {"ok": True}

    # start, then branch_1 and branch_2 claimed in one batch: branch_1's result is refused, branch_2 completes.
    report = testing.run_until_idle(c, {"testkit.noop": handler}, max_claims=3)
    steps = {s.name: s for s in c.steps(task.id)}
    assert steps["branch_2"].state == "complete" and steps["start"].state == "complete"
    bad = steps["branch_1"]
    assert (bad.state, bad.error.error_class, bad.error.code, bad.error.retryable) == (
        "error",
        "InvalidResult",
        "invalid_result",
        False,
    )
    assert bad.error.message == "result.when: expected a JSON value, found object"
    assert [(call.step_name, call.outcome) for call in report.calls][1:] == [
        ("branch_1", "fail_permanent"),
        ("branch_2", "succeed"),
    ]


def _nested(depth: int) -> object:
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


def _cyclic() -> dict:
    a: dict = {"name": "a"}
    a["self"] = a
    return a


# The JS bindings' host_mistakes.js holds Node and WASM to the same answers (docs/bindings.md §3, §6).
def test_a_cyclic_or_too_deep_result_fails_as_invalid_result_and_a_context_is_refused(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    cases = {"cyclic": _cyclic, "deep": lambda: _nested(200), "limit": lambda: _nested(127)}
    c.register_template({**ONE_STEP, "name": "nest", "steps": [{"name": n, "handler": f"n.{n}"} for n in cases]})
    task = c.create_task("w", "nest", context={})
    testing.run_until_idle(c, {f"n.{n}": (lambda ctx, f=f: f()) for n, f in cases.items()})
    steps = {s.name: s for s in c.steps(task.id)}
    for name in ("cyclic", "deep"):
        assert (steps[name].state, steps[name].attempts, steps[name].error.error_class) == ("error", 1, "InvalidResult")
    assert steps["cyclic"].error.message == "result.self: expected a JSON value, found a cycle back to result"
    assert steps["deep"].error.message == (
        "result" + "[0]" * 127 + ": expected a JSON value nested at most 127 levels deep, found a deeper one"
    )
    assert (steps["limit"].state, steps["limit"].result) == ("complete", _nested(127))
    with pytest.raises(tasker_core.ValidationError) as e:
        c.create_task("w", "nest", context={"items": _nested(200)})
    assert e.value.details["errors"][0]["path"] == "context.items" + "[0]" * 126
    with pytest.raises(tasker_core.ValidationError) as e:
        c.create_task("w", "nest", context=_cyclic())
    assert e.value.details["errors"][0]["path"] == "context.self"
    assert [t.id for t in c.tasks()] == [task.id]
    assert c.create_task("w", "nest", context={"depth": _nested(126)}).context == {"depth": _nested(126)}


# The same three host mistakes give the same step error in Rust, Ruby and Python (docs/bindings.md §6).
def test_each_host_mistake_gives_the_step_error_every_binding_gives(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    keys = ["w.bad", "w.missing", "w.raises"]
    steps = {}
    for key in keys:
        name = key.replace(".", "_")
        c.register_template({**ONE_STEP, "name": name, "steps": [{"name": "work", "handler": key}]})
        steps[key] = c.steps(c.create_task("w", name, context={}).id)[0]
    worker = Worker(c, handler_keys=keys)
    worker.handle("w.bad", lambda ctx: {"at": object()})
    worker.handle("w.raises", lambda ctx: {}["sku"])
    report = worker.run_until_idle(auto_advance_clock=False)
    # The invalid result runs once; the other two are retried until their three attempts are spent.
    assert sorted(call.outcome for call in report.calls) == ["fail_permanent"] + ["fail_retryable"] * 6
    bad, missing, raises = (c.step(steps[k].id) for k in keys)
    assert (bad.state, bad.attempts, bad.error.error_class, bad.error.code, bad.error.retryable) == (
        "error",
        1,
        "InvalidResult",
        "invalid_result",
        False,
    )
    assert bad.error.message.startswith("result.at: expected a JSON value")
    assert (missing.attempts, missing.error.error_class, missing.error.retryable) == (3, "HandlerMissing", True)
    assert '"w.missing"' in missing.error.message
    assert (raises.attempts, raises.error.error_class, raises.error.retryable) == (3, "KeyError", True)
    assert any("test_worker.py" in line for line in raises.error.backtrace)


def test_a_handler_past_timeout_seconds_fails_with_timeout_and_the_step_retries(tasker_client: Client) -> None:
    c = tasker_client
    c.register_template(
        {
            "namespace": "w",
            "name": "slow",
            "version": "1.0.0",
            "defaults": {"retry": {"max_attempts": 2, "backoff": "none"}},
            "steps": [{"name": "work", "handler": "w.slow", "timeout_seconds": 1}],
        }
    )
    task = c.create_task("w", "slow", context={})
    worker = Worker(c, concurrency=2, claim_wait=0.05)
    worker.handle("w.slow", lambda ctx: threading.Event().wait(1.5))

    def stop_when_failed() -> None:
        for _ in range(600):
            if c.task(task.id).state == "error":
                break
            threading.Event().wait(0.05)
        worker.stop()

    stopper = threading.Thread(target=stop_when_failed)
    stopper.start()
    stats = worker.run(install_signal_handlers=False)
    stopper.join()
    step = _step(c, task)
    assert (step.state, step.attempts) == ("error", 2)
    assert (step.error.error_class, step.error.code, step.error.retryable) == ("TimeoutError", "timeout", True)
    assert sum(t.to_state == "waiting_for_retry" for t in c.transitions(task.id).steps) == 1
    # Both handlers finished after their deadline: their outcomes came too late and were rejected.
    assert (stats.timed_out, stats.late, stats.rejected) == (2, 2, 2)


def test_a_stopped_worker_can_run_again(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    worker = Worker(c, claim_wait=0.01)
    worker.handle("testkit.noop", lambda ctx: {})
    testing.linear(c, n=1)
    assert worker.run_until_idle().completed == 1
    worker.stop()
    testing.linear(c, n=1)
    assert worker.run_until_idle().completed == 1


class _CountingSession:
    """Stands in for the native session and records how outcomes reach it: every one should be handed to the
    session's reporter (``report``/``report_failure``), none written on a Python thread."""

    def __init__(self, native: tasker_core.WorkerSession, stop_after: int, stop) -> None:
        self._native = native
        self._stop_after = stop_after
        self._stop = stop
        self.reported = 0
        self.written = 0
        self.lock = threading.Lock()

    def _count(self, reported: int = 0, written: int = 0) -> None:
        with self.lock:
            self.reported += reported
            self.written += written
            done = self.reported + self.written >= self._stop_after
        if done:
            self._stop()

    def report(self, *args, **kwargs):
        self._native.report(*args, **kwargs)
        self._count(reported=1)

    def report_failure(self, *args, **kwargs):
        self._native.report_failure(*args, **kwargs)
        self._count(reported=1)

    def complete(self, *args, **kwargs):
        self._count(written=1)
        return self._native.complete(*args, **kwargs)

    def fail(self, *args, **kwargs):
        self._count(written=1)
        return self._native.fail(*args, **kwargs)

    def finish_many(self, outcomes):
        self._count(written=len(outcomes))
        return self._native.finish_many(outcomes)

    def __getattr__(self, name: str):
        return getattr(self._native, name)


class _CountingWorker(Worker):
    """A Worker whose session is a _CountingSession; it stops itself once ``steps`` outcomes are handed over."""

    def __init__(self, client: Client, steps: int, **kwargs) -> None:
        super().__init__(client, claim_wait=0.05, **kwargs)
        self.steps = steps
        self.counting = None

    @property
    def session(self):
        native = super().session
        if not isinstance(self._session, _CountingSession):
            self.counting = _CountingSession(native, self.steps, self.stop)
            self._session = self.counting
        return self._session

    def run_guarded(self):
        watchdog = threading.Timer(30, self.stop)
        watchdog.start()
        try:
            return self.run(install_signal_handlers=False)
        finally:
            watchdog.cancel()


def test_run_hands_every_outcome_to_the_sessions_reporter(tasker_client: Client) -> None:
    c = tasker_client
    steps = 40
    tasks = testing.linear(c, n=1, count=steps).tasks
    worker = _CountingWorker(c, steps, concurrency=8)
    worker.handle("testkit.noop", lambda ctx: {"step": ctx.step_name})
    stats = worker.run_guarded()
    assert all(c.task(t.id).state == "complete" for t in tasks)
    assert stats.completed == steps and stats.outstanding == 0 and stats.rejected == 0
    # The reporter (in Rust) batches them into transactions; nothing is written on a Python thread.
    assert (worker.counting.reported, worker.counting.written) == (steps, 0)


def test_run_fails_only_the_steps_whose_handler_failed_in_a_batch(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    # Retries fall due a minute later (on a manual clock), so no failed step runs twice during the test.
    retry = {"max_attempts": 3, "backoff": "linear", "base_ms": 60_000, "max_ms": 60_000, "jitter": 0.0}
    tasks = testing.linear(c, n=1, count=8, retry=retry).tasks
    kinds = {t.id: kind for t, kind in zip(tasks, ["bad_json", "permanent", "retryable"] + ["ok"] * 5)}
    worker = _CountingWorker(c, 8, concurrency=8)
    arrived = threading.Barrier(8, timeout=10)

    @worker.handler("testkit.noop")
    def handler(ctx: tasker_core.StepContext) -> object:
        arrived.wait()  # all eight finish together, so their outcomes share batches
        kind = kinds[ctx.task_id]
        if kind == "bad_json":
            return {"when": object()}
        if kind == "permanent":
            raise PermanentError("card declined", code="declined")
        if kind == "retryable":
            raise ValueError("flaky")
        return {"ok": True}

    stats = worker.run_guarded()
    by_kind = {kinds[t.id]: c.steps(t.id)[0] for t in tasks}
    assert stats.completed == 5 and stats.failed == 3 and stats.outstanding == 0
    assert sum(s.state == "complete" for t in tasks for s in c.steps(t.id)) == 5
    bad = by_kind["bad_json"]
    assert bad.state == "error" and bad.error.error_class == "InvalidResult"
    assert bad.error.message == "result.when: expected a JSON value, found object"
    assert by_kind["permanent"].state == "error" and by_kind["permanent"].error.error_class == "PermanentError"
    assert by_kind["permanent"].error.code == "declined"
    flaky = by_kind["retryable"]
    assert flaky.state == "waiting_for_retry" and flaky.error.error_class == "ValueError"
    assert flaky.error.message == "flaky" and any("raise ValueError" in line for line in flaky.error.backtrace)


def test_stop_waits_for_running_handlers_and_reports_them(tasker_client: Client) -> None:
    c = tasker_client
    tasks = testing.linear(c, n=1, count=8).tasks
    worker = Worker(c, concurrency=8, claim_wait=0.05)
    started = threading.Semaphore(0)
    release = threading.Event()

    @worker.handler("testkit.noop")
    def held(ctx: tasker_core.StepContext) -> dict:
        started.release()
        assert release.wait(10)
        return {"held": True}

    def stop_while_running() -> None:
        for _ in range(8):
            assert started.acquire(timeout=10)
        worker.stop()
        release.set()

    stopper = threading.Thread(target=stop_while_running)
    stopper.start()
    stats = worker.run(install_signal_handlers=False)
    stopper.join()
    assert stats.completed == 8 and stats.outstanding == 0
    assert all(c.task(t.id).state == "complete" for t in tasks)
