"""``tasker_core.Client``: a handle on one store, over the native ``_native.Client``.

This is the Python surface (keyword arguments, ``with``, durations in seconds); every method is one call into
the native client, which releases the GIL while it waits. The objects it returns (``Task``, ``Step``, …) are the
native module's classes, built from tasker-shared-ffi's object table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _native
from ._native import (
    AnalyticsMetrics,
    ClientHealth,
    DependencyLevel,
    ExecutionContext,
    Explain,
    HealthCounts,
    ReapReport,
    Registration,
    Schedule,
    ScheduleReport,
    SlowStep,
    SlowTask,
    Step,
    Task,
    TemplateInfo,
    Transitions,
    WorkerSession,
)
from .events import Subscription


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else round(float(seconds) * 1000)


def _time(value: Optional[datetime]) -> Optional[str]:
    """A datetime for an options dict; a naive one stays naive, and the engine refuses it naming the field."""
    return value.isoformat() if isinstance(value, datetime) else value


class _DefaultWindow:
    """The default ``since`` of the slowest lists: leave ``since`` out of the native filter, so that the native
    layer applies its window (the last 24 hours by the client's clock, defined once in tasker-shared-ffi for
    every binding). ``since=None`` is different: the whole history."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the last 24 hours>"


_DEFAULT_WINDOW: Any = _DefaultWindow()


def _analytics_filter(
    since: Optional[datetime], namespace: Optional[str], name: Optional[str], version: Optional[str]
) -> Dict[str, Any]:
    filter: Dict[str, Any] = dict(namespace=namespace, name=name, version=version)
    if since is not _DEFAULT_WINDOW:
        filter["since"] = _time(since)
    return filter


