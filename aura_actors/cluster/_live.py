"""The live path across processes: one pub/sub connection per node feeding its hub.

In a cluster the commit script publishes, after its writes, which jobs got new
events (the ``live`` channel; :mod:`._keys`). A node's :class:`LiveFeed` holds
one standing subscription to it (coredis's iterator ends when nothing is
subscribed, so the subscription never goes away while the feed runs), and on
each message reads the new events of the jobs and owners its hub follows from
their streams, after where it last read, and offers them to the hub: each
job's stream to the job's subscriptions, each owner's stream to the owner's.
Subscriptions drop ids they have already delivered, so reading a stream
again is harmless. A message of the node's own commit is skipped: its
broadcaster offered those events to the hub already. After the pub/sub
connection is lost and made again, every followed job and owner is read
again from its subscriptions' last ids: what was committed meanwhile is not
lost. On a worker the same connection carries the cancel channel to its
:class:`~._cancels.CancelListener`.
"""

from __future__ import annotations

import logging

import trio
from coredis.exceptions import RedisError

from ..runtime import EventId, StorageUnavailable
from ..runtime._hub import Hub
from ._cancels import CancelListener
from ._errors import redis_errors
from ._keys import owner_of
from ._redis_store import RedisStorage, sole_leaf

logger = logging.getLogger("aura_actors.cluster")

#: Seconds between attempts to make the pub/sub connection again: doubling to the last.
RECONNECT_BACKOFF = (0.05, 2.0)
#: Events read from a stream at a time.
READ_PAGE = 500


class LiveFeed:
    """One node's live feed from Redis into ``hub``. Run :meth:`run` in a nursery."""

    def __init__(
        self, storage: RedisStorage, hub: Hub, cancels: CancelListener | None = None
    ) -> None:
        self.storage = storage
        self.hub = hub
        self.cancels = cancels
        # Where this node last read each followed job's and owner's stream.
        self._job_cursor: dict[str, EventId] = {}
        self._owner_cursor: dict[str | None, EventId] = {}
        #: How many times the pub/sub connection was made (1 after the first).
        self.connections = 0
        self._connected = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the live channel until cancelled, making the connection again when it
        breaks (with backoff). Started once subscribed and caught up the first time."""
        backoff = RECONNECT_BACKOFF[0]
        while True:
            try:
                await self._follow(task_status)
            except StorageUnavailable as exc:
                logger.warning("live feed lost Redis; reconnecting", extra={"error": str(exc)})
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF[1])

    async def _follow(self, task_status: trio.TaskStatus[None]) -> None:
        """One connection's life: subscribe, read again what may have been missed, then
        handle messages until the connection breaks (raises ``StorageUnavailable``)."""
        keys = self.storage.keys
        channels = [keys.live_channel]
        if self.cancels is not None:
            channels.append(keys.cancel_channel)
        # No retry policy: coredis would make the connection again by itself and
        # subscribe again, silently, and what was published meanwhile would be lost.
        # The feed does it instead, reading every followed stream again.
        pubsub = self.storage.client.pubsub(channels=channels, retry_policy=None)
        try:
            with redis_errors("follow the live channel"):
                async with pubsub:
                    await self.catch_up()
                    self.connections += 1
                    self._connected.set()
                    self._connected = trio.Event()
                    task_status.started()
                    async for message in pubsub:
                        if message["type"] != "message":
                            continue
                        if message["channel"] == keys.live_channel:
                            await self._on_message(str(message["data"]))
                        elif self.cancels is not None:
                            self.cancels.cancel(str(message["data"]))
        except BaseExceptionGroup as group:
            # The pub/sub's own task group wraps the connection's failure.
            sole = sole_leaf(group)
            if isinstance(sole, StorageUnavailable):
                raise sole from None
            if isinstance(sole, RedisError | OSError):
                raise StorageUnavailable(f"Redis: the live channel broke: {sole!r}") from sole
            raise
        # The iterator ended: coredis does that when nothing is subscribed any more.
        raise StorageUnavailable("the live channel's subscription ended")

    async def wait_connections(self, count: int) -> None:
        """Wait until the connection has been made (and caught up) ``count`` times."""
        while self.connections < count:
            await self._connected.wait()

    async def catch_up(self) -> None:
        """Read every followed job and owner again from where its subscriptions are, and
        every watched job's cancel flag."""
        if self.cancels is not None:
            await self.cancels.recheck()
        positions = self.hub.job_positions()
        for job_id, position in positions.items():
            await self._read_job(job_id, _newest(self._job_cursor.get(job_id), position))
        for owner, owner_position in self.hub.owner_positions().items():
            start = _newest(self._owner_cursor.get(owner), owner_position)
            if start is not None:  # live-only readers that have seen nothing yet
                await self._read_owner(owner, start)
        self._forget_unfollowed()

    async def _on_message(self, text: str) -> None:
        node, *lines = text.split("\n")
        if node == self.storage.node:
            return  # this node's own commit: its broadcaster offered the events to the hub
        for line in lines:
            job_id, first_text, last_text, okey = line.split(" ", 3)
            first, last = EventId.parse(first_text), EventId.parse(last_text)
            # With no cursor and readers that have seen nothing, read from this commit on.
            before_first = _predecessor(first)
            if self.hub.follows_job(job_id):
                cursor = self._job_cursor.get(job_id)
                if cursor is None or cursor < last:
                    start = _newest(cursor, self.hub.job_position(job_id))
                    await self._read_job(job_id, start or before_first)
            owner = owner_of(okey)
            if self.hub.follows_owner(owner):
                cursor = self._owner_cursor.get(owner)
                if cursor is None or cursor < last:
                    start = _newest(cursor, self.hub.owner_position(owner))
                    await self._read_owner(owner, start or before_first)
        self._forget_unfollowed()

    async def _read_job(self, job_id: str, after: EventId | None) -> None:
        while True:
            events = await self.storage.job_events(job_id, after, READ_PAGE)
            for event in events:
                self.hub.publish(event, to_owner=False)
            if events:
                after = events[-1].id
                assert after is not None
                self._job_cursor[job_id] = after
            if len(events) < READ_PAGE:
                return

    async def _read_owner(self, owner: str | None, after: EventId) -> None:
        while True:
            events = await self.storage.owner_events(owner, after, READ_PAGE)
            for event in events:
                self.hub.publish(event, to_job=False)
            if events:
                newest = events[-1].id
                assert newest is not None
                after = self._owner_cursor[owner] = newest
            if len(events) < READ_PAGE:
                return

    def _forget_unfollowed(self) -> None:
        for job_id in [j for j in self._job_cursor if not self.hub.follows_job(j)]:
            del self._job_cursor[job_id]
        for owner in [o for o in self._owner_cursor if not self.hub.follows_owner(o)]:
            del self._owner_cursor[owner]


def _predecessor(event_id: EventId) -> EventId:
    """The greatest possible id before ``event_id`` (Redis ids are two unsigned 64-bit parts)."""
    if event_id.counter > 0:
        return EventId(event_id.millis, event_id.counter - 1)
    return EventId(event_id.millis - 1, 2**64 - 1)


def _newest(a: EventId | None, b: EventId | None) -> EventId | None:
    if a is None:
        return b
    return a if b is None or a >= b else b
