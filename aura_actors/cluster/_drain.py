"""A stopping worker's drain (contract section 8: SIGTERM on a worker).

Once the worker has stopped claiming and its reaper has ended, the jobs it
took over but had not started are handed back; its running jobs get
``--drain-seconds`` to finish; each job still running then is fenced (nothing
it writes from then on is stored), cancelled, and, once its actor has ended
(or after :data:`~aura_actors.runtime.STORE_CLOSE_TIMEOUT`), handed back
(:func:`~._held.hand_back`): queued again for another worker while attempts
remain, else ended ``Failed`` with ``interrupted`` (``Canceled`` if its cancel
was asked for). A job that cannot be handed back (Redis away) stays held by
the worker: once its heartbeat has expired, another worker's reaper takes it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ..runtime import STORE_CLOSE_TIMEOUT
from ..runtime._job import Job

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger("aura_actors.cluster")

#: The cancel message of a job a draining worker hands back (nothing of its end is stored).
HANDED_BACK = "handed back: its worker is stopping"


async def drain(worker: Worker) -> None:
    """Drain ``worker`` (stopped, its reaper ended): see the module's docstring."""
    jobs, runner = worker.jobs, worker.runner
    takeovers, worker.takeovers = worker.takeovers, []
    for claim in takeovers:
        await jobs.start(claim)  # stopping: handed back
    if jobs.running:
        logger.info(
            "worker draining",
            extra={"running": len(jobs.running), "seconds": runner.config.drain_seconds},
        )
    with trio.move_on_after(runner.config.drain_seconds):
        while jobs.running:
            await runner.slots_changed.park()
    rest = list(jobs.running.values())
    if not rest:
        return
    logger.warning("handing back the jobs still running", extra={"jobs": [j.id for j in rest]})
    for job in rest:
        job.fenced = True  # what it writes as it stops is not stored
        job.request_cancel(HANDED_BACK)
    with trio.move_on_after(STORE_CLOSE_TIMEOUT):
        while _any_running(worker, rest):
            await runner.slots_changed.park()
    for job in rest:
        await jobs.give_back(job)


def _any_running(worker: Worker, jobs: list[Job]) -> bool:
    return any(worker.jobs.running.get(job.id) is job for job in jobs)
