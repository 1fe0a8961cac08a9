"""The embedded store: jobs, event histories and logs in SQLite (WAL) in the data dir.

One writer connection and one reader connection, each used from trio's worker
threads one call at a time (``trio.to_thread.run_sync`` under a lock), so no
blocking call runs on the event loop. A commit is one transaction; with
``synchronous=NORMAL`` in WAL mode a committed transaction survives the
process being killed at any instant, and ``fsync="always"``
(``synchronous=FULL``) also survives power loss.

Runs of consecutive ``step-progress`` events of a job are compacted to the
newest one, as the in-memory history does; each job keeps at most
``max_history_events`` events, the oldest dropped past it (the newest
dropped id is recorded, so a replay that needs them says so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import trio

from ._config import FsyncMode
from ._events import Event, EventType
from ._files import remove_job_files
from ._ids import EventId
from ._records import Commit, JobRecord, LogLine
from ._sqlite_schema import migrate
from ._status import TERMINAL_STATUSES, JobStatus
from ._storage import Recovery, StorageUnavailable

logger = logging.getLogger("aura_actors.store")

T = TypeVar("T")

_JOB_COLUMNS = "seq, owner, snapshot, history_expired, truncated_through, finished_wall"
_TERMINAL = tuple(status.value for status in TERMINAL_STATUSES)


def _to_record(row: tuple[Any, ...], expired_before: float) -> JobRecord:
    seq, owner, snapshot, expired, truncated, finished_wall = row
    # Past its TTL a history is gone for readers at once, whenever upkeep deletes it.
    expired = expired or (finished_wall is not None and finished_wall < expired_before)
    return JobRecord(
        seq,
        owner,
        json.loads(snapshot),
        history_expired=bool(expired),
        truncated_through=None if truncated is None else EventId.parse(truncated),
    )


def _to_event(row: tuple[Any, ...]) -> Event:
    millis, counter, job_id, owner, event_type, data = row
    return Event(EventId(millis, counter), EventType(event_type), None, job_id, owner, data)


class SqliteStorage:
    """:class:`~._storage.JobStorage` in ``path`` (SQLite, WAL). See the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        history_ttl: float,
        max_history_events: int,
        artifacts_dir: Path,
        fsync: FsyncMode = "normal",
        retention_days: float | None = None,
        retention_jobs: int | None = None,
        upkeep_interval: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.history_ttl = history_ttl
        self.max_history_events = max_history_events
        self.artifacts_dir = artifacts_dir
        self.fsync = fsync
        self.retention_days = retention_days
        self.retention_jobs = retention_jobs
        self.upkeep_interval = upkeep_interval
        self._wall_clock = wall_clock
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = trio.Lock()
        self._read_lock = trio.Lock()
        self._next_seq = 1
        # Per live job: how many events it has stored, and the id of its stored
        # step-progress when that is its newest event (the one a newer one replaces).
        self._event_counts: dict[str, int] = {}
        self._progress_tail: dict[str, EventId] = {}

    # -- connections -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={'FULL' if self.fsync == 'always' else 'NORMAL'}")
        return connection

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._write_lock:
            return await trio.to_thread.run_sync(self._run_write, work)

    def _run_write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._writer is None:
                self._writer = self._connect()
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result
        except sqlite3.Error as exc:
            self._drop_writer()
            raise StorageUnavailable(f"cannot write {self.path}: {exc}") from exc

    def _drop_writer(self) -> None:
        # After a failed write (a full disk, a read-only remount, an I/O error)
        # start over with a fresh connection: an old one may be in any state.
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(sqlite3.Error):
                writer.close()
        self._event_counts.clear()
        self._progress_tail.clear()

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._read_lock:
            return await trio.to_thread.run_sync(self._run_read, work)

    def _run_read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._reader is None:
                self._reader = self._connect()
            return work(self._reader)
        except sqlite3.Error as exc:
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()
            raise StorageUnavailable(f"cannot read {self.path}: {exc}") from exc

    # -- opening -------------------------------------------------------------------

    async def open(self) -> Recovery:
        """Open or create the database, migrate it, and report the unfinished jobs."""
        return await trio.to_thread.run_sync(self._open)

    def _open(self) -> Recovery:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = self._connect()
            migrate(self._writer)
            writer = self._writer
            unfinished = [
                _to_record(row, -math.inf)
                for row in writer.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN (?, ?) ORDER BY seq",
                    (JobStatus.QUEUED.value, JobStatus.RUNNING.value),
                )
            ]
            (max_seq, count) = writer.execute("SELECT max(seq), count(*) FROM jobs").fetchone()
            last = writer.execute("SELECT value FROM meta WHERE key = 'last_event_id'").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._next_seq = (max_seq or 0) + 1
        return Recovery(
            unfinished=unfinished,
            last_event_id=None if last is None else EventId.parse(last[0]),
            job_count=count,
        )

    # -- writing ---------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        """Apply ``commit`` in one transaction. Raises :class:`StorageUnavailable`.

        An empty commit still writes (a probe of whether storage works).
        """
        if commit:
            await self._write(lambda connection: self._apply(connection, commit))
        else:
            await self._write(_probe)

    def _apply(self, connection: sqlite3.Connection, commit: Commit) -> None:
        seq = self._next_seq
        for record in commit.created:
            connection.execute(
                "INSERT INTO jobs (id, seq, owner, status, snapshot) VALUES (?, ?, ?, ?, ?)",
                (record.id, seq, record.owner, record.data["status"], json.dumps(record.data)),
            )
            self._event_counts[record.id] = 0
            seq += 1
        now = self._wall_clock()
        for job_id, data in commit.snapshots.items():
            finished = now if data["status"] in _TERMINAL else None
            connection.execute(
                "UPDATE jobs SET status = ?, snapshot = ?, finished_wall = ? WHERE id = ?",
                (data["status"], json.dumps(data), finished, job_id),
            )
        for job_id, lines in commit.logs.items():
            connection.execute(
                "INSERT OR REPLACE INTO job_logs (job_id, lines) VALUES (?, ?)",
                (job_id, json.dumps(lines)),
            )
        if commit.events:
            self._insert_events(connection, commit.events)
        self._next_seq = seq

    def _insert_events(self, connection: sqlite3.Connection, events: list[Event]) -> None:
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

    async def delete(self, job_id: str) -> None:
        """Remove the job's record, history and logs, then its files."""
        await self._write(lambda connection: _delete_rows(connection, [job_id]))
        await trio.to_thread.run_sync(remove_job_files, self.artifacts_dir, job_id)

    # -- reading -----------------------------------------------------------------------

    def _expired_before(self) -> float:
        return self._wall_clock() - self.history_ttl

    async def get(self, job_id: str) -> JobRecord | None:
        """The stored record of ``job_id``, or ``None``."""

        def read(connection: sqlite3.Connection) -> JobRecord | None:
            row = connection.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return None if row is None else _to_record(row, self._expired_before())

        return await self._read(read)

    async def list_jobs(
        self,
        *,
        owner: str | None,
        any_owner: bool,
        statuses: Collection[JobStatus] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[JobRecord]:
        """Up to ``limit`` jobs newest first, one indexed query."""
        if before_seq is not None and before_seq > self._next_seq:
            raise ValueError(f"cursor {before_seq} was never given")
        clauses = ["seq < ?"]
        args: list[Any] = [before_seq if before_seq is not None else self._next_seq]
        if not any_owner:
            clauses.append("owner IS ?")
            args.append(owner)
        if statuses is not None:
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(sorted(status.value for status in statuses))
        query = (
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC LIMIT ?"
        )
        args.append(limit)
        expired_before = self._expired_before()
        return await self._read(
            lambda connection: [
                _to_record(row, expired_before) for row in connection.execute(query, args)
            ]
        )

    async def job_events(self, job_id: str, after: EventId | None, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``job_id`` after ``after``, one indexed query."""
        start = after if after is not None else EventId(-1, -1)
        query = (
            "SELECT millis, counter, job_id, owner, type, data FROM events "
            "WHERE job_id = ? AND (millis, counter) > (?, ?) ORDER BY millis, counter LIMIT ?"
        )
        args = (job_id, start.millis, start.counter, limit)
        return await self._read(
            lambda connection: [_to_event(row) for row in connection.execute(query, args)]
        )

    async def owner_events(self, owner: str | None, after: EventId, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``owner``'s jobs after ``after``, in id order."""
        query = (
            "SELECT millis, counter, job_id, owner, type, data FROM events "
            "WHERE owner IS ? AND (millis, counter) > (?, ?) ORDER BY millis, counter LIMIT ?"
        )
        args = (owner, after.millis, after.counter, limit)
        return await self._read(
            lambda connection: [_to_event(row) for row in connection.execute(query, args)]
        )

    async def count_jobs(self) -> dict[tuple[str, str], int]:
        """Jobs per ``(status, pipeline)``, one aggregate query."""
        query = (
            "SELECT status, json_extract(snapshot, '$.pipeline'), count(*) FROM jobs GROUP BY 1, 2"
        )
        return await self._read(
            lambda connection: {
                (status, pipeline): count for status, pipeline, count in connection.execute(query)
            }
        )

    async def logs(self, job_id: str) -> list[LogLine]:
        """The stored log lines of ``job_id``."""

        def read(connection: sqlite3.Connection) -> list[LogLine]:
            row = connection.execute(
                "SELECT lines FROM job_logs WHERE job_id = ?", (job_id,)
            ).fetchone()
            return [] if row is None else list(json.loads(row[0]))

        return await self._read(read)

    # -- upkeep --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every ``upkeep_interval`` seconds: expire histories, apply retention."""
        task_status.started()
        while True:
            try:
                await self.upkeep()
            except StorageUnavailable as exc:
                logger.warning("store upkeep failed; will retry", extra={"error": str(exc)})
            await trio.sleep(self.upkeep_interval)

    async def upkeep(self) -> tuple[int, list[str]]:
        """Expire histories past the TTL, delete what retention says; (expired, deleted ids)."""
        now = self._wall_clock()
        expired = await self._write(lambda c: _expire(c, now - self.history_ttl))
        victims = await self._read(lambda c: self._retention_victims(c, now))
        if victims:
            await self._write(lambda connection: _delete_rows(connection, victims))
            for job_id in victims:
                await trio.to_thread.run_sync(remove_job_files, self.artifacts_dir, job_id)
            logger.info("retention deleted jobs", extra={"count": len(victims)})
        return expired, victims

    def _retention_victims(self, connection: sqlite3.Connection, now: float) -> list[str]:
        victims: dict[str, None] = {}
        if self.retention_days is not None:
            cutoff = now - self.retention_days * 86400.0
            for (job_id,) in connection.execute(
                "SELECT id FROM jobs WHERE finished_wall < ? ORDER BY seq", (cutoff,)
            ):
                victims[job_id] = None
        if self.retention_jobs is not None:
            for (job_id,) in connection.execute(
                "SELECT id FROM jobs WHERE finished_wall IS NOT NULL ORDER BY seq DESC "
                "LIMIT -1 OFFSET ?",
                (self.retention_jobs,),
            ):
                victims[job_id] = None
        return list(victims)

    async def aclose(self) -> None:
        """Close both connections (waiting for a call in progress). Idempotent."""
        async with self._write_lock, self._read_lock:
            for connection in (self._writer, self._reader):
                if connection is not None:
                    await trio.to_thread.run_sync(connection.close)
            self._writer = self._reader = None


#: Rows per multi-row statement (SQLite allows 32766 parameters; 6 per event row).
_CHUNK_ROWS = 500


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


def _probe(connection: sqlite3.Connection) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', ?)", (str(time.time()),)
    )


def _expire(connection: sqlite3.Connection, finished_before: float) -> int:
    ids = [
        job_id
        for (job_id,) in connection.execute(
            "SELECT id FROM jobs WHERE finished_wall < ? AND history_expired = 0",
            (finished_before,),
        )
    ]
    for job_id in ids:
        connection.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        connection.execute("UPDATE jobs SET history_expired = 1 WHERE id = ?", (job_id,))
    return len(ids)


def _delete_rows(connection: sqlite3.Connection, job_ids: list[str]) -> None:
    for job_id in job_ids:
        connection.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        connection.execute("DELETE FROM job_logs WHERE job_id = ?", (job_id,))
        connection.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
