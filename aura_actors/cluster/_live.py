"""The live path across processes: one pub/sub connection per node feeding its hub.

In a cluster the commit script publishes, after its writes, the events it
stored (the ``live`` channel; :mod:`._keys`), in id order. A node's
:class:`LiveFeed` holds one standing subscription to it (coredis's iterator
ends when nothing is subscribed, so the subscription never goes away while
the feed runs) and offers each message's events, a run per job, to its hub: a
job's events to the job's subscriptions, and to its owner's. No stream is
read on the way: commits run one after another in Redis, in id order, and
pub/sub delivers their messages in that order, so a subscription that joined
the hub before reading its replay gets every later commit from the feed (what
both give it is dropped once passed). For a job, a message of the node's own
commit is skipped: its broadcaster offered those events to the job's
subscriptions already. An owner's subscriptions get every event from the
feed, the node's own too (``Hub.owners_from_feed``): several nodes write one
owner's stream, and only the commits' order keeps an event of this node from
overtaking older ones of another node still on their way (the subscriptions
would drop those as passed).

Pub/sub keeps nothing for a connection that is down: after it is lost and
made again, every followed job and owner is read again from its streams,
after its subscriptions' last ids, so what was committed meanwhile is not
lost. A node that follows no streams (a worker) subscribes to the cancel
channel alone, for its :class:`~._cancels.CancelListener`.
"""

from __future__ import annotations

import json
import logging
import time

import trio
from coredis.exceptions import RedisError

from ..runtime import Event, EventId, EventType, StorageUnavailable
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
#: Messages between two sweeps of the read positions of streams no longer followed.
SWEEP_EVERY = 256


class LiveFeed:
    """One node's live feed from Redis into ``hub``. Run :meth:`run` in a nursery."""

    def __init__(
        self,
        storage: RedisStorage,
        hub: Hub,
        cancels: CancelListener | None = None,
        *,
        streams: bool = True,
    ) -> None:
        if not streams and cancels is None:
            raise ValueError("a live feed follows streams, cancels or both")
        self.storage = storage
        self.hub = hub
        hub.owners_from_feed = True
        self.cancels = cancels
        #: Whether the node follows streams (the live channel); a worker does not.
        self.streams = streams
        # Where the feed last offered each followed job's and owner's events: after a
        # reconnect, their streams are read again from here (or their subscriptions' last
        # ids, whichever is newer).
        self._job_cursor: dict[str, EventId] = {}
        self._owner_cursor: dict[str | None, EventId] = {}
        self._until_sweep = SWEEP_EVERY
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
        channels = [keys.live_channel] if self.streams else []
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
                            try:
                                self._on_message(str(message["data"]))
                            except (ValueError, TypeError, KeyError) as exc:
                                # Not a commit's message (another version's node?): what it
                                # told is read from the streams instead, as after a reconnect.
                                logger.error(
                                    "live feed: a message it cannot read; reading the "
                                    "followed streams again",
                                    extra={"error": repr(exc)},
                                )
                                await self.catch_up()
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
        if not self.streams:
            return
        positions = self.hub.job_positions()
        for job_id, position in positions.items():
            await self._read_job(job_id, _newest(self._job_cursor.get(job_id), position))
        for owner, owner_position in self.hub.owner_positions().items():
            start = _newest(self._owner_cursor.get(owner), owner_position)
            if start is not None:  # live-only readers that have seen nothing yet
                await self._read_owner(owner, start)
        self._forget_unfollowed()

    def _on_message(self, text: str) -> None:
        """Offer a commit's events (see ``lua/commit.lua``), a run per job, to the
        subscriptions that follow their jobs or owners, in the commit's (id) order."""
        node, entries = json.loads(text)
        # This node's own commit: its broadcaster offered the events to the jobs' hub
        # subscriptions already (not to the owners': see the module's docstring).
        own = node == self.storage.node
        hub = self.hub
        now = time.perf_counter()
        run: list[Event] = []
        run_job: str | None = None
        owner: str | None = None
        to_job = to_owner = False
        for id_text, job_id, okey, type_text, data in entries:
            if job_id != run_job:
                if run:
                    self._offer(run, to_job=to_job, to_owner=to_owner)
                    run = []
                run_job, owner = job_id, owner_of(okey)
                to_job = not own and hub.follows_job(job_id)
                to_owner = hub.follows_owner(owner)
            if to_job or to_owner:
                event = Event(
                    EventId.parse(id_text),
                    EventType(type_text),
                    None,
                    job_id,
                    owner,
                    json_text=data,
                )
                event.published_at = now
                run.append(event)
        if run:
            self._offer(run, to_job=to_job, to_owner=to_owner)
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._forget_unfollowed()

    def _offer(self, run: list[Event], *, to_job: bool, to_owner: bool) -> None:
        """Offer ``run``, consecutive events of one job, and move the feed's cursors."""
        self.hub.publish_run(run, to_job=to_job, fed=True)
        last = run[-1].id
        assert last is not None
        if to_job:
            self._job_cursor[run[0].job_id or ""] = last
        if to_owner:
            self._owner_cursor[run[0].owner] = last

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
        self._until_sweep = SWEEP_EVERY
        for job_id in [j for j in self._job_cursor if not self.hub.follows_job(j)]:
            del self._job_cursor[job_id]
        for owner in [o for o in self._owner_cursor if not self.hub.follows_owner(o)]:
            del self._owner_cursor[owner]


def _newest(a: EventId | None, b: EventId | None) -> EventId | None:
    if a is None:
        return b
    return a if b is None or a >= b else b
