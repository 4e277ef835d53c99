"""The Python worker: claims steps through the one shared ``WorkerSession`` (GIL released while it waits), runs
the handlers on a thread pool, and hands each outcome back to the session, which batches, retries and never drops
it. All engine rules (retries, DAG, leases, deadlines, what a bad result or a missing handler means) stay in Rust;
this module only decides which Python callable runs and how its exception is described.
"""

from __future__ import annotations

import inspect
import signal
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence

from ._native import RunReport, SessionStats, StepContext, WorkerSession
from .client import Client
from .errors import PermanentError, RetryableError

Handler = Callable[[StepContext], Any]


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
        handler_keys: Optional[Sequence[str]] = None,
        enforce_deadlines: bool = True,
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
            enforce_deadlines=enforce_deadlines,
        )
        self._claim_wait = claim_wait
        #: The keys this worker claims steps for; the keys with a handler when None.
        self._claim_keys = list(handler_keys) if handler_keys is not None else None
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
                keys = self._claim_keys if self._claim_keys is not None else sorted(self._handlers)
                self._session = self.client.worker_session(keys, **self._options)
            return self._session

    # -- running ------------------------------------------------------------------------------------------

    def _deliver(self, target: Any, ctx: StepContext) -> None:
        """Runs the handler of ``ctx`` and hands what happened to ``target`` (the session, or an idle run): its
        result, its exception (see ``failure_of``), or the missing handler. What becomes of each is the shared
        layer's rule, the same in every language."""
        fn = self._handlers.get(ctx.handler_key)
        if fn is None:
            target.report_missing(ctx.token, ctx.handler_key)
            return
        try:
            result = fn(ctx)
        except OverrunLease:
            target.forget(ctx.token)
            return
        except Exception as exc:  # noqa: BLE001 - every handler exception is reported, none escapes
            target.report_failure(ctx.token, **failure_of(exc))
            return
        target.report(ctx.token, result)

    def run(self, *, install_signal_handlers: bool = True) -> SessionStats:
        """Claims and runs steps until ``stop()`` (or SIGTERM/SIGINT when called from the main thread), then
        stops claiming, lets running handlers report, and returns the session's stats. A database outage does
        not end it: the session retries claims and reports."""
        session = self.session
        restore: Dict[int, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                restore[sig] = signal.signal(sig, lambda *_: self.stop())
        free = threading.Semaphore(self.concurrency)

        def run_one(ctx: StepContext) -> None:
            try:
                self._deliver(session, ctx)
            finally:
                free.release()

        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tasker-worker") as pool:
                while not self._stopping.is_set():
                    # Wait for a free slot (bounded, so stop() is noticed), then claim for every free slot.
                    if not free.acquire(timeout=0.2):
                        continue
                    slots = 1
                    while slots < self.concurrency and free.acquire(blocking=False):
                        slots += 1
                    contexts = session.next_batch(slots, wait=self._claim_wait)
                    for _ in range(slots - len(contexts)):
                        free.release()
                    for ctx in contexts:
                        pool.submit(run_one, ctx)
                # Stop claiming now; leaving the `with` block waits for running handlers to report.
                session.shutdown()
        finally:
            session.shutdown()
            session.flush()
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
        """Runs handlers in the calling thread until nothing is left to do, with the one idle rule
        (docs/bindings.md §8): claim up to ``batch_size`` without waiting, run each in claim order, report the
        batch; when a claim finds nothing, stop if no retry is scheduled, else move a manual clock to it (unless
        ``auto_advance_clock`` is off) or, on the system clock, wait for it. Raises ``TimeoutError`` after
        ``timeout`` seconds."""
        run = self.session.until_idle(
            dict(
                batch_size=batch_size,
                max_claims=max_claims,
                timeout_ms=round(timeout * 1000),
                auto_advance_clock=auto_advance_clock,
            )
        )
        while (batch := run.next_batch()) is not None:
            for ctx in batch:
                self._deliver(run, ctx)
        return run.finish()
