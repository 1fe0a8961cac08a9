"""The runtime: owns the broadcaster and every job actor, admits jobs, answers queries."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from ._broadcaster import Broadcaster
from ._errors import (
    InvalidCursor,
    JobAlreadyFinished,
    JobNotFound,
    QueueFull,
    ShuttingDown,
)
from ._ids import EventId, EventIdGenerator
from ._job import CANCELED_BY_SHUTDOWN, CANCELED_BY_USER, Job, JobActor
from ._pipeline import PipelineRegistry
from ._progress import ProgressTracker
from ._status import JobStatus
from ._store import JOBS_FILE, JobStore, JobStoreError, StoredJob
from ._subscription import Subscription

logger = logging.getLogger("aura_actors.runtime")

#: Seconds (trio clock) leaving :func:`open_runtime` waits for the job store to finish writing.
STORE_CLOSE_TIMEOUT = 5.0


class _AnyOwner:
    def __repr__(self) -> str:
        return "ANY_OWNER"


#: Pass as ``owner`` to look past ownership (the runtime's own callers, tests).
ANY_OWNER: Final = _AnyOwner()
OwnerFilter = str | None | _AnyOwner


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Every setting of a runtime, each with the default the server uses."""

    #: Jobs running at once; the rest wait as ``Queued``.
    max_concurrent_jobs: int = 16
    #: Jobs waiting beyond which a submission is refused with :class:`QueueFull`.
    max_queued_jobs: int = 1000
    #: Seconds a finished job's events stay replayable.
    history_ttl: float = 3600.0
    #: Events kept per job (progress runs compacted) before the oldest are dropped.
    max_history_events: int = 10_000
    #: Events a subscriber may have waiting before it is closed as overflowed.
    subscriber_buffer: int = 1024
    #: Where artifacts and the job store live.
    data_dir: Path = field(default_factory=lambda: Path("aura-data"))
    #: Keep every job's snapshot in ``data_dir/jobs.jsonl``, so that finished jobs
    #: outlive the process (see :class:`JobStore`). Off for an in-memory runtime
    #: (tests, benchmarks, embedding); the server turns it on.
    persist_jobs: bool = False

    @property
    def job_store_path(self) -> Path:
        """The job store's file: ``data_dir/jobs.jsonl``."""
        return self.data_dir / JOBS_FILE

    def __post_init__(self) -> None:
        if self.max_concurrent_jobs < 1:
            raise ValueError("max_concurrent_jobs must be at least 1")
        if self.max_queued_jobs < 0:
            raise ValueError("max_queued_jobs must not be negative")
        if self.history_ttl < 0:
            raise ValueError("history_ttl must not be negative")
        if self.max_history_events < 2:
            raise ValueError("max_history_events must be at least 2")
        if self.subscriber_buffer < 1:
            raise ValueError("subscriber_buffer must be at least 1")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing, newest first."""

    jobs: list[Job]
    next_cursor: str | None


class Runtime:
    """The job runtime. Create it with :func:`open_runtime`.

    All methods but the subscriptions' ``receive`` are synchronous and never
    block: submitting, cancelling and querying are instant, and the work
    happens in the job actors the runtime's nursery owns.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        pipelines: PipelineRegistry,
        broadcaster: Broadcaster,
        job_nursery: trio.Nursery,
        *,
        job_store: JobStore | None = None,
    ) -> None:
        self.config = config
        self.pipelines = pipelines
        self.broadcaster = broadcaster
        #: Where job snapshots are kept across restarts (``None``: in memory only).
        self.job_store = job_store
        self._job_nursery = job_nursery
        self._jobs: dict[str, Job] = {}
        self._order: list[Job] = []
        self._queue: OrderedDict[str, Job] = OrderedDict()
        self._running = 0
        self._shutting_down = False
        self._all_stopped: trio.Event | None = None

    # -- state -------------------------------------------------------------------------

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
        """Jobs known to the runtime, in any status."""
        return len(self._jobs)

    # -- commands ------------------------------------------------------------------------

    def submit(
        self, pipeline: object, params: Mapping[str, Any] | None = None, *, owner: str | None = None
    ) -> Job:
        """Validate and enqueue a job; it starts at once if a slot is free.

        Raises :class:`ShuttingDown`, :class:`InvalidJobRequest` (including
        :class:`UnknownPipeline`) or :class:`QueueFull`. Not a checkpoint.
        """
        if self._shutting_down:
            raise ShuttingDown
        definition = self.pipelines.get(pipeline)
        clean_params = definition.validate(params if params is not None else {})
        has_slot = self._running < self.config.max_concurrent_jobs
        if not has_slot and len(self._queue) >= self.config.max_queued_jobs:
            raise QueueFull(self.config.max_queued_jobs)
        stages = definition.build(clean_params)
        # Check the stages now (a pipeline bug raises ValueError here, to the caller):
        # found later, when the runner admits a queued job, it would crash the runtime.
        ProgressTracker([stage.weight for stage in stages])
        job = Job(
            job_id=uuid.uuid4().hex,
            seq=len(self._order),
            pipeline=definition.name,
            params=clean_params,
            stages=stages,
            owner=owner,
            broadcaster=self.broadcaster,
        )
        self._jobs[job.id] = job
        self._order.append(job)
        job.announce_queued()
        self._record(job)
        logger.info("job submitted", extra={"job_id": job.id, "pipeline": job.pipeline})
        if has_slot:
            self._start(job)
        else:
            self._queue[job.id] = job
        return job

    def cancel(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, message: str = CANCELED_BY_USER
    ) -> Job:
        """Cancel a queued or running job. Not a checkpoint.

        A queued job is ``Canceled`` at once and never starts. A running job's
        cancel scope is cancelled; its actor ends it as ``Canceled`` at the
        stage's next checkpoint (at once for sleeps, subprocesses and
        threads). Raises :class:`JobNotFound` or :class:`JobAlreadyFinished`.
        """
        job = self.get(job_id, owner=owner)
        if job.status.is_terminal:
            raise JobAlreadyFinished(job.id, job.status.value)
        if job.status is JobStatus.QUEUED:
            self._queue.pop(job.id, None)
            job.cancel_message = message
            job.finish_canceled()
            self._record(job)
        else:
            job.request_cancel(message)
        return job

    def _start(self, job: Job) -> None:
        self._running += 1
        job.transition(JobStatus.RUNNING)
        self._record(job)
        actor = JobActor(job, data_dir=self.config.data_dir)
        self._job_nursery.start_soon(self._run_actor, actor, name=f"job {job.id}")

    async def _run_actor(self, actor: JobActor) -> None:
        try:
            await actor.run()
        finally:
            self._record(actor.job)  # terminal now, its last event emitted
            self._running -= 1
            self._admit_waiting()
            if self._running == 0 and self._all_stopped is not None:
                self._all_stopped.set()

    def _admit_waiting(self) -> None:
        while (
            self._queue
            and self._running < self.config.max_concurrent_jobs
            and not self._shutting_down
        ):
            _, job = self._queue.popitem(last=False)
            self._start(job)

    def begin_shutdown(self) -> None:
        """Refuse new jobs and cancel every live one. Not a checkpoint; idempotent."""
        if self._shutting_down:
            return
        self._shutting_down = True
        logger.info("runtime shutting down", extra={"running": self._running})
        while self._queue:
            _, job = self._queue.popitem(last=False)
            job.cancel_message = CANCELED_BY_SHUTDOWN
            job.finish_canceled()
            self._record(job)
        for job in self._order:
            if job.status is JobStatus.RUNNING:
                job.request_cancel(CANCELED_BY_SHUTDOWN)

    async def shutdown(self) -> None:
        """Refuse new jobs, cancel every live one, wait for their actors, end every stream.

        Every subscriber sees its jobs' ``job-cancelled`` events before its
        subscription ends. Idempotent; leaving :func:`open_runtime` does the same.
        """
        self.begin_shutdown()
        if self._running:
            if self._all_stopped is None:
                self._all_stopped = trio.Event()
            await self._all_stopped.wait()
        else:
            await trio.lowlevel.checkpoint()
        self.broadcaster.close()

    # -- the job store ---------------------------------------------------------------------

    def _record(self, job: Job) -> None:
        """Hand the job's snapshot to the job store (if any). Never blocks."""
        if self.job_store is not None:
            self.job_store.record(StoredJob(job.seq, job.owner, job.snapshot()))

    def _restore(self, stored_jobs: Sequence[StoredJob]) -> None:
        """Add the finished jobs of an earlier process, oldest first, before any new job."""
        for stored in stored_jobs:
            try:
                job = Job.restore(
                    stored.snapshot,
                    seq=len(self._order),
                    owner=stored.owner,
                    broadcaster=self.broadcaster,
                )
            except (KeyError, TypeError, ValueError) as exc:  # the store checked; defensive
                logger.warning(
                    "stored job not restored", extra={"job_id": stored.job_id, "error": str(exc)}
                )
                continue
            if job.id in self._jobs:
                continue
            self._jobs[job.id] = job
            self._order.append(job)

    # -- queries -------------------------------------------------------------------------

    def get(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> Job:
        """The job ``job_id`` if ``owner`` may see it; else :class:`JobNotFound`."""
        job = self._jobs.get(job_id)
        if job is None or (owner is not ANY_OWNER and job.owner != owner):
            raise JobNotFound(job_id)
        return job

    def list_jobs(
        self,
        *,
        owner: OwnerFilter = ANY_OWNER,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs newest first, filtered by owner and status, ``limit`` per page.

        ``cursor`` is the ``next_cursor`` of the previous page.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = len(self._order) - 1
        if cursor is not None:
            if (
                not (cursor.isascii() and cursor.isdigit())
                or len(cursor) > 18
                or int(cursor) > len(self._order)
            ):
                raise InvalidCursor(cursor)
            start = int(cursor) - 1
        page: list[Job] = []
        index = start
        while index >= 0:
            job = self._order[index]
            index -= 1
            if owner is not ANY_OWNER and job.owner != owner:
                continue
            if status is not None and job.status is not status:
                continue
            if len(page) == limit:
                return JobPage(page, str(page[-1].seq))
            page.append(job)
        return JobPage(page, None)

    # -- streams -------------------------------------------------------------------------

    def subscribe_job(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, after: EventId | None = None
    ) -> Subscription:
        """Subscribe to a job's events (history after ``after``, then live).

        Raises :class:`JobNotFound`. Use the subscription as a context manager.
        """
        job = self.get(job_id, owner=owner)
        return self.broadcaster.subscribe_job(job.id, after)

    def subscribe_all(self, *, owner: str | None, after: EventId | None = None) -> Subscription:
        """Subscribe to every job of ``owner`` (events after ``after``, or from now)."""
        return self.broadcaster.subscribe_owner(owner, after)


@asynccontextmanager
async def open_runtime(
    config: RuntimeConfig | None = None,
    pipelines: PipelineRegistry | None = None,
    *,
    id_generator: EventIdGenerator | None = None,
    job_store: JobStore | None = None,
) -> AsyncIterator[Runtime]:
    """Run a :class:`Runtime` for the duration of the ``async with`` block.

    With ``config.persist_jobs`` (or a ``job_store`` given, which then replaces
    the one the config describes; a store serves one runtime, once), the job
    store is loaded first: the
    finished jobs of the previous process come back, read-only and newest
    first in listings, and event ids go on after the newest one they carry.
    Raises :class:`JobStoreError` if the store cannot be read or written.

    Leaving the block shuts down: new jobs are refused, queued and running
    jobs end ``Canceled`` (their subscribers see ``job-cancelled``), then every
    subscription ends, and the job store writes (and fsyncs) every job's
    final snapshot. No task of the runtime outlives the block.
    """
    if config is None:
        config = RuntimeConfig()
    if pipelines is None:
        from ..pipelines import default_pipelines

        pipelines = default_pipelines()
    if job_store is None and config.persist_jobs:
        job_store = JobStore(config.job_store_path)
    restored: list[StoredJob] = []
    if job_store is not None:
        try:
            loaded = await trio.to_thread.run_sync(job_store.load)
        except JobStoreError as exc:
            logger.error(
                "cannot open the job store", extra={"path": str(exc.path), "error": str(exc)}
            )
            raise
        restored = loaded.jobs
        if loaded.last_event_id is not None:
            id_generator = id_generator or EventIdGenerator()
            id_generator.resume_after(loaded.last_event_id)
    broadcaster = Broadcaster(
        history_ttl=config.history_ttl,
        max_history_events=config.max_history_events,
        subscriber_buffer=config.subscriber_buffer,
        id_generator=id_generator,
    )
    async with trio.open_nursery() as system_nursery:
        await system_nursery.start(broadcaster.run)
        if job_store is not None:
            await system_nursery.start(job_store.run)
        try:
            async with trio.open_nursery() as job_nursery:
                runtime = Runtime(config, pipelines, broadcaster, job_nursery, job_store=job_store)
                runtime._restore(restored)
                try:
                    yield runtime
                finally:
                    runtime.begin_shutdown()
        finally:
            broadcaster.close()
            if job_store is not None:
                await _close_store(job_store)
            system_nursery.cancel_scope.cancel()


async def _close_store(store: JobStore) -> None:
    """Let the store write every record it was handed, even while the runtime is cancelled."""
    store.close()
    with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
        await store.wait_closed()
        return
    logger.error(
        "job store did not finish writing in time; its last records may be lost",
        extra={"path": str(store.path), "pending": store.pending_count},
    )
    store.abort()  # a stuck disk: abandon the write in progress
    with trio.CancelScope(shield=True):
        await store.wait_closed()
