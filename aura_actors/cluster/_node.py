"""A runtime as a node of a cluster: its job source, its live feed and, per role, its worker.

``open_runtime`` opens a :class:`ClusterNode` when ``--redis`` is given. The
node's :class:`ClusterJobs` is the runtime's job source: a stored new job is
left to the dispatch queue (queued there by the very commit that stored it)
and forgotten here; a job this process does not hold is cancelled through
the cluster. :meth:`ClusterNode.join` starts the node's live feed (one
pub/sub connection feeding the runtime's hub, so subscriptions follow jobs
run elsewhere) and, for the roles ``all`` and ``worker``, its
:class:`~._worker.Worker`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..runtime import (
    JobAlreadyFinished,
    JobNotFound,
    JobRecord,
    JobStatus,
    PipelineRegistry,
    RuntimeConfig,
    StorageFailing,
    StorageUnavailable,
)
from ..runtime._job import Job
from ..runtime._runner import STORE_CLOSE_TIMEOUT, JobRunner
from ._cancels import CancelListener
from ._dispatch import DispatchQueue
from ._live import LiveFeed
from ._redis_store import RedisStorage, open_redis_storage
from ._worker import Worker

logger = logging.getLogger("aura_actors.cluster")

#: Rounds of "end it by a commit / ask its worker" a cancel goes through while the job
#: keeps changing hands (each round follows a claim or an end that raced the last one).
CANCEL_ROUNDS = 5


@asynccontextmanager
async def open_cluster_node(config: RuntimeConfig) -> AsyncIterator[ClusterNode]:
    """A node of the cluster ``config`` describes (``redis_url``, ``role``, ``node_name``:
    see :meth:`RuntimeConfig.with_node_name`), connected for the ``async with`` block."""
    assert config.redis_url is not None and config.node_name is not None
    async with open_redis_storage(
        config.redis_url,
        prefix=config.redis_prefix,
        history_ttl=config.history_ttl,
        max_history_events=config.max_history_events,
        artifacts_dir=config.artifacts_dir,
        retention_days=config.retention_days,
        retention_jobs=config.retention_jobs,
        node=config.node_name,
        max_queued_jobs=config.max_queued_jobs,
        max_jobs_per_user=config.max_jobs_per_user,
    ) as storage:
        yield ClusterNode(config, storage)


class ClusterJobs:
    """The job source of a cluster's node (see ``aura_actors.runtime._source``)."""

    shared = True

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        # Queued jobs this node is ending by a commit (a cancel): its worker skips them.
        self._ending: set[str] = set()

    def ending(self, job_id: str) -> bool:
        """Whether this node is ending the queued job ``job_id`` by a commit."""
        return job_id in self._ending

    def queued(self, runner: JobRunner, job: Job) -> None:
        # The commit that stored it queued it for the workers (this node's too, whose
        # wait on the queue that entry ends): nothing holds it here any more.
        runner.live.pop(job.id, None)

    async def cancel_elsewhere(self, record: JobRecord, message: str) -> JobRecord:
        """End a queued, unclaimed job by a commit (which takes it out of the queue in the
        same step); a job a worker holds (or claimed first: the commit is refused whole) is
        cancelled by that worker (its flag, and a publish)."""
        queue = self.node.queue
        for _ in range(CANCEL_ROUNDS):
            if record.status is JobStatus.QUEUED and not self._claimed_here(record.id):
                ended = await self._end_queued(record, message)
                if ended is not None:
                    return ended
            try:
                worker = await queue.request_cancel(record.id)
                fresh = await self.node.storage.get(record.id)
            except StorageUnavailable as exc:
                raise StorageFailing(str(exc)) from exc
            if fresh is None:
                raise JobNotFound(record.id)
            if worker is not None:
                # The flag was set while the job ran: a 202, even when the worker has
                # ended the job (Canceled, or Done first) before ``fresh`` was read.
                logger.info("cancel sent to worker", extra={"job_id": record.id, "node": worker})
                return fresh
            if fresh.status.is_terminal:
                raise JobAlreadyFinished(fresh.id, fresh.status.value)
            record = fresh
        raise StorageFailing(f"job {record.id} kept changing hands; the cancel was not sent")

    def _claimed_here(self, job_id: str) -> bool:
        worker = self.node.worker
        return worker is not None and job_id in worker.claimed

    async def _end_queued(self, record: JobRecord, message: str) -> JobRecord | None:
        """End the queued job of ``record`` ``Canceled`` by a commit; its snapshot, or
        ``None`` when the commit was refused (a worker claimed it first)."""
        broadcaster = self.node.runner().broadcaster
        job = Job.resume(record, stages=(), broadcaster=broadcaster)
        job.cancel_message = message
        job.cancel_requested_at = time.perf_counter()
        self._ending.add(job.id)
        error: StorageUnavailable | None = StorageUnavailable("the cancel was not stored in time")
        try:
            job.finish_canceled()
            with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
                error = await broadcaster.barrier()
        finally:
            self._ending.discard(job.id)
        if job.terminal_published:
            return JobRecord(0, job.owner, job.snapshot())
        if error is not None:
            raise StorageFailing(str(error))
        return None

    def stop(self) -> None:
        if self.node.worker is not None:
            self.node.worker.stop()


class ClusterNode:
    """One node: its Redis storage (in cluster mode), dispatch queue, job source, feed."""

    def __init__(self, config: RuntimeConfig, storage: RedisStorage) -> None:
        assert storage.node is not None
        self.config = config
        self.storage = storage
        self.name = storage.node
        self.queue = DispatchQueue(storage.client, storage.keys, storage.node)
        self.source = ClusterJobs(self)
        self.cancels = CancelListener(self.queue) if config.role != "api" else None
        self.worker: Worker | None = None
        self.feed: LiveFeed | None = None
        self._runner: JobRunner | None = None

    def runner(self) -> JobRunner:
        """The runtime's runner (once joined)."""
        assert self._runner is not None, "the node has not joined a runtime"
        return self._runner

    async def join(
        self, runner: JobRunner, pipelines: PipelineRegistry, system_nursery: trio.Nursery
    ) -> None:
        """Start the live feed in ``system_nursery`` (returns once it is subscribed) and,
        but on an API node, the worker in the runner's job nursery. A checkpoint."""
        self._runner = runner
        hub = runner.broadcaster.hub
        # A worker serves no streams: its feed takes the cancel channel alone.
        self.feed = LiveFeed(self.storage, hub, self.cancels, streams=self.config.role != "worker")
        await self.queue.ensure_group()
        # The feed is subscribed (to cancels too) before the worker claims anything.
        await system_nursery.start(self.feed.run)
        runner.broadcaster.on_fenced = self._fenced_off
        if self.cancels is not None:
            self.worker = Worker(
                runner, pipelines, self.storage, self.queue, self.cancels, self.source.ending
            )
            if runner.shutting_down:
                self.worker.stop()
            runner.nursery.start_soon(self.worker.run, name="cluster worker")
        logger.info(
            "cluster node joined",
            extra={"node": self.name, "role": self.config.role, "prefix": self.storage.keys.root},
        )

    def _fenced_off(self, jobs: list[Job]) -> None:
        """The broadcaster's ``on_fenced``: storage refused ``jobs`` as held elsewhere. A
        worker cancels its actors of them; a cancel's commit that lost the race to a claim
        (:meth:`ClusterJobs.cancel_elsewhere`) goes on by asking the worker."""
        if self.worker is not None:
            self.worker.fenced_off(jobs)
