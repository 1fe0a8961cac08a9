"""Jobs kept in memory only: the storage of in-memory runtimes (tests, benchmarks, embedding)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ..protocol import TERMINAL_EVENT_TYPES
from ._events import Event
from ._files import remove_job_files
from ._history import JobHistory
from ._ids import EventId
from ._records import Commit, JobRecord, LogLine
from ._status import JobStatus
from ._storage import Recovery


@dataclass(slots=True)
class _Row:
    seq: int
    owner: str | None
    data: dict[str, object]
    history: JobHistory | None
    logs: list[LogLine] = field(default_factory=list)


class MemoryStorage:
    """:class:`~._storage.JobStorage` in dicts: nothing survives the process.

    A finished job's history is dropped ``history_ttl`` seconds (trio clock)
    after its terminal event; its snapshot stays until deleted.
    """

    def __init__(
        self, *, history_ttl: float, max_history_events: int, artifacts_dir: Path | None = None
    ) -> None:
        self.history_ttl = history_ttl
        self.max_history_events = max_history_events
        self.artifacts_dir = artifacts_dir
        self._rows: dict[str, _Row] = {}
        self._order: list[str] = []
        self._expiries: deque[tuple[float, str]] = deque()
        self._expiry_added = trio.Event()

    async def open(self) -> Recovery:
        """Nothing to recover: a new memory is empty. Not a checkpoint."""
        return Recovery(job_count=len(self._rows))

    async def commit(self, commit: Commit) -> None:
        """Apply ``commit``. Not a checkpoint: nothing here waits."""
        rows = self._rows
        if commit.created or commit.snapshots or commit.logs:
            self._commit_records(commit)
        for event in commit.events:
            row = rows.get(event.job_id or "")
            if row is not None and row.history is not None:
                row.history.append(event)
                if event.type in TERMINAL_EVENT_TYPES:
                    self._expiries.append(
                        (trio.current_time() + self.history_ttl, event.job_id or "")
                    )
                    self._expiry_added.set()

    def _commit_records(self, commit: Commit) -> None:
        """Apply the new jobs, snapshots and logs of ``commit``."""
        for record in commit.created:
            self._rows[record.id] = _Row(
                len(self._order), record.owner, record.data, JobHistory(self.max_history_events)
            )
            self._order.append(record.id)
        for job_id, data in commit.snapshots.items():
            row = self._rows.get(job_id)
            if row is not None:
                row.data = data
        for job_id, lines in commit.logs.items():
            row = self._rows.get(job_id)
            if row is not None:
                row.logs = lines

    def _record(self, job_id: str, row: _Row) -> JobRecord:
        history = row.history
        return JobRecord(
            row.seq,
            row.owner,
            row.data,
            history_expired=history is None,
            truncated_through=None if history is None else history.truncated_through,
        )

    async def get(self, job_id: str) -> JobRecord | None:
        """The record of ``job_id``. Not a checkpoint."""
        row = self._rows.get(job_id)
        return None if row is None else self._record(job_id, row)

    async def list_jobs(
        self,
        *,
        owner: str | None,
        any_owner: bool,
        statuses: Collection[JobStatus] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[JobRecord]:
        """Newest first from ``before_seq``. Not a checkpoint."""
        if before_seq is not None and before_seq > len(self._order):
            raise ValueError(f"cursor {before_seq} was never given")
        index = (
            len(self._order) - 1 if before_seq is None else min(before_seq, len(self._order)) - 1
        )
        found: list[JobRecord] = []
        while index >= 0 and len(found) < limit:
            job_id = self._order[index]
            index -= 1
            row = self._rows.get(job_id)
            if row is None or (not any_owner and row.owner != owner):
                continue
            if statuses is not None and JobStatus(str(row.data["status"])) not in statuses:
                continue
            found.append(self._record(job_id, row))
        return found

    async def job_events(self, job_id: str, after: EventId | None, limit: int) -> list[Event]:
        """Retained events after ``after``. Not a checkpoint."""
        row = self._rows.get(job_id)
        if row is None or row.history is None:
            return []
        return row.history.after(after)[:limit]

    async def owner_events(self, owner: str | None, after: EventId, limit: int) -> list[Event]:
        """Events of ``owner``'s jobs after ``after``, merged in id order. Not a checkpoint."""
        histories = [
            row.history.after(after)
            for row in self._rows.values()
            if row.owner == owner and row.history is not None
        ]
        merged = heapq.merge(*histories, key=_id_of)
        return [event for _, event in zip(range(limit), merged, strict=False)]

    async def count_jobs(self) -> dict[tuple[str, str], int]:
        """Jobs per ``(status, pipeline)``. Not a checkpoint."""
        counts: dict[tuple[str, str], int] = {}
        for row in self._rows.values():
            key = (str(row.data["status"]), str(row.data["pipeline"]))
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def logs(self, job_id: str) -> list[LogLine]:
        """The job's stored log lines. Not a checkpoint."""
        row = self._rows.get(job_id)
        return [] if row is None else list(row.logs)

    async def delete(self, job_id: str) -> None:
        """Forget ``job_id`` and remove its files."""
        self._rows.pop(job_id, None)
        if self.artifacts_dir is not None:
            await trio.to_thread.run_sync(remove_job_files, self.artifacts_dir, job_id)
        else:
            await trio.lowlevel.checkpoint()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drop finished jobs' histories when their TTL runs out. Runs until cancelled."""
        task_status.started()
        while True:
            if not self._expiries:
                self._expiry_added = trio.Event()
                await self._expiry_added.wait()
                continue
            deadline, job_id = self._expiries[0]
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            self._expiries.popleft()
            row = self._rows.get(job_id)
            if row is not None:
                row.history = None

    async def aclose(self) -> None:
        """Nothing to release. Not a checkpoint."""


def _id_of(event: Event) -> EventId:
    assert event.id is not None
    return event.id
