"""Events and the analytics objects."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest

import tasker_core
from tasker_core import Client, events, performance, testing


def test_subscribe_next_iterate_and_end_after_close() -> None:
    client = Client.connect("memory:", clock="manual")
    sub = events.subscribe(client, names=["task"])
    (task,) = testing.linear(client, n=2).tasks
    first = sub.next(timeout=1.0)
    assert isinstance(first, tasker_core.Event)
    assert first.name == "task.created" and first.task_id == task.id and first.step_id is None
    assert first.timestamp.tzinfo is not None
    assert sub.next(timeout=0.05) is None
    testing.run_until_idle(client, {"testkit.noop": lambda ctx: {}})
    names = []

    def consume() -> None:
        for e in sub:
            names.append(e.name)

    t = threading.Thread(target=consume)
    t.start()
    # Iteration ends once the client is closed and the buffer is drained.
    import time

    deadline = time.monotonic() + 5
    while len(names) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    client.close()
    t.join(5)
    assert not t.is_alive()
    assert names == ["task.started", "task.completed"]
    assert sub.dropped == 0


def test_step_events_and_try_next_and_drain(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    sub = c.subscribe(names=["step.completed"])
    (task,) = testing.diamond(c).tasks
    assert sub.try_next() is None
    testing.run_until_idle(c, {"testkit.noop": lambda ctx: {}})
    got = sub.drain()
    assert [(e.step_name, e.attempt) for e in got] == [("start", 1), ("left", 1), ("right", 1), ("end", 1)]
    assert all(e.task_id == task.id and e.to_state == "complete" for e in got)


def test_the_analytics_objects(tasker_client: Client) -> None:
    c = tasker_client
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    tasks = testing.linear(c, n=3, count=2).tasks
    testing.run_until_idle(c, {"testkit.noop": lambda ctx: {}})
    counts = c.health_counts()
    assert isinstance(counts, performance.HealthCounts)
    assert counts.total_tasks == 2 and counts.tasks.get("complete") == 2 and counts.total_steps == 6
    m = c.analytics_metrics(since)
    assert isinstance(m, performance.AnalyticsMetrics)
    assert m.tasks_completed == 2 and m.steps_completed == 6 and m.task_error_rate == 0.0
    assert isinstance(m.task_duration, performance.DurationStats) and m.task_duration.count == 2
    assert isinstance(m.task_throughput_per_second, float) and m.since.tzinfo is not None
    steps = c.slowest_steps(limit=4)
    assert len(steps) == 4 and all(isinstance(s, performance.SlowStep) for s in steps)
    assert steps[0].duration_ms >= steps[-1].duration_ms
    slow_tasks = c.slowest_tasks(namespace="testkit", since=since)
    assert [t.task_id for t in slow_tasks] and all(isinstance(t, performance.SlowTask) for t in slow_tasks)
    try:
        c.analytics_metrics(dt.datetime(2030, 1, 1))  # naive: refused
    except tasker_core.ValidationError as e:
        assert e.details["errors"][0]["path"] == "since"
    else:
        raise AssertionError("a naive datetime must be refused")


def _rebuildable_urls(tmp: str) -> list:
    urls = [f"sqlite://{tmp}/events.db"]
    pg = os.environ.get("TASKER_TEST_PG_URL")
    if pg:
        urls.append(pg)
    return urls


def test_a_subscription_outlives_refresh_and_never_spins(tmp_path) -> None:
    """A rebuilt pool keeps the old engine's event bus: the subscription delivers what is committed after the
    rebuild, and its iterator waits instead of spinning while nothing comes."""
    for url in _rebuildable_urls(str(tmp_path)):
        with Client.connect(url, clock="manual") as c:
            sub = c.subscribe(names=["task.cancelled"])
            (before,) = testing.linear(c, n=1).tasks
            c.refresh()
            assert c.health().refreshes == 1
            c.cancel_task(before.id)
            event = sub.next(timeout=10.0)
            assert event is not None and (event.name, event.task_id) == ("task.cancelled", before.id), url
            # Nothing else comes: one iterator step waits its slices out instead of busy-looping.
            got = []
            t = threading.Thread(target=lambda: got.append(next(iter(sub), None)))
            cpu = time.process_time()
            t.start()
            t.join(1.0)
            assert t.is_alive(), "the iterator returned although no event came"
            assert time.process_time() - cpu < 0.5, "the iterator spins while it waits"
        # Closing the client ends the iteration.
        t.join(5)
        assert not t.is_alive() and got == [None], got


def test_refresh_refuses_an_in_memory_store() -> None:
    with Client.connect("memory:") as c:
        with pytest.raises(tasker_core.ConfigurationError, match="cannot be rebuilt"):
            c.refresh()


def test_slowest_lists_default_to_the_last_24_hours(tasker_manual_client: Client) -> None:
    c = tasker_manual_client
    start = c.now()
    testing.linear(c, n=2, count=1)
    testing.linear(c, n=1, count=1, namespace="py_other")

    def noop(ctx: object) -> dict:
        c.advance_clock(0.25)
        return {}

    testing.run_until_idle(c, {"testkit.noop": noop})
    assert len(c.slowest_steps()) == 3 and len(c.slowest_tasks()) == 2
    # The filters narrow the lists.
    assert [s.namespace for s in c.slowest_steps(namespace="py_other")] == ["py_other"]
    assert c.slowest_steps(name="no_such_template") == []
    assert c.slowest_tasks(version="9.9.9") == []
    # A day and a minute later, the default window holds nothing; since=None and an explicit since reach back.
    c.advance_clock(24 * 3600 + 60)
    assert c.slowest_steps() == [] and c.slowest_tasks() == []
    assert len(c.slowest_steps(since=None)) == 3 and len(c.slowest_tasks(since=None)) == 2
    assert len(c.slowest_steps(since=start)) == 3
    assert [t.namespace for t in c.slowest_tasks(since=None, namespace="py_other")] == ["py_other"]
