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
    holder,
    kinds,
    node_store,
    pending_of,
    queue_of,
    record_of,
    running_broadcaster,
    start,
    stream,
    submit,
)
from support.redis import open_store

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


def _reaper(
    store: RedisStorage, broadcaster: Broadcaster, *, max_attempts: int = 1, min_idle: float = 0
) -> Reaper:
    return Reaper(
        queue_of(store),
        store,
        broadcaster,
        worker_timeout=5,
        max_attempts=max_attempts,
        min_idle=min_idle,
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
    dead = node_store(api, "w-dead")
    dead_b = running_broadcaster(dead, nursery)
    await queue_of(dead).ensure_group()
    for name in names:
        await submit(api_b, name)
    claims = await queue_of(dead).claim(len(names))
    assert [c.job_id for c in claims] == names
    jobs = [await start(dead_b, dead, claim) for claim in claims] if started else []
    return dead_b, jobs


async def test_of_reapers_racing_over_a_dead_workers_jobs_exactly_one_takes_each(
    tmp_path: Path, prefix: str
) -> None:
    names = ["a", "b", "c"]
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        await _dead_worker_runs(api, nursery, names)
        stores = [node_store(api, f"w-{n}") for n in range(4)]
        reapers = [_reaper(s, running_broadcaster(s, nursery), max_attempts=2) for s in stores]
        # The minimum idle holds a reaper back from entries claimed a moment ago.
        slow = _reaper(stores[0], reapers[0].broadcaster, max_attempts=2, min_idle=60)
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
        nursery.cancel_scope.cancel()


async def test_a_job_taken_over_runs_again_with_a_warning_and_the_dead_worker_is_fenced(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        dead_b, [old] = await _dead_worker_runs(api, nursery, ["a"])
        w1 = node_store(api, "w-1")
        w1_b = running_broadcaster(w1, nursery)
        reaped = await _reaper(w1, w1_b, max_attempts=2).reap()
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
        nursery.cancel_scope.cancel()


async def test_with_no_attempt_left_a_dead_workers_job_ends_failed_worker_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        await _dead_worker_runs(api, nursery, ["a"])
        w1 = node_store(api, "w-1")
        w1_b = running_broadcaster(w1, nursery)
        reaped = await _reaper(w1, w1_b, max_attempts=1).reap()
        assert reaped.run_again == [] and [c.job_id for c in reaped.ended] == ["a"]
        assert await w1_b.barrier() is None

        record = await record_of(api, "a")
        assert record.status is JobStatus.FAILED
        assert record.data["error"]["errors"][0]["code"] == WORKER_LOST
        events = await stream(api, "a")
        assert kinds(events)[-2:] == [
            (EventType.JOB_STATUS, "Failed"),
            (EventType.JOB_FAILED, None),
        ]
        assert events[-1].data["errors"][0]["code"] == WORKER_LOST
        assert record.last_event_id == events[-1].id
        # Its dispatch entry went with its terminal record; nothing is left to reap or claim.
        assert await pending_of(api) == {}
        assert await api.client.xlen(api.keys.dispatch) == 0
        assert await queue_of(node_store(api, "w-2")).claim(5) == []
        again = await _reaper(node_store(api, "w-2"), w1_b).reap()
        assert again.run_again == again.ended == []
        nursery.cancel_scope.cancel()


async def test_a_job_claimed_but_never_started_runs_again_whatever_its_attempts(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        await _dead_worker_runs(api, nursery, ["a"], started=False)
        w1 = node_store(api, "w-1")
        w1_b = running_broadcaster(w1, nursery)
        reaped = await _reaper(w1, w1_b, max_attempts=1).reap()
        [claim] = reaped.run_again
        job = await start(w1_b, w1, claim)
        assert job.attempt == 1  # its first run
        assert kinds(await stream(api, "a")) == [
            (EventType.JOB_STATUS, "Queued"),
            (EventType.JOB_STATUS, "Running"),
        ]
        nursery.cancel_scope.cancel()


async def test_a_dead_workers_job_whose_cancel_was_asked_for_ends_canceled(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        await _dead_worker_runs(api, nursery, ["a"])
        assert await queue_of(api).request_cancel("a") == "w-dead"
        w1 = node_store(api, "w-1")
        w1_b = running_broadcaster(w1, nursery)
        reaped = await _reaper(w1, w1_b, max_attempts=3).reap()
        assert reaped.run_again == [] and [c.job_id for c in reaped.ended] == ["a"]
        assert await w1_b.barrier() is None
        assert (await record_of(api, "a")).status is JobStatus.CANCELED
        assert kinds(await stream(api, "a"))[-1] == (EventType.JOB_CANCELLED, None)
        nursery.cancel_scope.cancel()


async def test_a_live_worker_is_not_reaped(tmp_path: Path, prefix: str) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api, trio.open_nursery() as nursery:
        api_b = running_broadcaster(api, nursery)
        alive = node_store(api, "w-alive")
        await nursery.start(Presence(api.client, api.keys, "w-alive", timeout=30).run)
        await queue_of(alive).ensure_group()
        await submit(api_b, "a")
        await queue_of(alive).claim(1)
        w1 = node_store(api, "w-1")
        reaper = _reaper(w1, running_broadcaster(w1, nursery))
        assert await reaper.dead_workers() == []
        reaped = await reaper.reap()
        assert reaped.run_again == reaped.ended == [] and reaped.removed == []
        assert await holder(api.client, api, "a") == ("w-alive", "1")
        with pytest.raises(Fenced):  # and w-1 may not write to it
            await w1.commit(await _warning(w1, "a", attempt=1))
        nursery.cancel_scope.cancel()
