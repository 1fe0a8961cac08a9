"""The reaper against real Redis: a dead worker's jobs are taken over exactly once, then
run again while attempts remain, else end ``Failed`` with ``worker_lost``.

Workers here are dead when they send no heartbeat (their key is absent), which
is what the reaper goes by; that a heartbeat that stops expires is
``test_cluster_presence.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from support.cluster import (
    api_store,
    claimed,
    ended_failed,
    holder,
    kinds,
    node_and_broadcaster,
    node_store,
    pending_of,
    queue_of,
    reaper_of,
    record_of,
    running_broadcaster,
    start,
    stream,
    submit,
)

from aura_actors.cluster import WORKER_LOST, Claim, Fenced, Presence, Reaper, RedisStorage
from aura_actors.protocol import WarningData
from aura_actors.runtime import (
    Broadcaster,
    Commit,
    Event,
    EventId,
    EventIdGenerator,
    EventType,
    Job,
    JobStatus,
)


async def _warning(store: RedisStorage, job_id: str, *, attempt: int) -> Commit:
    """A warning of ``job_id`` with an id after every stored one, under ``attempt``."""
    ids = EventIdGenerator()
    ids.resume_after(EventId.parse(str(await store.client.hget(store.keys.meta, "last_event_id"))))
    data = {"jobId": job_id, "message": "hello"}
    event = Event(ids.next_id(), EventType.WARNING, data, job_id, "alice")
    return Commit(events=[event], fences={job_id: attempt})


async def _dead_worker_runs(
    api: RedisStorage, nursery: trio.Nursery, names: list[str], *, started: bool = True
) -> tuple[Broadcaster, list[Job]]:
    """Jobs ``names`` stored and queued by api-1, claimed by ``w-dead`` (which sends no
    heartbeat) and, if ``started``, running there (their ``Running`` stored): w-dead's
    broadcaster and its jobs."""
    api_b = running_broadcaster(api, nursery)
    dead, dead_b = node_and_broadcaster(api, "w-dead", nursery)
    claims = await claimed(api_b, dead, names)
    jobs = [await start(dead_b, dead, claim) for claim in claims] if started else []
    return dead_b, jobs


async def test_of_reapers_racing_over_a_dead_workers_jobs_exactly_one_takes_each(
    tmp_path: Path, prefix: str
) -> None:
    names = ["a", "b", "c"]
    async with api_store(tmp_path, prefix) as (api, nursery):
        await _dead_worker_runs(api, nursery, names)
        stores = [node_store(api, f"w-{n}") for n in range(4)]
        reapers = [reaper_of(s, running_broadcaster(s, nursery), max_attempts=2) for s in stores]
        # The minimum idle holds a reaper back from entries claimed a moment ago.
        slow = reaper_of(stores[0], reapers[0].broadcaster, max_attempts=2, min_idle=60)
        assert (await slow.reap()).run_again == []
        assert await pending_of(api) == {"w-dead": 3}

        got: dict[str, list[Claim]] = {}

        async def reap(reaper: Reaper) -> None:
            got[reaper.queue.node] = (await reaper.reap()).run_again

        async with trio.open_nursery() as race:
            for reaper in reapers:
                race.start_soon(reap, reaper)

        taken = [claim for claims in got.values() for claim in claims]
        assert sorted(c.job_id for c in taken) == names
        for claim in taken:
            assert (claim.attempt, claim.taken_from) == (2, "w-dead")
        winners = {c.job_id: node for node, claims in got.items() for c in claims}
        for name in names:
            assert await holder(api.client, api, name) == (winners[name], "2")
        # Each entry is pending for its new holder only; the dead worker left the group.
        expected: dict[str, int] = {}
        for node in winners.values():
            expected[node] = expected.get(node, 0) + 1
        assert await pending_of(api) == expected
        consumers = await api.client.xinfo_consumers(api.keys.dispatch, "workers")
        assert "w-dead" not in {str(c["name"]) for c in consumers}


async def test_a_job_taken_over_runs_again_with_a_warning_and_the_dead_worker_is_fenced(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        dead_b, [old] = await _dead_worker_runs(api, nursery, ["a"])
        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaped = await reaper_of(w1, w1_b, max_attempts=2).reap()
        assert reaped.removed == ["w-dead"] and reaped.ended == []
        [claim] = reaped.run_again
        # The worker runs it as it runs a fresh claim: a warning, then Running again.
        job = await start(w1_b, w1, claim)
        assert job.attempt == 2
        assert kinds(await stream(api, "a")) == [
            (EventType.JOB_STATUS, "Queued"),
            (EventType.JOB_STATUS, "Running"),
            (EventType.WARNING, None),
            (EventType.JOB_STATUS, "Running"),
        ]
        record = await record_of(api, "a")
        assert record.status is JobStatus.RUNNING and record.data["attempt"] == 2
        # The dead worker comes back and writes: refused, nothing stored.
        old.emit(WarningData.build(job_id="a", step=None, message="back"))
        assert await dead_b.barrier() is None
        assert old.fenced and len(await stream(api, "a")) == 4


async def test_with_no_attempt_left_a_dead_workers_job_ends_failed_worker_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        await _dead_worker_runs(api, nursery, ["a"])
        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaped = await reaper_of(w1, w1_b, max_attempts=1).reap()
        assert reaped.run_again == [] and [c.job_id for c in reaped.ended] == ["a"]
        assert await w1_b.barrier() is None

        record, events = await ended_failed(api, "a", WORKER_LOST)
        assert events[-1].data["errors"][0]["code"] == WORKER_LOST
        assert record.last_event_id == events[-1].id
        # Its dispatch entry went with its terminal record; nothing is left to reap or claim.
        assert await pending_of(api) == {}
        assert await api.client.xlen(api.keys.dispatch) == 0
        assert await queue_of(node_store(api, "w-2")).claim(5) == []
        again = await reaper_of(node_store(api, "w-2"), w1_b).reap()
        assert again.run_again == again.ended == []


async def test_a_job_claimed_but_never_started_runs_again_whatever_its_attempts(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        await _dead_worker_runs(api, nursery, ["a"], started=False)
        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaped = await reaper_of(w1, w1_b, max_attempts=1).reap()
        [claim] = reaped.run_again
        job = await start(w1_b, w1, claim)
        assert job.attempt == 1  # its first run
        assert kinds(await stream(api, "a")) == [
            (EventType.JOB_STATUS, "Queued"),
            (EventType.JOB_STATUS, "Running"),
        ]


async def test_a_dead_workers_job_whose_cancel_was_asked_for_ends_canceled(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        await _dead_worker_runs(api, nursery, ["a"])
        assert await queue_of(api).request_cancel("a") == "w-dead"
        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaped = await reaper_of(w1, w1_b, max_attempts=3).reap()
        assert reaped.run_again == [] and [c.job_id for c in reaped.ended] == ["a"]
        assert await w1_b.barrier() is None
        assert (await record_of(api, "a")).status is JobStatus.CANCELED
        assert kinds(await stream(api, "a"))[-1] == (EventType.JOB_CANCELLED, None)


async def test_a_live_worker_is_not_reaped(tmp_path: Path, prefix: str) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        api_b = running_broadcaster(api, nursery)
        alive = node_store(api, "w-alive")
        await nursery.start(Presence(api.client, api.keys, "w-alive", timeout=30).run)
        await queue_of(alive).ensure_group()
        await submit(api_b, "a")
        await queue_of(alive).claim(1)
        w1, w1_b = node_and_broadcaster(api, "w-1", nursery)
        reaper = reaper_of(w1, w1_b)
        assert await reaper.dead_workers() == []
        reaped = await reaper.reap()
        assert reaped.run_again == reaped.ended == [] and reaped.removed == []
        assert await holder(api.client, api, "a") == ("w-alive", "1")
        with pytest.raises(Fenced):  # and w-1 may not write to it
            await w1.commit(await _warning(w1, "a", attempt=1))
