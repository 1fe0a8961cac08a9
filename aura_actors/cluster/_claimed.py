"""The jobs a worker holds: each claimed (or taken over) job rebuilt, fenced and run here.

:meth:`ClaimedJobs.start` turns a :class:`~._dispatch.Claim` into a running job:
the job is rebuilt from its stored record (its pipeline's stages from its
params, as after a restart) with its stored log lines, fenced with the claim
attempt it is held under (:attr:`Job.fence`: its writes are refused once the
job is taken from this worker), its cancel scope watched by the
:class:`~._cancels.CancelListener` (a cancel asked on any node reaches it),
and run in the runtime's job nursery like a local job. A taken-over job that
was running shows a ``warning`` and ``job-status`` Running again.

A claimed job is never dropped: one whose pipeline cannot be built here ends
``Failed`` with code ``pipeline_unavailable``; a job taken back with no
attempt left ends ``Failed`` with ``interrupted``; while its record cannot be
read (Redis away) the worker keeps trying; one the worker has no slot for
(a takeover beyond its free slots) or that arrives as it stops is handed back
to the queue (:func:`~._held.hand_back`) for another worker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import TypeVar

import trio

from ..protocol import ErrorCode
from ..runtime import (
    JobRecord,
    JobStatus,
    LogLine,
    PipelineRegistry,
    Stage,
    StorageUnavailable,
)
from ..runtime._job import Job
from ..runtime._runner import JobRunner
from ._cancels import CancelListener
from ._dispatch import Claim, DispatchQueue
from ._held import hand_back
from ._redis_store import RedisStorage

logger = logging.getLogger("aura_actors.cluster")

#: Seconds between reads of a claimed job's record while Redis fails.
READ_RETRY = 0.5
#: The cancel message of a job taken from this worker (nothing of its end is stored).
TAKEN_FROM_HERE = "the job was taken over by another worker"

T = TypeVar("T")


class ClaimedJobs:
    """The jobs one worker holds, and how each is started, given back or fenced off."""

    def __init__(
        self,
        runner: JobRunner,
        pipelines: PipelineRegistry,
        storage: RedisStorage,
        queue: DispatchQueue,
        cancels: CancelListener,
        ending: Callable[[str], bool],
    ) -> None:
        self.runner = runner
        self.pipelines = pipelines
        self.storage = storage
        self.queue = queue
        self.cancels = cancels
        self.ending = ending
        #: Ids of the jobs claimed here and not ended yet (being started or running).
        self.claimed: set[str] = set()
        #: The jobs whose actors run here, by id.
        self.running: dict[str, Job] = {}
        #: How many jobs this worker has claimed, taken over or taken back since it started.
        self.claims = 0
        #: Set once the worker stops: a claim that arrives then is handed back.
        self.stopping = False

    def fenced_off(self, jobs: list[Job]) -> None:
        """Cancel the actors of ``jobs``, which storage refused as held elsewhere (the
        broadcaster marked them fenced: nothing they write is stored any more)."""
        for job in jobs:
            if self.running.get(job.id) is job:
                logger.warning(
                    "job taken from this worker: cancelling its actor",
                    extra={"job_id": job.id, "node": self.queue.node},
                )
                job.request_cancel(TAKEN_FROM_HERE)

    async def start(self, claim: Claim) -> None:
        """Rebuild the claimed job from its record and run it (or end it, if it cannot run,
        or hand it back, if it may not run here now)."""
        job_id = claim.job_id
        self.claims += 1
        if job_id in self.claimed:  # an actor of it taken from here has not ended yet
            logger.warning("job claimed again while its old run ends", extra={"job_id": job_id})
        self.claimed.add(job_id)
        with trio.CancelScope(shield=True):
            try:
                await self._start(claim)
            finally:
                if job_id not in self.running:
                    self.claimed.discard(job_id)

    async def _start(self, claim: Claim) -> None:
        job_id = claim.job_id
        record = await self._read(job_id, self.storage.get)
        if record is None or record.status.is_terminal or self.ending(job_id):
            return  # gone, ended already, or being ended by this node's cancel: not run
        if self._no_room(job_id):
            await self.give_back(self._held(record, claim.attempt, (), []))
            return
        logs = await self._read(job_id, self.storage.logs)
        job = self._rebuild(record, claim.attempt, logs or [])
        if job is None:
            return
        # If the flag cannot be read, the live feed's next connection reads it again.
        with suppress(StorageUnavailable):
            await self.cancels.watch(job_id, job.cancel_scope)
        if self._no_room(job_id):  # the worker began to stop meanwhile
            self.cancels.forget(job_id)
            await self.give_back(job)
            return
        self.running[job_id] = job
        self.runner.start(job, ended=lambda: self._ended(job))
        how = "taken over" if claim.taken_from else "claimed"
        logger.info(f"job {how}", extra={"job_id": job_id, "node": self.queue.node})

    def _no_room(self, job_id: str) -> bool:
        """Whether the job may not start here now: the worker stops, it has no free slot
        (a takeover), or an old actor of the job still ends here."""
        return self.stopping or self.runner.free_slots() < 1 or job_id in self.running

    def _ended(self, job: Job) -> None:
        if self.running.get(job.id) is job:
            del self.running[job.id]
            self.claimed.discard(job.id)
            self.cancels.forget(job.id)

    async def give_back(self, job: Job) -> None:
        """Hand ``job`` (held here; fenced if its actor ran) back to the queue, or end it
        (:func:`~._held.hand_back`). Logged, not raised, when Redis fails."""
        try:
            handed = await hand_back(
                job,
                queue=self.queue,
                storage=self.storage,
                max_attempts=self.runner.config.max_attempts,
            )
        except StorageUnavailable as exc:
            # Still held here: once this worker's heartbeat is gone, a reaper takes it.
            logger.warning("could not hand a job back", extra={"job_id": job.id, "error": str(exc)})
            return
        logger.info("job handed back", extra={"job_id": job.id, "outcome": handed.value})

    async def _read(self, job_id: str, read: Callable[[str], Awaitable[T]]) -> T | None:
        """``read(job_id)``, tried until Redis answers (``None`` once stopping)."""
        while True:
            try:
                return await read(job_id)
            except StorageUnavailable as exc:
                if self.stopping:
                    logger.error("claimed job left unread", extra={"job_id": job_id})
                    return None
                logger.warning("cannot read a claimed job", extra={"error": str(exc)})
                await trio.sleep(READ_RETRY)

    def _rebuild(self, record: JobRecord, attempt: int, logs: list[LogLine]) -> Job | None:
        """The job of ``record``, held under claim ``attempt`` (its fence), with its stored
        ``logs``, ready to start; ``None`` when it was ended here instead (its pipeline
        cannot be built, or a taken-back run has no attempt left)."""
        runner = self.runner
        try:
            definition = self.pipelines.get(record.data["pipeline"])
            stages = definition.build(definition.validate(record.data["params"]))
        except Exception as exc:
            logger.error("claimed job cannot run", extra={"job_id": record.id, "error": str(exc)})
            job = self._held(record, attempt, (), logs)
            if job.status is JobStatus.QUEUED:
                job.start_attempt(runner.config.node_name)
            job.finish_failed(
                ErrorCode.PIPELINE_UNAVAILABLE,
                f"the worker {self.queue.node} cannot build the job's pipeline: {exc}",
                "run a worker that has the pipeline, then retry the job",
                [],
            )
            runner.retire_soon(job)
            return None
        job = self._held(record, attempt, stages, logs)
        if job.status is JobStatus.RUNNING and job.attempt >= runner.config.max_attempts:
            job.finish_failed(
                ErrorCode.INTERRUPTED,
                "the node running the job stopped while it was running",
                "retry the job",
                [],
            )
            runner.retire_soon(job)
            return None
        return job

    def _held(
        self, record: JobRecord, attempt: int, stages: Sequence[Stage], logs: list[LogLine]
    ) -> Job:
        """The job of ``record`` as held here under claim ``attempt``, with ``logs``."""
        job = Job.resume(record, stages=stages, broadcaster=self.runner.broadcaster)
        job.fence = attempt
        job.logs = logs
        return job
