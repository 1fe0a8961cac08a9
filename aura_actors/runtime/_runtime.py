"""The runtime: admits jobs, runs their actors, answers queries and subscriptions."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import trio

from ._actor import JobActor
from ._broadcaster import Broadcaster, CommitWaiter
from ._config import RuntimeConfig
from ._errors import (
    InvalidCursor,
    JobAlreadyFinished,
    JobIsLive,
    JobNotFound,
    JobNotRetryable,
    QueueFull,
    ShuttingDown,
    StorageFailing,
    UserQuotaExceeded,
)
from ._events import Event, stream_error
from ._fair_queue import FairQueue
from ._files import remove_job_files
from ._history import JobHistory
from ._hub import Hub
from ._ids import EventId
from ._job import CANCELED_BY_SHUTDOWN, CANCELED_BY_USER, Job
from ._pipeline import PipelineRegistry
from ._progress import ProgressTracker
from ._records import JobRecord, LogLine
from ._status import JobStatus
from ._storage import JobStorage
from ._subscription import Subscription

logger = logging.getLogger("aura_actors.runtime")

#: Seconds (trio clock) the runtime waits for storage when a job ends or it shuts down.
STORE_CLOSE_TIMEOUT = 5.0
#: The most jobs one listing page may hold.
MAX_PAGE = 200


class _AnyOwner:
    def __repr__(self) -> str:
        return "ANY_OWNER"


#: Pass as ``owner`` to look past ownership (the runtime's own callers, tests).
ANY_OWNER: Final = _AnyOwner()
OwnerFilter = str | None | _AnyOwner


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing, newest first."""

    jobs: list[JobRecord]
    next_cursor: str | None


