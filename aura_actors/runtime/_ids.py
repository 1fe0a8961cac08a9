"""Event ids: ``<unixMillis>-<counter>``, strictly increasing even if the wall clock steps back.

:class:`EventId` itself is defined in :mod:`aura_actors.protocol`; this module makes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..protocol._ids import EventId

__all__ = ["EventId", "EventIdGenerator"]


def _wall_clock_millis() -> int:
    return time.time_ns() // 1_000_000


class EventIdGenerator:
    """Hands out strictly increasing :class:`EventId` values.

    The millisecond part follows the wall clock but never goes back: if the
    clock steps backwards the generator keeps the last millisecond and bumps
    the counter, like Redis stream ids.
    """

    def __init__(self, wall_clock_millis: Callable[[], int] = _wall_clock_millis) -> None:
        self._wall_clock_millis = wall_clock_millis
        self._last = EventId(0, 0)
        self._issued_any = False

    @property
    def last(self) -> EventId | None:
        """The most recently issued id, or ``None`` before the first."""
        return self._last if self._issued_any else None

    def resume_after(self, last: EventId) -> None:
        """Continue after ``last``: every id issued from now on is greater than it.

        Used at start with the newest id an earlier process of the same job
        store issued, so ids keep increasing across a restart even if the wall
        clock went back meanwhile. Never moves the generator backwards.
        """
        if not self._issued_any or last > self._last:
            self._last = last
            self._issued_any = True

    def next_id(self) -> EventId:
        """Return a new id greater than every id issued before."""
        now = self._wall_clock_millis()
        if not self._issued_any or now > self._last.millis:
            self._last = EventId(now, 0)
        else:
            self._last = EventId(self._last.millis, self._last.counter + 1)
        self._issued_any = True
        return self._last
