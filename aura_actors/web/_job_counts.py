"""The job counts ``/api/health`` and the ``aura_queue_depth`` / ``aura_running_jobs``
gauges report, decided in one place.

In one process they are the runtime's own, read from memory: no storage read,
so health stays cheap and answers while storage fails. On a cluster's node
they are the whole cluster's, summed from the store's counts
(``JobStorage.count_jobs``, kept by the commit script in Redis): an API node
holds no jobs, so its own counts would say nothing runs while the workers are
busy. When that read fails the node's own counts stand in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..runtime import JobStatus, Runtime

__all__ = ["JobCounts", "read_reported_counts", "reported_counts"]


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Jobs ``Running``, jobs ``Queued``, and jobs stored in any status."""

    running: int
    queued: int
    total: int

    @classmethod
    def own(cls, runtime: Runtime) -> JobCounts:
        """The jobs ``runtime`` runs and queues itself, and its count of stored jobs."""
        return cls(runtime.running_count, runtime.queued_count, runtime.job_count)

    @classmethod
    def of_stored(cls, stored: Mapping[tuple[str, str], int]) -> JobCounts:
        """Summed by status from ``count_jobs``'s ``{(status, pipeline): count}``."""
        running = queued = total = 0
        for (status, _pipeline), count in stored.items():
            total += count
            if status == JobStatus.RUNNING.value:
                running += count
            elif status == JobStatus.QUEUED.value:
                queued += count
        return cls(running, queued, total)


def reported_counts(runtime: Runtime, stored: Mapping[tuple[str, str], int] | None) -> JobCounts:
    """The counts to report, given ``stored`` (what ``count_jobs`` answered, ``None`` if it
    failed): the cluster's on a cluster's node, else the runtime's own. Not a checkpoint."""
    if runtime.clustered and stored is not None:
        return JobCounts.of_stored(stored)
    return JobCounts.own(runtime)


async def read_reported_counts(runtime: Runtime) -> JobCounts:
    """:func:`reported_counts`, reading ``count_jobs`` once on a cluster's node only.

    No read in one process, nor while the runtime knows its storage fails
    (health answers ``degraded`` at once, not after a call timeout); a read
    that fails gives the node's own counts, never an error. A checkpoint on a
    cluster's node (one Redis round trip, bounded by its call timeout).
    """
    if not runtime.clustered or runtime.storage_problem is not None:
        return JobCounts.own(runtime)
    try:
        stored = await runtime.storage.count_jobs()
    except Exception:  # storage failing (StorageUnavailable), or worse: health still answers
        stored = None
    return reported_counts(runtime, stored)
