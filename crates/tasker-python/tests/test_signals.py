"""Worker.run() stops gracefully on SIGTERM and SIGINT: it stops claiming, lets the running handler report, and
returns. Run in a child process so the signal reaches a real main thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import tasker_core

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import tasker_core
    from tasker_core import testing

    client = tasker_core.Client.connect(sys.argv[1])
    tasks = testing.parallel(client, n=3).tasks
    worker = tasker_core.Worker(client, concurrency=1, claim_wait=0.05)
    started = threading.Event()

    @worker.handler("testkit.noop")
    def slow(ctx):
        print("started", ctx.step_name, flush=True)
        time.sleep(0.5)
        return {"slept": True}

    stats = worker.run()
    print("stopped", stats.completed, stats.outstanding, flush=True)
    client.close()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_gracefully_on_a_signal(tmp_path, sig) -> None:
    url = f"sqlite://{tmp_path / 'signals.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    assert first.startswith("started"), first + (child.stderr.read() if child.stderr else "")
    child.send_signal(sig)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "stopped", out
    completed, outstanding = int(last[1]), int(last[2])
    # The handler that was running when the signal came still reported; nothing was left outstanding.
    assert completed >= 1 and outstanding == 0
    with tasker_core.Client.connect(url) as client:
        steps = [s for t in client.tasks() for s in client.steps(t.id)]
        assert sum(s.state == "complete" for s in steps) == completed
        assert all(s.state != "in_progress" for s in steps)
