"""Fencing against real Redis: a job a worker holds is written only by that worker, under
the claim attempt it holds it under.

``api-1`` stores and queues jobs; workers claim them (attempt 1, 2, ...). A worker
whose job was taken from it (here: by a reaper, its heartbeat being absent) is
refused whole when it writes to that job, and its broadcaster drops that job's
writes, tells the runtime, and stores the rest of the batch at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cluster import (
    api_store,
    holder,
    kinds,
    node_store,
    queue_of,
    reaper_of,
    record_of,
    running_broadcaster,
    running_on,
    stream,
)
from support.redis import SHARED_URL, keys_under, open_store
from support.store_script import Script

from aura_actors.cluster import Fenced, JobClaimed, RedisStorage
from aura_actors.protocol import WarningData
from aura_actors.runtime import Broadcaster, Commit, EventType, Job, JobStatus


def _warning(script: Script, job_id: str, attempt: int | None = None) -> Commit:
    commit = script.warning(job_id, None)
    if attempt is not None:
        commit.fences[job_id] = attempt
    return commit


async def _taken_over(
    store: RedisStorage, broadcaster: Broadcaster, dead: str, max_attempts: int = 9
) -> None:
    """Node ``store.node`` takes over every job of ``dead`` (which has no heartbeat)."""
    reaper = reaper_of(store, broadcaster, max_attempts=max_attempts)
    assert dead in await reaper.dead_workers()
    await reaper.reap()


async def test_a_claim_gives_the_next_attempt_and_only_its_holder_writes_under_it(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        w1, w2 = node_store(api, "w-1"), node_store(api, "w-2")
        await queue_of(w1).ensure_group()
        await api.commit(script.created("a"))
        [claim] = await queue_of(w1).claim(1)
        assert (claim.job_id, claim.attempt, claim.taken_from) == ("a", 1, None)
        assert await holder(api.client, api, "a") == ("w-1", "1")

        await w1.commit(_warning(script, "a", 1))  # the holder, under its attempt
        before = await keys_under(SHARED_URL, prefix)
        for store, attempt in ((w1, None), (w1, 2), (w2, 1), (w2, None), (api, None)):
            with pytest.raises(Fenced) as refused:
                await store.commit(_warning(script, "a", attempt))
            assert refused.value.job_ids == {"a"}
        assert await keys_under(SHARED_URL, prefix) == before  # nothing of them applied
        assert len(await stream(api, "a")) == 2


async def test_a_cancel_that_loses_the_race_to_a_claim_names_the_job(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as api:
        await queue_of(node_store(api, "w-1")).ensure_group()
        await api.commit(script.created("a"))
        await queue_of(node_store(api, "w-1")).claim(1)
        cancel = script.item(
            "a", None, EventType.JOB_CANCELLED, {"message": "x"}, status="Canceled"
        )
        with pytest.raises(JobClaimed, match="CLAIMED job a by w-1") as refused:
            await api.commit(cancel)
        assert refused.value.job_ids == {"a"}


async def test_a_worker_whose_job_was_taken_is_fenced_off_and_its_other_jobs_go_on(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        w1, w2 = node_store(api, "w-1"), node_store(api, "w-2")
        api_b = running_broadcaster(api, nursery)
        old = running_broadcaster(w1, nursery)
        fenced: list[list[Job]] = []
        old.on_fenced = fenced.append
        [a] = await running_on(api_b, w1, old, ["a"])
        # w-1 is paused past its timeout (it sends no heartbeat): w-2 takes "a" over.
        await _taken_over(w2, running_broadcaster(w2, nursery), "w-1")
        assert await holder(api.client, api, "a") == ("w-2", "2")
        # w-1 holds another job, claimed afterwards.
        [b] = await running_on(api_b, w1, old, ["b"])
        a_before = [e.id for e in await stream(api, "a")]

        # w-1 wakes up and writes to both in one batch: "a" is dropped, "b" is stored.
        for job in (a, b, a, b):
            job.emit(WarningData.build(job_id=job.id, step=None, message="still here"))
        assert await old.barrier() is None
        assert fenced == [[a]] and a.fenced and not b.fenced
        assert [e.id for e in await stream(api, "a")] == a_before
        assert kinds(await stream(api, "b"))[-2:] == [(EventType.WARNING, None)] * 2

        # Later writes of "a" are dropped before they reach Redis: no second refusal.
        a.emit(WarningData.build(job_id="a", step=None, message="again"))
        b.emit(WarningData.build(job_id="b", step=None, message="again"))
        assert await old.barrier() is None
        assert fenced == [[a]]
        assert [e.id for e in await stream(api, "a")] == a_before
        assert len(await stream(api, "b")) == 5
        assert (await record_of(api, "a")).status is JobStatus.RUNNING
