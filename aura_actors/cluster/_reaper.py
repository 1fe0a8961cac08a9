"""Taking over the jobs of dead workers: the reaper every worker runs.

A worker is dead when its heartbeat key has expired (:mod:`._presence`), not
when its dispatch entries look idle: a long job's entry stays idle for as long
as it runs. Every ``interval`` the reaper lists the workers without a heartbeat
(consumers of the dispatch group, names in the workers set) and, for each, runs
``lua/reap.lua``: in one atomic step it takes over the dead worker's pending
entries (idle at least ``min_idle``: a second guard) for this worker, each
job's hash moving to this worker under the next claim attempt, so of two
reapers exactly one gets each job and the dead worker's later writes are
refused. Then, per job, from its stored record: its cancel asked for → ended
``Canceled``; attempts remain → handed to the worker to run again, like a fresh
claim (its stream shows a ``warning`` and ``job-status`` Running again when it
was running); else ended ``Failed`` with ``worker_lost``
(:mod:`._held`). A dead worker with nothing left pending leaves the group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ..runtime import Broadcaster, StorageUnavailable
from ._dispatch import Claim, DispatchQueue
from ._errors import redis_errors
from ._held import WORKER_LOST, held_job, runs_again
from ._redis_store import RedisStorage
from ._scripts import DEAD, REAP

logger = logging.getLogger("aura_actors.cluster")

#: Pending entries taken over per call of the script (each call is atomic, and short).
REAP_BATCH = 100


@dataclass(slots=True)
class Reaped:
    """What one round of :meth:`Reaper.reap` did."""

    #: Jobs taken over to run again here: rebuild each from its record and run it.
    run_again: list[Claim] = field(default_factory=list)
    #: Jobs taken over and ended (``Failed`` ``worker_lost``, or ``Canceled``).
    ended: list[Claim] = field(default_factory=list)
    #: Dead workers that left the group and the workers set.
    removed: list[str] = field(default_factory=list)


class Reaper:
    """Worker ``queue.node``'s reaper. ``broadcaster`` stores the ends it writes."""

    def __init__(
        self,
        queue: DispatchQueue,
        storage: RedisStorage,
        broadcaster: Broadcaster,
        *,
        worker_timeout: float,
        max_attempts: int,
        interval: float | None = None,
        min_idle: float | None = None,
    ) -> None:
        self.queue = queue
        self.storage = storage
        self.broadcaster = broadcaster
        self.max_attempts = max_attempts
        #: Seconds between rounds (default a quarter of the worker timeout).
        self.interval = worker_timeout / 4 if interval is None else interval
        #: Seconds a dead worker's entry must be idle to be taken (default half the
        #: timeout: its heartbeat outlived its last claim by more than that).
        self.min_idle = worker_timeout / 2 if min_idle is None else min_idle
        # Jobs taken over whose fate a failure kept from being decided: next round's.
        self._undecided: list[Claim] = []

    async def dead_workers(self) -> list[str]:
        """The other workers without a heartbeat, sorted. Raises ``StorageUnavailable``."""
        keys = self.queue.keys
        with redis_errors("list dead workers"):
            names = await DEAD.call(self.storage.client, [keys.root, self.queue.node])
        return [str(name) for name in names]

    async def reap(self) -> Reaped:
        """One round: take over every dead worker's jobs and decide each one's fate.

        Raises ``StorageUnavailable`` while taking over. A job taken over whose
        fate cannot be decided yet (storage failing) is decided in a later round;
        those decided are returned all the same.
        """
        reaped = Reaped()
        for dead in await self.dead_workers():
            if await self._take_over(dead):
                reaped.removed.append(dead)
        while self._undecided:
            claim = self._undecided[0]
            try:
                again = await self._decide(claim)
            except StorageUnavailable as exc:
                logger.warning("cannot decide a job taken over yet", extra={"error": str(exc)})
                break
            (reaped.run_again if again else reaped.ended).append(claim)
            self._undecided.pop(0)
        return reaped

    async def _take_over(self, dead: str) -> bool:
        """Take over ``dead``'s pending jobs (into the undecided ones); whether it left."""
        keys = self.queue.keys
        min_idle = str(max(0, round(self.min_idle * 1000)))
        args = [keys.root, self.queue.node, dead, min_idle, str(REAP_BATCH)]
        while True:
            with redis_errors("take over a dead worker's jobs"):
                taken, more, removed = await REAP.call(self.storage.client, args)
            for entry, job_id, attempt in taken:
                claim = Claim(str(entry), str(job_id), int(attempt), taken_from=dead)
                self._undecided.append(claim)
                logger.warning(
                    "took over a dead worker's job",
                    extra={"job_id": claim.job_id, "worker": dead, "attempt": claim.attempt},
                )
            if not int(more):
                return bool(int(removed))

    async def _decide(self, claim: Claim) -> bool:
        """End ``claim``'s job if it does not run again; whether it runs again."""
        record = await self.storage.get(claim.job_id)
        if record is None or record.status.is_terminal:
            return False
        canceled = await self.queue.cancel_requested(claim.job_id)
        if not canceled and runs_again(record, self.max_attempts):
            return True
        job = await held_job(self.storage, self.broadcaster, record, claim.attempt)
        if canceled:
            job.finish_canceled()
        else:
            message = f"the worker running the job ({claim.taken_from}) was lost"
            job.finish_failed(WORKER_LOST, message, "retry the job", [])
        return False

    async def run(
        self,
        on_takeover: Callable[[list[Claim]], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Reap every :attr:`interval` until cancelled, handing the jobs to run again to
        ``on_takeover`` (the worker rebuilds each from its record and runs it as it runs
        a fresh claim). A failing round is logged and tried again in the next; a
        cancel waits for the round under way."""
        task_status.started()
        while True:
            # A round is not cut halfway when the worker stops: what it took over is
            # handed on (Redis's call timeout bounds it).
            with trio.CancelScope(shield=True):
                try:
                    reaped = await self.reap()
                except StorageUnavailable as exc:
                    logger.warning("reaper round failed", extra={"error": str(exc)})
                else:
                    if reaped.run_again:
                        on_takeover(reaped.run_again)
            await trio.sleep(self.interval)
