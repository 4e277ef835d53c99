"""The test kit: factory workflows, ``run_until_idle`` with real Python handlers, and pytest fixtures.

Installed as a pytest plugin (entry point ``pytest11``), so ``tasker_client`` and ``tasker_manual_client`` are
available in any test once tasker-core is installed:

    def test_order(tasker_manual_client):
        made = tasker_core.testing.diamond(tasker_manual_client, count=2)   # made.template, made.tasks
        report = tasker_core.testing.run_until_idle(tasker_manual_client, {"testkit.noop": lambda ctx: {}})
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from . import _native
from ._native import PatternTasks, Registration
from .client import Client
from ._native import HandlerCall, RunReport
from .worker import OverrunLease, Worker

Handlers = Mapping[str, Callable[[Any], Any]]


def pattern_template(pattern: str, **spec: Any) -> Dict[str, Any]:
    """The template document of a pattern (``linear``, ``diamond``, ``parallel``, ``tree``, ``mixed``), without
    registering it. Options: ``n``, ``depth``, ``fanout``, ``namespace`` (``testkit``), ``handler_key``
    (``testkit.noop``; ``{step}`` becomes the step name), ``retry``."""
    return _native.pattern_template(dict(spec, pattern=pattern))


def register_pattern(client: Client, pattern: str, **spec: Any) -> Registration:
    """Registers the template of a pattern (idempotently); options as for ``pattern_template``."""
    return _native.register_pattern(client.native, dict(spec, pattern=pattern))


def create_pattern_tasks(
    client: Client, pattern: str, count: int = 1, *, context: Optional[Dict[str, Any]] = None, **spec: Any
) -> PatternTasks:
    """Registers a pattern and creates ``count`` tasks of it with ``context``."""
    return _native.create_pattern_tasks(client.native, dict(spec, pattern=pattern), count, context)


def linear(client: Client, n: int = 3, count: int = 1, **opts: Any) -> PatternTasks:
    """``linear_<n>``: a chain of ``n`` steps."""
    return create_pattern_tasks(client, "linear", count, n=n, **opts)


def diamond(client: Client, count: int = 1, **opts: Any) -> PatternTasks:
    """``diamond``: a start, two branches, and an end that waits for both."""
    return create_pattern_tasks(client, "diamond", count, **opts)


def parallel(client: Client, n: int = 3, count: int = 1, **opts: Any) -> PatternTasks:
    """``parallel_<n>``: ``n`` independent steps."""
    return create_pattern_tasks(client, "parallel", count, n=n, **opts)


def tree(client: Client, depth: int = 2, fanout: int = 2, count: int = 1, **opts: Any) -> PatternTasks:
    """``tree_<depth>x<fanout>``: a root whose children fan out ``depth`` levels deep."""
    return create_pattern_tasks(client, "tree", count, depth=depth, fanout=fanout, **opts)


def mixed(client: Client, count: int = 1, **opts: Any) -> PatternTasks:
    """``mixed``: chains, fan-out and fan-in in one template."""
    return create_pattern_tasks(client, "mixed", count, **opts)


def run_scripted(client: Client, script: Mapping[str, Any], **options: Any) -> _native.RunReport:
    """Runs scripted handlers (in Rust, no Python code) until idle: ``script`` maps a step name or handler key
    to outcomes per attempt (``{"succeed": ...}``, ``{"fail_retryable": {...}}``, ``{"fail_permanent": {...}}``,
    ``"overrun_lease"``). Options: ``handler_keys``, ``batch_size``, ``max_claims``, ``timeout_ms``,
    ``auto_advance_clock``, ``lease_ms``."""
    return _native.run_scripted(client.native, dict(script), options)


def run_until_idle(
    client: Client,
    handlers: Handlers,
    *,
    batch_size: int = 16,
    max_claims: Optional[int] = None,
    timeout: float = 30.0,
    auto_advance_clock: bool = True,
    lease: float = 30.0,
) -> RunReport:
    """Runs ``handlers`` (handler key → callable) in this thread until nothing is left to do; see
    ``Worker.run_until_idle``. Maintenance is off, so only this call moves work along."""
    worker = Worker(client, 1, worker_id="testkit", lease=lease, maintenance_interval=0.0)
    for key, fn in handlers.items():
        worker.handle(key, fn)
    try:
        return worker.run_until_idle(
            batch_size=batch_size, max_claims=max_claims, timeout=timeout, auto_advance_clock=auto_advance_clock
        )
    finally:
        worker.stop()


__all__ = [
    "linear",
    "diamond",
    "parallel",
    "tree",
    "mixed",
    "create_pattern_tasks",
    "register_pattern",
    "pattern_template",
    "run_until_idle",
    "run_scripted",
    "PatternTasks",
    "OverrunLease",
    "RunReport",
    "HandlerCall",
    "Registration",
]

try:
    import pytest
except ImportError:  # pytest is optional: the fixtures exist only where it is installed.
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def tasker_client() -> Iterator[Client]:
        """A client on a fresh in-memory store with the system clock, closed after the test."""
        with Client.connect("memory:") as client:
            yield client

    @pytest.fixture
    def tasker_manual_client() -> Iterator[Client]:
        """A client on a fresh in-memory store with a manual clock (starts 2030-01-01T00:00:00Z)."""
        with Client.connect("memory:", clock="manual") as client:
            yield client

    __all__ += ["tasker_client", "tasker_manual_client"]
