"""A worker node's wiring of fencing and takeovers, in one trio run on a real Redis prefix.

- The reaper's takeovers run in the claim loop like claims (a ``warning``, then
  ``job-status`` Running again), and one beyond the worker's free slots is handed
  back to the queue, then claimed when a slot frees.
- A job taken from the worker (its hash moved to another holder) has its next
  write refused: the worker cancels its actor, and nothing of its end is stored.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import trio
from support.cluster import (
    announce,
    kinds,
    new_job,
    node,
    node_store,
    queue_of,
    running_broadcaster,
    start,
    stream,
)
from support.redis import open_store
from support.streams import wait_until

from aura_actors.cluster import KeyLayout
from aura_actors.runtime import EventType, JobStatus, Runtime

#: About a second of work, reporting as it goes.
STEPPING = {"stages": 1, "ticks": 5, "tickSeconds": 0.2}


def worker_node(
    tmp_path: Path, prefix: str, name: str, **settings: Any
) -> AbstractAsyncContextManager[Runtime]:
    """A node of role ``all`` with a short ``worker_timeout`` (0.6 s)."""
    return node(tmp_path, prefix, "all", name, worker_timeout=0.6, **settings)


async def test_takeovers_run_like_claims_and_one_beyond_the_free_slots_is_handed_back(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix) as store, trio.open_nursery() as nursery:
        # A worker that claimed and started two jobs, and died (it never sent a heartbeat).
        dead = node_store(store, "w-dead")
        broadcaster = running_broadcaster(dead, nursery)
        for job_id in ("j0", "j1"):
            job = new_job(broadcaster, job_id, None, pipeline="synthetic", params=STEPPING)
            assert await announce(job) is None
        await queue_of(dead).ensure_group()
        for claim in await queue_of(dead).claim(2):
            await start(broadcaster, dead, claim)

        async with worker_node(tmp_path, prefix, "w", max_attempts=2, max_concurrent_jobs=1) as w:
            for job_id in ("j0", "j1"):
                with trio.fail_after(20), await w.subscribe_job(job_id) as subscription:
                    events = [event async for event in subscription]
                assert events[-1].type is EventType.JOB_COMPLETED
        for job_id in ("j0", "j1"):
            events = await stream(store, job_id)
            again = [e.data["message"] for e in events if e.type is EventType.WARNING]
            assert again == ["running again (attempt 2)"]
            record = await store.get(job_id)
            assert record is not None
            assert (record.data["node"], record.data["attempt"]) == ("w", 2)
        # One was run where it was taken over (claim attempt 2); the other, with no slot
        # free, was handed back and claimed again (3).
        attempts = [await store.client.hget(store.keys.job(j), "attempt") for j in ("j0", "j1")]
        assert sorted(attempts) == ["2", "3"]
        nursery.cancel_scope.cancel()


async def test_a_job_taken_from_the_worker_has_its_actor_cancelled_and_its_end_dropped(
    tmp_path: Path, prefix: str
) -> None:
    long = {"stages": 1, "ticks": 10_000, "tickSeconds": 0.02}
    async with worker_node(tmp_path, prefix, "w") as w:
        job = await w.submit("synthetic", long)
        await wait_until(lambda: w.running_count == 1, within=10)
        async with open_store(tmp_path, prefix) as store:
            # Another worker holds it now (as a reaper's takeover leaves its hash).
            await store.client.hset(
                KeyLayout(prefix).job(job.id), {"worker": "w-2", "attempt": "7"}
            )
            await wait_until(lambda: w.running_count == 0, within=10)
            events = await stream(store, job.id)
            record = await store.get(job.id)
    assert record is not None and record.status is JobStatus.RUNNING
    assert EventType.JOB_CANCELLED not in {e.type for e in events}
    assert kinds(events)[:2] == [
        (EventType.JOB_STATUS, "Queued"),
        (EventType.JOB_STATUS, "Running"),
    ]
