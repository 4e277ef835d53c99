"""Event subscriptions: ``for event in tasker_core.events.subscribe(client): ...`` or ``sub.next(timeout=1.0)``.

A subscription sees events published after it was made, holds at most the client's ``event_capacity`` of them
(``sub.dropped`` counts losses), and ends its iteration once the client is closed and its buffer is empty.
Events are notifications; ``client.transitions(task_id)`` is the durable record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional

from . import _native
from ._native import Event

if TYPE_CHECKING:
    from .client import Client

#: How long one wait of the iterator lasts before it looks again at whether the client was closed.
_ITER_SLICE = 0.2


class Subscription:
    """Events published after the subscription was made, oldest first."""

    def __init__(self, native: _native.Subscription, client: "Client") -> None:
        self._native = native
        self._client = client

    def next(self, timeout: float = 1.0) -> Optional[Event]:
        """The next event, waiting at most ``timeout`` seconds (GIL released); None when none came, or when
        the client is closed and the buffer is empty."""
        return self._native.next(float(timeout))

    def try_next(self) -> Optional[Event]:
        """The next buffered event, never waiting."""
        return self._native.try_next()

    def drain(self) -> List[Event]:
        """Every buffered event, never waiting."""
        return self._native.drain()

    @property
    def dropped(self) -> int:
        """Events lost because this subscription fell more than its buffer behind."""
        return self._native.dropped()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        """Waits for the next event; the iteration ends once the client is closed and the buffer is empty.
        Each wait is short, so Ctrl-C interrupts it."""
        while True:
            event = self._native.next(_ITER_SLICE)
            if event is not None:
                return event
            if self._client.closed:
                raise StopIteration


def subscribe(client: "Client", *, task_id: Optional[str] = None, names: Optional[Iterable[str]] = None) -> Subscription:
    """Subscribes to events, optionally of one task and/or by name (``"step"`` matches every ``step.*``)."""
    return client.subscribe(task_id=task_id, names=names)


__all__ = ["subscribe", "Subscription", "Event"]
