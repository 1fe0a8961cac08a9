"""Fair dispatch across the cluster against real Redis: when jobs of several users wait,
a worker's claims serve the users in turn (contract section 9), first in first out
within each user's line, whichever node queued them.
"""

from __future__ import annotations

from pathlib import Path

from support.cluster import (
    WAITING,
    api_store,
    has_status,
    node,
    node_store,
    queue_of,
    running_broadcaster,
    submit,
    until,
)

from aura_actors.runtime import JobStatus


async def test_a_users_one_job_is_claimed_second_not_after_anothers_backlog(
    tmp_path: Path, prefix: str
) -> None:
    """A queues 10 jobs, then B 1 (through another node): a worker claiming one at a
    time gets B's second; A's come in their order."""
    async with api_store(tmp_path, prefix) as (api, nursery):
        api1_b = running_broadcaster(api, nursery)
        api2_b = running_broadcaster(node_store(api, "api-2"), nursery)
        for n in range(10):
            await submit(api1_b, f"a{n}", owner="A")
        await submit(api2_b, "b0", owner="B")
        worker = queue_of(node_store(api, "w-1"))
        order = []
        for _ in range(11):
            [claim] = await worker.claim(1)
            order.append(claim.job_id)
        assert order == ["a0", "b0"] + [f"a{n}" for n in range(1, 10)]
        assert await worker.claim(1) == []
        assert await api.client.exists([api.keys.ring, api.keys.queued]) == 0


async def test_one_claim_of_several_slots_takes_the_users_in_turn(
    tmp_path: Path, prefix: str
) -> None:
    """A claim of several jobs goes round the users; a user whose only queued job was
    cancelled leaves the turn order; a job handed back waits at the end of its user's
    line, its user back in the turn order behind the others."""
    async with api_store(tmp_path, prefix) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        for name, owner in [("a0", "A"), ("a1", "A"), ("a2", "A"), ("b0", "B"), ("c0", "C")]:
            await submit(api_b, name, owner=owner)
        (await submit(api_b, "d0", owner="D")).finish_canceled()  # cancelled while queued
        assert await api_b.barrier() is None
        w1, w2 = queue_of(node_store(api, "w-1")), queue_of(node_store(api, "w-2"))
        got = await w1.claim(4)
        assert [c.job_id for c in got] == ["a0", "b0", "c0", "a1"]
        assert await api.client.lrange(api.keys.ring, 0, -1) == ["u:A"]
        assert (await w1.hand_back("b0", got[1].attempt)).value == "queued"
        assert await api.client.lrange(api.keys.ring, 0, -1) == ["u:A", "u:B"]
        assert [c.job_id for c in await w2.claim(5)] == ["a2", "b0"]
        assert await api.client.zcard(api.keys.queued) == 0


async def test_a_worker_with_one_slot_runs_the_second_users_job_next(
    tmp_path: Path, prefix: str
) -> None:
    """Through the runtimes: ann queues 10 jobs on one API node, then bob 1 on another;
    a worker with one slot runs ann's first, and once it ends, bob's."""
    async with (
        node(tmp_path, prefix, "api", "api-1") as api1,
        node(tmp_path, prefix, "api", "api-2") as api2,
    ):
        anns = [(await api1.submit("synthetic", WAITING, owner="ann")).id for _ in range(10)]
        bobs = (await api2.submit("synthetic", WAITING, owner="bob")).id
        async with node(tmp_path, prefix, "worker", "w-1", max_concurrent_jobs=1):
            await until(has_status, api1, anns[0], JobStatus.RUNNING)
            await api1.cancel(anns[0])
            await until(has_status, api1, bobs, JobStatus.RUNNING)
            assert (await api2.get(anns[1])).status is JobStatus.QUEUED
            await api2.cancel(bobs)
            await until(has_status, api1, anns[1], JobStatus.RUNNING)


async def test_an_entry_queued_the_old_way_is_not_lost(tmp_path: Path, prefix: str) -> None:
    """A job queued by an earlier version (an unread entry in the dispatch stream, named
    by its hash, and in no line) is queued again by the first claim that meets it."""
    async with api_store(tmp_path, prefix) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        client, keys = api.client, api.keys
        worker = queue_of(node_store(api, "w-1"))
        await worker.ensure_group()
        await submit(api_b, "old", owner="A")
        # As the earlier version left it: an entry, and nothing in the queue.
        for key in (keys.queued, keys.line("u:A")):
            await client.zrem(key, ["old"])
        await client.lrem(keys.ring, 0, "u:A")
        entry = await client.xadd(keys.dispatch, {"j": "old"})
        await client.hset(keys.job("old"), {"entry": entry})
        await submit(api_b, "new", owner="B")

        got = await worker.claim(5)
        assert [c.job_id for c in got] == ["new", "old"]
        assert got[1].entry != entry
        assert await client.xlen(keys.dispatch) == 2  # the old entry went, each has its own


async def test_a_queued_job_deleted_leaves_the_queue(tmp_path: Path, prefix: str) -> None:
    """Deleting a job still queued takes it out of its owner's line, the ring and the
    queue count, so no claim meets it and it holds no room."""
    async with api_store(tmp_path, prefix) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        await submit(api_b, "a0", owner="A")
        await submit(api_b, "b0", owner="B")
        await api.delete("a0")
        assert await api.client.lrange(api.keys.ring, 0, -1) == ["u:B"]
        assert await api.client.zrange(api.keys.queued, 0, -1) == ("b0",)
        assert [c.job_id for c in await queue_of(node_store(api, "w-1")).claim(5)] == ["b0"]
