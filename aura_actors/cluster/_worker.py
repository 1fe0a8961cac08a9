"""A worker node's side of the cluster: claim queued jobs as slots free, and run them here.

:class:`Worker` is one task with three phases. It first sends its heartbeat
(:class:`~._presence.Presence`, before anything is claimed) and starts its
:class:`~._reaper.Reaper`. Then its claim loop asks the runner how many slots
are free and claims at most that many jobs from the dispatch queue
(:meth:`DispatchQueue.claim`); with none free it waits for a slot (the
runner's ``slots_changed``), with nothing queued it waits on the queue itself
(:meth:`DispatchQueue.wait_for_entry`, an ``XREAD BLOCK`` bounded by
:data:`WAIT_SECONDS`, woken by any new entry: another node's submit or this
node's own); jobs the reaper took over from a dead worker wake it too and
are run like claims. Each job is run by :class:`~._claimed.ClaimedJobs`
(rebuilt from its stored record, fenced with its claim attempt, its cancel
scope watched). Once stopped (the runtime shuts down: SIGTERM) it drains
(:mod:`._drain`): no more claims or takeovers, running jobs get
``--drain-seconds`` to finish, the rest are handed back; then its heartbeat
stops and it leaves.

At start, the worker takes back the jobs a process of the same node name
claimed and did not end (it stopped or died): by the rules of contract
section 7, as after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import trio

from ..runtime import PipelineRegistry, StorageUnavailable
from ..runtime._job import Job
from ..runtime._runner import JobRunner
from ._cancels import CancelListener
from ._claimed import ClaimedJobs
from ._dispatch import Claim, DispatchQueue
from ._drain import drain
from ._presence import Presence
from ._reaper import Reaper
from ._redis_store import RedisStorage

logger = logging.getLogger("aura_actors.cluster")

#: Longest wait on the dispatch queue before claiming again anyway (a safety net: a new
#: entry wakes the wait at once).
WAIT_SECONDS = 1.0
#: Seconds between attempts while Redis fails: doubling from the first to the last.
RETRY_BACKOFF = (0.05, 2.0)

T = TypeVar("T")


class Worker:
    """Claims jobs from ``queue`` for ``runner``'s free slots and runs them; takes over
    dead workers' jobs (``reaper``); drains when stopped.

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
        config = runner.config
        self.runner = runner
        self.queue = queue
        self.presence = Presence(storage.client, storage.keys, queue.node, config.worker_timeout)
        self.reaper = Reaper(
            queue,
            storage,
            runner.broadcaster,
            worker_timeout=config.worker_timeout,
            max_attempts=config.max_attempts,
        )
        #: The jobs this worker holds: starting, running, handing back.
        self.jobs = ClaimedJobs(runner, pipelines, storage, queue, cancels, ending)
        #: Jobs the reaper took over, to be run by the claim loop.
        self.takeovers: list[Claim] = []
        self._stopping = False
        self._wait_scope: trio.CancelScope | None = None
        self._backoff = RETRY_BACKOFF[0]

    @property
    def claimed(self) -> set[str]:
        """Ids of the jobs claimed here and not ended yet (being started or running)."""
        return self.jobs.claimed

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    def stop(self) -> None:
        """Claim and take over no more jobs; the worker drains and ends. Idempotent."""
        self._stopping = True
        self.jobs.stopping = True
        self._wake()

    def fenced_off(self, jobs: list[Job]) -> None:
        """The broadcaster's ``on_fenced``: cancel the actors of ``jobs`` (taken from this
        worker; nothing they write is stored any more)."""
        self.jobs.fenced_off(jobs)

    def _taken_over(self, claims: list[Claim]) -> None:
        """The reaper's ``on_takeover``: run ``claims`` in the claim loop."""
        self.takeovers.extend(claims)
        self._wake()

    def _wake(self) -> None:
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(self) -> None:
        """Heartbeat, claim and run jobs until :meth:`stop`; then drain, stop the heartbeat
        and leave. Redis failures are waited out."""
        async with trio.open_nursery() as beating:
            # Heartbeats before the first claim (a stop while Redis is away cuts this short).
            await self._wait(partial(beating.start, self.presence.run))
            async with trio.open_nursery() as reaping:
                if not self._stopping:
                    reaping.start_soon(self.reaper.run, self._taken_over)
                    logger.info("worker claiming jobs", extra={"node": self.queue.node})
                    await self._claim_loop()
                reaping.cancel_scope.cancel()  # a round under way ends first (shielded)
            await drain(self)
            beating.cancel_scope.cancel()
        try:
            await self.presence.leave()
        except StorageUnavailable as exc:
            logger.warning("could not remove the heartbeat", extra={"error": str(exc)})
        logger.info("worker stopped", extra={"node": self.queue.node})

    async def _claim_loop(self) -> None:
        held = await self._retrying(self.queue.held)
        for claim in held or ():
            await self.jobs.start(claim)
        while not self._stopping:
            if self.takeovers:
                claims, self.takeovers = self.takeovers, []
                for claim in claims:
                    await self.jobs.start(claim)
                continue
            free = self.runner.free_slots()
            if free < 1:
                await self._wait(self.runner.slots_changed.park)
                continue
            claims, newest = await self._claim(free)
            for claim in claims:
                await self.jobs.start(claim)
            if newest is not None and len(claims) < free and not self.takeovers:
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
        """Run ``wait`` (a waiting call) unless stopping; :meth:`stop` and a takeover cut
        it short."""
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
