"""The Python worker: claims steps through a native ``WorkerSession`` (GIL released while it waits), runs the
handlers on a thread pool, and reports their outcomes in batches (one ``finish_many`` transaction each). All
engine rules (retries, DAG, leases) stay in Rust; this module only decides which Python callable runs and how its
exception is described.
"""

from __future__ import annotations

import inspect
import logging
import queue
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ._native import SessionStats, StepContext, WorkerSession
from .client import Client
from .errors import PermanentError, RetryableError, TaskerError, TimeoutError, ValidationError

Handler = Callable[[StepContext], Any]

#: At most this many outcomes go into one ``finish_many`` call (one transaction), as in the Rust worker.
REPORT_BATCH = 64

_log = logging.getLogger("tasker_core.worker")
_DONE = object()


class OverrunLease(BaseException):
    """Raise from a handler in tests to act like a crashed worker: the claim is never reported and its lease
    expires. (A BaseException so that ``except Exception`` in handler code does not swallow it.)"""


def failure_of(exc: BaseException) -> Dict[str, Any]:
    """How a handler's exception is reported: ``RetryableError`` → retryable (with ``retry_after``),
    ``PermanentError`` → permanent (with ``code``), anything else → retryable, with the class name and the
    traceback lines (outermost call first)."""
    lines: List[str] = []
    for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__):
        lines.extend(line for line in chunk.rstrip("\n").split("\n"))
    failure: Dict[str, Any] = {
        "kind": "permanent" if isinstance(exc, PermanentError) else "retryable",
        "message": str(exc) or type(exc).__name__,
        "error_class": type(exc).__name__,
        "backtrace": lines,
    }
    if isinstance(exc, RetryableError):
        failure["retry_after"] = exc.retry_after
    if isinstance(exc, PermanentError):
        failure["code"] = exc.code
    return failure


@dataclass
class HandlerCall:
    """One handler run of ``run_until_idle``."""

    task_id: str
    step_id: str
    step_name: str
    handler_key: str
    attempt: int
    dependency_results: Dict[str, Any]
    #: ``succeed``, ``fail_retryable``, ``fail_permanent`` or ``overrun_lease``.
    outcome: str
    #: The error code when the engine rejected the outcome (``stale_claim``, ...).
    rejected: Optional[str] = None


@dataclass
class RunReport:
    """What ``run_until_idle`` did."""

    calls: List[HandlerCall] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    overrun: int = 0
    rejected: int = 0
    #: Milliseconds a manual clock was moved forward to reach scheduled retries.
    advanced_ms: int = 0


