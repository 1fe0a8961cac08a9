"""The Redis store when Redis fails: down, out of memory, hung, a read-only replica.

Each test runs a private ``redis-server`` (``support.redis.private_redis``) it can
stop, restart, pause or reconfigure: a failing Redis raises ``StorageUnavailable``
(what the runtime turns into 503 ``storage_unavailable``), changes nothing of a
refused commit, and the store goes on once Redis works again.
"""

from __future__ import annotations

import signal
from pathlib import Path

import coredis
import pytest
import trio
from support.redis import free_port, keys_under, open_store, private_redis
from support.store_script import Script, batches, compacted, events_of, keys, run_script

from aura_actors.cluster import RedisStorage
from aura_actors.runtime import Commit, JobRecord, JobStatus, StorageUnavailable


async def _record(store: RedisStorage, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    assert record is not None, job_id
    return record


async def test_redis_down_raises_storage_unavailable_and_it_goes_on_once_back(
    tmp_path: Path,
) -> None:
    script = Script()
    async with (
        private_redis(tmp_path / "redis") as server,
        open_store(tmp_path, "aura", server.url) as store,
    ):
        life = run_script(script.life("a", None, runs=[2]))
        for item in life[:3]:
            await store.commit(item)
        await server.stop()
        with pytest.raises(StorageUnavailable, match="Redis"):
            await store.commit(life[3])
        with pytest.raises(StorageUnavailable, match="Redis"):
            await store.get("a")
        with pytest.raises(StorageUnavailable, match="Redis"):
            await store.job_events("a", None, 10)
        await server.start()  # the same dir: what it acknowledged is back (appendonly)
        for item in life[3:]:  # the scripts are loaded again (NOSCRIPT) on first use
            await store.commit(item)
        assert (await _record(store, "a")).status is JobStatus.DONE
        assert keys(await store.job_events("a", None, 100)) == keys(
            compacted(events_of(life, "a"), 10_000)[0]
        )


async def test_out_of_memory_refuses_the_whole_commit(tmp_path: Path) -> None:
    script = Script()
    async with (
        private_redis(tmp_path / "redis") as server,
        open_store(tmp_path, "aura", server.url) as store,
    ):
        life = run_script(script.life("a", None, runs=[2]))
        await store.commit(life[0])
        async with coredis.Redis.from_url(server.url) as admin:
            await admin.config_set({"maxmemory": "1"})
            before = await keys_under(server.url, "aura:")
            with pytest.raises(StorageUnavailable, match="OOM"):
                await store.commit(batches(life[1:5], 4)[0])
            with pytest.raises(StorageUnavailable, match="OOM"):
                await store.commit(Commit())  # the probe of an idle runtime
            assert await keys_under(server.url, "aura:") == before
            assert (await _record(store, "a")).status is JobStatus.QUEUED  # reads go on
            await admin.config_set({"maxmemory": "0"})
        for item in life[1:]:
            await store.commit(item)
        assert (await _record(store, "a")).status is JobStatus.DONE


async def test_a_hung_redis_times_out_and_a_retried_commit_is_applied_once(
    tmp_path: Path,
) -> None:
    """SIGSTOP: calls fail after the timeout (StorageUnavailable), though Redis may
    still run what it received. After SIGCONT the broadcaster's retry of the same
    commit is applied once, whether or not the first attempt got through."""
    script = Script()
    async with (
        private_redis(tmp_path / "redis") as server,
        open_store(tmp_path, "aura", server.url, call_timeout=0.3) as store,
    ):
        life = run_script(script.life("a", None, runs=[2]))
        await store.commit(life[0])
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            with trio.fail_after(10), pytest.raises(StorageUnavailable, match="Redis"):
                await store.commit(life[1])
            with trio.fail_after(10), pytest.raises(StorageUnavailable, match="Redis"):
                await store.get("a")
        finally:
            server.process.send_signal(signal.SIGCONT)
        await store.commit(life[1])  # the retry
        for item in life[2:]:
            await store.commit(item)
        assert keys(await store.job_events("a", None, 100)) == keys(
            compacted(events_of(life, "a"), 10_000)[0]
        )
        assert (await _record(store, "a")).status is JobStatus.DONE


async def test_a_read_only_replica_refuses_commits_and_reads_go_on(tmp_path: Path) -> None:
    script = Script()
    async with (
        private_redis(tmp_path / "redis") as server,
        open_store(tmp_path, "aura", server.url) as store,
        coredis.Redis.from_url(server.url) as admin,
    ):
        life = run_script(script.life("a", None, runs=[1]))
        await store.commit(life[0])
        # A replica of a primary that never answers: its data stays, read-only.
        await admin.replicaof("127.0.0.1", free_port())
        with pytest.raises(StorageUnavailable, match=r"ReadOnlyError: .* read only replica"):
            await store.commit(life[1])
        assert (await _record(store, "a")).status is JobStatus.QUEUED
        await admin.replicaof(None, None)  # REPLICAOF NO ONE: a primary again
        for item in life[1:]:
            await store.commit(item)
        assert (await _record(store, "a")).status is JobStatus.DONE
