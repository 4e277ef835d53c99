"""Analytics: counts by state, throughput and error rates, and the slowest steps and tasks. Every number is
computed by the engine; these functions only call it."""

from __future__ import annotations

from datetime import datetime
from typing import List, Optional

from ._native import (
    AnalyticsMetrics,
    Client,
    DurationStats,
    HealthCounts,
    SlowStep,
    SlowTask,
    analytics_metrics,
    health_counts,
    slowest_steps as _slowest_steps,
    slowest_tasks as _slowest_tasks,
)


def metrics(client: Client, since: datetime) -> AnalyticsMetrics:
    """Throughput, completion and error rates and durations of the work finished since ``since`` (tz-aware)."""
    return analytics_metrics(client, since)


def counts(client: Client) -> HealthCounts:
    """Tasks and steps by state, with retrying and exhausted steps."""
    return health_counts(client)


def slowest_steps(
    client: Client,
    *,
    since: Optional[datetime] = None,
    namespace: Optional[str] = None,
    name: Optional[str] = None,
    version: Optional[str] = None,
    limit: int = 10,
) -> List[SlowStep]:
    return _slowest_steps(client, since=since, namespace=namespace, name=name, version=version, limit=limit)


def slowest_tasks(
    client: Client,
    *,
    since: Optional[datetime] = None,
    namespace: Optional[str] = None,
    name: Optional[str] = None,
    version: Optional[str] = None,
    limit: int = 10,
) -> List[SlowTask]:
    return _slowest_tasks(client, since=since, namespace=namespace, name=name, version=version, limit=limit)


__all__ = [
    "metrics",
    "counts",
    "slowest_steps",
    "slowest_tasks",
    "AnalyticsMetrics",
    "DurationStats",
    "HealthCounts",
    "SlowStep",
    "SlowTask",
]
