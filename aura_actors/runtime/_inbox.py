"""The broadcaster's inbox: a memory channel for many senders and one reader that drains it.

It does what an unbounded trio memory channel does for the broadcaster
(``send_nowait`` that never blocks, ``close``, a reader that waits for items
and takes what waits), minus what the broadcaster does not need: a trio
channel pays for each item (it hands an item straight to a waiting receiver,
wrapped in an outcome, and keeps statistics) and for each wake-up (an
exception to find it empty, a closure to park); this one appends to a deque
and reschedules the parked reader, once, on the first item.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Inbox(Generic[T]):
    """An unbounded FIFO that tasks put items in and one task takes them from in batches."""

    __slots__ = ("_closed", "_items", "_reader")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._reader: trio.lowlevel.Task | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def send_nowait(self, item: T) -> int:
        """Append ``item`` and return how many items wait; ``0`` (dropping it) once closed.

        Never blocks; not a checkpoint.
        """
        if self._closed:
            return 0
        items = self._items
        items.append(item)
        reader = self._reader
        if reader is not None:
            self._reader = None
            trio.lowlevel.reschedule(reader)
        return len(items)

    def close(self) -> None:
        """Take no more items; the reader still gets those waiting."""
        self._closed = True
        reader = self._reader
        if reader is not None:
            self._reader = None
            trio.lowlevel.reschedule(reader)

    async def wait(self) -> bool:
        """Wait until an item waits; ``False`` once closed with none left.

        Parks (a checkpoint) only when there is nothing to take: items that
        arrived while the reader was busy are taken without a trip through the
        scheduler (the reader's own work, storing and fanning out, yields).
        Cancelling the wait takes nothing. Only one task may wait at a time.
        """
        if not self._items and not self._closed:
            if self._reader is not None:
                raise trio.BusyResourceError("another task is waiting on this inbox")
            self._reader = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        return bool(self._items)

    def _abort(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._reader = None
        return trio.lowlevel.Abort.SUCCEEDED

    def take(self, limit: int) -> list[T]:
        """Remove and return the oldest waiting items, at most ``limit`` of them."""
        items = self._items
        if len(items) <= limit:
            taken = list(items)
            items.clear()
            return taken
        return [items.popleft() for _ in range(limit)]
