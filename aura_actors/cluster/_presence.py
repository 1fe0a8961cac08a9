"""Which workers are alive: each sends a heartbeat, a key that expires unless sent again.

A worker runs :meth:`Presence.run` before it claims anything: its key
(``<prefix>:worker:<node>``) is set with a TTL of ``--worker-timeout`` and sent
again every third of it, and its name is added to the workers set. A worker
whose key has expired (it died, was paused, or lost Redis for that long) counts
as dead: the other workers' reapers take its jobs over (:mod:`._reaper`), and
what it writes to them afterwards is refused (fencing, docs/cluster.md).
"""

from __future__ import annotations

import logging

import coredis
import trio

from ..runtime import StorageUnavailable
from ._errors import redis_errors
from ._keys import KeyLayout
from ._scripts import HEARTBEAT

logger = logging.getLogger("aura_actors.cluster")

#: Seconds between attempts at the first heartbeat while Redis does not answer.
FIRST_BEAT_RETRY = 0.5


class Presence:
    """Worker ``node``'s heartbeat under ``keys``, alive for ``timeout`` seconds after each."""

    def __init__(
        self, client: coredis.Redis[str], keys: KeyLayout, node: str, timeout: float
    ) -> None:
        if timeout <= 0:
            raise ValueError("the worker timeout must be positive")
        self._client = client
        self.keys = keys
        self.node = node
        self.timeout = timeout
        #: Trio-clock time of the last heartbeat Redis acknowledged (``None`` before one).
        self.last_beat: float | None = None

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: a third of the timeout, so two may fail in a row."""
        return self.timeout / 3

    async def beat(self) -> None:
        """Send one heartbeat. Raises ``StorageUnavailable``. A checkpoint."""
        args = [self.keys.root, self.node, str(max(1, round(self.timeout * 1000)))]
        with redis_errors("send a heartbeat"):
            await HEARTBEAT.call(self._client, args)
        self.last_beat = trio.current_time()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send heartbeats until cancelled; started once the first one is stored.

        A heartbeat that fails is logged and the next one is sent on time: while
        Redis is away for less than the timeout the worker stays alive.
        """
        while True:
            try:
                await self.beat()
                break
            except StorageUnavailable as exc:
                logger.warning("cannot send the first heartbeat", extra={"error": str(exc)})
                await trio.sleep(FIRST_BEAT_RETRY)
        task_status.started()
        next_at = trio.current_time()
        while True:
            next_at = max(next_at + self.interval, trio.current_time())
            await trio.sleep_until(next_at)
            try:
                await self.beat()
            except StorageUnavailable as exc:
                logger.warning("heartbeat failed", extra={"error": str(exc)})

    async def leave(self) -> None:
        """Delete the heartbeat (a worker stopping once it holds no job). A checkpoint.

        A worker that still holds jobs must not leave: the reapers would take
        them over at once.
        """
        with redis_errors("remove a heartbeat"):
            await self._client.delete([self.keys.heartbeat(self.node)])
            await self._client.srem(self.keys.workers, [self.node])


async def live_workers(client: coredis.Redis[str], keys: KeyLayout) -> list[str]:
    """The names of the workers whose heartbeat has not expired, sorted.

    Raises ``StorageUnavailable``. A checkpoint.
    """
    with redis_errors("list the workers"):
        names = sorted(str(name) for name in await client.smembers(keys.workers))
        if not names:
            return []
        beats = await client.mget([keys.heartbeat(name) for name in names])
    return [name for name, beat in zip(names, beats, strict=True) if beat is not None]
