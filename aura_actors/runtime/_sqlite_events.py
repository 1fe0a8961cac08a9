"""The SQL of the events table: writing a batch (compacted, capped per job) and reading pages."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._events import Event, EventType
from ._ids import EventId

#: Rows per multi-row statement (SQLite allows 32766 parameters; 6 per event row).
_CHUNK_ROWS = 500

_EVENT_COLUMNS = "millis, counter, job_id, owner, type, data"


class EventRows:
    """Writes events into the table, keeping each job's stored history as the memory one is.

    Runs of consecutive ``step-progress`` events of a job are compacted to the
    newest one; a job keeps at most ``max_history_events`` events, the oldest
    dropped past it (the newest dropped id goes in ``jobs.truncated_through``).
    Call :meth:`forget_all` whenever a write fails: the counts it keeps may
    then be wrong.
    """

    def __init__(self, max_history_events: int) -> None:
        self.max_history_events = max_history_events
        # Per live job: how many events it has stored, and the id of its stored
        # step-progress when that is its newest event (the one a newer one replaces).
        self._event_counts: dict[str, int] = {}
        self._progress_tail: dict[str, EventId] = {}

    def job_created(self, job_id: str) -> None:
        """A new job, with no events stored yet."""
        self._event_counts[job_id] = 0

    def forget_all(self) -> None:
        """Drop what is known of every job's stored events (read again when needed)."""
        self._event_counts.clear()
        self._progress_tail.clear()

    def insert(self, connection: sqlite3.Connection, events: list[Event]) -> None:
        """Store ``events`` (in id order) in the transaction of ``connection``."""
        # In id order; a progress event replaced by a newer one of the same batch
        # never reaches the table (a DELETE before the INSERT would not find it).
        rows: dict[EventId, tuple[Any, ...]] = {}
        replaced: list[tuple[int, int]] = []
        for event in events:
            assert event.id is not None and event.job_id is not None
            job_id = event.job_id
            if job_id not in self._event_counts:
                (count,) = connection.execute(
                    "SELECT count(*) FROM events WHERE job_id = ?", (job_id,)
                ).fetchone()
                self._event_counts[job_id] = count
            tail = self._progress_tail.pop(job_id, None)
            if event.type is EventType.STEP_PROGRESS:
                if tail is not None:
                    if rows.pop(tail, None) is None:
                        replaced.append(tail)
                    self._event_counts[job_id] -= 1
                self._progress_tail[job_id] = event.id
            rows[event.id] = (
                event.id.millis,
                event.id.counter,
                job_id,
                event.owner,
                event.type.value,
                event.data_json,
            )
            self._event_counts[job_id] += 1
        if replaced:
            # At most one per job and commit (the rest were replaced within the batch).
            # One statement per row, by primary key: a row-value IN list would scan.
            connection.executemany("DELETE FROM events WHERE millis = ? AND counter = ?", replaced)
        _execute_in_chunks(
            connection, "INSERT INTO events VALUES {}", "(?, ?, ?, ?, ?, ?)", list(rows.values())
        )
        last = events[-1].id
        connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_event_id', ?)", (str(last),)
        )
        for touched in {row[2] for row in rows.values()}:
            if self._event_counts[touched] > self.max_history_events:
                self._trim(connection, touched)
        for event in events:
            if event.type.is_terminal and event.job_id is not None:
                self._event_counts.pop(event.job_id, None)
                self._progress_tail.pop(event.job_id, None)

    def _trim(self, connection: sqlite3.Connection, job_id: str) -> None:
        excess = self._event_counts[job_id] - self.max_history_events
        dropped = connection.execute(
            "SELECT millis, counter FROM events WHERE job_id = ? ORDER BY millis, counter LIMIT ?",
            (job_id, excess),
        ).fetchall()
        connection.executemany("DELETE FROM events WHERE millis = ? AND counter = ?", dropped)
        newest = EventId(*dropped[-1])
        connection.execute(
            "UPDATE jobs SET truncated_through = ? WHERE id = ?", (str(newest), job_id)
        )
        self._event_counts[job_id] -= len(dropped)


def select_job_events(
    connection: sqlite3.Connection, job_id: str, after: EventId | None, limit: int
) -> list[Event]:
    """Up to ``limit`` stored events of ``job_id`` after ``after``, one indexed query."""
    start = after if after is not None else EventId(-1, -1)
    query = (
        f"SELECT {_EVENT_COLUMNS} FROM events "
        "WHERE job_id = ? AND (millis, counter) > (?, ?) ORDER BY millis, counter LIMIT ?"
    )
    args = (job_id, start.millis, start.counter, limit)
    return [_to_event(row) for row in connection.execute(query, args)]


def select_owner_events(
    connection: sqlite3.Connection, owner: str | None, after: EventId, limit: int
) -> list[Event]:
    """Up to ``limit`` stored events of ``owner``'s jobs after ``after``, in id order."""
    query = (
        f"SELECT {_EVENT_COLUMNS} FROM events "
        "WHERE owner IS ? AND (millis, counter) > (?, ?) ORDER BY millis, counter LIMIT ?"
    )
    args = (owner, after.millis, after.counter, limit)
    return [_to_event(row) for row in connection.execute(query, args)]


def _to_event(row: tuple[Any, ...]) -> Event:
    millis, counter, job_id, owner, event_type, data = row
    return Event(EventId(millis, counter), EventType(event_type), None, job_id, owner, data)


def _execute_in_chunks(
    connection: sqlite3.Connection, template: str, row: str, values: list[tuple[Any, ...]]
) -> None:
    """``template`` with ``{}`` replaced by as many ``row`` groups as fit, for all ``values``.

    One statement per chunk rather than ``executemany``'s one step per row:
    the worker thread takes the GIL back once per statement instead of once
    per row, which matters while the event loop keeps the GIL busy.
    """
    for start in range(0, len(values), _CHUNK_ROWS):
        chunk = values[start : start + _CHUNK_ROWS]
        statement = template.format(", ".join([row] * len(chunk)))
        connection.execute(statement, [value for item in chunk for value in item])
