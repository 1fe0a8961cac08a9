"""The broadcaster's inbox: a trio memory channel that many senders fill and one reader drains.

An unbounded trio memory channel underneath (``send_nowait`` never blocks;
closing it lets the reader take what waits, then see the end), with the two
things the broadcaster's loop needs on top: a count of what waits, so the
reader takes a batch with ``receive_nowait`` without the exception that finds
the channel empty, and a wait that parks only when nothing waits, so items
that arrived while the reader was busy cost no trip through the scheduler.
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

import trio

T = TypeVar("T")

_NOTHING = object()


class Inbox(Generic[T]):
    """An unbounded FIFO that tasks put items in and one task takes them from in batches."""

    __slots__ = ("_count", "_held", "_receive", "_send", "_waiting")

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[T](math.inf)
        # The item a parked wait received (a channel cannot be waited on without
        # taking); ``_NOTHING`` when none. There is at most one: the reader only
        # parks when nothing waits.
        self._held: T | object = _NOTHING
        # Items sent and not yet taken (those in the channel and the held one).
        self._count = 0
        self._waiting = False

    def __len__(self) -> int:
        return self._count

    def send_nowait(self, item: T) -> int:
        """Append ``item`` and return how many items wait; ``0`` (dropping it) once closed.

        Never blocks; not a checkpoint.
        """
        try:
            self._send.send_nowait(item)
        except trio.ClosedResourceError:
            return 0
        self._count += 1
        return self._count

    def close(self) -> None:
        """Take no more items; the reader still gets those waiting."""
        self._send.close()

    async def wait(self) -> bool:
        """Wait until an item waits; ``False`` once closed with none left.

        Parks (a checkpoint) only when there is nothing to take: items that
        arrived while the reader was busy are taken without a trip through the
        scheduler (the reader's own work, storing and fanning out, yields).
        Cancelling the wait takes nothing. Only one task may wait at a time.
        """
        if self._count:
            return True
        if self._waiting:
            raise trio.BusyResourceError("another task is waiting on this inbox")
        self._waiting = True
        try:
            self._held = await self._receive.receive()
        except trio.EndOfChannel:
            return False
        finally:
            self._waiting = False
        return True

    def take(self, limit: int) -> list[T]:
        """Remove and return the oldest waiting items, at most ``limit`` of them."""
        count = min(limit, self._count)
        if count <= 0:
            return []
        self._count -= count
        taken: list[T]
        if self._held is _NOTHING:
            taken = []
        else:
            taken = [self._held]  # type: ignore[list-item]
            self._held = _NOTHING
            count -= 1
        # A plain loop: for the one or two items of a paced wake-up, a comprehension's
        # own frame costs more than the items.
        receive_nowait = self._receive.receive_nowait
        append = taken.append
        for _ in range(count):
            append(receive_nowait())
        return taken
