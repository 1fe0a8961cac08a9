"""Heartbeats against real Redis: a worker is alive while its key exists; once its
heartbeat stops, the key expires after the worker timeout and the reapers see it dead.

Redis's TTLs run on Redis's wall clock, so the timeout here is short and the
test waits, with a bound, for the key to be gone rather than sleeping a fixed time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from support.cluster import queue_of, running_broadcaster
from support.redis import open_store

from aura_actors.cluster import Presence, Reaper, live_workers
from aura_actors.runtime import RuntimeConfig

#: Seconds a test waits for a heartbeat key to expire (its TTL is far shorter).
EXPIRY_BOUND = 10.0
#: Seconds between looks at a heartbeat key.
POLL = 0.02


async def test_a_worker_whose_heartbeat_stops_is_seen_dead_after_the_timeout(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="w-1") as w1, trio.open_nursery() as nursery:
        client, keys = w1.client, w1.keys
        reaper = Reaper(
            queue_of(w1), w1, running_broadcaster(w1, nursery), worker_timeout=5, max_attempts=1
        )
        beating = Presence(client, keys, "w-2", timeout=0.5)
        assert beating.interval == pytest.approx(0.5 / 3)
        async with trio.open_nursery() as heart:
            await heart.start(beating.run)
            assert await live_workers(client, keys) == ["w-2"]
            assert await reaper.dead_workers() == []
            ttl = await client.pttl(keys.heartbeat("w-2"))
            assert 0 < ttl <= 500
            # It beats again (the key holds the Redis time of the newest beat), and stays.
            first = await client.get(keys.heartbeat("w-2"))
            with trio.fail_after(EXPIRY_BOUND):
                while await client.get(keys.heartbeat("w-2")) == first:  # noqa: ASYNC110
                    await trio.sleep(POLL)  # Redis's clock, not trio's: nothing to wait on
            assert await live_workers(client, keys) == ["w-2"]
            heart.cancel_scope.cancel()

        with trio.fail_after(EXPIRY_BOUND):
            while await client.exists([keys.heartbeat("w-2")]):  # noqa: ASYNC110
                await trio.sleep(POLL)  # the TTL runs on Redis's clock: nothing to wait on
        assert await live_workers(client, keys) == []
        assert await reaper.dead_workers() == ["w-2"]
        # Nothing of w-2's is pending: the next round removes it from the workers set.
        assert (await reaper.reap()).removed == ["w-2"]
        assert await client.smembers(keys.workers) == set()
        nursery.cancel_scope.cancel()


async def test_a_worker_that_leaves_is_gone_at_once(tmp_path: Path, prefix: str) -> None:
    async with open_store(tmp_path, prefix, node="w-1") as w1:
        presence = Presence(w1.client, w1.keys, "w-1", timeout=30)
        await presence.beat()
        await Presence(w1.client, w1.keys, "w-2", timeout=30).beat()
        assert await live_workers(w1.client, w1.keys) == ["w-1", "w-2"]
        await presence.leave()
        assert await live_workers(w1.client, w1.keys) == ["w-2"]
        assert not await w1.client.exists([w1.keys.heartbeat("w-1")])
        assert await w1.client.smembers(w1.keys.workers) == {"w-2"}


def test_the_worker_timeout_and_drain_are_settings_with_the_contracts_defaults() -> None:
    config = RuntimeConfig()
    assert (config.worker_timeout, config.drain_seconds, config.max_attempts) == (5.0, 10.0, 1)
    with pytest.raises(ValueError, match="worker_timeout"):
        RuntimeConfig(worker_timeout=0)
    with pytest.raises(ValueError, match="drain_seconds"):
        RuntimeConfig(drain_seconds=-1)