class Worker:
    """Runs Python handlers for the steps of registered templates.

    >>> worker = Worker(client, concurrency=4)
    >>> @worker.handler("shop.charge")
    ... def charge(ctx): return {"charged": ctx.context["amount"]}
    >>> worker.run()          # until stop(), SIGTERM or SIGINT

    Durations are in seconds. ``heartbeat_interval=None`` extends leases every ``lease / 3``; 0 never.
    """

    def __init__(
        self,
        client: Client,
        concurrency: int = 4,
        *,
        worker_id: Optional[str] = None,
        lease: float = 30.0,
        heartbeat_interval: Optional[float] = None,
        poll_interval: float = 1.0,
        maintenance_interval: float = 5.0,
        claim_wait: float = 1.0,
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client: expected a tasker_core.Client, found {type(client).__name__}")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise TypeError(f"concurrency: expected an int >= 1, found {concurrency!r}")
        self.client = client
        self.concurrency = concurrency
        self._options = dict(
            worker_id=worker_id,
            lease=lease,
            heartbeat_interval=heartbeat_interval,
            poll_interval=poll_interval,
            maintenance_interval=maintenance_interval,
        )
        self._claim_wait = claim_wait
        self._handlers: Dict[str, Handler] = {}
        self._session: Optional[WorkerSession] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- registration -------------------------------------------------------------------------------------

    def handler(self, key: str) -> Callable[[Any], Any]:
        """Decorator: ``@worker.handler("key")`` on a function ``(ctx) -> result`` or a class."""

        def register(fn_or_class: Any) -> Any:
            self.handle(key, fn_or_class)
            return fn_or_class

        return register

    def handle(self, key: str, fn_or_class: Any) -> None:
        """Registers a handler: a callable ``(ctx) -> result``, or a class whose instances have ``call(ctx)``
        (or are callable); a class is instantiated once, with no arguments."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"key: expected a non-empty str, found {key!r}")
        if inspect.isclass(fn_or_class):
            instance = fn_or_class()
            fn = getattr(instance, "call", None) or (instance if callable(instance) else None)
            if fn is None:
                raise TypeError(f"handler class {fn_or_class.__name__} must define call(self, ctx) or __call__")
        elif callable(fn_or_class):
            fn = fn_or_class
        else:
            raise TypeError(f"handler for {key!r}: expected a callable or a class, found {type(fn_or_class).__name__}")
        with self._lock:
            if self._session is not None:
                raise RuntimeError("register handlers before the worker starts")
            self._handlers[key] = fn

    @property
    def handler_keys(self) -> List[str]:
        return sorted(self._handlers)

    @property
    def session(self) -> WorkerSession:
        """The worker's session, opened on first use for the registered handler keys."""
        with self._lock:
            if self._session is not None and self._session.is_shutdown:
                # A stopped worker starts again with a new session (a shut-down one claims nothing).
                self._session = None
            if self._session is None:
                if not self._handlers:
                    raise RuntimeError("register at least one handler before starting the worker")
                self._session = self.client.worker_session(sorted(self._handlers), **self._options)
            return self._session

    # -- running ------------------------------------------------------------------------------------------

    def _invoke(self, ctx: StepContext) -> Any:
        fn = self._handlers.get(ctx.handler_key)
        if fn is None:
            raise PermanentError(f"no handler is registered for {ctx.handler_key!r}", code="no_handler")
        return fn(ctx)

    def _execute(self, session: WorkerSession, ctx: StepContext) -> Optional[Any]:
        """Runs one handler (on a pool thread) and returns its outcome as a ``finish_many`` item, or None when
        the claim is left to expire (``OverrunLease``)."""
        try:
            result = self._invoke(ctx)
        except OverrunLease:
            try:
                session.forget(ctx)
            except TaskerError:
                pass
            return None
        except Exception as exc:  # noqa: BLE001 - every handler exception is reported, none escapes
            return (ctx, "failure", failure_of(exc))
        return (ctx, "success", result)

    def _report(self, session: WorkerSession, outcomes: List[Any]) -> List[Any]:
        """Reports outcomes in one ``finish_many`` call (one transaction); each item's result is a ``Step``, the
        exception that rejected it (stale or cancelled claims, counted in ``session.stats().rejected``), or
        ``("failed", step)`` for a result JSON cannot hold."""
        try:
            return list(session.finish_many(outcomes))
        except ValidationError:
            # A result JSON cannot hold fails the whole batch before anything is written; report item by item
            # so only the offending handler's step fails (as a handler bug, like any exception).
            return [self._report_one(session, ctx, kind, value) for ctx, kind, value in outcomes]

    @staticmethod
    def _report_one(session: WorkerSession, ctx: StepContext, kind: str, value: Any) -> Any:
        """Reports one outcome; a result JSON cannot hold becomes a failure, returned as ``("failed", step)``."""
        try:
            if kind == "success":
                try:
                    return session.complete(ctx, value)
                except ValidationError as exc:
                    return ("failed", session.fail(ctx, **failure_of(exc)))
            return session.fail(ctx, **value)
        except TaskerError as exc:
            return exc

    def run(self, *, install_signal_handlers: bool = True) -> SessionStats:
        """Claims and runs steps until ``stop()`` (or SIGTERM/SIGINT when called from the main thread), then
        stops claiming, lets running handlers report, and returns the session's stats."""
        session = self.session
        restore: Dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                restore[sig] = signal.signal(sig, lambda *_: self.stop())
        free = threading.Semaphore(self.concurrency)
        # Handler threads put their outcomes here; one reporter thread sends everything waiting in one
        # finish_many call (one transaction) and only then frees the slots, so claims never outrun reports.
        pending: "queue.Queue[Any]" = queue.Queue()

        def run_one(ctx: StepContext) -> None:
            item = None
            try:
                item = self._execute(session, ctx)
            finally:
                if item is None:
                    free.release()
                else:
                    pending.put(item)

        def reporter() -> None:
            done = False
            while not done:
                first = pending.get()
                if first is _DONE:
                    return
                batch = [first]
                while len(batch) < REPORT_BATCH:
                    try:
                        item = pending.get_nowait()
                    except queue.Empty:
                        break
                    if item is _DONE:
                        done = True
                        break
                    batch.append(item)
                try:
                    try:
                        self._report(session, batch)
                    except Exception:  # noqa: BLE001 - a batch-wide error: try each outcome on its own
                        for one in batch:
                            try:
                                self._report(session, [one])
                            except Exception:  # noqa: BLE001 - the reporter must outlive any one outcome
                                _log.exception("reporting the outcome of step %s failed", one[0].step_id)
                finally:
                    for _ in batch:
                        free.release()

        reporting = threading.Thread(target=reporter, name="tasker-worker-reporter", daemon=True)
        reporting.start()
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tasker-worker") as pool:
                while not self._stopping.is_set():
                    # Wait for a free slot (bounded, so stop() is noticed).
                    if not free.acquire(timeout=0.2):
                        continue
                    slots = 1
                    while slots < self.concurrency and free.acquire(blocking=False):
                        slots += 1
                    contexts = session.claim(slots, wait=self._claim_wait)
                    for _ in range(slots - len(contexts)):
                        free.release()
                    for ctx in contexts:
                        pool.submit(run_one, ctx)
                # Stop claiming now; leaving the `with` block waits for running handlers to queue their outcomes.
                session.shutdown()
        finally:
            # Every outcome is queued ahead of _DONE: the reporter sends them all before it ends.
            pending.put(_DONE)
            reporting.join()
            session.shutdown()
            for sig, previous in restore.items():
                signal.signal(sig, previous)
            # Cleared on the way out, not the way in, so a stop() that raced ahead of run() is not lost.
            self._stopping.clear()
        return session.stats()

    def stop(self) -> None:
        """Asks ``run()`` to stop: wakes a waiting claim at once; running handlers still report."""
        self._stopping.set()
        if self._session is not None:
            self._session.shutdown()

    def run_until_idle(
        self,
        *,
        batch_size: int = 16,
        max_claims: Optional[int] = None,
        timeout: float = 30.0,
        auto_advance_clock: bool = True,
    ) -> RunReport:
        """Runs handlers in the calling thread until nothing is left to do (docs/bindings.md §8): claim up to
        ``batch_size`` without waiting, run each in claim order, report the batch; when a claim finds nothing,
        stop if no retry is scheduled, else move a manual clock to it (unless ``auto_advance_clock`` is off) or,
        on the system clock, wait for it."""
        session = self.session
        manual = self.client.clock == "manual"
        deadline = time.monotonic() + timeout
        report = RunReport()
        batch = max(1, batch_size)
        while True:
            if max_claims is not None and len(report.calls) >= max_claims:
                return report
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run_until_idle did not become idle within {timeout} s")
            limit = batch if max_claims is None else min(batch, max_claims - len(report.calls))
            claimed = session.claim(limit, wait=0.0)
            if not claimed:
                due = session.next_retry_at()
                if due is None:
                    return report
                gap = max(0.0, (due - self.client.now()).total_seconds())
                if manual:
                    if not auto_advance_clock:
                        return report
                    self.client.advance_clock(gap)
                    report.advanced_ms += round(gap * 1000)
                    continue
                claimed = session.claim(limit, wait=min(gap + 0.005, max(0.0, deadline - time.monotonic())))
                if not claimed:
                    continue
            self._run_batch(session, claimed, report)

    def _run_batch(self, session: WorkerSession, claimed: List[StepContext], report: RunReport) -> None:
        outcomes = []
        calls = []
        for ctx in claimed:
            call = HandlerCall(
                task_id=ctx.task_id,
                step_id=ctx.step_id,
                step_name=ctx.step_name,
                handler_key=ctx.handler_key,
                attempt=ctx.attempt,
                dependency_results=ctx.dependency_results,
                outcome="succeed",
            )
            report.calls.append(call)
            try:
                result = self._invoke(ctx)
            except OverrunLease:
                call.outcome = "overrun_lease"
                session.forget(ctx)
                report.overrun += 1
                continue
            except Exception as exc:  # noqa: BLE001 - every handler exception is reported
                failure = failure_of(exc)
                call.outcome = "fail_permanent" if failure["kind"] == "permanent" else "fail_retryable"
                outcomes.append((ctx, "failure", failure))
                calls.append(call)
                continue
            outcomes.append((ctx, "success", result))
            calls.append(call)
        if not outcomes:
            return
        try:
            results = session.finish_many(outcomes)
        except ValidationError:
            # A result JSON cannot hold fails the whole batch before anything is written; report item by item
            # so only the offending handler's step fails (as a handler bug, like any exception).
            results = [self._report_one(session, ctx, kind, value) for ctx, kind, value in outcomes]
            for call, result in zip(calls, results):
                if isinstance(result, tuple):
                    call.outcome, result = "fail_retryable", result[1]
        for call, result in zip(calls, results):
            if isinstance(result, TaskerError):
                call.rejected = result.code
                report.rejected += 1
            elif call.outcome == "succeed":
                report.completed += 1
            else:
                report.failed += 1
