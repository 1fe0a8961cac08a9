"""Reading jobs: live ones from memory, every other one from storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import trio

from ._errors import InvalidCursor, JobNotFound, StorageFailing
from ._job import Job
from ._records import JobRecord, LogLine
from ._status import JobStatus
from ._storage import JobStorage

#: The most jobs one listing page may hold.
MAX_PAGE = 200


class _AnyOwner:
    def __repr__(self) -> str:
        return "ANY_OWNER"


#: Pass as ``owner`` to look past ownership (the runtime's own callers, tests).
ANY_OWNER: Final = _AnyOwner()
OwnerFilter = str | None | _AnyOwner


def visible(job_owner: str | None, owner: OwnerFilter) -> bool:
    """Whether a job of ``job_owner`` is seen by a caller asking as ``owner``."""
    return isinstance(owner, _AnyOwner) or job_owner == owner


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing, newest first."""

    jobs: list[JobRecord]
    next_cursor: str | None


class JobQueries:
    """The runtime's reads of jobs: ``live`` (shared with the runner) first, then ``storage``.

    A storage error is raised as :class:`StorageFailing`.
    """

    def __init__(self, live: Mapping[str, Job], storage: JobStorage) -> None:
        self.live = live
        self.storage = storage

    async def get(self, job_id: str, *, owner: OwnerFilter) -> JobRecord:
        """The job ``job_id`` if ``owner`` may see it; else :class:`JobNotFound`. A checkpoint."""
        job = self.live.get(job_id)
        if job is not None:
            if not visible(job.owner, owner):
                raise JobNotFound(job_id)
            await trio.lowlevel.checkpoint()
            return JobRecord(0, job.owner, job.snapshot())
        record = await self.stored(job_id)
        if record is None or not visible(record.owner, owner):
            raise JobNotFound(job_id)
        return record

    async def stored(self, job_id: str) -> JobRecord | None:
        """The stored record of ``job_id`` (whoever owns it), or ``None``."""
        try:
            return await self.storage.get(job_id)
        except Exception as exc:
            raise StorageFailing(str(exc)) from exc

    async def list_jobs(
        self, *, owner: OwnerFilter, status: JobStatus | None, limit: int, cursor: str | None
    ) -> JobPage:
        """A page of jobs newest first, ``limit`` (1–200) of them. A checkpoint.

        ``cursor`` is the ``next_cursor`` of the previous page.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1–{MAX_PAGE}")
        before: int | None = None
        if cursor is not None:
            if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
                raise InvalidCursor(cursor)
            before = int(cursor)
        # A live job's stored status may lag its status in memory by one commit, so a
        # filtered listing also reads the statuses a live job may still be stored with,
        # and filters on the freshest status.
        statuses = None if status is None else {status, JobStatus.QUEUED, JobStatus.RUNNING}
        page: list[JobRecord] = []
        while True:
            try:
                records = await self.storage.list_jobs(
                    owner=None if isinstance(owner, _AnyOwner) else owner,
                    any_owner=isinstance(owner, _AnyOwner),
                    statuses=statuses,
                    before_seq=before,
                    limit=limit + 1,
                )
            except ValueError:
                raise InvalidCursor(cursor or "") from None
            except Exception as exc:
                raise StorageFailing(str(exc)) from exc
            for record in records:
                fresh = self._freshest(record)
                if status is None or fresh.status is status:
                    page.append(fresh)
                    if len(page) > limit:
                        return JobPage(page[:limit], str(page[limit - 1].seq))
            if len(records) <= limit:
                return JobPage(page, None)
            before = records[-1].seq

    def _freshest(self, record: JobRecord) -> JobRecord:
        job = self.live.get(record.id)
        if job is None:
            return record
        return JobRecord(record.seq, record.owner, job.snapshot())

    async def logs(self, job_id: str, *, owner: OwnerFilter) -> list[LogLine]:
        """The job's log lines, oldest first (bounded). A checkpoint."""
        job = self.live.get(job_id)
        if job is not None and visible(job.owner, owner):
            await trio.lowlevel.checkpoint()
            return list(job.logs)
        record = await self.get(job_id, owner=owner)
        try:
            return await self.storage.logs(record.id)
        except Exception as exc:
            raise StorageFailing(str(exc)) from exc
