"""Handing back against real Redis: a draining worker gives the jobs it stops back to the
queue, where another worker claims them, or ends them when no attempt is left.
"""

from __future__ import annotations

from pathlib import Path

import trio
from support.cluster import (
    api_store,
    ended_failed,
    holder,
    kinds,
    node_and_broadcaster,
    node_store,
    pending_of,
    queue_of,
    record_of,
    running_broadcaster,
    running_on,
    start,
    stream,
)

from aura_actors.cluster import HandBack, Handed, RedisStorage, hand_back
from aura_actors.protocol import WarningData
from aura_actors.runtime import INTERRUPTED, EventType, Job, JobStatus


async def _queue_state(store: RedisStorage) -> tuple[object, ...]:
    """Job "a"'s hash and the dispatch queue's entries and pending ones."""
    client, keys = store.client, store.keys
    entries = [e.identifier for e in await client.xrange(keys.dispatch, "-", "+")]
    return dict(await client.hgetall(keys.job("a"))), entries, await pending_of(store)


async def _running_on_w1(api: RedisStorage, nursery: trio.Nursery) -> tuple[RedisStorage, Job]:
    """Job "a", stored and queued by api-1, claimed and running on w-1: w-1's store, the job."""
    w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
    [job] = await running_on(running_broadcaster(api, nursery), w1, w1_b, ["a"])
    return w1, job


async def test_a_job_handed_back_is_claimed_and_run_again_by_another_worker(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        w1, job = await _running_on_w1(api, nursery)
        old_entry = await api.client.hget(api.keys.job("a"), "entry")
        # Draining: w-1 stops writing the job, then its actor stops (what it writes is dropped).
        job.fenced = True
        job.emit(WarningData.build(job_id="a", step=None, message="stopping"))
        handed = await hand_back(job, queue=queue_of(w1), storage=w1, max_attempts=2)
        assert handed is Handed.QUEUED

        assert await api.client.hget(api.keys.job("a"), "worker") is None
        assert await api.client.hget(api.keys.job("a"), "entry") != old_entry
        assert await pending_of(api) == {}
        assert await api.client.xlen(api.keys.dispatch) == 0  # it gets an entry at a claim
        assert await api.client.zrange(api.keys.queued, 0, -1) == ("a",)
        w2 = node_store(api, "w-2")
        [claim] = await queue_of(w2).claim(5)
        assert (claim.job_id, claim.attempt) == ("a", 2)
        again = await start(running_broadcaster(w2, nursery), w2, claim)
        assert again.attempt == 2
        assert kinds(await stream(api, "a")) == [
            (EventType.JOB_STATUS, "Queued"),
            (EventType.JOB_STATUS, "Running"),
            (EventType.WARNING, None),
            (EventType.JOB_STATUS, "Running"),
        ]
        assert await holder(api.client, api, "a") == ("w-2", "2")
        # Handing it back again is no longer w-1's to do.
        assert await queue_of(w1).hand_back("a", 1) is HandBack.NOT_HELD


async def test_with_no_attempt_left_a_job_handed_back_ends_failed_interrupted(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        w1, job = await _running_on_w1(api, nursery)
        job.fenced = True
        assert await hand_back(job, queue=queue_of(w1), storage=w1, max_attempts=1) is Handed.FAILED
        await ended_failed(api, "a", INTERRUPTED)
        assert await api.client.xlen(api.keys.dispatch) == 0
        assert await queue_of(node_store(api, "w-2")).claim(5) == []


async def test_a_job_whose_cancel_was_asked_for_is_not_handed_back_but_canceled(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        w1, job = await _running_on_w1(api, nursery)
        before = await _queue_state(api)
        await api.client.hset(api.keys.job("a"), {"cancel": "1"})
        assert await queue_of(w1).hand_back("a", 1) is HandBack.CANCEL
        await api.client.hdel(api.keys.job("a"), ["cancel"])
        assert await _queue_state(api) == before  # the script changed nothing

        assert await queue_of(api).request_cancel("a") == "w-1"
        handed = await hand_back(job, queue=queue_of(w1), storage=w1, max_attempts=3)
        assert handed is Handed.CANCELED
        assert (await record_of(api, "a")).status is JobStatus.CANCELED
        assert kinds(await stream(api, "a"))[-1] == (EventType.JOB_CANCELLED, None)
        assert await api.client.xlen(api.keys.dispatch) == 0
