"""Where a runtime's new jobs wait to run: the seam between one process and a cluster.

In one process (:class:`LocalJobs`) a stored ``Queued`` job waits in the
runner's fair queue and runs here, and every unfinished job is held in
memory. In a cluster (``aura_actors.cluster``) it waits in the dispatch queue
for whichever worker claims it, so a job this process does not hold may still
be running elsewhere: its subscriptions follow it until it ends, and a cancel
reaches it through the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._errors import JobAlreadyFinished
from ._records import JobRecord

if TYPE_CHECKING:
    from ._job import Job
    from ._runner import JobRunner


class JobSource(Protocol):
    """Where new jobs go once stored, and how jobs held by no one here are reached."""

    @property
    def shared(self) -> bool:
        """Whether jobs this process does not hold may be live in another one (then
        their subscriptions follow them, and replays are read from storage)."""
        ...

    def queued(self, runner: JobRunner, job: Job) -> None:
        """``job`` was just stored ``Queued`` (not a checkpoint): queue it to run."""
        ...

    async def cancel_elsewhere(self, record: JobRecord, message: str) -> JobRecord:
        """Cancel the unfinished job of ``record``, which this process does not hold.

        Returns its snapshot once the cancel is stored or sent to the node running
        it; raises :class:`JobAlreadyFinished` when it has ended, or
        :class:`StorageFailing`. A checkpoint.
        """
        ...

    def stop(self) -> None:
        """The runtime is shutting down: take no more jobs. Not a checkpoint; idempotent."""
        ...


class LocalJobs:
    """One process: jobs wait in the runner's fair queue; nothing is held elsewhere."""

    shared = False

    def queued(self, runner: JobRunner, job: Job) -> None:
        runner.enqueue(job)

    async def cancel_elsewhere(self, record: JobRecord, message: str) -> JobRecord:
        # Every unfinished job is held here; one that is not was ended (or is being).
        raise JobAlreadyFinished(record.id, record.status.value)

    def stop(self) -> None:
        pass
