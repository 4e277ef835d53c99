"""A subscriber in this process hears every ``task.completed`` of tasks that a worker in a child Python process
works: on a SQLite file, and on PostgreSQL while the subscriber's event feed loses its connection again and
again. The events are read back from the transition tables, so none is lost and none comes twice."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from tasker_core import Client, testing

PG_URL = os.environ.get("TASKER_TEST_PG_URL")

#: The child: a worker that runs until every task is complete, then stops.
WORKER = """
import sys, threading, time
from tasker_core import Client, Worker
url, count = sys.argv[1], int(sys.argv[2])
with Client.connect(url) as c:
    w = Worker(c, concurrency=4, claim_wait=0.1, worker_id="py-child")
    w.handle("py.events", lambda ctx: {"step": ctx.step_name})
    t = threading.Thread(target=lambda: w.run(install_signal_handlers=False))
    t.start()
    deadline = time.monotonic() + 90
    while c.health_counts().tasks.get("complete", 0) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    w.stop()
    t.join(30)
    sys.exit(0 if c.health_counts().tasks.get("complete", 0) == count else 3)
"""


def hear_every_completion(url: str, count: int, between=lambda heard: None) -> None:
    with Client.connect(url) as c:
        sub = c.subscribe(names=["task.completed"])
        tasks = testing.linear(c, n=2, count=count, handler_key="py.events").tasks
        want = {t.id for t in tasks}
        child = subprocess.Popen([sys.executable, "-c", WORKER, url, str(count)])
        try:
            heard: Counter[str] = Counter()
            deadline = time.monotonic() + 90
            while not want <= set(heard) and time.monotonic() < deadline:
                e = sub.next(timeout=1.0)
                if e is None:
                    continue
                assert e.name == "task.completed" and e.task_id in want, e
                assert (e.from_state, e.to_state) == ("in_progress", "complete")
                heard[e.task_id] += 1
                between(len(heard))
            assert want <= set(heard), f"heard {len(set(heard) & want)} of {count} task.completed events"
            assert child.wait(60) == 0, "the worker process did not finish its tasks"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert [t for t, n in heard.items() if n != 1] == [], "a completion was heard more than once"
        assert sub.dropped == 0
        # The steps were worked by the child, not by this process.
        rows = [r for t in tasks[:3] for r in c.transitions(t.id).steps if r.event == "complete"]
        assert rows and all(r.worker_id == "py-child" for r in rows)


def test_a_subscriber_hears_every_completion_a_worker_process_makes_on_sqlite(tmp_path: pathlib.Path) -> None:
    hear_every_completion(f"sqlite://{tmp_path / 'events.db'}", 60)


@pytest.mark.skipif(not PG_URL, reason="needs TASKER_TEST_PG_URL (cargo xtask test-all --only python sets it)")
def test_a_subscriber_hears_every_completion_a_worker_process_makes_on_postgres_across_lost_connections() -> None:
    name = "py_events_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", PG_URL, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    app = "py-sub-" + uuid.uuid4().hex[:8]
    url = f"{PG_URL.rsplit('/', 1)[0]}/{name}?application_name={app}"
    admin = f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    cuts = []

    def feed_backends() -> int:
        return psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = :'app'")

    def psql(sql: str) -> int:
        # On stdin, not -c: psql substitutes the variable (a quoted literal) only in what it reads.
        out = subprocess.run(
            ["psql", admin, "-Atq", "-v", f"app={app}-feed"], input=sql, check=True, capture_output=True, text=True
        )
        return int(out.stdout.strip())

    def cut(heard: int) -> None:
        if heard % 20 != 10 or len(cuts) >= 3:
            return
        deadline = time.monotonic() + 30
        while feed_backends() == 0:
            assert time.monotonic() < deadline, f"the event feed did not reconnect after {len(cuts)} cuts"
            time.sleep(0.01)
        n = psql(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = :'app') t"
        )
        assert n > 0, f"no feed backend to cut after {heard} completions"
        cuts.append(heard)

    hear_every_completion(url, 80, cut)
    assert len(cuts) == 3, f"the feed's connection was cut only after {cuts} completions"
