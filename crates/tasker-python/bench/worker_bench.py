"""The Python half of ``cargo xtask bench --bindings``: one ``tasker_core.Worker`` running no-op handlers on a
fresh PostgreSQL database, measured from outside the library. Prints one JSON line; exits non-zero unless every
task and step completed.

    python bench/worker_bench.py --url postgres://postgres@127.0.0.1:5432/postgres [--tasks 2000]
        [--concurrency 64] [--quick]

The URL names a server; the script creates its own database there (``CREATE DATABASE`` through psql), so every
run starts from empty tables, and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

import tasker_core
from tasker_core import testing

STEPS_PER_TASK = 4


class FfiClock:
    """Sums per kind of native call. Two clocks per call: wall time (for a claim, the PostgreSQL round trip and
    commit; ``report`` only queues the outcome for the session's reporter, which writes it on the engine's
    runtime), and the calling thread's CPU time, which is what crossing the boundary costs the host: argument and
    result conversion, releasing and retaking the GIL, handing the call to the engine's runtime. Blocked time uses
    no CPU, so the second clock leaves waits out. A claim that returns nothing is the loop waiting for work, so it
    is kept apart from the claims that hand out steps."""

    KINDS = ("claim", "claim_empty", "report", "report_failure", "flush")

    def __init__(self) -> None:
        self.stats: Dict[str, List[float]] = {k: [0, 0.0, 0.0] for k in self.KINDS}
        self.lock = threading.Lock()

    def add(self, kind: str, wall: float, cpu: float) -> None:
        with self.lock:
            entry = self.stats[kind]
            entry[0] += 1
            entry[1] += wall
            entry[2] += cpu


class TimedSession:
    """Stands in for the native ``WorkerSession``: the worker loop's calls into the extension pass through here
    and are timed; everything else goes straight to the native object. Timing lives in this script, not in the
    library."""

    def __init__(self, native: Any, clock: FfiClock) -> None:
        self._native = native
        self._clock = clock

    def _timed(self, kind: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        c, t = time.thread_time(), time.monotonic()
        out = fn(*args, **kwargs)
        self._clock.add(kind(out) if callable(kind) else kind, time.monotonic() - t, time.thread_time() - c)
        return out

    def next_batch(self, *args: Any, **kwargs: Any) -> Any:
        kind = lambda out: "claim" if out else "claim_empty"  # noqa: E731
        return self._timed(kind, self._native.next_batch, *args, **kwargs)

    def report(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("report", self._native.report, *args, **kwargs)

    def report_failure(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("report_failure", self._native.report_failure, *args, **kwargs)

    def flush(self) -> Any:
        return self._timed("flush", self._native.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._native, name)


class TimedWorker(tasker_core.Worker):
    """The library's Worker with its session wrapped; the loop itself is unchanged."""

    clock: FfiClock

    @property
    def session(self) -> Any:
        native = super().session
        if not isinstance(self._session, TimedSession):
            self._session = TimedSession(native, self.clock)
        return self._session


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    tasks = 200 if args.quick else args.tasks
    steps = tasks * STEPS_PER_TASK

    db = f"tasker_bench_python_{secrets.token_hex(4)}"
    db_url = re.sub(r"^(\w+://[^/?]*)(/[^?]*)?", lambda m: f"{m.group(1)}/{db}", args.url, count=1)
    psql(args.url, f"CREATE DATABASE {db}")
    try:
        with tasker_core.Client.connect(db_url) as client:
            t = time.monotonic()
            testing.linear(client, n=STEPS_PER_TASK, count=tasks)
            created_s = time.monotonic() - t

            clock = FfiClock()
            worker = TimedWorker(client, args.concurrency)
            worker.clock = clock
            worker.handle("testkit.noop", lambda ctx: {})
            # Outcomes are written by the session's reporter, not by a call of the loop, so a watcher sees the last
            # completion (polling every 20 ms) and stops the worker, so the run ends when the work does.
            completed_at: List[float] = []

            def watch() -> None:
                give_up = time.monotonic() + 120 + steps / 100
                while time.monotonic() < give_up:
                    time.sleep(0.02)
                    if client.health_counts().tasks.get("complete", 0) == tasks:
                        completed_at.append(time.monotonic())
                        break
                worker.stop()

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()

            load_before = loadavg()
            # The whole process's CPU over the run (every Python thread, the engine's runtime threads), to set
            # beside the Rust worker process's CPU per step.
            cpu_started = time.process_time()
            started = time.monotonic()
            worker.run(install_signal_handlers=False)
            ended = time.monotonic()
            process_cpu = time.process_time() - cpu_started
            watcher.join()
            load_after = loadavg()

            counts = client.health_counts()
            tasks_done = counts.tasks.get("complete", 0)
            steps_done = counts.steps.get("complete", 0)
            s = clock.stats
            ok = (
                counts.total_tasks == tasks
                and tasks_done == tasks
                and counts.total_steps == steps
                and steps_done == steps
                and s["report_failure"][0] == 0
            )
            to_last = (completed_at[0] if completed_at else ended) - started
            working = ("claim", "report", "report_failure", "flush")
            native_wall = sum(s[k][1] for k in working)
            native_cpu = sum(s[k][2] for k in working)
            result = {
                "binding": "python",
                "python": sys.version.split()[0],
                "tasks": tasks,
                "steps": steps,
                "concurrency": args.concurrency,
                "created_s": round(created_s, 3),
                "run_s": round(ended - started, 3),
                "to_last_complete_s": round(to_last, 3),
                "steps_per_s": round(steps / to_last, 1),
                "ffi_cpu_us_per_step": round(native_cpu / steps * 1e6, 2),
                "ffi_wall_us_per_step": round(native_wall / steps * 1e6, 1),
                "process_cpu_us_per_step": round(process_cpu / steps * 1e6, 1),
                "empty_claim_wall_us_per_step": round(s["claim_empty"][1] / steps * 1e6, 1),
                "calls": {
                    k: {"calls": int(v[0]), "wall_s": round(v[1], 6), "thread_cpu_s": round(v[2], 6)} for k, v in s.items()
                },
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "tasks_complete": tasks_done,
                "steps_complete": steps_done,
                "ok": ok,
            }
    finally:
        psql(args.url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