class Client:
    """A connection to a Tasker store: ``memory:``, ``sqlite::memory:``, ``sqlite://path`` or ``postgres://…``.

    Open with ``Client.connect(url, **opts)``; close with ``close()`` or a ``with`` block. Dropping it does not
    close it. After ``close()`` every call raises ``ClosedError``; in a forked child, ``ConfigurationError``.
    """

    def __init__(self, native: _native.Client) -> None:
        #: The native handle; for the worker and the test kit.
        self.native = native

    @staticmethod
    def connect(
        url: str,
        *,
        clock: str = "system",
        manual_clock_start: Optional[datetime] = None,
        migrate: bool = True,
        max_connections: int = 8,
        event_capacity: int = 4096,
    ) -> "Client":
        options = dict(
            clock=clock,
            manual_clock_start=_time(manual_clock_start),
            migrate=migrate,
            max_connections=max_connections,
            event_capacity=event_capacity,
        )
        return Client(_native.Client.open(url, options))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Closes the client for every holder of it; idempotent."""
        self.native.close()

    @property
    def closed(self) -> bool:
        return self.native.is_closed()

    def validate_or_refresh(self) -> bool:
        """Checks the store with a round trip and rebuilds the pool if that fails; True when it rebuilt."""
        return self.native.validate_or_refresh()

    def refresh(self) -> None:
        """Rebuilds the pool now, even if it answers (after a failover or a credential rotation)."""
        self.native.refresh()

    def health(self) -> ClientHealth:
        return self.native.health()

    @property
    def clock(self) -> str:
        """``"system"`` or ``"manual"``."""
        return self.native.health().clock

    def now(self) -> datetime:
        """The engine's clock (a manual clock under ``clock="manual"``), timezone-aware."""
        return self.native.now()

    def advance_clock(self, seconds: float) -> datetime:
        """Moves a manual clock forward by ``seconds``; returns the new time."""
        return self.native.advance_clock_ms(_ms(seconds))

    def subscribe(self, *, task_id: Optional[str] = None, names: Optional[Iterable[str]] = None) -> Subscription:
        """Events published from now on; ``names`` match exactly or by prefix (``"step"``)."""
        native = self.native.subscribe(dict(task_id=task_id, names=list(names or [])))
        return Subscription(native, self)

    def worker_session(
        self,
        handler_keys: List[str],
        *,
        worker_id: Optional[str] = None,
        lease: float = 30.0,
        heartbeat_interval: Optional[float] = None,
        poll_interval: float = 1.0,
        maintenance_interval: float = 5.0,
        enforce_deadlines: bool = True,
    ) -> WorkerSession:
        """A worker session for ``handler_keys`` (the protocol ``tasker_core.Worker`` drives). Durations in
        seconds; ``heartbeat_interval=None`` means lease / 3 and 0 means never. ``enforce_deadlines=False``
        leaves a handler past its step's ``timeout_seconds`` running on (scenario replays move time by hand)."""
        options = dict(
            worker_id=worker_id,
            handler_keys=list(handler_keys),
            lease_ms=_ms(lease),
            heartbeat_interval_ms=_ms(heartbeat_interval),
            poll_interval_ms=_ms(poll_interval),
            maintenance_interval_ms=_ms(maintenance_interval),
            enforce_deadlines=enforce_deadlines,
        )
        return self.native.worker_session(options)

    def register_template(self, definition: Union[str, Dict[str, Any]]) -> Registration:
        """Registers a template given as YAML/JSON text or as a dict; idempotent for identical content."""
        return self.native.register_template(definition)

    def template(self, namespace: str, name: str, version: Optional[str] = None) -> TemplateInfo:
        """One template version; the newest when ``version`` is None."""
        return self.native.template(namespace, name, version)

    def templates(self) -> List[TemplateInfo]:
        return self.native.templates()

    def create_task(
        self,
        namespace: str,
        name: str,
        *,
        version: Optional[str] = None,
        context: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        tags: Optional[Dict[str, str]] = None,
        initiator: Optional[str] = None,
        source_system: Optional[str] = None,
        reason: Optional[str] = None,
        priority: Optional[int] = None,
        run_at: Optional[datetime] = None,
        delay: Optional[float] = None,
    ) -> Task:
        """Creates a task of the newest (or the given) version; a repeat with the same ``idempotency_key``
        returns the existing task. ``priority`` (-1000..=1000, higher is claimed first) defaults to the
        template's; ``run_at`` (a timezone-aware datetime) or ``delay`` (seconds) starts it later."""
        options = dict(
            version=version,
            context=context,
            idempotency_key=idempotency_key,
            tags=tags,
            initiator=initiator,
            source_system=source_system,
            reason=reason,
            priority=priority,
            run_at=_time(run_at),
            delay_seconds=delay,
        )
        return self.native.create_task(namespace, name, options)

    def task(self, task_id: str) -> Task:
        return self.native.task(task_id)

    def tasks(
        self,
        *,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        state: Optional[str] = None,
        limit: Optional[int] = None,
        before: Optional[str] = None,
    ) -> List[Task]:
        """Tasks, newest first; ``before`` (an id) pages."""
        return self.native.tasks(dict(namespace=namespace, name=name, state=state, limit=limit, before=before))

    def steps(self, task_id: str) -> List[Step]:
        return self.native.steps(task_id)

    def step(self, step_id: str) -> Step:
        return self.native.step(step_id)

    def explain(self, task_id: str) -> Explain:
        """Why each step of the task is or is not ready."""
        return self.native.explain(task_id)

    def transitions(self, task_id: str) -> Transitions:
        """The durable record of every transition of the task and its steps."""
        return self.native.transitions(task_id)

    def cancel_task(self, task_id: str, reason: Optional[str] = None) -> Task:
        return self.native.cancel_task(task_id, reason)

    def run_task_now(self, task_id: str) -> Task:
        """Starts a task created to start later now; one already started is returned as it is."""
        return self.native.run_task_now(task_id)

    def retry_task(self, task_id: str) -> Task:
        return self.native.retry_task(task_id)

    def resolve_step(self, step_id: str, result: Any) -> Step:
        """Resolves a step by hand with ``result``, unblocking its dependants."""
        return self.native.resolve_step(step_id, result)

    def resolve_task(self, task_id: str, reason: Optional[str] = None) -> Task:
        return self.native.resolve_task(task_id, reason)

    def reap_expired_leases(self, limit: int = 1000) -> ReapReport:
        """Recovers steps whose lease expired (workers do this in their maintenance pass)."""
        return self.native.reap_expired_leases(limit)

    def register_schedule(
        self,
        name: str,
        namespace: str,
        template: str,
        cron: str,
        *,
        context: Optional[Dict[str, Any]] = None,
        version: Optional[str] = None,
        timezone: Optional[str] = None,
        priority: Optional[int] = None,
        misfire: Optional[str] = None,
    ) -> Schedule:
        """Registers (or replaces) the cron schedule ``name``: a task of ``namespace``/``template`` at each
        occurrence of ``cron`` (5 or 6 fields, or ``@daily`` and the like), read in ``timezone`` (an IANA zone;
        UTC when None). ``context`` is the context of every task it creates (checked against the template's
        schema now; ``{}`` when None), ``priority`` their priority (the template's when None), ``version`` the
        template version (the newest at each fire when None), and ``misfire`` what happens to occurrences
        missed while nothing ran: ``"skip"`` (the default) or ``"run_once"``. Registering an unchanged
        definition again changes nothing. Workers fire due schedules in their maintenance pass;
        ``fire_schedules()`` makes one pass now."""
        options = dict(version=version, timezone=timezone, context=context, priority=priority, misfire=misfire)
        return self.native.register_schedule(name, namespace, template, cron, options)

    def pause_schedule(self, name: str) -> Schedule:
        """Stops a schedule from firing until ``resume_schedule``; a paused schedule has no ``next_fire_at``."""
        return self.native.pause_schedule(name)

    def resume_schedule(self, name: str) -> Schedule:
        """Lets a paused schedule fire again, from its next occurrence after now."""
        return self.native.resume_schedule(name)

    def remove_schedule(self, name: str) -> Schedule:
        """Removes a schedule and returns it as it was; the tasks it created stay."""
        return self.native.remove_schedule(name)

    def schedules(self) -> List[Schedule]:
        """Every registered schedule, by name."""
        return self.native.schedules()

    def schedule(self, name: str) -> Schedule:
        """One schedule by name; ``NotFoundError`` when there is none."""
        return self.native.schedule(name)

    def fire_schedules(self) -> ScheduleReport:
        """Creates the tasks of the schedules that fell due, one per occurrence however many processes call it."""
        return self.native.fire_schedules()

    # The analytics (DESIGN §5), computed by the engine from stored data; the objects are in .performance.

    def execution_context(self, task_id: str) -> ExecutionContext:
        return self.native.execution_context(task_id)

    def dependency_levels(self, task_id: str) -> List[DependencyLevel]:
        return self.native.dependency_levels(task_id)

    def health_counts(self) -> HealthCounts:
        """Tasks and steps by state, with retrying and exhausted steps."""
        return self.native.health_counts()

    def analytics_metrics(self, since: datetime) -> AnalyticsMetrics:
        """Throughput, rates and durations of the work finished since ``since`` (timezone-aware)."""
        return self.native.analytics_metrics(since)

    def slowest_steps(
        self,
        *,
        limit: int = 10,
        since: Optional[datetime] = _DEFAULT_WINDOW,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        version: Optional[str] = None,
    ) -> List[SlowStep]:
        """The ``limit`` slowest finished steps (with a start time), longest first, of the templates the filters name. ``since``
        left out: those finished in the last 24 hours; a timezone-aware datetime: finished at or after it;
        ``None``: the whole history."""
        return self.native.slowest_steps(_analytics_filter(since, namespace, name, version), limit)

    def slowest_tasks(
        self,
        *,
        limit: int = 10,
        since: Optional[datetime] = _DEFAULT_WINDOW,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        version: Optional[str] = None,
    ) -> List[SlowTask]:
        """The ``limit`` slowest finished tasks, longest first, of the templates the filters name. ``since``
        left out: those finished in the last 24 hours; a timezone-aware datetime: finished at or after it;
        ``None``: the whole history."""
        return self.native.slowest_tasks(_analytics_filter(since, namespace, name, version), limit)

    def __repr__(self) -> str:
        return f"<tasker_core.Client{' closed' if self.closed else ''}>"


__all__ = ["Client"]
