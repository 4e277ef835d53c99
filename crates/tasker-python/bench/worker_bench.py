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
    """Sums per kind of native call. Two clocks per call: wall time (which includes the PostgreSQL round trip
    and commit, and, with 64 threads sharing 8 pooled connections, the wait for a connection), and the calling
    thread's CPU time, which is what crossing the boundary costs the host: argument and result conversion,
    releasing and retaking the GIL, handing the call to the engine's runtime. Blocked time uses no CPU, so the
    second clock leaves waits out. A claim that returns nothing is the loop waiting for work, so it is kept
    apart from the claims that hand out steps."""

    def __init__(self, steps: int) -> None:
        self.stats: Dict[str, List[float]] = {
            k: [0, 0.0, 0.0] for k in ("claim", "claim_empty", "complete", "finish_many", "fail")
        }
        self.lock = threading.Lock()
        self.steps = steps
        self.completed = 0
        self.last_complete_at = None
        self.on_done = None

    def add(self, kind: str, wall: float, cpu: float, completed: int = -1) -> None:
        """``completed`` is how many steps the call completed: 1 for ``complete``, the completed items of a
        ``finish_many`` batch."""
        if completed < 0:
            completed = 1 if kind == "complete" else 0
        with self.lock:
            entry = self.stats[kind]
            entry[0] += 1
            entry[1] += wall
            entry[2] += cpu
            if completed == 0:
                return
            self.completed += completed
            self.last_complete_at = time.monotonic()
            if self.completed >= self.steps and self.on_done is not None:
                self.on_done()


class TimedSession:
    """Stands in for the native ``WorkerSession``: the worker loop's calls into the extension pass through here
    and are timed; everything else goes straight to the native object. Timing lives in this script, not in the
    library."""

    def __init__(self, native: Any, clock: FfiClock) -> None:
        self._native = native
        self._clock = clock

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        c, t = time.thread_time(), time.monotonic()
        out = self._native.claim(*args, **kwargs)
        self._clock.add("claim" if out else "claim_empty", time.monotonic() - t, time.thread_time() - c)
        return out

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        c, t = time.thread_time(), time.monotonic()
        try:
            return self._native.complete(*args, **kwargs)
        finally:
            self._clock.add("complete", time.monotonic() - t, time.thread_time() - c)

    def finish_many(self, *args: Any, **kwargs: Any) -> Any:
        c, t = time.thread_time(), time.monotonic()
        out = None
        try:
            out = self._native.finish_many(*args, **kwargs)
            return out
        finally:
            done = sum(1 for r in out if getattr(r, "state", None) == "complete") if out is not None else 0
            self._clock.add("finish_many", time.monotonic() - t, time.thread_time() - c, done)

    def fail(self, *args: Any, **kwargs: Any) -> Any:
        c, t = time.thread_time(), time.monotonic()
        try:
            return self._native.fail(*args, **kwargs)
        finally:
            self._clock.add("fail", time.monotonic() - t, time.thread_time() - c)

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

            clock = FfiClock(steps)
            worker = TimedWorker(client, args.concurrency)
            worker.clock = clock
            worker.handle("testkit.noop", lambda ctx: {})
            # The last completion stops the worker, so the run ends when the work does rather than after a timeout.
            clock.on_done = worker.stop
            watchdog = threading.Timer(120 + steps / 100, worker.stop)
            watchdog.daemon = True
            watchdog.start()

            load_before = loadavg()
            # The whole process's CPU over the run (every Python thread, the engine's runtime threads), to set
            # beside the Rust worker process's CPU per step.
            cpu_started = time.process_time()
            started = time.monotonic()
            worker.run(install_signal_handlers=False)
            ended = time.monotonic()
            process_cpu = time.process_time() - cpu_started
            watchdog.cancel()
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
                and s["fail"][0] == 0
            )
            to_last = (clock.last_complete_at or ended) - started
            working = ("claim", "complete", "finish_many", "fail")
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
