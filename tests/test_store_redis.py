"""The Redis store (``RedisStorage``) on its own, against real Redis.

The same script of commits as the embedded store's tests (``support.store_script``):
fed to ``RedisStorage`` and to the in-memory storage, both must give the same
answers. Each test keeps its keys under a prefix of its own on the shared Redis
(127.0.0.1:6379) and deletes them at the end; the tests that take Redis down run
a private ``redis-server``. Wall-clock time (expiry, retention) is injected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.redis import (
    SHARED_URL,
    keys_under,
    open_store,
)
from support.store_script import (
    DAY,
    T0,
    Script,
    Step,
    WallClock,
    batches,
    compacted,
    copy_commit,
    events_of,
    keys,
    run_script,
)

from aura_actors.cluster import CommitRefused, RedisStorage
from aura_actors.runtime import (
    EventId,
    JobRecord,
    JobStatus,
    JobStorage,
    MemoryStorage,
)


async def _record(store: RedisStorage, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    assert record is not None, job_id
    return record


async def _all(store: JobStorage, **query: Any) -> list[JobRecord]:
    options: dict[str, Any] = {"owner": None, "any_owner": True, "statuses": None}
    options.update(query)
    return await store.list_jobs(before_seq=None, limit=100, **options)


# -- round trip ---------------------------------------------------------------------------------


async def test_commit_then_read_back_jobs_events_and_logs(tmp_path: Path, prefix: str) -> None:
    script = Script()
    anonymous: list[Step] = [lambda: script.created("n1"), lambda: script.running("n1")]
    commits = run_script(
        script.life("a1", "alice", runs=[2]), script.life("b1", "bob", runs=[1]), anonymous
    )
    alice = events_of(commits, "a1")
    async with open_store(tmp_path, prefix) as store:
        for commit in batches(commits, 3):
            await store.commit(commit)

        a1 = await _record(store, "a1")
        assert a1.owner == "alice" and a1.status is JobStatus.DONE
        assert a1.data == script.snapshot("a1", "Done", a1.last_event_id or EventId(0, 0))
        assert a1.last_event_id == alice[-1].id
        assert not a1.history_expired and a1.truncated_through is None
        n1 = await _record(store, "n1")
        assert n1.owner is None and n1.status is JobStatus.RUNNING
        assert await store.get("nope") is None

        stored = await store.job_events("a1", None, 1000)
        assert keys(stored) == keys(compacted(alice, 10_000)[0])
        for index, event in enumerate(stored):
            assert keys(await store.job_events("a1", event.id, 1000)) == keys(stored[index + 1 :])
            assert keys(await store.job_events("a1", event.id, 2)) == keys(stored[index + 1 :][:2])
        assert await store.job_events("nope", None, 10) == []

        alice_events = await store.owner_events("alice", EventId(0, 0), 1000)
        assert keys(alice_events) == keys(stored)
        anonymous_events = await store.owner_events(None, EventId(0, 0), 1000)
        assert [(e.job_id, e.owner) for e in anonymous_events] == [("n1", None)] * 2

        assert await store.logs("a1") == [
            {"at": "now", "level": "info", "stage": None, "message": "a1 done"}
        ]
        assert await store.logs("n1") == []
        assert await store.count_jobs() == {("Done", "synthetic"): 2, ("Running", "synthetic"): 1}

        listing = await _all(store)
        assert [record.id for record in listing] == ["n1", "b1", "a1"]
        seqs = [record.seq for record in listing]
        assert seqs == sorted(seqs, reverse=True)
        older = await store.list_jobs(
            owner=None, any_owner=True, statuses=None, before_seq=seqs[0], limit=10
        )
        assert [record.id for record in older] == ["b1", "a1"]
        mine = await _all(store, owner="alice", any_owner=False)
        assert [record.id for record in mine] == ["a1"]
        nobody = await _all(store, owner=None, any_owner=False)
        assert [record.id for record in nobody] == ["n1"]
        done = await _all(store, statuses={JobStatus.DONE})
        assert [record.id for record in done] == ["b1", "a1"]
        either = await _all(store, statuses={JobStatus.RUNNING, JobStatus.DONE})
        assert [record.id for record in either] == ["n1", "b1", "a1"]
        assert await _all(store, statuses=set()) == []
        assert [
            r.id for r in await _all(store, owner="bob", any_owner=False, statuses={JobStatus.DONE})
        ] == ["b1"]
        with pytest.raises(ValueError, match="never given"):
            await store.list_jobs(
                owner=None, any_owner=True, statuses=None, before_seq=seqs[0] + 2, limit=10
            )

    async with open_store(tmp_path, prefix) as store:  # a new process reads the same
        assert keys(await store.job_events("a1", None, 1000)) == keys(stored)
        assert await store.get("a1") == a1


async def test_recovery_reports_unfinished_jobs_the_newest_id_and_the_count(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    items = [
        *run_script(script.life("done", None, runs=[1])),
        script.created("queued"),
        script.created("running", "alice"),
        script.running("running", "alice"),
        script.created("queued-later"),
    ]
    async with open_store(tmp_path, prefix) as store:
        for item in items:
            await store.commit(item)
    async with open_store(tmp_path, prefix, history_ttl=60, max_history_events=100) as store:
        recovery = await store.open()
        assert [r.id for r in recovery.unfinished] == ["queued", "running", "queued-later"]
        assert [r.status.value for r in recovery.unfinished] == ["Queued", "Running", "Queued"]
        assert recovery.unfinished[1].owner == "alice"
        assert recovery.last_event_id == items[-1].events[0].id
        assert recovery.job_count == 4


async def test_the_keys_are_the_documented_layout(tmp_path: Path, prefix: str) -> None:
    script = Script()
    async with open_store(tmp_path, prefix) as store:
        for item in run_script(script.life("j1", "alice", runs=[1])):
            await store.commit(item)
        await store.commit(script.created("j2"))
    found = set(await keys_under(SHARED_URL, prefix))
    expected = {
        "meta",
        "seq",
        "counts",
        "ended",
        "ended-seq",
        "expiring",
        "job:j1",
        "job:j2",
        "events:j1",
        "events:j2",
        "logs:j1",
        "owner-events:u:alice",
        "owner-events:none",
        "jobs:all",
        "jobs:all:Done",
        "jobs:all:Queued",
        "jobs:u:alice",
        "jobs:u:alice:Done",
        "jobs:none",
        "jobs:none:Queued",
    }
    assert found == {prefix + name for name in expected}


# -- compaction and the per-job bound, the same as in memory ------------------------------------


@pytest.mark.parametrize("bound", [10_000, 7, 2])
@pytest.mark.parametrize("batch_size", [1, 5, 1000])
async def test_histories_match_the_in_memory_storage(
    tmp_path: Path, prefix: str, batch_size: int, bound: int
) -> None:
    script = Script()
    runs = {"a1": [5, 1, 3], "b1": [4, 4], "a2": [0, 6]}
    owners = {"a1": "alice", "b1": "bob", "a2": "alice"}
    items = run_script(*(script.life(j, owners[j], runs=runs[j]) for j in runs))
    memory = MemoryStorage(history_ttl=3600, max_history_events=bound)
    async with open_store(tmp_path, prefix, max_history_events=bound) as redis:
        storages: list[JobStorage] = [memory, redis]
        for commit in batches(items, batch_size):
            for storage in storages:
                await storage.commit(copy_commit(commit))
        for job_id in runs:
            expected, truncated = compacted(events_of(items, job_id), bound)
            for storage in storages:
                name = type(storage).__name__
                record = await storage.get(job_id)
                assert record is not None and record.truncated_through == truncated, name
                history = await storage.job_events(job_id, None, 10_000)
                assert keys(history) == keys(expected), name
                for index, event in enumerate(expected):
                    tail = await storage.job_events(job_id, event.id, 10_000)
                    assert keys(tail) == keys(expected[index + 1 :]), (name, index)
        for owner in ("alice", "bob", None):
            merged = [
                keys(await storage.owner_events(owner, EventId(0, 0), 10_000))
                for storage in storages
            ]
            assert merged[0] == merged[1], owner
        assert await memory.count_jobs() == await redis.count_jobs()


# -- history expiry, retention, delete ----------------------------------------------------------


async def _finish_at(
    store: RedisStorage, clock: WallClock, script: Script, job_id: str, at: float
) -> None:
    clock.now = at
    for item in run_script(script.life(job_id, "alice", runs=[2])):
        await store.commit(item)


async def test_a_history_expires_after_its_ttl_and_the_record_stays(
    tmp_path: Path, prefix: str
) -> None:
    clock = WallClock()
    script = Script()
    async with open_store(tmp_path, prefix, history_ttl=60.0, wall_clock=clock) as store:
        await _finish_at(store, clock, script, "early", T0)
        await _finish_at(store, clock, script, "late", T0 + 30)
        for item in (script.created("live", "alice"), script.running("live", "alice")):
            await store.commit(item)
        early_record = await _record(store, "early")
        history = await store.job_events("early", None, 100)
        assert history

        clock.now = T0 + 59.9  # not yet
        assert not (await _record(store, "early")).history_expired
        assert await store.upkeep() == (0, [])
        assert keys(await store.job_events("early", None, 100)) == keys(history)

        clock.now = T0 + 60.1  # past its TTL: readers see it at once
        assert (await _record(store, "early")).history_expired
        listed = {r.id: r.history_expired for r in await _all(store)}
        assert listed == {"live": False, "late": False, "early": True}
        assert await store.upkeep() == (1, [])
        assert await store.job_events("early", None, 100) == []
        owner_jobs = {e.job_id for e in await store.owner_events("alice", EventId(0, 0), 1000)}
        assert owner_jobs == {"late", "live"}
        assert (await _record(store, "early")).data == early_record.data
        assert await store.logs("early") != []

        clock.now = T0 + 10 * DAY  # a running job's history never expires
        assert await store.upkeep() == (1, [])
        assert len(await store.job_events("live", None, 100)) == 2
    async with open_store(tmp_path, prefix, history_ttl=60.0, wall_clock=clock) as store:
        assert (await _record(store, "early")).history_expired  # after a restart too


def _make_files(tmp_path: Path, *job_ids: str) -> None:
    for job_id in job_ids:
        folder = tmp_path / "artifacts" / job_id
        folder.mkdir(parents=True)
        (folder / "out.bin").write_bytes(b"x" * 100)


async def _assert_deleted(store: RedisStorage, tmp_path: Path, prefix: str, job_id: str) -> None:
    assert await store.get(job_id) is None
    assert await store.job_events(job_id, None, 100) == []
    assert await store.logs(job_id) == []
    assert not (tmp_path / "artifacts" / job_id).exists()
    assert not [k for k in await keys_under(SHARED_URL, prefix) if k.endswith(f":{job_id}")]
    owner_events = await store.owner_events("alice", EventId(0, 0), 10_000)
    assert job_id not in {event.job_id for event in owner_events}
    assert job_id not in {record.id for record in await _all(store)}


async def test_retention_by_days_and_by_count(tmp_path: Path, prefix: str) -> None:
    clock = WallClock()
    script = Script()
    options = {"retention_days": 1.0, "history_ttl": 10 * DAY, "wall_clock": clock}
    async with open_store(tmp_path, prefix, **options) as store:
        await _finish_at(store, clock, script, "old", T0)
        await _finish_at(store, clock, script, "newer", T0 + DAY / 2)
        for item in (script.created("live", "alice"), script.running("live", "alice")):
            await store.commit(item)
        _make_files(tmp_path, "old", "newer", "live")
        clock.now = T0 + DAY - 1
        assert await store.upkeep() == (0, [])
        clock.now = T0 + DAY + 1
        assert await store.upkeep() == (0, ["old"])
        await _assert_deleted(store, tmp_path, prefix, "old")
        assert await store.get("newer") is not None
        assert await store.count_jobs() == {("Done", "synthetic"): 1, ("Running", "synthetic"): 1}

    options = {"retention_jobs": 2, "history_ttl": 10 * DAY, "wall_clock": clock}
    async with open_store(tmp_path, prefix, **options) as store:
        for index in range(4):
            await _finish_at(store, clock, script, f"done-{index}", T0 + DAY + index)
        expired, deleted = await store.upkeep()
        assert expired == 0 and sorted(deleted) == ["done-0", "done-1", "newer"]
        for job_id in ("done-2", "done-3", "live"):
            assert await store.get(job_id) is not None
        assert await store.upkeep() == (0, [])


async def test_delete_removes_record_events_logs_index_entries_and_files(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    async with open_store(tmp_path, prefix) as store:
        for item in run_script(
            script.life("gone", "alice", runs=[3]), script.life("kept", "alice", runs=[1])
        ):
            await store.commit(item)
        _make_files(tmp_path, "gone", "kept")
        await store.delete("gone")
        await _assert_deleted(store, tmp_path, prefix, "gone")
        assert await store.count_jobs() == {("Done", "synthetic"): 1}
        assert (tmp_path / "artifacts" / "kept" / "out.bin").is_file()
        assert len(await store.owner_events("alice", EventId(0, 0), 1000)) == len(
            await store.job_events("kept", None, 1000)
        )
        await store.delete("gone")  # again: nothing to do, no error


# -- atomic commits -----------------------------------------------------------------------------


async def test_a_refused_commit_changes_nothing(tmp_path: Path, prefix: str) -> None:
    """The script checks everything before its first write: an id not after the newest
    stored one, or a job that exists, refuses the whole commit."""
    script = Script()
    async with open_store(tmp_path, prefix) as store:
        first = run_script(script.life("a", "alice", runs=[2]))
        for item in first[:4]:
            await store.commit(item)
        before = await keys_under(SHARED_URL, prefix)

        # A new job, a snapshot, a log and three events, the last of them stale.
        stale = batches([script.created("b", "alice"), *first[4:7]], 10)[0]
        stale.events.append(first[2].events[0])
        with pytest.raises(CommitRefused, match="not greater than"):
            await store.commit(stale)
        # An id equal to the newest stored one, first in its commit.
        again = copy_commit(first[3])
        again.created.append(script.created("c").created[0])
        with pytest.raises(CommitRefused, match="not greater than"):
            await store.commit(batches([script.created("d"), again], 2)[0])
        # A job that exists already.
        duplicate = batches([first[4], script.created("a", "alice")], 2)[0]
        with pytest.raises(CommitRefused, match="EXISTS job a"):
            await store.commit(duplicate)
        assert await keys_under(SHARED_URL, prefix) == before

        # The same commit again after its reply was lost: already applied, a no-op.
        await store.commit(first[3])
        assert await keys_under(SHARED_URL, prefix) == before
        for item in first[4:]:
            await store.commit(item)
        assert (await _record(store, "a")).status is JobStatus.DONE
