"""Event subscriptions: ``for event in tasker_core.events.subscribe(client): ...`` or ``sub.next(timeout=1.0)``.

A subscription sees events published after it was made, holds at most the client's ``event_capacity`` of them
(``sub.dropped`` counts losses), and ends its iteration once the client is closed and its buffer is empty.
Events are notifications; ``client.transitions(task_id)`` is the durable record.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ._native import Client, Event, Subscription


def subscribe(client: Client, *, task_id: Optional[str] = None, names: Optional[Iterable[str]] = None) -> Subscription:
    """Subscribes to events, optionally of one task and/or by name (``"step"`` matches every ``step.*``)."""
    return client.subscribe(task_id=task_id, names=list(names) if names is not None else None)


__all__ = ["subscribe", "Subscription", "Event"]
