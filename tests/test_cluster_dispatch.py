"""The dispatch queue against real Redis: two nodes' stores on one prefix.

An API node's store (``node="api-1"``) commits new jobs, which queues them in
the same step; workers claim only as many as they ask for; a queued job
cancelled before any claim is never handed out; a cancel that loses the race
to a claim is refused whole and goes to the worker through the cancel flag.
"""

from __future__ import annotations

from pathlib import Path

import coredis
import pytest
from support.redis import SHARED_URL, keys_under, open_store
from support.store_script import Script

from aura_actors.cluster import DispatchQueue, JobClaimed, RedisStorage
from aura_actors.runtime import Commit, EventType, JobStatus


def _cancelled(script: Script, job_id: str) -> Commit:
    data = {"step": None, "message": "cancelled"}
    return script.item(job_id, None, EventType.JOB_CANCELLED, data, status="Canceled")


def _queue(store: RedisStorage, node: str) -> DispatchQueue:
    return DispatchQueue(store.client, store.keys, node)


async def _pending(store: RedisStorage) -> int:
    """How many dispatch entries are claimed and not yet acknowledged."""
    summary = await store.client.xpending(store.keys.dispatch, "workers")
    assert isinstance(summary, tuple)  # the summary form, (count, lowest, highest, consumers)
    count = summary[0]
    assert isinstance(count, int)
    return count


async def _status(store: RedisStorage, job_id: str) -> JobStatus:
    record = await store.get(job_id)
    assert record is not None
    return record.status


async def test_jobs_are_queued_with_their_record_and_claimed_by_free_slots(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        worker = _queue(api, "w-1")
        other = _queue(api, "w-2")
        await worker.ensure_group()
        await worker.ensure_group()  # a second node making the group: no error
        for name in ("a", "b", "c"):
            await api.commit(script.created(name))

        assert await worker.claim(0) == []
        first = await worker.claim(2)
        assert [c.job_id for c in first] == ["a", "b"]
        rest = await other.claim(5)
        assert [c.job_id for c in rest] == ["c"]
        assert await worker.claim(5) == []

        client: coredis.Redis[str] = api.client
        assert await client.hget(api.keys.job("a"), "worker") == "w-1"
        assert await client.hget(api.keys.job("c"), "worker") == "w-2"
        assert await _pending(api) == 3

        # The worker's own commits run the job and end it: the end acknowledges its entry.
        worker_store = RedisStorage(
            client,
            prefix=prefix,
            node="w-1",
            history_ttl=3600.0,
            max_history_events=10_000,
            artifacts_dir=tmp_path,
        )
        for step in (script.running("a"), script.status_done("a"), script.completed("a")):
            step.fences["a"] = first[0].attempt  # written as the job's worker
            await worker_store.commit(step)
        assert await _status(api, "a") is JobStatus.DONE
        assert await _pending(api) == 2
        assert await client.xlen(api.keys.dispatch) == 2


async def test_a_store_without_a_node_name_queues_nothing(tmp_path: Path, prefix: str) -> None:
    script = Script()
    async with open_store(tmp_path, prefix) as alone:
        await alone.commit(script.created("a"))
        assert not await alone.client.exists([alone.keys.dispatch])


async def test_a_queued_job_cancelled_before_a_claim_never_starts(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        worker = _queue(api, "w-1")
        await worker.ensure_group()
        for name in ("a", "b"):
            await api.commit(script.created(name))
        # Nobody claimed "a": no worker to ask, so the API node ends it with a commit.
        assert await _queue(api, "api-1").request_cancel("a") is None
        await api.commit(_cancelled(script, "a"))

        assert await _status(api, "a") is JobStatus.CANCELED
        assert [c.job_id for c in await worker.claim(5)] == ["b"]
        assert await api.client.hget(api.keys.job("a"), "worker") is None
        assert await api.client.xlen(api.keys.dispatch) == 1


async def test_an_entry_whose_job_ended_another_way_is_dropped_at_claim(
    tmp_path: Path, prefix: str
) -> None:
    """A job ended while it was still queued (stored by a node without the queue, say)
    is taken out of the queue by the claim, never returned (and given no entry)."""
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        worker = _queue(api, "w-1")
        await worker.ensure_group()
        await api.commit(script.created("a"))
        api.node = None  # a commit that does not touch the queue
        await api.commit(_cancelled(script, "a"))
        assert await api.client.zcard(api.keys.queued) == 1
        assert await worker.claim(3) == []
        assert await api.client.zcard(api.keys.queued) == 0
        assert await api.client.xlen(api.keys.dispatch) == 0
        assert await _pending(api) == 0


async def test_a_cancel_that_loses_the_race_to_a_claim_goes_to_the_worker(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        worker = _queue(api, "w-1")
        await worker.ensure_group()
        await api.commit(script.created("a"))
        [claim] = await worker.claim(1)
        assert not await worker.cancel_requested("a")
        before = await keys_under(SHARED_URL, prefix)

        # The API node's cancel commit is refused whole: the worker holds the job.
        with pytest.raises(JobClaimed, match="CLAIMED job a by w-1"):
            await api.commit(_cancelled(script, "a"))
        assert await keys_under(SHARED_URL, prefix) == before

        async with api.client.pubsub(channels=[api.keys.cancel_channel]) as pubsub:
            assert await _queue(api, "api-1").request_cancel("a") == "w-1"
            message = await anext(pubsub)
            while message["type"] != "message":
                message = await anext(pubsub)
            assert message["data"] == "a"
        # The worker sees the flag (it checks once it listens for cancels), and its own
        # commit ending the job (as its worker, under its claim attempt) is accepted.
        assert await worker.cancel_requested("a")
        ended = _cancelled(script, "a")
        ended.fences["a"] = claim.attempt
        await RedisStorage(
            api.client,
            prefix=prefix,
            node="w-1",
            history_ttl=3600.0,
            max_history_events=10_000,
            artifacts_dir=tmp_path,
        ).commit(ended)
        assert await _status(api, "a") is JobStatus.CANCELED
        assert claim.job_id == "a"
        # An ended job has no worker to ask.
        assert await _queue(api, "api-1").request_cancel("a") is None
        assert await _queue(api, "api-1").request_cancel("missing") is None
