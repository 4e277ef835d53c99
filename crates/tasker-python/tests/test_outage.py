"""A Python worker in ``run`` rides out PostgreSQL going away for five seconds, mid-claim and mid-report: the shared
session retries claims and reports with backoff, so every task completes and no step is left in_progress. xtask
hands this suite the commands that stop and start its own throwaway cluster."""

from __future__ import annotations

import collections
import os
import subprocess
import threading
import time
import uuid

import pytest

from tasker_core import Client, DatabaseError, Worker
from tasker_core import testing

PG_URL = os.environ.get("TASKER_TEST_PG_URL")
STOP = os.environ.get("TASKER_TEST_PG_STOP")
START = os.environ.get("TASKER_TEST_PG_START")


@pytest.mark.skipif(
    not (PG_URL and STOP and START),
    reason="needs TASKER_TEST_PG_URL, _STOP and _START (cargo xtask test-all --only python sets them)",
)
def test_a_worker_carries_on_after_the_database_is_stopped_for_five_seconds() -> None:
    name = "py_outage_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", PG_URL, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    with Client.connect(f"{PG_URL.rsplit('/', 1)[0]}/{name}") as c:
        tasks = testing.linear(c, n=2, count=300, handler_key="py.outage").tasks
        worker = Worker(c, concurrency=8, lease=3.0, maintenance_interval=0.5, claim_wait=0.2)
        worker.handle("py.outage", lambda ctx: time.sleep(0.002) or {"step": ctx.step_name})
        stats = []
        runner = threading.Thread(target=lambda: stats.append(worker.run(install_signal_handlers=False)))
        runner.start()

        def complete() -> int:
            try:
                return c.health_counts().tasks["complete"]
            except DatabaseError:
                return 0

        try:
            deadline = time.monotonic() + 60
            while complete() < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert complete() >= 20
            subprocess.run(STOP, shell=True, check=True, capture_output=True)
            time.sleep(5)
            subprocess.run(START, shell=True, check=True, capture_output=True)
            deadline = time.monotonic() + 120
            while complete() < 300 and time.monotonic() < deadline:
                assert runner.is_alive(), "Worker.run ended during the outage"
                time.sleep(0.1)
        finally:
            worker.stop()
            runner.join(30)
        assert not runner.is_alive() and complete() == 300
        states = collections.Counter(s.state for t in tasks for s in c.steps(t.id))
        assert states == {"complete": 600}
        assert stats[0].store_errors > 0, stats[0]
