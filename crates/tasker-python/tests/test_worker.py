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
    assert bad.state == "waiting_for_retry" and bad.error.error_class == "ValidationError"
    assert "result.when: expected a JSON value, found object" in bad.error.message
    assert [(call.step_name, call.outcome) for call in report.calls][1:] == [
        ("branch_1", "fail_retryable"),
        ("branch_2", "succeed"),
    ]


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
    """Stands in for the native session (as bench/worker_bench.py does) and records the reporting calls: the size
    of each finish_many batch and the number of single complete/fail calls."""

    def __init__(self, native: tasker_core.WorkerSession, stop_after: int, stop, latency: float) -> None:
        self._native = native
        self._stop_after = stop_after
        self._stop = stop
        self._latency = latency
        self.batches: list = []
        self.singles = 0
        self.lock = threading.Lock()

    def _reported(self, batch: int = 0, single: int = 0) -> None:
        with self.lock:
            if batch:
                self.batches.append(batch)
            self.singles += single
            done = sum(self.batches) + self.singles >= self._stop_after
        if done:
            self._stop()

    def finish_many(self, outcomes):
        # A round trip's worth of delay, so outcomes finishing meanwhile queue up behind this report.
        threading.Event().wait(self._latency)
        results = self._native.finish_many(outcomes)
        self._reported(batch=len(outcomes))
        return results

    def complete(self, *args, **kwargs):
        try:
            return self._native.complete(*args, **kwargs)
        finally:
            self._reported(single=1)

    def fail(self, *args, **kwargs):
        try:
            return self._native.fail(*args, **kwargs)
        finally:
            self._reported(single=1)

    def __getattr__(self, name: str):
        return getattr(self._native, name)


class _CountingWorker(Worker):
    """A Worker whose session is a _CountingSession; it stops itself once ``steps`` outcomes are reported."""

    def __init__(self, client: Client, steps: int, latency: float = 0.0, **kwargs) -> None:
        super().__init__(client, claim_wait=0.05, **kwargs)
        self.steps = steps
        self.latency = latency
        self.counting = None

    @property
    def session(self):
        native = super().session
        if not isinstance(self._session, _CountingSession):
            self.counting = _CountingSession(native, self.steps, self.stop, self.latency)
            self._session = self.counting
        return self._session

    def run_guarded(self):
        watchdog = threading.Timer(30, self.stop)
        watchdog.start()
        try:
            return self.run(install_signal_handlers=False)
        finally:
            watchdog.cancel()


def test_run_reports_outcomes_in_batches(tasker_client: Client) -> None:
    c = tasker_client
    steps = 40
    tasks = testing.linear(c, n=1, count=steps).tasks
    worker = _CountingWorker(c, steps, latency=0.02, concurrency=8)
    worker.handle("testkit.noop", lambda ctx: {"step": ctx.step_name})
    stats = worker.run_guarded()
    batches = worker.counting.batches
    assert all(c.task(t.id).state == "complete" for t in tasks)
    assert stats.completed == steps and stats.outstanding == 0 and stats.rejected == 0
    # Every outcome went through finish_many, in fewer calls (transactions) than steps, never more than the
    # concurrency at once.
    assert sum(batches) == steps and worker.counting.singles == 0
    assert len(batches) < steps and max(batches) > 1 and max(batches) <= 8, batches


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
    assert bad.state == "waiting_for_retry" and bad.error.error_class == "ValidationError"
    assert "result.when: expected a JSON value, found object" in bad.error.message
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
