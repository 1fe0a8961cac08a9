"""The runtime: admits jobs, runs their actors, answers queries and subscriptions.

``Runtime`` is the public face; the work is in its parts: :class:`~._runner.JobRunner`
(admission, slots, the actors), :mod:`._recovery` (after a restart),
:class:`~._queries.JobQueries` (reads) and :class:`~._streams.JobStreams` (subscriptions).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import trio

from ._broadcaster import Broadcaster
from ._config import RuntimeConfig
from ._errors import (
    JobAlreadyFinished,
    JobIsLive,
    JobNotRetryable,
    ShuttingDown,
    StorageFailing,
)
from ._history import JobHistory
from ._hub import Hub
from ._ids import EventId
from ._job import CANCELED_BY_USER, Job
from ._pipeline import PipelineRegistry
from ._progress import ProgressTracker
from ._queries import ANY_OWNER, JobPage, JobQueries, OwnerFilter, visible
from ._records import JobRecord, LogLine
from ._recovery import recover
from ._runner import STORE_CLOSE_TIMEOUT, JobRunner
from ._source import JobSource
from ._status import JobStatus
from ._storage import JobStorage
from ._streams import JobStreams
from ._subscription import Subscription

logger = logging.getLogger("aura_actors.runtime")


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
        source: JobSource | None = None,
    ) -> None:
        self.config = config
        self.pipelines = pipelines
        self.storage = storage
        self.broadcaster = broadcaster
        self.hub: Hub = broadcaster.hub
        self._runner = JobRunner(config, broadcaster, job_nursery, source)
        self._source = self._runner.source
        self._live: dict[str, Job] = self._runner.live
        self._queries = JobQueries(self._live, storage)
        self._streams = JobStreams(config, self._queries, self.hub, shared=self._source.shared)
        self._job_count = job_count

    # -- state (none of these is a checkpoint) --------------------------------------

    @property
    def shutting_down(self) -> bool:
        """Whether the runtime has stopped taking jobs."""
        return self._runner.shutting_down

    @property
    def runner(self) -> JobRunner:
        """Admission, slots and the running actors (a cluster's worker starts jobs there)."""
        return self._runner

    @property
    def clustered(self) -> bool:
        """Whether this runtime is a node of a cluster: its job source is shared, so other
        nodes hold and run jobs too, and its own counts are not the service's."""
        return self._source.shared

    @property
    def running_count(self) -> int:
        """Jobs whose actors are running."""
        return self._runner.running

    @property
    def queued_count(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._runner.queue)

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
        if self.shutting_down:
            raise ShuttingDown
        if self.broadcaster.storage_error is not None:
            raise StorageFailing(str(self.broadcaster.storage_error))
        definition = self.pipelines.get(pipeline)
        clean_params = definition.validate(params if params is not None else {})
        self._runner.check_admission(owner)
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
        if not self._source.shared:  # else it may run elsewhere: replays read storage
            job.history = JobHistory(self.config.max_history_events)
        await self._runner.store_new(job)
        self._job_count += 1
        logger.info("job submitted", extra={"job_id": job.id, "pipeline": job.pipeline})
        if job.status is JobStatus.QUEUED:  # else canceled while its record was being stored
            self._source.queued(self._runner, job)
        return JobRecord(0, job.owner, job.snapshot())

    async def cancel(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, message: str = CANCELED_BY_USER
    ) -> JobRecord:
        """Cancel a queued or running job. A checkpoint.

        A queued job is ``Canceled`` at once and never starts; the call returns
        once that is stored (raising :class:`StorageFailing` if it cannot be). A running job's
        cancel scope is cancelled; its actor ends it as ``Canceled`` at the
        stage's next checkpoint (at once for sleeps, subprocesses and
        threads). In a cluster, a job this process does not run is cancelled
        through the cluster (its job source). Raises :class:`JobNotFound` or
        :class:`JobAlreadyFinished`.
        """
        job = self._live.get(job_id)
        if job is None or not visible(job.owner, owner) or self._held_elsewhere(job):
            record = await self.get(job_id, owner=owner)
            if record.status.is_terminal:
                raise JobAlreadyFinished(record.id, record.status.value)
            return await self._source.cancel_elsewhere(record, message)
        if job.status.is_terminal:
            raise JobAlreadyFinished(job.id, job.status.value)
        if job.status is JobStatus.QUEUED:
            self._runner.cancel_queued(job, message)
            # Its end is acknowledged: answer once it is stored (or storage failed).
            with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
                error = await self.broadcaster.barrier()
                if error is not None:
                    raise StorageFailing(str(error))
        else:
            job.request_cancel(message)
            await trio.lowlevel.checkpoint()
        return JobRecord(0, job.owner, job.snapshot())

    def _held_elsewhere(self, job: Job) -> bool:
        """Whether ``job``, held here, waits in a cluster's queue (just submitted)."""
        return self._source.shared and job.status is JobStatus.QUEUED

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
        if job is not None and visible(job.owner, owner):
            raise JobIsLive(job.id, job.status.value)
        record = await self.get(job_id, owner=owner)
        if not record.status.is_terminal:  # in a cluster: queued, or running elsewhere
            raise JobIsLive(record.id, record.status.value)
        try:
            await self.storage.delete(record.id)
        except Exception as exc:  # StorageUnavailable, or a file that would not go
            raise StorageFailing(str(exc)) from exc
        self._job_count -= 1

    # -- recovery and shutdown --------------------------------------------------------

    def recover(self, unfinished: list[JobRecord]) -> None:
        """Take back the jobs an earlier process left unfinished (section 7 of the contract).

        ``Queued`` jobs wait again in their order; ``Running`` ones run again
        first while attempts remain, else end ``Failed`` with ``interrupted``.
        """
        recover(self._runner, self.pipelines, unfinished)

    def begin_shutdown(self) -> None:
        """Refuse new jobs and cancel every running one. Not a checkpoint; idempotent.

        Queued jobs stay queued when jobs are stored (they run after a
        restart); an in-memory runtime cancels them.
        """
        self._runner.stop()

    async def shutdown(self) -> None:
        """Refuse new jobs, cancel every running one, wait for their actors, end every stream.

        Every subscriber sees its jobs' ``job-cancelled`` events before its
        subscription ends. Idempotent; leaving ``open_runtime`` does the same.
        """
        self.begin_shutdown()
        await self._runner.wait_stopped()
        await self.broadcaster.barrier()
        self.hub.close()

    # -- queries ---------------------------------------------------------------------------

    async def get(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> JobRecord:
        """The job ``job_id`` if ``owner`` may see it; else :class:`JobNotFound`. A checkpoint."""
        return await self._queries.get(job_id, owner=owner)

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
        return await self._queries.list_jobs(owner=owner, status=status, limit=limit, cursor=cursor)

    async def logs(self, job_id: str, *, owner: OwnerFilter = ANY_OWNER) -> list[LogLine]:
        """The job's log lines, oldest first (bounded). A checkpoint."""
        return await self._queries.logs(job_id, owner=owner)

    # -- streams -------------------------------------------------------------------------

    async def subscribe_job(
        self, job_id: str, *, owner: OwnerFilter = ANY_OWNER, after: EventId | None = None
    ) -> Subscription:
        """Subscribe to a job's events: its stored history after ``after``, then live.

        Raises :class:`JobNotFound`. Use the subscription as a context manager.
        A live job started by this process replays from memory; any other job's
        history is read from storage a page at a time as the reader goes. A checkpoint.
        """
        return await self._streams.subscribe_job(job_id, owner=owner, after=after)

    async def subscribe_all(
        self, *, owner: str | None, after: EventId | None = None
    ) -> Subscription:
        """Subscribe to every job of ``owner``: stored events after ``after`` (if given), then live.

        A checkpoint.
        """
        return await self._streams.subscribe_all(owner=owner, after=after)
