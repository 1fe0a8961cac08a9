"""What the broadcaster does with a staged batch that storage refused: stamp it again,
or take jobs out of it.

A store shared by several writers (a cluster's Redis) gives a commit's events
new ids when another writer has stored newer ones (:func:`renamed_from` renames
the batch the same way), or, without a node, refuses it whole (:func:`restamp`
gives the batch new ids after them) or when it writes jobs held elsewhere (:func:`split_fenced`
takes those jobs out for good) or creates jobs its admission limits refuse
(:func:`drop_refused`: their submitters get the 503 ``queue_full`` or 429
``user_quota_exceeded``). A commit that failed outright takes its new jobs out
(:func:`drop_creations`: their submitters get a 503).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._ids import EventId, EventIdGenerator
from ._records import Commit
from ._storage import CreationsRefused, JobsFenced, StorageUnavailable

if TYPE_CHECKING:
    from ._job import Job
    from ._outgoing import CommitWaiter

logger = logging.getLogger("aura_actors.broadcaster")


def restamp(commit: Commit, jobs: list[Job], ids: EventIdGenerator) -> None:
    """Give every event of ``commit`` (of ``jobs``, in the same order) a new id from ``ids``,
    and make the snapshots and records that named the old ids name the new ones."""
    rename(commit, jobs, [ids.next_id() for _ in commit.events])


def renamed_from(commit: Commit, jobs: list[Job], first: EventId, ids: EventIdGenerator) -> None:
    """Rename ``commit``'s events as a shared store did when it returned ``first`` from
    ``commit`` (see ``JobStorage.commit``): consecutive ids from ``first``; ``ids`` goes
    on after the last of them."""
    new_ids = [EventId(first.millis, first.counter + k) for k in range(len(commit.events))]
    rename(commit, jobs, new_ids)
    ids.resume_after(new_ids[-1])


def rename(commit: Commit, jobs: list[Job], new_ids: list[EventId]) -> None:
    """Give event *k* of ``commit`` (of ``jobs``, in the same order) ``new_ids[k]``, and make
    the snapshots and records that named the old ids name the new ones."""
    renamed: dict[str, str] = {}
    for event, job, new_id in zip(commit.events, jobs, new_ids, strict=True):
        renamed[str(event.id)] = str(new_id)
        event.id = new_id
        job.last_event_id = new_id
    for data in [*commit.snapshots.values(), *(record.data for record in commit.created)]:
        old = data.get("lastEventId")
        if old in renamed:
            data["lastEventId"] = renamed[old]


def split_fenced(
    commit: Commit, jobs: list[Job], refusal: JobsFenced
) -> tuple[Commit, list[Job], list[Job]]:
    """``commit`` and its ``jobs`` without the jobs ``refusal`` names, and those jobs.

    Each of them is marked :attr:`~._job.Job.fenced`, so the broadcaster drops
    what it sends from then on. Raises ``refusal`` when it names none of
    ``jobs`` (a retry would be refused the same way).
    """
    fenced = list({job: None for job in jobs if job.id in refusal.job_ids})
    if not fenced:
        raise refusal
    for job in fenced:
        job.fenced = True
    logger.warning(
        "jobs fenced off: held elsewhere, their writes are dropped",
        extra={"job_ids": sorted(job.id for job in fenced), "error": str(refusal)},
    )
    kept = [job for job in jobs if job.id not in refusal.job_ids]
    return commit.without_jobs(set(refusal.job_ids)), kept, fenced


def drop_creations(
    commit: Commit,
    jobs: list[Job],
    waiters: list[tuple[CommitWaiter, Job | None]],
    error: StorageUnavailable,
) -> tuple[Commit, list[Job], list[tuple[CommitWaiter, Job | None]]]:
    """``commit``, its ``jobs`` and ``waiters`` without the jobs it creates, whose
    waiters are resolved with ``error``."""
    refused = {job.id for _, job in waiters if job is not None}
    if not refused:
        return commit, jobs, waiters
    for waiter, job in waiters:
        if job is not None:
            waiter.resolve(error)
    kept_waiters: list[tuple[CommitWaiter, Job | None]] = [(w, j) for w, j in waiters if j is None]
    return commit.without_jobs(refused), [j for j in jobs if j.id not in refused], kept_waiters


def drop_refused(
    commit: Commit,
    jobs: list[Job],
    waiters: list[tuple[CommitWaiter, Job | None]],
    refusal: CreationsRefused,
) -> tuple[Commit, list[Job], list[tuple[CommitWaiter, Job | None]]]:
    """``commit``, its ``jobs`` and ``waiters`` without the new jobs ``refusal`` names,
    whose waiters are resolved with a :class:`CreationsRefused` naming only their job.

    Raises ``refusal`` when it names none of the jobs ``commit`` creates (a retry
    would be refused the same way).
    """
    refused = {job.id for _, job in waiters if job is not None and job.id in refusal.refusals}
    if not refused:
        raise refusal
    kept_waiters: list[tuple[CommitWaiter, Job | None]] = []
    for waiter, job in waiters:
        if job is not None and job.id in refused:
            code = refusal.refusals[job.id]
            waiter.resolve(CreationsRefused(str(refusal), {job.id: code}))
        else:
            kept_waiters.append((waiter, job))
    return commit.without_jobs(refused), [j for j in jobs if j.id not in refused], kept_waiters
