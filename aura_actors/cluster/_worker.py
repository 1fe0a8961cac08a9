"""A worker node's side of the cluster: claim queued jobs as slots free, and run them here.

:class:`Worker` is one loop. It asks the runner how many slots are free and
claims at most that many jobs from the dispatch queue
(:meth:`DispatchQueue.claim`); with none free it waits for a slot (the
runner's ``slots_changed``), with nothing queued it waits on the queue itself
(:meth:`DispatchQueue.wait_for_entry`, an ``XREAD BLOCK`` bounded by
:data:`WAIT_SECONDS`, woken by any new entry: another node's submit or this
node's own). Each claimed job is rebuilt from its stored record (its
pipeline's stages from its params, as after a restart), its cancel scope is
watched by the :class:`~._cancels.CancelListener` (a cancel asked on any node
reaches it), and it runs in the runtime's job nursery like a local job.

A claimed job is never dropped: one whose pipeline cannot be built here ends
``Failed`` with code ``pipeline_unavailable``; while its record cannot be read
(Redis away) the worker keeps trying. At start, the worker takes back the
jobs a process of the same node name claimed and did not end (it stopped or
died): by the rules of contract section 7, as after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial
from typing import TypeVar

import trio

from ..protocol import ErrorCode
from ..runtime import JobRecord, JobStatus, PipelineRegistry, StorageUnavailable
from ..runtime._job import Job
from ..runtime._runner import JobRunner
from ._cancels import CancelListener
from ._dispatch import Claim, DispatchQueue
from ._redis_store import RedisStorage

logger = logging.getLogger("aura_actors.cluster")

#: Longest wait on the dispatch queue before claiming again anyway (a safety net: a new
#: entry wakes the wait at once).
WAIT_SECONDS = 1.0
#: Seconds between attempts while Redis fails: doubling from the first to the last.
RETRY_BACKOFF = (0.05, 2.0)

T = TypeVar("T")


class Worker:
    """Claims jobs from ``queue`` for ``runner``'s free slots and runs them.

    ``ending`` says whether this node is ending a queued job by a commit (a cancel
    on this node that raced the claim): such a job is not started.
    """

    def __init__(
        self,
        runner: JobRunner,
        pipelines: PipelineRegistry,
        storage: RedisStorage,
        queue: DispatchQueue,
        cancels: CancelListener,
        ending: Callable[[str], bool] = lambda job_id: False,
    ) -> None:
        self.runner = runner
        self.pipelines = pipelines
        self.storage = storage
        self.queue = queue
        self.cancels = cancels
        self.ending = ending
        #: Jobs claimed here and not ended yet (being started or running).
        self.claimed: set[str] = set()
        #: How many jobs this worker has claimed (or taken back) since it started.
        self.claims = 0
        self._stopping = False
        self._wait_scope: trio.CancelScope | None = None
        self._backoff = RETRY_BACKOFF[0]

    def stop(self) -> None:
        """Claim no more jobs; the loop ends (running jobs are the runner's). Idempotent."""
        self._stopping = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(self) -> None:
        """Claim and start jobs until :meth:`stop`. Redis failures are waited out."""
        logger.info("worker claiming jobs", extra={"node": self.queue.node})
        held = await self._retrying(self.queue.held)
        for claim in held or ():
            await self._start(claim)
        while not self._stopping:
            free = self.runner.free_slots()
            if free < 1:
                await self._wait(self.runner.slots_changed.park)
                continue
            claims, newest = await self._claim(free)
            for claim in claims:
                await self._start(claim)
            if newest is not None and len(claims) < free:
                # Nothing else was queued when claiming: wait for a new entry after
                # the newest one then (one queued meanwhile wakes this at once).
                await self._wait(partial(self.queue.wait_for_entry, newest, WAIT_SECONDS))

    async def _claim(self, free: int) -> tuple[list[Claim], str | None]:
        """Up to ``free`` claimed jobs and the newest entry id before the claim (``None``
        when Redis failed: the caller goes round again after a pause)."""
        try:
            newest = await self.queue.newest_entry()
            # Shielded: a claim whose reply is lost would leave its jobs claimed here.
            with trio.CancelScope(shield=True):
                claims = await self.queue.claim(free)
        except StorageUnavailable as exc:
            await self._failed(exc)
            if "NOGROUP" in str(exc) or "no such key" in str(exc):
                await self._retrying(self.queue.ensure_group)
            return [], None
        self._backoff = RETRY_BACKOFF[0]
        return claims, newest

    async def _wait(self, wait: Callable[[], Awaitable[object]]) -> None:
        """Run ``wait`` (a waiting call) unless stopping; :meth:`stop` cuts it short."""
        with trio.CancelScope() as self._wait_scope:
            if not self._stopping:
                try:
                    await wait()
                except StorageUnavailable as exc:
                    await self._failed(exc)
        self._wait_scope = None

    async def _failed(self, error: StorageUnavailable) -> None:
        if self._backoff == RETRY_BACKOFF[0]:
            logger.warning("worker cannot reach Redis; retrying", extra={"error": str(error)})
        await trio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, RETRY_BACKOFF[1])

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call()`` until it works (``None`` if the worker stops first)."""
        while not self._stopping:
            try:
                return await call()
            except StorageUnavailable as exc:
                await self._failed(exc)
        return None

    # -- one claimed job ---------------------------------------------------------------

    async def _start(self, claim: Claim) -> None:
        """Rebuild the claimed job from its record and run it (or end it, if it cannot run)."""
        job_id = claim.job_id
        self.claimed.add(job_id)
        self.claims += 1
        with trio.CancelScope(shield=True):
            record = await self._record(job_id)
            if record is None or record.status.is_terminal or self.ending(job_id):
                # Gone, ended already, or being ended by this node's cancel: not run.
                self.claimed.discard(job_id)
                return
            job = self._rebuild(record)
            if job is None:
                self.claimed.discard(job_id)
                return
            # If the flag cannot be read, the live feed's next connection reads it again.
            with suppress(StorageUnavailable):
                await self.cancels.watch(job_id, job.cancel_scope)
            self.runner.start(job, ended=lambda: self._ended(job_id))
        logger.info("job claimed", extra={"job_id": job_id, "node": self.queue.node})

    def _ended(self, job_id: str) -> None:
        self.claimed.discard(job_id)
        self.cancels.forget(job_id)

    async def _record(self, job_id: str) -> JobRecord | None:
        """The claimed job's stored record, read until Redis answers (``None``: stopping)."""
        while True:
            try:
                return await self.storage.get(job_id)
            except StorageUnavailable as exc:
                if self._stopping:
                    logger.error("claimed job left unread", extra={"job_id": job_id})
                    return None
                await self._failed(exc)

    def _rebuild(self, record: JobRecord) -> Job | None:
        """The job of ``record``, ready to start; ``None`` when it was ended here instead
        (its pipeline cannot be built, or a taken-back run has no attempt left)."""
        runner = self.runner
        try:
            definition = self.pipelines.get(record.data["pipeline"])
            stages = definition.build(definition.validate(record.data["params"]))
        except Exception as exc:
            logger.error("claimed job cannot run", extra={"job_id": record.id, "error": str(exc)})
            job = Job.resume(record, stages=(), broadcaster=runner.broadcaster)
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
        job = Job.resume(record, stages=stages, broadcaster=runner.broadcaster)
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
