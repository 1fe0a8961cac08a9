"""A job's retained events, for replay after a last event id."""

from __future__ import annotations

import bisect

from ._events import Event, EventType
from ._ids import EventId


def _event_id(event: Event) -> EventId:
    assert event.id is not None
    return event.id


class JobHistory:
    """The events of one job, in id order, bounded.

    Runs of consecutive ``step-progress`` events are compacted to their latest
    one, so a job that reports a million ticks keeps one progress event per
    stretch between other events. Every other event is kept, up to
    ``max_events`` in all; past that the oldest are dropped and
    :attr:`truncated_through` records the last id dropped, so a replay that
    would need them can say so instead of pretending to be complete.
    """

    __slots__ = ("_events", "_start", "max_events", "terminal_id", "truncated_through")

    def __init__(self, max_events: int) -> None:
        if max_events < 2:
            raise ValueError("max_events must be at least 2")
        # The retained events are ``_events[_start:]``: dropping the oldest moves
        # ``_start`` and the dead prefix is deleted in bulk, so each append is O(1).
        self._events: list[Event] = []
        self._start = 0
        self.max_events = max_events
        self.truncated_through: EventId | None = None
        self.terminal_id: EventId | None = None

    def __len__(self) -> int:
        return len(self._events) - self._start

    @property
    def events(self) -> list[Event]:
        """A copy of the retained events, oldest first."""
        return self._events[self._start :]

    @property
    def last_id(self) -> EventId | None:
        """The id of the newest retained event, or ``None`` when empty."""
        return self._events[-1].id if len(self._events) > self._start else None

    def append(self, event: Event) -> None:
        """Add ``event``, whose id must be greater than every retained id."""
        if event.id is None:
            raise ValueError("only events with ids go into a history")
        events = self._events
        if (
            event.type is EventType.STEP_PROGRESS
            and len(events) > self._start
            and events[-1].type is EventType.STEP_PROGRESS
        ):
            events[-1] = event
        else:
            events.append(event)
        if event.type.is_terminal:
            self.terminal_id = event.id
        if len(events) - self._start > self.max_events:
            self.truncated_through = events[self._start].id
            self._start += 1
            if self._start > self.max_events // 2:
                del events[: self._start]
                self._start = 0

    def after(self, last_id: EventId | None) -> list[Event]:
        """The retained events with an id greater than ``last_id`` (all when ``None``)."""
        if last_id is None:
            return self._events[self._start :]
        start = bisect.bisect_right(self._events, last_id, lo=self._start, key=_event_id)
        return self._events[start:]

    def is_truncated_after(self, last_id: EventId | None) -> bool:
        """Whether a replay after ``last_id`` would miss events dropped for the bound."""
        if self.truncated_through is None:
            return False
        return last_id is None or last_id < self.truncated_through
