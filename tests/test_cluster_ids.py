"""Two writers on one Redis prefix (an API node and a worker): their ids interleave.

Each node's broadcaster stamps ids from its own clock; when the other node has
stored newer ones, the commit script gives the batch new ids after them in the
same step, and the node renames its copies. Here both clocks stand still at the
same millisecond, so every batch collides: still every event is stored once,
ids only go up in every stream, and each snapshot names its job's newest event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from support.redis import SHARED_URL, keys_under, open_store
from support.store_script import Script

from aura_actors.cluster import RedisStorage
from aura_actors.cluster._errors import CommitRefused
from aura_actors.protocol import WarningData
from aura_actors.runtime import Broadcaster, EventId, EventIdGenerator, EventType, Hub, Job
from aura_actors.runtime._outgoing import CommitWaiter


def _node(store: RedisStorage, nursery: trio.Nursery) -> Broadcaster:
    broadcaster = Broadcaster(
        store, Hub(), id_generator=EventIdGenerator(lambda: 1_800_000_000_000)
    )
    nursery.start_soon(broadcaster.run)
    return broadcaster


def _job(broadcaster: Broadcaster, job_id: str) -> Job:
    return Job(
        job_id=job_id, pipeline="p", params={}, stages=(), owner="alice", broadcaster=broadcaster
    )


def _warn(job: Job, n: int) -> None:
    job.emit(WarningData.build(job_id=job.id, step=None, message=f"warning {n}"))


async def test_two_writers_interleave_without_loss_and_ids_only_go_up(
    tmp_path: Path, prefix: str
) -> None:
    # Without new ids, the colliding batches would be refused again and again.
    with trio.fail_after(30):
        await _interleave(tmp_path, prefix)


async def _interleave(tmp_path: Path, prefix: str) -> None:
    async with (
        open_store(tmp_path, prefix, node="api-1") as api_store,
        trio.open_nursery() as nursery,
    ):
        worker_store = RedisStorage(
            api_store.client,
            prefix=prefix,
            node="w-1",
            history_ttl=3600.0,
            max_history_events=10_000,
            artifacts_dir=tmp_path,
        )
        api, worker = _node(api_store, nursery), _node(worker_store, nursery)
        jobs = []
        for index in range(4):
            job = _job(api, f"j{index}")
            waiter = CommitWaiter()
            job.announce_queued(waiter)
            await waiter.done.wait()
            assert waiter.error is None
            # The worker's copy of the job writes its events (stamped from the same
            # millisecond as the API node's, so they collide).
            running = _job(worker, job.id)
            running.start_attempt("w-1")  # job-status Running, with its snapshot
            for n in range(2):
                _warn(running, n)
            await worker.barrier()
            jobs.append(running)
        assert await api.barrier() is None
        assert await worker.barrier() is None

        for job in jobs:
            events = await api_store.job_events(job.id, None, 100)
            ids = [event.id for event in events]
            assert len(ids) == 4 and ids == sorted(set(ids))  # type: ignore[type-var]
            assert job.last_event_id == ids[-1]
            # The stored snapshot names the id its Running event was stored with.
            running_id = next(
                e.id
                for e in events
                if e.type is EventType.JOB_STATUS and e.data["status"] == "Running"
            )
            record = await api_store.get(job.id)
            assert record is not None and record.last_event_id == running_id
        owner = await api_store.owner_events("alice", EventId(0, 0), 100)
        owner_ids = [event.id for event in owner]
        assert len(owner_ids) == 16 and owner_ids == sorted(set(owner_ids))  # type: ignore[type-var]
        nursery.cancel_scope.cancel()


async def test_a_cluster_commit_sent_again_after_a_lost_reply_is_applied_once(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix, node="api-1") as store:
        created = script.created("a")
        await store.commit(created)
        before = await keys_under(SHARED_URL, prefix)
        await store.commit(created)  # the same commit (its token) again
        assert await keys_under(SHARED_URL, prefix) == before
        progress = script.running("a")
        await store.commit(progress)
        assert len(await store.job_events("a", None, 10)) == 2
        for _ in range(5):
            await store.commit(script.warning("a", None))
        # Only the node's last applied commit is kept for a retry: one key, not one each.
        applied = [key for key in await keys_under(SHARED_URL, prefix) if ":applied:" in key]
        assert applied == [f"{store.keys.root}applied:api-1"]
        with pytest.raises(CommitRefused, match="EXISTS"):  # an older one is not a retry
            await store.commit(created)
        assert len(await store.job_events("a", None, 10)) == 7


async def test_a_commit_behind_another_nodes_ids_gets_new_ones_in_the_same_step(
    tmp_path: Path, prefix: str
) -> None:
    """Redis gives a stale commit's events new ids, consecutive after the newest stored;
    the reply names the first; the snapshots naming them are stored renamed; a retry of
    the same commit (a lost reply) gets the same reply and stores nothing more."""
    ahead, behind = Script(), Script()
    ahead.ids.resume_after(EventId(1_900_000_000_000, 5))  # another node's clock ran ahead
    async with open_store(tmp_path, prefix, node="api-1") as store:
        first = ahead.created("a", "alice")
        assert await store.commit(first) is None  # nothing newer stored: kept as it came
        newest = first.events[0].id
        assert newest is not None
        stale = behind.created("b", "alice")
        # Two events; the snapshot names the first.
        stale.events += behind.running("b", "alice").events
        old_first = stale.events[0].id
        assert old_first is not None and old_first < newest
        stale.created[0].data["params"] = {"lastEventId": str(old_first)}  # not renamed

        given = await store.commit(stale)

        assert given is not None and given > newest
        expected = [given, EventId(given.millis, given.counter + 1)]
        assert [e.id for e in await store.job_events("b", None, 10)] == expected
        owner = await store.owner_events("alice", EventId(0, 0), 10)
        assert [e.id for e in owner] == [newest, *expected]
        record = await store.get("b")
        assert record is not None and record.last_event_id == given
        assert record.data["params"] == {"lastEventId": str(old_first)}
        before = await keys_under(SHARED_URL, prefix)
        assert await store.commit(stale) == given  # the same commit (its token) again
        assert await keys_under(SHARED_URL, prefix) == before
