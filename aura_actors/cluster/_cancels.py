"""Cancels across processes, a worker's side: the cancel scopes of the jobs it runs.

A node that gets a cancel for a job another node runs sets the job's cancel
flag and publishes its id (:meth:`DispatchQueue.request_cancel`). The
worker's :class:`LiveFeed` hands each published id to :meth:`CancelListener.cancel`,
which cancels that job's scope if it runs here. No cancel is lost between a
claim and the publish: :meth:`CancelListener.watch` registers the scope and
only then reads the flag (the feed is subscribed before the worker claims
anything), and after the feed's connection was made again every watched job's
flag is read again (:meth:`CancelListener.recheck`).
"""

from __future__ import annotations

import trio

from ._dispatch import DispatchQueue


class CancelListener:
    """The cancel scopes of the jobs running on this node, by job id."""

    def __init__(self, queue: DispatchQueue) -> None:
        self.queue = queue
        self._scopes: dict[str, trio.CancelScope] = {}

    async def watch(self, job_id: str, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` when ``job_id``'s cancel is asked for, here or earlier.

        Raises ``StorageUnavailable`` if the flag cannot be read (the scope stays
        watched). A checkpoint.
        """
        self._scopes[job_id] = scope
        if await self.queue.cancel_requested(job_id):
            scope.cancel()

    def forget(self, job_id: str) -> None:
        """Stop watching ``job_id`` (it ended). Not a checkpoint."""
        self._scopes.pop(job_id, None)

    def cancel(self, job_id: str) -> None:
        """A cancel of ``job_id`` was published: cancel its scope if it runs here."""
        scope = self._scopes.get(job_id)
        if scope is not None:
            scope.cancel()

    async def recheck(self) -> None:
        """Read every watched job's flag again (cancels published while the feed was away)."""
        for job_id in list(self._scopes):
            if await self.queue.cancel_requested(job_id):
                self.cancel(job_id)
