"""Tasker Core for Python: workflow orchestration with a typed client, thread-pool workers, events and a
pytest kit, over the Rust engine.

>>> import tasker_core
>>> with tasker_core.Client.connect("sqlite:///tmp/tasker.db") as client:
...     client.register_template(open("order.yaml").read())
...     task = client.create_task("shop", "order", context={"order_id": 42})
"""

from __future__ import annotations


from . import _native
from ._native import (
    ClaimToken,
    ClientHealth,
    DependencyLevel,
    Event,
    ExecutionContext,
    Explain,
    HandlerCall,
    IdleRun,
    Object,
    PatternTasks,
    ReapReport,
    Registration,
    RunReport,
    RetryPolicy,
    Schedule,
    ScheduleReport,
    SessionStats,
    Step,
    StepContext,
    StepError,
    StepReadiness,
    StepTransition,
    Task,
    TaskTransition,
    TemplateInfo,
    TemplateStep,
    Transitions,
    WorkerSession,
)
from .errors import (
    ClosedError,
    ConfigurationError,
    ConflictError,
    CycleDetectedError,
    DatabaseError,
    HandlerError,
    InternalError,
    InvalidTransitionError,
    NotFoundError,
    PermanentError,
    RetryableError,
    StaleClaimError,
    TaskerError,
    TimeoutError,
    ValidationError,
)
from .client import Client
from .events import Subscription
from .worker import Worker

__version__: str = _native.__version__

# tasker_core.TimeoutError is left out of __all__ so that `from tasker_core import *` never shadows the builtin
# TimeoutError (it subclasses it, so `except TimeoutError` already catches it); use tasker_core.TimeoutError.
__all__ = [
    "Client",
    "Worker",
    "WorkerSession",
    "Subscription",
    "RunReport",
    "HandlerCall",
    "ClaimToken",
    "ClientHealth",
    "DependencyLevel",
    "Event",
    "ExecutionContext",
    "Explain",
    "Object",
    "PatternTasks",
    "ReapReport",
    "Registration",
    "RetryPolicy",
    "Schedule",
    "ScheduleReport",
    "SessionStats",
    "Step",
    "StepContext",
    "StepError",
    "StepReadiness",
    "StepTransition",
    "Task",
    "TaskTransition",
    "TemplateInfo",
    "TemplateStep",
    "Transitions",
    "TaskerError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "InvalidTransitionError",
    "StaleClaimError",
    "CycleDetectedError",
    "ClosedError",
    "DatabaseError",
    "ConfigurationError",
    "HandlerError",
    "InternalError",
    "RetryableError",
    "PermanentError",
]

