"""Exceptions: the ``TaskerError`` family raised by Tasker Core, and the two a handler raises to say how it failed.

Every ``TaskerError`` has ``.code`` (the stable kind string, e.g. ``"not_found"``), ``.details`` (a dict) and
``.causes`` (underlying messages, outermost first, also chained as ``__cause__``). Switch on the class or on
``.code``, never on the message.
"""

from __future__ import annotations

from typing import Optional

from ._native import (
    ClosedError,
    ConfigurationError,
    ConflictError,
    CycleDetectedError,
    DatabaseError,
    HandlerError,
    InternalError,
    InvalidTransitionError,
    NotFoundError,
    StaleClaimError,
    TaskerError,
    TimeoutError,
    ValidationError,
)


class RetryableError(Exception):
    """Raise from a handler for a failure worth retrying; ``retry_after`` (seconds) asks for a delay."""

    def __init__(self, message: str = "retryable failure", *, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Raise from a handler for a failure that must not be retried; ``code`` is recorded on the step."""

    def __init__(self, message: str = "permanent failure", *, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


__all__ = [
    "TaskerError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "InvalidTransitionError",
    "StaleClaimError",
    "CycleDetectedError",
    "ClosedError",
    "TimeoutError",
    "DatabaseError",
    "ConfigurationError",
    "HandlerError",
    "InternalError",
    "RetryableError",
    "PermanentError",
]
