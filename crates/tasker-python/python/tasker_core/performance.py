"""The analytics objects: what ``Client.health_counts()``, ``analytics_metrics(since)``, ``slowest_steps()``,
``slowest_tasks()``, ``dependency_levels(task_id)`` and ``execution_context(task_id)`` return. Every number is
computed by the engine from stored data."""

from __future__ import annotations

from ._native import (
    AnalyticsMetrics,
    DependencyLevel,
    DurationStats,
    ExecutionContext,
    HealthCounts,
    SlowStep,
    SlowTask,
)

__all__ = [
    "AnalyticsMetrics",
    "DependencyLevel",
    "DurationStats",
    "ExecutionContext",
    "HealthCounts",
    "SlowStep",
    "SlowTask",
]
