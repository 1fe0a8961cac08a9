"""Cluster-wide admission against real Redis: ``--max-queued-jobs`` bounds the jobs
queued in the whole cluster and ``--max-jobs-per-user`` counts a user's jobs on every
node, both checked by the commit that creates a job (one atomic step); a refused job
reaches its submitter as ``QueueFull`` / ``UserQuotaExceeded``, whatever node it was
posted to, and the rest of its batch is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cluster import (
    WAITING,
    announce,
    api_store,
    has_status,
    new_job,
    node,
    node_and_broadcaster,
    node_store,
    queue_of,
    reaper_of,
    running_broadcaster,
    running_on,
    submit,
    until,
)

from aura_actors.cluster import WORKER_LOST, RedisStorage
from aura_actors.runtime import (
    Broadcaster,
    CreationsRefused,
    JobStatus,
    QueueFull,
    UserQuotaExceeded,
)

QUICK = {"stages": 1, "ticks": 2, "tickSeconds": 0}


async def test_two_api_nodes_share_the_clusters_queue_limit(tmp_path: Path, prefix: str) -> None:
    """Three jobs queued through two API nodes fill a queue of three: the next submit on
    either node is refused 503 ``queue_full``; a queued job cancelled makes room."""
    limits = {"max_queued_jobs": 3}
    async with (
        node(tmp_path, prefix, "api", "api-1", **limits) as api1,
        node(tmp_path, prefix, "api", "api-2", **limits) as api2,
    ):
        first = await api1.submit("synthetic", WAITING)
        await api1.submit("synthetic", WAITING)
        await api2.submit("synthetic", WAITING)
        for api in (api2, api1):
            with pytest.raises(QueueFull) as refused:
                await api.submit("synthetic", WAITING)
            assert refused.value.code == "queue_full"
        assert (await api1.list_jobs()).jobs[0].status is JobStatus.QUEUED
        assert len((await api1.list_jobs()).jobs) == 3  # nothing of them stored

        await api1.cancel(first.id)
        await until(has_status, api2, first.id, JobStatus.CANCELED)
        again = await api2.submit("synthetic", WAITING)
        assert (await api1.get(again.id)).status is JobStatus.QUEUED
        with pytest.raises(QueueFull):
            await api1.submit("synthetic", WAITING)


async def test_a_users_quota_counts_every_nodes_jobs_and_frees_as_they_end(
    tmp_path: Path, prefix: str
) -> None:
    """ann's two jobs, posted to two API nodes, use up her quota of two on both; bob is
    not held back; a job of hers cancelled while queued, and her jobs completed by a
    worker, give her room again."""
    limits = {"max_jobs_per_user": 2}
    async with (
        node(tmp_path, prefix, "api", "api-1", **limits) as api1,
        node(tmp_path, prefix, "api", "api-2", **limits) as api2,
    ):
        done_first = await api1.submit("synthetic", QUICK, owner="ann")
        waiting = await api2.submit("synthetic", WAITING, owner="ann")
        for api in (api1, api2):
            with pytest.raises(UserQuotaExceeded) as refused:
                await api.submit("synthetic", QUICK, owner="ann")
            assert refused.value.code == "user_quota_exceeded"
        await api1.submit("synthetic", QUICK, owner="bob")

        # Cancelled while queued (on the other node than the one it was posted to).
        await api1.cancel(waiting.id)
        await until(has_status, api2, waiting.id, JobStatus.CANCELED)
        done_second = await api1.submit("synthetic", QUICK, owner="ann")
        with pytest.raises(UserQuotaExceeded):
            await api2.submit("synthetic", QUICK, owner="ann")

        # Completed by a worker.
        async with node(tmp_path, prefix, "worker", "w-1", **limits):
            for job in (done_first, done_second):
                await until(has_status, api1, job.id, JobStatus.DONE)
        await api2.submit("synthetic", WAITING, owner="ann")
        await api1.submit("synthetic", WAITING, owner="ann")
        with pytest.raises(UserQuotaExceeded):
            await api1.submit("synthetic", WAITING, owner="ann")


async def _create(broadcaster: Broadcaster, job_id: str, owner: str) -> CreationsRefused | None:
    """Store a new job of ``owner`` through ``broadcaster``; the refusal it got, if any."""
    error = await announce(new_job(broadcaster, job_id, owner))
    assert error is None or isinstance(error, CreationsRefused)
    return error


async def test_a_job_reaped_worker_lost_frees_its_owners_quota(tmp_path: Path, prefix: str) -> None:
    """A job of alice's running on a worker that died holds her quota of one until the
    reaper ends it ``Failed`` ``worker_lost``."""
    async with api_store(tmp_path, prefix, max_jobs_per_user=1) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        dead, dead_b = node_and_broadcaster(api, "w-dead", nursery)
        # Running on w-dead, which sends no heartbeat.
        await running_on(api_b, dead, dead_b, ["a"], owner="alice")

        refusal = await _create(api_b, "b", "alice")
        assert refusal is not None and refusal.refusals == {"b": "user_quota_exceeded"}
        assert await api.get("b") is None

        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaped = await reaper_of(w1, w1_b, max_attempts=1).reap()
        assert [c.job_id for c in reaped.ended] == ["a"]
        assert await w1_b.barrier() is None
        record = await api.get("a")
        assert record is not None and record.status is JobStatus.FAILED
        assert record.data["error"]["errors"][0]["code"] == WORKER_LOST
        assert await _create(api_b, "c", "alice") is None


async def test_claims_and_hand_backs_keep_the_queue_count(tmp_path: Path, prefix: str) -> None:
    """The queue limit counts jobs queued and held by no worker: a claim makes room, a
    job handed back takes it again."""
    async with api_store(tmp_path, prefix, max_queued_jobs=1) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        worker: RedisStorage = node_store(api, "w-1")
        await submit(api_b, "a")
        assert (await _create(api_b, "b", "bob")).refusals == {"b": "queue_full"}  # type: ignore[union-attr]
        await queue_of(worker).ensure_group()
        [claim] = await queue_of(worker).claim(1)
        assert await _create(api_b, "c", "bob") is None
        assert await api.client.zrange(api.keys.queued, 0, -1) == ("c",)
        # Claimed but not started: its hand-back queues it again, counted again.
        assert (await queue_of(worker).hand_back("a", claim.attempt)).value == "queued"
        assert await api.client.zcard(api.keys.queued) == 2
        assert (await _create(api_b, "d", "bob")).refusals == {"d": "queue_full"}  # type: ignore[union-attr]
