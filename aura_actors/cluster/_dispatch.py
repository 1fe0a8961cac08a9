"""The dispatch queue: queued jobs handed to workers through a Redis stream's consumer group.

A job enters the queue in the commit that stores its ``Queued`` record (the
commit script, when the storage has a node name: :class:`RedisStorage`'s
``node``), so a 202 means it is both stored and queued. A worker takes only
as many jobs as it has free slots (:meth:`DispatchQueue.claim`, one script:
``XREADGROUP`` plus marking each job claimed); the job's entry is
acknowledged and deleted by the commit that stores its terminal record.

Cancelling: a queued job that no worker has claimed is ended by an ordinary
commit, which takes its entry out of the queue in the same step, so it never
starts; if a worker claimed it first, that commit is refused
(:class:`~._errors.JobClaimed`) and the canceller asks the worker instead
(:meth:`DispatchQueue.request_cancel`: the job's cancel flag and a publish).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import coredis
from coredis.exceptions import ResponseError, StreamDuplicateConsumerGroupError
from coredis.response.types import StreamPendingExt

from ._errors import redis_errors
from ._keys import KeyLayout
from ._scripts import CANCEL, CLAIM

#: The workers' consumer group on the dispatch stream (``lua/lib.lua`` says the same).
GROUP = "workers"


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a worker took from the queue."""

    #: The job's entry in the dispatch stream.
    entry: str
    job_id: str


class DispatchQueue:
    """One node's side of the dispatch queue under ``keys``; ``node`` is its consumer name."""

    def __init__(self, client: coredis.Redis[str], keys: KeyLayout, node: str) -> None:
        self._client = client
        self.keys = keys
        self.node = node

    async def ensure_group(self) -> None:
        """Create the workers' group (and the stream) unless they exist. A checkpoint.

        The group starts at the stream's beginning, so jobs queued before any
        worker existed are delivered too.
        """
        with redis_errors("create the dispatch group"), suppress(StreamDuplicateConsumerGroupError):
            await self._client.xgroup_create(self.keys.dispatch, GROUP, "0", mkstream=True)

    async def claim(self, count: int) -> list[Claim]:
        """Take up to ``count`` queued jobs, oldest first (none when ``count`` < 1).

        Entries of jobs that ended (cancelled while queued) or are gone are
        dropped on the way and never returned. Raises ``StorageUnavailable``.
        """
        if count < 1:
            return []
        args = [self.keys.root, self.node, str(count)]
        with redis_errors("claim jobs"):
            try:
                rows = await CLAIM.call(self._client, args)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The group went (a Redis restarted without its data): make it again.
                await self._client.xgroup_create(self.keys.dispatch, GROUP, "0", mkstream=True)
                rows = await CLAIM.call(self._client, args)
        return [Claim(str(entry), str(job)) for entry, job in rows]

    async def request_cancel(self, job_id: str) -> str | None:
        """Set the cancel flag of claimed ``job_id`` and publish it on the cancel channel.

        Returns the name of the worker holding the job, or ``None`` when no
        worker does (the job is gone, ended, or still unclaimed: then the
        caller ends it with a commit). A checkpoint.
        """
        args = [self.keys.root, job_id, self.keys.cancel_channel]
        with redis_errors("ask for a cancel"):
            worker = await CANCEL.call(self._client, args)
        return None if worker is None else str(worker)

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether ``job_id``'s cancel flag is set: a worker asks once it listens for
        cancels of a job it claimed, so a cancel asked between the claim and then
        is not lost."""
        with redis_errors("read a cancel flag"):
            return await self._client.hget(self.keys.job(job_id), "cancel") == "1"

    async def newest_entry(self) -> str:
        """The id of the newest entry ever added to the queue (``0-0`` if none). A checkpoint.

        Read before :meth:`claim`, it is where :meth:`wait_for_entry` waits after: a job
        queued between the claim and the wait wakes the wait at once.
        """
        with redis_errors("read the dispatch queue"):
            info = await self._client.xinfo_stream(self.keys.dispatch)
        return str(info.get("last-generated-id") or "0-0")

    async def wait_for_entry(self, after: str, seconds: float) -> bool:
        """Wait (``XREAD BLOCK``, at most ``seconds``) until an entry after ``after`` is in
        the queue; whether one is. It claims nothing. A checkpoint."""
        block = max(1, int(seconds * 1000))
        with redis_errors("wait on the dispatch queue"):
            found = await self._client.xread({self.keys.dispatch: after}, count=1, block=block)
        return bool(found)

    async def held(self) -> list[Claim]:
        """The jobs this node claimed and has not ended (an earlier process of the same
        name left them: it stopped or died). A checkpoint."""
        claims: list[Claim] = []
        with redis_errors("read this node's claimed jobs"):
            pending = await self._client.xpending(
                self.keys.dispatch, GROUP, "-", "+", 10_000, consumer=self.node
            )
            assert isinstance(pending, tuple)  # the extended form: one item per entry
            for item in pending:
                assert isinstance(item, StreamPendingExt)
                for entry in await self._client.xrange(
                    self.keys.dispatch, item.identifier, item.identifier
                ):
                    claims.append(Claim(str(entry.identifier), str(entry.field_values["j"])))
        return claims
