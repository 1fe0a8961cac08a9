"""The seam between the runtime and where jobs are kept: the :class:`JobStorage` protocol.

The runtime (its broadcaster actor) writes through :meth:`JobStorage.commit`
and reads snapshots, listings, histories and logs back. Two implementations
ship: :class:`~._memory_store.MemoryStorage` (in-memory runtimes: tests,
benchmarks, embedding) and :class:`~._sqlite_store.SqliteStorage` (the
server's system of record in the data dir).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ._events import Event
from ._ids import EventId
from ._records import Commit, JobRecord, LogLine
from ._status import JobStatus


class StorageUnavailable(Exception):
    """A write or read failed (disk full, read-only, I/O error, the store unreachable)."""

    code = "storage_unavailable"


class StaleEventIds(StorageUnavailable):
    """A commit was refused whole because its first event id is not after ``newest``,
    the newest id stored by another writer (several processes share a store): the
    broadcaster stamps the batch again after ``newest`` and retries at once."""

    def __init__(self, message: str, newest: EventId) -> None:
        super().__init__(message)
        self.newest = newest


class JobsFenced(StorageUnavailable):
    """A commit was refused whole because it writes jobs this writer may not write:
    ``job_ids`` are held by another worker, or by this one under a newer claim (a
    cluster's fencing, docs/cluster.md). The broadcaster drops everything about
    them, stops writing them, and commits the rest at once."""

    def __init__(self, message: str, job_ids: frozenset[str]) -> None:
        super().__init__(message)
        self.job_ids = job_ids


class CreationsRefused(StorageUnavailable):
    """A commit was refused whole because a shared store's admission limits refuse new
    jobs in it: ``refusals`` maps each such job's id to the code of the refusal
    (``queue_full``: the cluster's queue is full; ``user_quota_exceeded``: its owner has
    the most jobs one user may have). The broadcaster takes those jobs out, tells their
    submitters, and commits the rest at once."""

    def __init__(self, message: str, refusals: dict[str, str]) -> None:
        super().__init__(message)
        self.refusals = refusals


@dataclass(frozen=True, slots=True)
class Recovery:
    """What an opened storage holds that the runtime must act on."""

    #: Jobs left ``Queued`` or ``Running`` by an earlier process, oldest first.
    unfinished: list[JobRecord] = field(default_factory=list)
    #: The newest event id ever stored: new ids must be greater.
    last_event_id: EventId | None = None
    #: How many jobs are stored.
    job_count: int = 0


class JobStorage(Protocol):
    """Where jobs, their event histories and their logs are kept.

    Every method is a checkpoint unless it says otherwise; reads and writes
    raise :class:`StorageUnavailable` when the storage fails.
    """

    async def open(self) -> Recovery:
        """Open (creating or migrating as needed) and report what an earlier run left."""
        ...

    async def commit(self, commit: Commit) -> EventId | None:
        """Apply ``commit`` atomically; when it returns, the data is stored.

        Returns ``None`` when the events were stored with their ids. A store
        shared by several writers may instead give them new ids, after every id
        it holds, and return the first: event *k* of ``commit.events`` then has
        ``EventId(first.millis, first.counter + k)``, and a snapshot or record
        whose ``lastEventId`` named one of them names its new id (the writer
        renames its copies the same way before anyone sees them).
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The stored record of ``job_id``, or ``None``."""
        ...

    async def list_jobs(
        self,
        *,
        owner: str | None,
        any_owner: bool,
        statuses: Collection[JobStatus] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[JobRecord]:
        """Up to ``limit`` jobs with ``seq < before_seq`` (all when ``None``), newest first.

        Only jobs stored with one of ``statuses`` (all when ``None``); only
        ``owner``'s unless ``any_owner``. Raises :class:`ValueError` for a
        ``before_seq`` past every job (a cursor never given).
        """
        ...

    async def job_events(self, job_id: str, after: EventId | None, limit: int) -> list[Event]:
        """Up to ``limit`` retained events of ``job_id`` after ``after`` (all if ``None``)."""
        ...

    async def owner_events(self, owner: str | None, after: EventId, limit: int) -> list[Event]:
        """Up to ``limit`` events of every job of ``owner`` after ``after``, in id order."""
        ...

    async def count_jobs(self) -> dict[tuple[str, str], int]:
        """How many jobs there are per ``(status, pipeline)``."""
        ...

    async def logs(self, job_id: str) -> list[LogLine]:
        """The stored log lines of ``job_id`` (empty when none)."""
        ...

    async def delete(self, job_id: str) -> None:
        """Remove the record, history, logs and files of ``job_id``."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background upkeep (histories past their TTL, retention) until cancelled."""
        ...

    async def aclose(self) -> None:
        """Release the storage. Idempotent."""
        ...


logger = logging.getLogger("aura_actors.store")


async def run_upkeep(
    upkeep: Callable[[], Awaitable[object]],
    interval: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``upkeep`` every ``interval`` seconds until cancelled; a failing one is retried.

    The body of a storage's :meth:`JobStorage.run` for stores that keep house
    on a timer (expired histories, retention).
    """
    task_status.started()
    while True:
        try:
            await upkeep()
        except StorageUnavailable as exc:
            logger.warning("store upkeep failed; will retry", extra={"error": str(exc)})
        await trio.sleep(interval)
