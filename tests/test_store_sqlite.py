"""The embedded store (``SqliteStorage``) on its own: what it keeps, compacts, expires and deletes.

Commits here are made by hand (a small script of made-up jobs), the way the
broadcaster makes them: one item per event, merged into batches of any size.
The in-memory storage is the reference for what a history keeps: both are fed
the same commits and must give the same answers. Wall-clock time (history
expiry, retention) is injected; nothing here sleeps.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from support.store_script import (
    DAY,
    T0,
    Script,
    Step,
    WallClock,
    assert_complete,
    batches,
    compacted,
    copy_commit,
    events_of,
    key,
    keys,
    run_script,
)

from aura_actors.pipelines import default_pipelines
from aura_actors.runtime import (
    SCHEMA_VERSION,
    Event,
    EventId,
    EventType,
    JobRecord,
    JobStorage,
    MemoryStorage,
    RuntimeConfig,
    SchemaTooNew,
    SqliteStorage,
    StorageUnavailable,
    open_runtime,
)
from aura_actors.runtime._sqlite_schema import MIGRATIONS


@asynccontextmanager
async def open_store(path: Path, **options: Any) -> AsyncIterator[SqliteStorage]:
    """An opened ``SqliteStorage`` on ``path/jobs.sqlite3`` (closed at the end)."""
    options.setdefault("history_ttl", 3600.0)
    options.setdefault("max_history_events", 10_000)
    options.setdefault("artifacts_dir", path / "artifacts")
    store = SqliteStorage(path / "jobs.sqlite3", **options)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


# -- round trip ---------------------------------------------------------------------------------


async def test_commit_then_read_back_jobs_events_and_logs(tmp_path: Path) -> None:
    script = Script()
    anonymous: list[Step] = [lambda: script.created("n1"), lambda: script.running("n1")]
    commits = run_script(
        script.life("a1", "alice", runs=[2]), script.life("b1", "bob", runs=[1]), anonymous
    )
    alice = events_of(commits, "a1")
    async with open_store(tmp_path) as store:
        for commit in batches(commits, 3):
            await store.commit(commit)

        a1 = await store.get("a1")
        assert a1 is not None and a1.owner == "alice" and a1.status.value == "Done"
        assert a1.data == script.snapshot("a1", "Done", a1.last_event_id or EventId(0, 0))
        assert a1.last_event_id == alice[-1].id
        assert not a1.history_expired and a1.truncated_through is None
        n1 = await store.get("n1")
        assert n1 is not None and n1.owner is None and n1.status.value == "Running"
        assert await store.get("nope") is None

        stored = await store.job_events("a1", None, 1000)
        assert keys(stored) == keys(compacted(alice, 10_000)[0])
        # Paging: after any id, exactly what follows it; the limit is kept.
        for index, event in enumerate(stored):
            assert keys(await store.job_events("a1", event.id, 1000)) == keys(stored[index + 1 :])
            assert keys(await store.job_events("a1", event.id, 2)) == keys(stored[index + 1 :][:2])
        assert await store.job_events("nope", None, 10) == []

        # One owner's events, merged in id order, never another owner's.
        alice_events = await store.owner_events("alice", EventId(0, 0), 1000)
        assert {event.owner for event in alice_events} == {"alice"}
        assert keys(alice_events) == keys(stored)
        anonymous_events = await store.owner_events(None, EventId(0, 0), 1000)
        assert [event.job_id for event in anonymous_events] == ["n1", "n1"]

        assert await store.logs("a1") == [
            {"at": "now", "level": "info", "stage": None, "message": "a1 done"}
        ]
        assert await store.logs("n1") == []

        listing = await store.list_jobs(
            owner=None, any_owner=True, statuses=None, before_seq=None, limit=10
        )
        assert [record.id for record in listing] == ["n1", "b1", "a1"]
        seqs = [record.seq for record in listing]
        assert seqs == sorted(seqs, reverse=True)
        older = await store.list_jobs(
            owner=None, any_owner=True, statuses=None, before_seq=seqs[0], limit=10
        )
        assert [record.id for record in older] == ["b1", "a1"]
        mine = await store.list_jobs(
            owner="alice", any_owner=False, statuses=None, before_seq=None, limit=10
        )
        assert [record.id for record in mine] == ["a1"]

    # A new store on the same file (a restart) reads the same.
    async with open_store(tmp_path) as store:
        assert keys(await store.job_events("a1", None, 1000)) == keys(stored)
        assert (await store.get("a1")) == a1


async def test_recovery_reports_unfinished_jobs_the_newest_id_and_the_count(
    tmp_path: Path,
) -> None:
    script = Script()
    items = [
        *run_script(script.life("done", None, runs=[1])),
        script.created("queued"),
        script.created("running"),
        script.running("running"),
        script.created("queued-later"),
    ]
    async with open_store(tmp_path) as store:
        for item in items:
            await store.commit(item)
    store = SqliteStorage(
        tmp_path / "jobs.sqlite3",
        history_ttl=60,
        max_history_events=100,
        artifacts_dir=tmp_path / "artifacts",
    )
    recovery = await store.open()
    try:
        unfinished = [record.id for record in recovery.unfinished]
        assert unfinished == ["queued", "running", "queued-later"]
        assert [record.status.value for record in recovery.unfinished] == [
            "Queued",
            "Running",
            "Queued",
        ]
        assert recovery.last_event_id == items[-1].events[0].id
        assert recovery.job_count == 4
    finally:
        await store.aclose()


# -- compaction and the per-job bound, the same as in memory ------------------------------------


@pytest.mark.parametrize("bound", [10_000, 7, 2])
@pytest.mark.parametrize("batch_size", [1, 2, 5, 1000])
async def test_histories_match_the_in_memory_storage(
    tmp_path: Path, batch_size: int, bound: int
) -> None:
    """Runs of step-progress are cut to their newest event and each job keeps at most
    ``bound`` events, however the events were batched into commits."""
    script = Script()
    runs = {"a1": [5, 1, 3], "b1": [4, 4], "a2": [0, 6]}
    owners = {"a1": "alice", "b1": "bob", "a2": "alice"}
    items = run_script(*(script.life(j, owners[j], runs=runs[j]) for j in runs))
    memory = MemoryStorage(history_ttl=3600, max_history_events=bound)
    async with open_store(tmp_path, max_history_events=bound) as sqlite:
        storages: list[JobStorage] = [memory, sqlite]
        for commit in batches(items, batch_size):
            for storage in storages:
                # Each storage gets its own copy: a commit is not shared state.
                await storage.commit(copy_commit(commit))

        for job_id in runs:
            expected, truncated = compacted(events_of(items, job_id), bound)
            for storage in storages:
                name = type(storage).__name__
                record = await storage.get(job_id)
                assert record is not None
                assert record.truncated_through == truncated, name
                assert record.data["status"] == "Done", name
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


async def test_the_bound_says_where_the_history_was_cut_and_a_replay_says_so(
    tmp_path: Path,
) -> None:
    """Through the runtime: a job whose history outgrew the bound replays with a leading
    ``history_truncated`` error, unless the replay starts after the cut."""
    config = RuntimeConfig(persist_jobs=True, data_dir=tmp_path, max_history_events=4)
    params = {"stages": 4, "ticks": 1, "tickSeconds": 0}
    async with open_runtime(config, default_pipelines()) as runtime:
        job = await runtime.submit("synthetic", params)
        with await runtime.subscribe_job(job.id) as live:
            seen = [event async for event in live]
        assert seen[-1].type is EventType.JOB_COMPLETED
        await runtime.broadcaster.barrier()
        record = await runtime.storage.get(job.id)
        assert record is not None and record.truncated_through is not None
        assert keys(await _replay(runtime, job.id)) == keys(await _replay(runtime, job.id))
    # The same after a restart, from the file.
    async with open_runtime(config, default_pipelines()) as runtime:
        replay = await _replay(runtime, job.id)
        first, *rest = replay
        assert first.id is None and first.type is EventType.ERROR
        assert first.data["code"] == "history_truncated" and first.data["jobId"] == job.id
        assert len(rest) == 4 and rest[-1].type is EventType.JOB_COMPLETED
        assert all(event.id is not None and event.id > record.truncated_through for event in rest)
        assert keys(rest) == keys(await runtime.storage.job_events(job.id, None, 100))
        seen_keys = keys(seen)
        assert all(key(e) in seen_keys for e in rest if e.type is not EventType.STEP_PROGRESS)
        # Resuming at or after the cut is complete: no error.
        resumed = await _replay(runtime, job.id, after=record.truncated_through)
        assert keys(resumed) == keys(rest)
        resumed = await _replay(runtime, job.id, after=rest[0].id)
        assert keys(resumed) == keys(rest[1:])
        # Resuming from before the cut is not: the error comes first.
        from_start = await _replay(runtime, job.id, after=EventId(0, 0))
        assert from_start[0].data["code"] == "history_truncated"
        assert keys(from_start[1:]) == keys(rest)


async def _replay(runtime: Any, job_id: str, after: EventId | None = None) -> list[Event]:
    with trio.fail_after(10):
        with await runtime.subscribe_job(job_id, after=after) as subscription:
            return [event async for event in subscription]


# -- history expiry and retention ---------------------------------------------------------------


async def _finish_at(
    store: SqliteStorage, clock: WallClock, script: Script, job_id: str, at: float
) -> None:
    clock.now = at
    for item in run_script(script.life(job_id, None, runs=[2])):
        await store.commit(item)


async def test_a_history_expires_after_its_ttl_and_the_record_stays(tmp_path: Path) -> None:
    clock = WallClock()
    script = Script()
    async with open_store(tmp_path, history_ttl=60.0, wall_clock=clock) as store:
        await _finish_at(store, clock, script, "early", T0)
        await _finish_at(store, clock, script, "late", T0 + 30)
        for item in (script.created("live"), script.running("live")):
            await store.commit(item)
        early_record = await store.get("early")
        assert early_record is not None
        history = await store.job_events("early", None, 100)
        assert history

        clock.now = T0 + 59.9  # not yet
        assert not (await _record(store, "early")).history_expired
        assert await store.upkeep() == (0, [])
        assert keys(await store.job_events("early", None, 100)) == keys(history)

        clock.now = T0 + 60.1  # "early" is past its TTL: readers see it at once
        assert (await _record(store, "early")).history_expired
        assert not (await _record(store, "late")).history_expired
        listed = await store.list_jobs(
            owner=None, any_owner=True, statuses=None, before_seq=None, limit=10
        )
        assert {r.id: r.history_expired for r in listed} == {
            "live": False,
            "late": False,
            "early": True,
        }
        assert await store.upkeep() == (1, [])
        assert await store.job_events("early", None, 100) == []
        # The snapshot and the log stay: only the history goes.
        assert (await _record(store, "early")).data == early_record.data
        assert await store.logs("early") != []
        assert await store.job_events("late", None, 100) != []

        clock.now = T0 + 10 * DAY  # a running job's history never expires
        assert await store.upkeep() == (1, [])
        assert not (await _record(store, "live")).history_expired
        assert len(await store.job_events("live", None, 100)) == 2
    # Expired stays expired after a restart.
    async with open_store(tmp_path, history_ttl=60.0, wall_clock=clock) as store:
        assert (await _record(store, "early")).history_expired
        assert await store.job_events("early", None, 100) == []


async def _record(store: SqliteStorage, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    assert record is not None, job_id
    return record


def _make_files(tmp_path: Path, *job_ids: str) -> None:
    for job_id in job_ids:
        folder = tmp_path / "artifacts" / job_id
        folder.mkdir(parents=True)
        (folder / "out.bin").write_bytes(b"x" * 100)


def _rows(tmp_path: Path, job_id: str) -> dict[str, int]:
    """How many rows of ``job_id`` each table holds (read with a separate connection)."""
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as connection:
        return {
            table: connection.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", (job_id,)
            ).fetchone()[0]
            for table, column in (("jobs", "id"), ("events", "job_id"), ("job_logs", "job_id"))
        }


async def _assert_deleted(store: SqliteStorage, tmp_path: Path, job_id: str) -> None:
    assert await store.get(job_id) is None
    assert await store.job_events(job_id, None, 100) == []
    assert await store.logs(job_id) == []
    assert _rows(tmp_path, job_id) == {"jobs": 0, "events": 0, "job_logs": 0}
    assert not (tmp_path / "artifacts" / job_id).exists()


async def _assert_kept(store: SqliteStorage, tmp_path: Path, job_id: str) -> None:
    assert await store.get(job_id) is not None
    assert _rows(tmp_path, job_id)["jobs"] == 1
    assert (tmp_path / "artifacts" / job_id / "out.bin").is_file()


async def test_retention_by_days_deletes_records_events_logs_and_files(tmp_path: Path) -> None:
    clock = WallClock()
    script = Script()
    async with open_store(
        tmp_path, retention_days=1.0, history_ttl=10 * DAY, wall_clock=clock
    ) as store:
        await _finish_at(store, clock, script, "old", T0)
        await _finish_at(store, clock, script, "newer", T0 + DAY / 2)
        for item in (script.created("live"), script.running("live")):
            await store.commit(item)
        _make_files(tmp_path, "old", "newer", "live")
        # Queued, Running, Started, progress (a run of 2, compacted), warning, Completed,
        # Done, job-completed.
        assert _rows(tmp_path, "old") == {"jobs": 1, "events": 8, "job_logs": 1}

        clock.now = T0 + DAY - 1
        assert await store.upkeep() == (0, [])
        for job_id in ("old", "newer", "live"):
            await _assert_kept(store, tmp_path, job_id)

        clock.now = T0 + DAY + 1
        assert await store.upkeep() == (0, ["old"])
        await _assert_deleted(store, tmp_path, "old")
        for job_id in ("newer", "live"):
            await _assert_kept(store, tmp_path, job_id)

        clock.now = T0 + 100 * DAY  # a live job is never pruned
        assert await store.upkeep() == (1, ["newer"])  # history expired, then deleted
        await _assert_deleted(store, tmp_path, "newer")
        await _assert_kept(store, tmp_path, "live")


async def test_retention_by_count_keeps_the_newest_finished_jobs(tmp_path: Path) -> None:
    clock = WallClock()
    script = Script()
    async with open_store(tmp_path, retention_jobs=2, wall_clock=clock) as store:
        for item in (script.created("live"), script.running("live")):
            await store.commit(item)
        for index in range(5):
            await _finish_at(store, clock, script, f"done-{index}", T0 + index)
        _make_files(tmp_path, "live", *(f"done-{index}" for index in range(5)))

        expired, deleted = await store.upkeep()
        assert expired == 0 and sorted(deleted) == ["done-0", "done-1", "done-2"]
        for index in range(3):
            await _assert_deleted(store, tmp_path, f"done-{index}")
        for job_id in ("done-3", "done-4", "live"):
            await _assert_kept(store, tmp_path, job_id)
        assert await store.upkeep() == (0, [])


async def test_delete_removes_record_events_logs_and_files(tmp_path: Path) -> None:
    script = Script()
    async with open_store(tmp_path) as store:
        for item in run_script(
            script.life("gone", None, runs=[3]), script.life("kept", None, runs=[1])
        ):
            await store.commit(item)
        _make_files(tmp_path, "gone", "kept")
        await store.delete("gone")
        await _assert_deleted(store, tmp_path, "gone")
        await _assert_kept(store, tmp_path, "kept")
        await store.delete("gone")  # again: nothing to do, no error


# -- schema versions ----------------------------------------------------------------------------


async def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    snapshot = {"id": "old-job", "pipeline": "synthetic", "params": {}, "status": "Done"}
    with sqlite3.connect(path) as connection:
        connection.executescript(MIGRATIONS[0])
        connection.execute("PRAGMA user_version = 1")
        connection.execute(
            "INSERT INTO jobs (id, seq, owner, status, snapshot, finished_wall) "
            "VALUES ('old-job', 1, 'alice', 'Done', ?, ?)",
            (json.dumps(snapshot), T0),
        )
        connection.execute(
            "INSERT INTO events VALUES (1700000000000, 3, 'old-job', 'alice', 'job-completed', ?)",
            (json.dumps({"jobId": "old-job", "artifacts": []}),),
        )
        connection.execute(
            "INSERT INTO meta (key, value) VALUES ('last_event_id', '1700000000000-3')"
        )
    connection.close()
    assert "job_logs" not in _tables(path)

    store = SqliteStorage(
        path,
        history_ttl=10 * DAY,
        max_history_events=100,
        artifacts_dir=tmp_path / "artifacts",
        wall_clock=WallClock(),
    )
    recovery = await store.open()
    try:
        assert _user_version(path) == SCHEMA_VERSION == 2
        assert "job_logs" in _tables(path)
        assert recovery.job_count == 1 and recovery.unfinished == []
        assert recovery.last_event_id == EventId(1700000000000, 3)
        record = await _record(store, "old-job")
        assert record.owner == "alice" and record.data == snapshot
        [event] = await store.job_events("old-job", None, 10)
        assert event.id == EventId(1700000000000, 3) and event.type is EventType.JOB_COMPLETED
        assert await store.logs("old-job") == []
        # The new table works: a new job with a log, after the old one.
        script = Script()
        for item in run_script(script.life("new-job", "alice", runs=[1])):
            await store.commit(item)
        assert await store.logs("new-job") != []
        listing = await store.list_jobs(
            owner="alice", any_owner=False, statuses=None, before_seq=None, limit=10
        )
        assert [r.id for r in listing] == ["new-job", "old-job"]
    finally:
        await store.aclose()


async def test_a_database_newer_than_this_code_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE future (x)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    store = SqliteStorage(
        path, history_ttl=60, max_history_events=100, artifacts_dir=tmp_path / "artifacts"
    )
    with pytest.raises(SchemaTooNew, match=f"version {SCHEMA_VERSION + 1}"):
        await store.open()
    await store.aclose()
    assert _user_version(path) == SCHEMA_VERSION + 1
    assert _tables(path) == {"future"}


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    connection.close()
    return version


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        names = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    connection.close()
    return names


# -- a failing disk -----------------------------------------------------------------------------


class FaultyConnection:
    """A real connection whose writes fail like a full disk while ``fault.on`` holds."""

    def __init__(self, connection: sqlite3.Connection, fault: Fault) -> None:
        self._connection = connection
        self._fault = fault

    def _check(self, sql: str) -> None:
        if self._fault.on and self._fault.matches(sql):
            self._fault.hits += 1
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._connection.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self._connection.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __enter__(self) -> sqlite3.Connection:
        return self._connection.__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self._connection.__exit__(*exc)  # type: ignore[arg-type]


class Fault:
    def __init__(self, matches: Callable[[str], bool]) -> None:
        self.on = False
        self.hits = 0
        self.matches = matches


FAULT_POINTS = {
    "at-commit": lambda sql: sql.strip().upper() == "COMMIT",
    "at-insert": lambda sql: sql.lstrip().upper().startswith("INSERT"),
    "at-begin": lambda sql: sql.strip().upper() == "BEGIN IMMEDIATE",
}


@pytest.mark.parametrize("point", sorted(FAULT_POINTS))
async def test_a_failed_write_raises_and_loses_nothing_once_the_disk_works_again(
    tmp_path: Path, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = Fault(FAULT_POINTS[point])
    script = Script()
    store = SqliteStorage(
        tmp_path / "jobs.sqlite3",
        history_ttl=3600,
        max_history_events=1000,
        artifacts_dir=tmp_path / "artifacts",
    )
    real_connect = store._connections.connect
    monkeypatch.setattr(
        store._connections, "connect", lambda: FaultyConnection(real_connect(), fault)
    )
    await store.open()
    try:
        a_life = run_script(script.life("a", None, runs=[3]))
        first, rest = a_life[:4], a_life[4:]
        for item in first:
            await store.commit(item)
        before = keys(await store.job_events("a", None, 100))

        fault.on = True
        b_created = script.created("b")
        failed = batches(rest, 4)
        for commit in [b_created, *failed]:
            with pytest.raises(StorageUnavailable, match="database or disk is full"):
                await store.commit(commit)
        assert fault.hits >= 1 + len(failed)
        # Reads go on; nothing of the failed commits is visible, nothing before is gone.
        assert await store.get("b") is None
        assert (await _record(store, "a")).status.value == "Running"
        assert keys(await store.job_events("a", None, 100)) == before

        fault.on = False
        # As the broadcaster does: the same records again (the refused job is not retried).
        for commit in failed:
            await store.commit(commit)
        await store.commit(script.created("c"))
    finally:
        await store.aclose()

    # Everything acknowledged is there, once, for a new process too.
    async with open_store(tmp_path) as store:
        a = await _record(store, "a")
        assert a.status.value == "Done" and a.last_event_id == a_life[-1].events[0].id
        assert_complete(await store.job_events("a", None, 100), events_of(a_life, "a"))
        assert await store.get("b") is None
        assert (await _record(store, "c")).status.value == "Queued"
        assert await store.logs("a") != []