class Runtime:
    """The job runtime. Create it with :func:`~._open.open_runtime`.

    Live jobs (``Queued``, ``Running``) are objects in memory; every other job
    is read from storage when asked for. Commands that store something wait
    for the commit, so what they acknowledge is stored.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        pipelines: PipelineRegistry,
        storage: JobStorage,
        broadcaster: Broadcaster,
        job_nursery: trio.Nursery,
        *,
        job_count: int = 0,
    ) -> None:
        self.config = config
        self.pipelines = pipelines
        self.storage = storage
        self.broadcaster = broadcaster
        self.hub: Hub = broadcaster.hub
        self._job_nursery = job_nursery
        self._live: dict[str, Job] = {}
        self._queue = FairQueue()
        self._creating = 0
        self._running = 0
        self._job_count = job_count
        self._shutting_down = False
        self._all_stopped: trio.Event | None = None

    # -- state (none of these is a checkpoint) --------------------------------------

    @property
    def shutting_down(self) -> bool:
        """Whether the runtime has stopped taking jobs."""
        return self._shutting_down

    @property
    def running_count(self) -> int:
        """Jobs whose actors are running."""
        return self._running

    @property
    def queued_count(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._queue)

    @property
    def job_count(self) -> int:
        """Jobs stored, in any status."""
        return self._job_count

    @property
    def live_count(self) -> int:
        """Jobs held in memory (``Queued`` or ``Running``, or just ended)."""
        return len(self._live)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions taking live events."""
        return self.hub.subscriber_count

    @property
    def last_event_id(self) -> EventId | None:
        """The newest event id handed out."""
        return self.broadcaster.last_id

    @property
    def storage_problem(self) -> str | None:
        """Why storage is failing, or ``None`` while it works."""
        error = self.broadcaster.storage_error
        return None if error is None else str(error)

    # -- commands ---------------------------------------------------------------------

    async def submit(
        self,
        pipeline: object,
        params: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
        retry_of: str | None = None,
    ) -> JobRecord:
        """Validate a job, store it, and queue it (it starts at once if a slot is free).

        Returns once the job is stored. Raises :class:`ShuttingDown`,
        :class:`InvalidJobRequest` (including :class:`UnknownPipeline`),
        :class:`QueueFull` or :class:`StorageFailing`. A checkpoint; the store
        is waited for even if the caller is cancelled meanwhile (briefly).
        """
        if self._shutting_down:
            raise ShuttingDown
        if self.broadcaster.storage_error is not None:
            raise StorageFailing(str(self.broadcaster.storage_error))
        definition = self.pipelines.get(pipeline)
        clean_params = definition.validate(params if params is not None else {})
        self._check_quota(owner)
        if self._free_slots() <= 0 and len(self._queue) >= self.config.max_queued_jobs:
            raise QueueFull(self.config.max_queued_jobs)
        stages = definition.build(clean_params)
        # Check the stages now (a pipeline bug raises ValueError here, to the caller):
        # found later, when the runner admits a queued job, it would crash the runtime.
        ProgressTracker([stage.weight for stage in stages])
        job = Job(
            job_id=uuid.uuid4().hex,
            pipeline=definition.name,
            params=clean_params,
            stages=stages,
            owner=owner,
            broadcaster=self.broadcaster,
            retry_of=retry_of,
        )
        job.history = JobHistory(self.config.max_history_events)
        self._live[job.id] = job
        self._creating += 1
        waiter = CommitWaiter()
        try:
            job.announce_queued(waiter)
            with trio.CancelScope(shield=True):
                await waiter.done.wait()
        finally:
            self._creating -= 1
        if waiter.error is not None:
            del self._live[job.id]
            raise StorageFailing(str(waiter.error))
        self._job_count += 1
        logger.info("job submitted", extra={"job_id": job.id, "pipeline": job.pipeline})
        if job.status is not JobStatus.QUEUED:  # canceled while its record was being stored
            return JobRecord(0, job.owner, job.snapshot())
        self._queue.push(job)
        if self._shutting_down:
            self._cancel_queued(job, CANCELED_BY_SHUTDOWN)
        else:
            self._admit_waiting()
        return JobRecord(0, job.owner, job.snapshot())

    def _check_quota(self, owner: str | None) -> None:
        limit = self.config.max_jobs_per_user
        if limit is None:
            return
        live = sum(
            1 for job in self._live.values() if job.owner == owner and not job.status.is_terminal
        )
        if live >= limit:
            raise UserQuotaExceeded(limit)

    def _free_slots(self) -> int:
        return self.config.max_concurrent_jobs - self._running - self._creating

    async def cancel(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, message: str = CANCELED_BY_USER
    ) -> JobRecord:
        """Cancel a queued or running job. A checkpoint.

        A queued job is ``Canceled`` at once and never starts; the call returns
        once that is stored (raising :class:`StorageFailing` if it cannot be). A running job's
        cancel scope is cancelled; its actor ends it as ``Canceled`` at the
        stage's next checkpoint (at once for sleeps, subprocesses and
        threads). Raises :class:`JobNotFound` or :class:`JobAlreadyFinished`.
        """
        job = self._live.get(job_id)
        if job is None or not _visible(job.owner, owner):
            record = await self.get(job_id, owner=owner)
            raise JobAlreadyFinished(record.id, record.status.value)
        if job.status.is_terminal:
            raise JobAlreadyFinished(job.id, job.status.value)
        if job.status is JobStatus.QUEUED:
            self._cancel_queued(job, message)
            # Its end is acknowledged: answer once it is stored (or storage failed).
            with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
                error = await self.broadcaster.barrier()
                if error is not None:
                    raise StorageFailing(str(error))
        else:
            job.request_cancel(message)
            await trio.lowlevel.checkpoint()
        return JobRecord(0, job.owner, job.snapshot())

    def _cancel_queued(self, job: Job, message: str) -> None:
        self._queue.remove(job)
        job.cancel_message = message
        job.cancel_requested_at = time.perf_counter()
        job.finish_canceled()
        self._job_nursery.start_soon(self._retire, job)

    async def retry(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> JobRecord:
        """Submit a new job with the same pipeline and params as a ``Failed``/``Canceled`` one.

        Raises :class:`JobNotFound`, :class:`JobNotRetryable`, or what :meth:`submit` raises.
        """
        record = await self.get(job_id, owner=owner)
        if record.status not in (JobStatus.FAILED, JobStatus.CANCELED):
            raise JobNotRetryable(record.id, record.status.value)
        return await self.submit(
            record.data["pipeline"], record.data["params"], owner=record.owner, retry_of=record.id
        )

    async def delete(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> None:
        """Delete a finished job: its record, history, log and files.

        Raises :class:`JobNotFound`, :class:`JobIsLive` or :class:`StorageFailing`.
        """
        job = self._live.get(job_id)
        if job is not None and _visible(job.owner, owner):
            raise JobIsLive(job.id, job.status.value)
        record = await self.get(job_id, owner=owner)
        try:
            await self.storage.delete(record.id)
        except Exception as exc:  # StorageUnavailable, or a file that would not go
            raise StorageFailing(str(exc)) from exc
        self._job_count -= 1

    # -- running jobs -------------------------------------------------------------------

    def _admit_waiting(self) -> None:
        while self._queue and self._free_slots() > 0 and not self._shutting_down:
            self._start(self._queue.pop())

    def _start(self, job: Job) -> None:
        self._running += 1
        job.start_attempt(self.config.node_name)
        actor = JobActor(
            job, data_dir=self.config.data_dir, max_seconds=self.config.max_job_seconds
        )
        self._job_nursery.start_soon(self._run_actor, actor, name=f"job {job.id}")

    async def _run_actor(self, actor: JobActor) -> None:
        try:
            await actor.run()
        finally:
            await self._retire(actor.job)
            self._running -= 1
            self._admit_waiting()
            if self._running == 0 and self._all_stopped is not None:
                self._all_stopped.set()

    async def _retire(self, job: Job) -> None:
        """Once a finished job's last events are stored, forget it and tidy its files."""
        with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
            if await self.broadcaster.barrier() is not None:
                return  # not stored: keep serving it from memory
            self._live.pop(job.id, None)
            if job.status is not JobStatus.DONE and not self.config.keep_failed_files:
                await trio.to_thread.run_sync(remove_job_files, self.config.artifacts_dir, job.id)

    def recover(self, unfinished: list[JobRecord]) -> None:
        """Take back the jobs an earlier process left unfinished (section 7 of the contract).

        ``Queued`` jobs wait again in their order; ``Running`` ones run again
        first while attempts remain, else end ``Failed`` with ``interrupted``.
        """
        again: list[Job] = []
        for record in unfinished:
            job = self._resume(record)
            if job is None:
                continue
            self._live[job.id] = job
            if job.status is JobStatus.QUEUED:
                self._queue.push(job)
            elif job.attempt < self.config.max_attempts:
                again.append(job)
            else:
                job.finish_failed(
                    "interrupted",
                    "the server stopped while the job was running",
                    "retry the job",
                    [],
                )
                self._job_nursery.start_soon(self._retire, job)
        for job in again:
            self._queue.push_first(job)
        self._admit_waiting()

    def _resume(self, record: JobRecord) -> Job | None:
        try:
            definition = self.pipelines.get(record.data["pipeline"])
            stages = definition.build(definition.validate(record.data["params"]))
        except Exception as exc:
            logger.error(
                "stored job cannot run again", extra={"job_id": record.id, "error": str(exc)}
            )
            stages = ()
        job = Job.resume(record, stages=stages, broadcaster=self.broadcaster)
        if not stages:
            job.finish_failed("interrupted", "the job's pipeline is gone", "submit it again", [])
            self._job_nursery.start_soon(self._retire, job)
            return None
        return job

    def begin_shutdown(self) -> None:
        """Refuse new jobs and cancel every running one. Not a checkpoint; idempotent.

        Queued jobs stay queued when jobs are stored (they run after a
        restart); an in-memory runtime cancels them.
        """
        if self._shutting_down:
            return
        self._shutting_down = True
        logger.info("runtime shutting down", extra={"running": self._running})
        # Failing storage gets as long as a job's last events may wait for it.
        self.broadcaster.give_up_after(STORE_CLOSE_TIMEOUT)
        if not self.config.persist_jobs:
            while self._queue:
                self._cancel_queued(self._queue.pop(), CANCELED_BY_SHUTDOWN)
        for job in list(self._live.values()):
            if job.status is JobStatus.RUNNING:
                job.request_cancel(CANCELED_BY_SHUTDOWN)

    async def shutdown(self) -> None:
        """Refuse new jobs, cancel every running one, wait for their actors, end every stream.

        Every subscriber sees its jobs' ``job-cancelled`` events before its
        subscription ends. Idempotent; leaving ``open_runtime`` does the same.
        """
        self.begin_shutdown()
        if self._running:
            if self._all_stopped is None:
                self._all_stopped = trio.Event()
            await self._all_stopped.wait()
        else:
            await trio.lowlevel.checkpoint()
        await self.broadcaster.barrier()
        self.hub.close()

    # -- queries ---------------------------------------------------------------------------

    async def get(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> JobRecord:
        """The job ``job_id`` if ``owner`` may see it; else :class:`JobNotFound`. A checkpoint."""
        job = self._live.get(job_id)
        if job is not None:
            if not _visible(job.owner, owner):
                raise JobNotFound(job_id)
            await trio.lowlevel.checkpoint()
            return JobRecord(0, job.owner, job.snapshot())
        record = await self._stored(job_id)
        if record is None or not _visible(record.owner, owner):
            raise JobNotFound(job_id)
        return record

    async def _stored(self, job_id: str) -> JobRecord | None:
        try:
            return await self.storage.get(job_id)
        except Exception as exc:
            raise StorageFailing(str(exc)) from exc

    async def list_jobs(
        self,
        *,
        owner: OwnerFilter = ANY_OWNER,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs newest first, filtered by owner and status, ``limit`` (1–200) per page.

        ``cursor`` is the ``next_cursor`` of the previous page. A checkpoint.
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
        job = self._live.get(record.id)
        if job is None:
            return record
        return JobRecord(record.seq, record.owner, job.snapshot())

    async def logs(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> list[LogLine]:
        """The job's log lines, oldest first (bounded). A checkpoint."""
        job = self._live.get(job_id)
        if job is not None and _visible(job.owner, owner):
            await trio.lowlevel.checkpoint()
            return list(job.logs)
        record = await self.get(job_id, owner=owner)
        try:
            return await self.storage.logs(record.id)
        except Exception as exc:
            raise StorageFailing(str(exc)) from exc

    # -- streams -------------------------------------------------------------------------

    async def subscribe_job(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, after: EventId | None = None
    ) -> Subscription:
        """Subscribe to a job's events: its stored history after ``after``, then live.

        Raises :class:`JobNotFound`. Use the subscription as a context manager.
        A live job started by this process replays from memory; any other job's
        history is read from storage a page at a time as the reader goes. A checkpoint.
        """
        job = self._live.get(job_id)
        if job is not None and job.history is not None and _visible(job.owner, owner):
            await trio.lowlevel.checkpoint()
            return self._follow_live(job, after)
        record = await self.get(job_id, owner=owner)
        # A job not held here came from storage already; a live one resumed from an
        # earlier process needs its stored record (truncation, expiry).
        stored = await self._stored(job_id) if record.id in self._live else record
        replay: list[Event] = []
        truncated = None if stored is None else stored.truncated_through
        if truncated is not None and (after is None or after < truncated):
            replay.append(_truncated_error(job_id))
        expired = stored is None or stored.history_expired
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer,
            replay=replay,
            fetch=None if expired else partial(self.storage.job_events, record.id),
            after=after,
            job_id=record.id,
        )
        job = self._live.get(record.id)
        if job is None or job.terminal_published:
            subscription.end()
        else:
            self.hub.follow_job(record.id, subscription)
        return subscription

    def _follow_live(self, job: Job, after: EventId | None) -> Subscription:
        """Replay ``job``'s history from memory, then follow it: no storage read, no gap.

        Taking the replay and joining the hub happen in one step (no checkpoint
        between), so no event is published in between.
        """
        history = job.history
        assert history is not None
        replay: list[Event] = []
        if history.is_truncated_after(after):
            replay.append(_truncated_error(job.id))
        replay.extend(history.after(after))
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer, replay=replay, after=after, job_id=job.id
        )
        if job.terminal_published:
            subscription.end()
        else:
            self.hub.follow_job(job.id, subscription)
        return subscription

    async def subscribe_all(
        self, *, owner: str | None, after: EventId | None = None
    ) -> Subscription:
        """Subscribe to every job of ``owner``: stored events after ``after`` (if given), then live.

        A checkpoint.
        """
        fetch = None
        if after is not None:
            start = after

            async def fetch_owner(last: EventId | None, limit: int) -> list[Event]:
                return await self.storage.owner_events(owner, last or start, limit)

            fetch = fetch_owner
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer, fetch=fetch, after=after
        )
        self.hub.follow_owner(owner, subscription)
        await trio.lowlevel.checkpoint()
        return subscription


def _visible(job_owner: str | None, owner: OwnerFilter) -> bool:
    return isinstance(owner, _AnyOwner) or job_owner == owner


def _truncated_error(job_id: str) -> Event:
    return stream_error(
        "history_truncated", "the oldest events of this job are no longer retained", job_id
    )
