"""The embedded store: jobs, event histories and logs in SQLite (WAL) in the data dir.

One writer connection and one reader connection, each used from trio's worker
threads one call at a time (:class:`~._sqlite_connections.SqliteConnections`),
so no blocking call runs on the event loop. A commit is one transaction; with
``synchronous=NORMAL`` in WAL mode a committed transaction survives the
process being killed at any instant, and ``fsync="always"``
(``synchronous=FULL``) also survives power loss.

Runs of consecutive ``step-progress`` events of a job are compacted to the
newest one, as the in-memory history does; each job keeps at most
``max_history_events`` events, the oldest dropped past it (the newest
dropped id is recorded, so a replay that needs them says so): see
:class:`~._sqlite_events.EventRows`. This module holds the SQL of the jobs
and logs tables; upkeep's is in :mod:`._sqlite_retention`.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import Any

import trio

from ._config import FsyncMode
from ._events import Event
from ._files import remove_job_files
from ._ids import EventId
from ._records import Commit, JobRecord, LogLine
from ._sqlite_connections import SqliteConnections
from ._sqlite_events import EventRows, select_job_events, select_owner_events
from ._sqlite_retention import delete_rows, expire_histories, retention_victims
from ._sqlite_schema import migrate
from ._status import TERMINAL_STATUSES, JobStatus
from ._storage import Recovery, StorageUnavailable, run_upkeep

logger = logging.getLogger("aura_actors.store")

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
        self._next_seq = 1
        self._events = EventRows(max_history_events)
        self._connections = SqliteConnections(
            path, fsync, on_writer_dropped=self._events.forget_all
        )

    # -- opening -------------------------------------------------------------------

    async def open(self) -> Recovery:
        """Open or create the database, migrate it, and report the unfinished jobs."""
        return await trio.to_thread.run_sync(self._open)

    def _open(self) -> Recovery:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = self._connections.open_writer()
            migrate(writer)
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
            await self._connections.write(lambda connection: self._apply(connection, commit))
        else:
            await self._connections.write(_probe)

    def _apply(self, connection: sqlite3.Connection, commit: Commit) -> None:
        seq = self._next_seq
        for record in commit.created:
            connection.execute(
                "INSERT INTO jobs (id, seq, owner, status, snapshot) VALUES (?, ?, ?, ?, ?)",
                (record.id, seq, record.owner, record.data["status"], json.dumps(record.data)),
            )
            self._events.job_created(record.id)
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
            self._events.insert(connection, commit.events)
        self._next_seq = seq

    async def delete(self, job_id: str) -> None:
        """Remove the job's record, history and logs, then its files."""
        await self._connections.write(lambda connection: delete_rows(connection, [job_id]))
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

        return await self._connections.read(read)

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
        return await self._connections.read(
            lambda connection: [
                _to_record(row, expired_before) for row in connection.execute(query, args)
            ]
        )

    async def job_events(self, job_id: str, after: EventId | None, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``job_id`` after ``after``, one indexed query."""
        return await self._connections.read(
            partial(select_job_events, job_id=job_id, after=after, limit=limit)
        )

    async def owner_events(self, owner: str | None, after: EventId, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``owner``'s jobs after ``after``, in id order."""
        return await self._connections.read(
            partial(select_owner_events, owner=owner, after=after, limit=limit)
        )

    async def count_jobs(self) -> dict[tuple[str, str], int]:
        """Jobs per ``(status, pipeline)``, one aggregate query."""
        query = (
            "SELECT status, json_extract(snapshot, '$.pipeline'), count(*) FROM jobs GROUP BY 1, 2"
        )
        return await self._connections.read(
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

        return await self._connections.read(read)

    # -- upkeep --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every ``upkeep_interval`` seconds: expire histories, apply retention."""
        await run_upkeep(self.upkeep, self.upkeep_interval, task_status)

    async def upkeep(self) -> tuple[int, list[str]]:
        """Expire histories past the TTL, delete what retention says; (expired, deleted ids)."""
        now = self._wall_clock()
        expired = await self._connections.write(
            lambda c: expire_histories(c, now - self.history_ttl)
        )
        victims = await self._connections.read(
            lambda c: retention_victims(c, now, self.retention_days, self.retention_jobs)
        )
        if victims:
            await self._connections.write(lambda connection: delete_rows(connection, victims))
            for job_id in victims:
                await trio.to_thread.run_sync(remove_job_files, self.artifacts_dir, job_id)
            logger.info("retention deleted jobs", extra={"count": len(victims)})
        return expired, victims

    async def aclose(self) -> None:
        """Close both connections (waiting for a call in progress). Idempotent."""
        await self._connections.aclose()


def _probe(connection: sqlite3.Connection) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', ?)", (str(time.time()),)
    )
