"""Admission and running: which jobs are live, which wait, which run, and their retirement."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from ._actor import JobActor
from ._broadcaster import Broadcaster
from ._config import RuntimeConfig
from ._errors import QueueFull, StorageFailing, UserQuotaExceeded
from ._fair_queue import FairQueue
from ._files import remove_job_files
from ._job import CANCELED_BY_SHUTDOWN, Job
from ._outgoing import CommitWaiter
from ._source import JobSource, LocalJobs
from ._status import JobStatus
from ._storage import CreationsRefused, StorageUnavailable

logger = logging.getLogger("aura_actors.runtime")

#: Seconds (trio clock) the runtime waits for storage when a job ends or it shuts down.
STORE_CLOSE_TIMEOUT = 5.0


class JobRunner:
    """The live jobs and the slots: at most N running, the rest queued in order.

    A job's actor starts when a slot is free; once the job's last events are
    stored the runner forgets it (and tidies its files). Every actor and
    retirement runs in ``job_nursery``.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        broadcaster: Broadcaster,
        job_nursery: trio.Nursery,
        source: JobSource | None = None,
    ) -> None:
        self.config = config
        self.broadcaster = broadcaster
        self._job_nursery = job_nursery
        #: Where stored new jobs go (the fair queue below, or a cluster's dispatch queue).
        self.source: JobSource = source or LocalJobs()
        #: Woken when a slot frees or the runner stops (a cluster's worker waits on it).
        self.slots_changed = trio.lowlevel.ParkingLot()
        #: Jobs held in memory (``Queued`` or ``Running``, or just ended), by id.
        self.live: dict[str, Job] = {}
        self.queue = FairQueue()
        #: Jobs whose actors are running.
        self.running = 0
        self._creating = 0
        self.shutting_down = False
        self._all_stopped: trio.Event | None = None

    def check_admission(self, owner: str | None) -> None:
        """Raise :class:`UserQuotaExceeded` or :class:`QueueFull` if a new job may not wait."""
        self._check_quota(owner)
        if self._free_slots() <= 0 and len(self.queue) >= self.config.max_queued_jobs:
            raise QueueFull(self.config.max_queued_jobs)

    def _check_quota(self, owner: str | None) -> None:
        limit = self.config.max_jobs_per_user
        if limit is None:
            return
        live = sum(
            1 for job in self.live.values() if job.owner == owner and not job.status.is_terminal
        )
        if live >= limit:
            raise UserQuotaExceeded(limit)

    def _free_slots(self) -> int:
        return self.config.max_concurrent_jobs - self.running - self._creating

    def free_slots(self) -> int:
        """Slots no job runs in and no queued job here waits for (none once stopping)."""
        if self.shutting_down:
            return 0
        return max(0, self._free_slots() - len(self.queue))

    @property
    def nursery(self) -> trio.Nursery:
        """Where the actors run (a cluster's worker runs its claim loop there too)."""
        return self._job_nursery

    async def store_new(self, job: Job) -> None:
        """Hold ``job`` live and wait (shielded) until its first event and record are stored.

        In one process the job holds a slot while it waits, so a job submitted
        meanwhile queues behind it. In a cluster it holds none: it goes to the
        cluster's queue, for any worker, and a slot held here would only turn
        away the job this node's worker is starting (handed back, out of its
        turn). Raises :class:`StorageFailing` (forgetting the job).
        """
        self.live[job.id] = job
        holds_slot = not self.source.shared
        self._creating += holds_slot
        waiter = CommitWaiter()
        try:
            job.announce_queued(waiter)
            with trio.CancelScope(shield=True):
                await waiter.done.wait()
        finally:
            if holds_slot:
                self._creating -= 1
                self.slots_changed.unpark_all()
        if waiter.error is not None:
            del self.live[job.id]
            self._raise_refused(job, waiter.error)
            raise StorageFailing(str(waiter.error))

    def _raise_refused(self, job: Job, error: StorageUnavailable) -> None:
        """Raise the refusal a shared store's admission limits gave ``job``, if any."""
        code = error.refusals.get(job.id) if isinstance(error, CreationsRefused) else None
        if code == UserQuotaExceeded.code and self.config.max_jobs_per_user is not None:
            raise UserQuotaExceeded(self.config.max_jobs_per_user)
        if code == QueueFull.code:
            raise QueueFull(self.config.max_queued_jobs)

    def enqueue(self, job: Job) -> None:
        """Queue a stored ``Queued`` job; it starts at once if a slot is free."""
        self.queue.push(job)
        if self.shutting_down:
            self.cancel_queued(job, CANCELED_BY_SHUTDOWN)
        else:
            self.admit_waiting()

    def cancel_queued(self, job: Job, message: str) -> None:
        """End a queued job ``Canceled``; it never starts."""
        self.queue.remove(job)
        job.cancel_message = message
        job.cancel_requested_at = time.perf_counter()
        job.finish_canceled()
        self.retire_soon(job)

    def admit_waiting(self) -> None:
        """Start queued jobs while slots are free."""
        while self.queue and self._free_slots() > 0 and not self.shutting_down:
            self._start(self.queue.pop())

    def start(self, job: Job, ended: Callable[[], None] | None = None) -> None:
        """Hold a stored job live and run it now (a cluster's worker claimed it).

        ``ended`` is called once its actor has ended and its last events are stored.
        Started while the runner stops, it is cancelled at once, as running jobs are.
        """
        self.live[job.id] = job
        self._start(job, ended)
        if self.shutting_down:
            job.request_cancel(CANCELED_BY_SHUTDOWN)

    def _start(self, job: Job, ended: Callable[[], None] | None = None) -> None:
        self.running += 1
        job.start_attempt(self.config.node_name)
        actor = JobActor(
            job, data_dir=self.config.data_dir, max_seconds=self.config.max_job_seconds
        )
        self._job_nursery.start_soon(self._run_actor, actor, ended, name=f"job {job.id}")

    async def _run_actor(self, actor: JobActor, ended: Callable[[], None] | None) -> None:
        try:
            await actor.run()
        finally:
            await self._retire(actor.job)
            if ended is not None:
                ended()
            self.running -= 1
            self.admit_waiting()
            self.slots_changed.unpark_all()
            if self.running == 0 and self._all_stopped is not None:
                self._all_stopped.set()

    def retire_soon(self, job: Job) -> None:
        """Retire ``job`` (which has ended) in the background."""
        self._job_nursery.start_soon(self._retire, job)

    async def _retire(self, job: Job) -> None:
        """Once a finished job's last events are stored, forget it and tidy its files."""
        with trio.move_on_after(STORE_CLOSE_TIMEOUT, shield=True):
            if await self.broadcaster.barrier() is not None:
                return  # not stored: keep serving it from memory
            if self.live.get(job.id) is job:  # (a cluster's worker may hold it again)
                del self.live[job.id]
            # A fenced job's files belong to the worker that holds it now (a shared dir).
            if job.status is not JobStatus.DONE and not (
                self.config.keep_failed_files or job.fenced
            ):
                await trio.to_thread.run_sync(remove_job_files, self.config.artifacts_dir, job.id)

    def stop(self) -> None:
        """Start no more jobs and cancel every running one (and queued ones unless stored).

        Not a checkpoint; idempotent.
        """
        if self.shutting_down:
            return
        self.shutting_down = True
        logger.info("runtime shutting down", extra={"running": self.running})
        self.source.stop()
        self.slots_changed.unpark_all()
        # Failing storage gets as long as a job's last events may wait for it.
        self.broadcaster.give_up_after(STORE_CLOSE_TIMEOUT)
        if not self.config.persist_jobs:
            while self.queue:
                self.cancel_queued(self.queue.pop(), CANCELED_BY_SHUTDOWN)
        for job in list(self.live.values()):
            # A cluster's worker drains the jobs it holds (fenced): they finish within
            # --drain-seconds or are handed back (aura_actors/cluster/_drain.py).
            if job.status is JobStatus.RUNNING and job.fence is None:
                job.request_cancel(CANCELED_BY_SHUTDOWN)

    async def wait_stopped(self) -> None:
        """Wait until no actor runs. A checkpoint."""
        if self.running:
            if self._all_stopped is None:
                self._all_stopped = trio.Event()
            await self._all_stopped.wait()
        else:
            await trio.lowlevel.checkpoint()
