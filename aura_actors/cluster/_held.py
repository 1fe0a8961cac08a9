"""Jobs a worker holds, ended or given back from their stored record.

A dead worker's job that the reaper took over runs again while attempts remain,
else ends ``Failed`` with ``worker_lost``; a draining worker's job that it stops
goes back to the queue while attempts remain, else ends ``Failed`` with
``interrupted``; either ends ``Canceled`` if its cancel was asked for. The job
is ended by the worker that holds it now, through its broadcaster, with a
:class:`~aura_actors.runtime.Job` rebuilt from the stored record and fenced
with the claim attempt it holds it under: the stream shows the terminal event,
the commit that stores it acknowledges the job's dispatch entry, and if the job
was taken from this worker meanwhile nothing is written.
"""

from __future__ import annotations

import enum

from ..runtime import INTERRUPTED, Broadcaster, Job, JobRecord, JobStatus, StorageUnavailable
from ._dispatch import DispatchQueue, HandBack
from ._redis_store import RedisStorage

#: Error code of a job whose worker died while it ran, with no attempt left.
WORKER_LOST = "worker_lost"


def runs_again(record: JobRecord, max_attempts: int) -> bool:
    """Whether a job taken from its worker runs again: one still ``Queued`` never ran;
    a ``Running`` one runs again while its runs (the snapshot's ``attempt``) are fewer
    than ``max_attempts``, as after a restart."""
    if record.status is JobStatus.QUEUED:
        return True
    return int(record.data.get("attempt") or 1) < max_attempts


async def held_job(
    storage: RedisStorage, broadcaster: Broadcaster, record: JobRecord, attempt: int
) -> Job:
    """The job of ``record`` as this worker holds it under claim ``attempt``, without
    stages (to end it), with its stored log lines (its terminal record stores them)."""
    job = Job.resume(record, stages=(), broadcaster=broadcaster)
    job.fence = attempt
    job.logs = await storage.logs(record.id)
    return job


class Handed(enum.Enum):
    """What :func:`hand_back` did with a job."""

    #: Back in the queue: another worker runs it again.
    QUEUED = "queued"
    #: Ended ``Failed`` with ``interrupted``: no attempt left.
    FAILED = "failed"
    #: Ended ``Canceled``: its cancel had been asked for.
    CANCELED = "canceled"
    #: Nothing: this worker no longer held it (taken over, or ended).
    NOT_HELD = "not-held"


async def hand_back(
    job: Job, *, queue: DispatchQueue, storage: RedisStorage, max_attempts: int
) -> Handed:
    """Give back ``job``, which this worker holds and stops before it ended (a drain).

    Set ``job.fenced = True`` before cancelling its actor, so that nothing it
    writes as it stops is stored (this sets it too). What it wrote before is
    stored first; then, from the stored record: its cancel asked for → ended
    ``Canceled``; attempts remain (:func:`runs_again`) → back in the queue;
    else ended ``Failed`` with ``interrupted``. Raises ``StorageUnavailable``
    (the job stays held: the caller may try again).
    """
    if job.fence is None:
        raise ValueError(f"job {job.id} is not held as a worker's (it has no fence)")
    job.fenced = True
    broadcaster = job.broadcaster
    error = await broadcaster.barrier()
    if error is not None:
        raise error
    record = await storage.get(job.id)
    if record is None or record.status.is_terminal:
        return Handed.NOT_HELD
    if await queue.cancel_requested(job.id):
        outcome = Handed.CANCELED
    elif not runs_again(record, max_attempts):
        outcome = Handed.FAILED
    else:
        handed = await queue.hand_back(job.id, job.fence)
        if handed is not HandBack.CANCEL:
            return Handed.QUEUED if handed is HandBack.QUEUED else Handed.NOT_HELD
        outcome = Handed.CANCELED
    ending = await held_job(storage, broadcaster, record, job.fence)
    if outcome is Handed.CANCELED:
        ending.finish_canceled()
    else:
        message = "the worker running the job stopped before it ended"
        ending.finish_failed(INTERRUPTED, message, "retry the job", [])
    return await _stored(ending, outcome)


async def _stored(job: Job, outcome: Handed) -> Handed:
    """``outcome`` once ``job``'s writes are stored; ``NOT_HELD`` if they were fenced off."""
    error = await job.broadcaster.barrier()
    if job.fenced:
        return Handed.NOT_HELD
    if error is not None:
        raise StorageUnavailable(f"the end of job {job.id} was not stored: {error}")
    return outcome
