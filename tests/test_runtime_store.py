"""The job store: finished jobs outlive the process; writing never holds up a job.

Most tests run two (or three) ``open_runtime`` lifetimes on the same data dir,
the way a server restarts. They use the real trio clock and quick jobs
(``tickSeconds`` 0) because the store writes in worker threads, and an
autojump clock jumps while a thread works; the tests about a writer that
blocks take ``autojump_clock`` on purpose, to show that jobs run on (and that
shutdown does not wait for a stuck disk for ever).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from conftest import (
    FnPipeline,
    RuntimeFactory,
    collect,
    is_type,
    job_events,
    read_until,
    registry,
)

from aura_actors.runtime import (
    CANCELED_BY_RESTART,
    CANCELED_BY_SHUTDOWN,
    INTERRUPTED,
    JOBS_FILE,
    STORE_CLOSE_TIMEOUT,
    EventId,
    EventIdGenerator,
    EventType,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobStatus,
    JobStore,
    JobStoreError,
    Runtime,
    RuntimeConfig,
    Stage,
    StageContext,
    StoredJob,
    open_runtime,
)

QUICK = {"stages": 2, "ticks": 3, "tickSeconds": 0}
FAILING = {"stages": 3, "ticks": 4, "tickSeconds": 0, "failAt": {"stage": 1, "tick": 2}}
#: A job that sits in its first tick until cancelled (or the runtime ends).
WAITING = {"stages": 1, "ticks": 1, "tickSeconds": 600}


def store_lines(data_dir: Path) -> list[dict[str, Any]]:
    """The job store's records, as written."""
    text = (data_dir / JOBS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def latest_records(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Each job's last record in the file."""
    return {record["job"]["id"]: record for record in store_lines(data_dir)}


async def finish(rt: Runtime, job: Job) -> None:
    """Wait for ``job``'s terminal event."""
    events = await job_events(rt, job.id)
    assert events and events[-1].type.is_terminal


async def wait_running(rt: Runtime, job: Job) -> None:
    """Wait until the job's actor has entered its first stage."""
    with rt.subscribe_job(job.id) as subscription:
        await read_until(subscription, is_type(EventType.STEP_STATUS))


def corrupt_copies(data_dir: Path) -> list[Path]:
    """The copies of damaged store files the loader kept."""
    return list(data_dir.glob(f"{JOBS_FILE}.corrupt-*"))


def pages(rt: Runtime, limit: int, **filters: Any) -> list[tuple[list[str], str | None]]:
    """Every page of a listing: the ids and the cursor it hands out."""
    result: list[tuple[list[str], str | None]] = []
    cursor = None
    while True:
        page = rt.list_jobs(limit=limit, cursor=cursor, **filters)
        result.append(([job.id for job in page.jobs], page.next_cursor))
        if page.next_cursor is None:
            return result
        cursor = page.next_cursor


async def test_finished_jobs_come_back_after_a_restart(make_runtime: RuntimeFactory) -> None:
    async with make_runtime(persist_jobs=True, max_concurrent_jobs=1) as rt:
        done = rt.submit("synthetic", QUICK, owner="ann")
        failed = rt.submit("synthetic", FAILING, owner="bob")
        video = rt.submit(
            "video", {"topic": "Tides", "durationSeconds": 5, "speed": 1000}, owner="ann"
        )
        for job in (done, failed, video):
            await finish(rt, job)
        assert video.artifacts
        canceled = rt.submit("synthetic", WAITING, owner="ann")
        await wait_running(rt, canceled)
        rt.cancel(canceled.id)
        await finish(rt, canceled)
        running = rt.submit("synthetic", WAITING, owner="bob")
        queued_canceled = rt.submit("synthetic", WAITING)  # the slot is taken: it waits
        queued = rt.submit("synthetic", WAITING, owner="ann")
        rt.cancel(queued_canceled.id)
        await wait_running(rt, running)
        assert queued.status is JobStatus.QUEUED
        jobs = [done, failed, video, canceled, running, queued_canceled, queued]
    # leaving the block ended the running and the queued job, through shutdown
    assert running.status is JobStatus.CANCELED and queued.status is JobStatus.CANCELED
    snapshots = {job.id: job.snapshot() for job in jobs}
    assert failed.snapshot()["stage"] == "stage-2" and failed.progress_pct > 0
    newest_first = [job.id for job in reversed(jobs)]
    listings = {
        "all": pages(rt, 2),
        "ann": pages(rt, 1, owner="ann"),
        "canceled": pages(rt, 2, status=JobStatus.CANCELED),
    }

    async with make_runtime(persist_jobs=True) as rt:
        assert rt.job_count == len(jobs) and rt.running_count == rt.queued_count == 0
        for job_id, snapshot in snapshots.items():
            assert rt.get(job_id).snapshot() == snapshot
        assert [job.id for job in rt.list_jobs().jobs] == newest_first
        assert pages(rt, 2) == listings["all"], "same pages, same cursors"
        assert pages(rt, 1, owner="ann") == listings["ann"]
        assert pages(rt, 2, status=JobStatus.CANCELED) == listings["canceled"]
        with pytest.raises(JobNotFound):
            rt.get(done.id, owner="bob")
        restored = rt.get(video.id)
        assert restored.owner == "ann" and restored.artifacts == video.artifacts
        assert (rt.config.data_dir / restored.artifacts[0].path).is_file()
        for job_id in snapshots:
            with pytest.raises(JobAlreadyFinished):
                rt.cancel(job_id)
            assert rt.broadcaster.history(job_id) is None
            with rt.subscribe_job(job_id) as subscription:
                assert await collect(subscription) == [], "ended and empty"
        # new jobs go on after the old ones, and come first in a listing
        fresh = rt.submit("synthetic", QUICK)
        assert fresh.seq == len(jobs)
        await finish(rt, fresh)
        assert rt.list_jobs(limit=1).jobs == [fresh]
        assert rt.get(done.id).snapshot() == snapshots[done.id], "a restored job never changes"

    async with make_runtime(persist_jobs=True) as rt:
        assert [job.id for job in rt.list_jobs().jobs] == [fresh.id, *newest_first]
    assert len(store_lines(rt.config.data_dir)) == len(jobs) + 1, "one line per job"


async def test_event_ids_go_on_after_the_previous_process(
    make_runtime: RuntimeFactory,
) -> None:
    async with make_runtime(persist_jobs=True) as rt:
        old = rt.submit("synthetic", QUICK)
        await finish(rt, old)
    assert old.last_event_id is not None
    # The wall clock went back a long way between the two processes.
    stopped_clock = EventIdGenerator(wall_clock_millis=lambda: 1_000)
    async with make_runtime(persist_jobs=True, id_generator=stopped_clock) as rt:
        assert rt.broadcaster.last_id == old.last_event_id
        new = rt.submit("synthetic", QUICK)
        events = await job_events(rt, new.id)
    assert all(event.id is not None and event.id > old.last_event_id for event in events)
    assert events[0].id == EventId(old.last_event_id.millis, old.last_event_id.counter + 1)


async def test_unfinished_jobs_end_when_the_store_is_loaded(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """A process that died (SIGKILL) left jobs Queued and Running in the file."""
    async with make_runtime(persist_jobs=True, max_concurrent_jobs=1) as rt:
        running = rt.submit("synthetic", {"stages": 2, "ticks": 2, "tickSeconds": 600})
        queued = rt.submit("synthetic", WAITING, owner="ann")
        await wait_running(rt, running)
        assert rt.job_store is not None
        await rt.job_store.flush()
        as_killed = (tmp_path / JOBS_FILE).read_bytes()  # what a SIGKILL would leave
    (tmp_path / JOBS_FILE).write_bytes(as_killed)
    records = latest_records(tmp_path)
    assert records[running.id]["job"]["status"] == "Running"
    assert records[queued.id]["job"]["status"] == "Queued"

    async with make_runtime(persist_jobs=True) as rt:
        store = rt.job_store
        assert store is not None
        failed = rt.get(running.id).snapshot()
        canceled = rt.get(queued.id).snapshot()
    assert failed["status"] == "Failed"
    assert failed["error"] == {
        "message": "the server stopped while the job was running",
        "errors": [
            {
                "code": INTERRUPTED,
                "message": "the server stopped while the job was running",
                "remediation": "submit the job again",
            }
        ],
    }
    assert failed["message"] == "the server stopped while the job was running"
    assert failed["startedAt"] is not None and failed["finishedAt"] is not None
    assert failed["etaSeconds"] is None
    assert canceled["status"] == "Canceled" and canceled["message"] == CANCELED_BY_RESTART
    assert canceled["startedAt"] is None and canceled["finishedAt"] is not None
    assert canceled["error"] is None
    # the verdict was written: the file now says so, and a later start agrees
    records = latest_records(tmp_path)
    assert records[running.id]["job"] == failed
    assert records[queued.id]["job"] == canceled and records[queued.id]["owner"] == "ann"
    async with make_runtime(persist_jobs=True) as rt:
        assert rt.get(running.id).snapshot() == failed
        assert rt.get(queued.id).snapshot() == canceled


async def test_the_terminal_record_keeps_the_last_stage_and_progress(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    """Progress is not recorded as it happens, but the terminal record has the last of it."""

    async def quick(ctx: StageContext) -> None:
        await ctx.report(1.0)

    async def halfway(ctx: StageContext) -> None:
        await ctx.report(0.5, "halfway there")
        await trio.sleep_forever()

    two = FnPipeline("two", lambda params: [Stage("First", quick), Stage("Second", halfway)])
    async with make_runtime(two, persist_jobs=True) as rt:
        job = rt.submit("two")
        with rt.subscribe_job(job.id) as subscription:
            await read_until(subscription, lambda event: event.data.get("progressPct") == 75)
        assert rt.job_store is not None
        await rt.job_store.flush()
        assert latest_records(tmp_path)[job.id]["job"]["progressPct"] == 0.0
        rt.cancel(job.id)
        await finish(rt, job)
    record = latest_records(tmp_path)[job.id]["job"]
    assert record["status"] == "Canceled"
    assert record["stage"] == "Second" and record["progressPct"] == 75.0
    assert record["lastEventId"] == str(job.last_event_id)


async def test_a_truncated_last_line_is_skipped(
    make_runtime: RuntimeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_runtime(persist_jobs=True) as rt:
        jobs = [rt.submit("synthetic", QUICK) for _ in range(3)]
        for job in jobs:
            await finish(rt, job)
    path = tmp_path / JOBS_FILE
    JobStore(path).load()  # compacted: one line per job
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    cut = lines[-1][: len(lines[-1]) // 2]  # a write cut short by a crash
    path.write_bytes(b"".join(lines[:-1]) + cut)
    lost = json.loads(lines[-1])["job"]["id"]

    with caplog.at_level(logging.WARNING, logger="aura_actors.store"):
        async with make_runtime(persist_jobs=True) as rt:
            assert rt.job_count == 2
            assert {job.id for job in rt.list_jobs().jobs} == {j.id for j in jobs} - {lost}
    assert any("truncated" in record.getMessage() for record in caplog.records)
    assert path.read_bytes() == b"".join(lines[:-1]), "compacted: the partial line is gone"
    assert not corrupt_copies(tmp_path), "nothing to keep for a crash"


async def test_a_corrupt_line_is_skipped_and_the_original_kept(
    make_runtime: RuntimeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_runtime(persist_jobs=True) as rt:
        jobs = [rt.submit("synthetic", QUICK) for _ in range(2)]
        for job in jobs:
            await finish(rt, job)
    path = tmp_path / JOBS_FILE
    JobStore(path).load()
    first, second = path.read_bytes().splitlines(keepends=True)
    damaged = first + b'{"seq": 9, "owner": null, "job": {"id": 12}}\n\xff\xfe garbage\n' + second
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="aura_actors.store"):
        async with make_runtime(persist_jobs=True) as rt:
            assert {job.id for job in rt.list_jobs().jobs} == {job.id for job in jobs}
    assert sum("skipped an unreadable line" in r.getMessage() for r in caplog.records) == 2
    (backup,) = corrupt_copies(tmp_path)
    assert backup.read_bytes() == damaged
    assert path.read_bytes() == first + second


@pytest.mark.parametrize(
    "content",
    [b"hello\nworld\n", b"\x89PNG\r\n\x1a\n\x00\x00binary", b"[1, 2, 3]"],
    ids=["text", "binary", "not-records"],
)
async def test_an_unreadable_store_fails_clearly(
    make_runtime: RuntimeFactory, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / JOBS_FILE
    path.write_bytes(content)
    with pytest.raises(JobStoreError) as info:
        async with make_runtime(persist_jobs=True):
            pytest.fail("the runtime must not start on a store it cannot read")
    assert str(path) in str(info.value) and info.value.path == path
    assert path.read_bytes() == content, "left untouched"


async def test_a_store_that_is_not_a_file_fails_clearly(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    (tmp_path / JOBS_FILE).mkdir()
    with pytest.raises(JobStoreError, match="cannot read it") as info:
        async with make_runtime(persist_jobs=True):
            pytest.fail("the runtime must not start")
    assert str(tmp_path / JOBS_FILE) in str(info.value)


async def test_no_store_unless_asked(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    async with make_runtime() as rt:
        assert rt.job_store is None
        await finish(rt, rt.submit("synthetic", QUICK))
    assert not (tmp_path / JOBS_FILE).exists()


async def test_loading_compacts_the_file(tmp_path: Path) -> None:
    path = tmp_path / JOBS_FILE
    store = JobStore(path)
    statuses = ["Queued", "Running", "Running", "Running", "Done"]
    lines = []
    for seq in range(20):
        snapshot = _snapshot(f"job-{seq}", "Queued")
        for status in statuses:
            snapshot = {**snapshot, "status": status}
            lines.append(StoredJob(seq, None, snapshot).to_line())
    store.append_lines(lines, fsync=False)
    size_before = path.stat().st_size

    loaded = store.load()
    assert [stored.job_id for stored in loaded.jobs] == [f"job-{seq}" for seq in range(20)]
    assert all(stored.status is JobStatus.DONE for stored in loaded.jobs)
    assert loaded.interrupted == 0 and loaded.skipped_lines == 0
    assert len(store_lines(tmp_path)) == 20
    assert path.stat().st_size < size_before / 4
    assert not (tmp_path / f"{JOBS_FILE}.tmp").exists()
    assert JobStore(path).load() == loaded, "loading again changes nothing"


async def test_seq_gaps_are_closed_and_order_kept(tmp_path: Path) -> None:
    """Records lost in a crash leave gaps in ``seq``; cursors need ``seq`` to be dense."""
    path = tmp_path / JOBS_FILE
    store = JobStore(path)
    store.append_lines(
        [StoredJob(seq, None, _snapshot(f"job-{seq}", "Done")).to_line() for seq in (7, 2, 5)],
        fsync=False,
    )
    loaded = store.load()
    assert [(s.seq, s.job_id) for s in loaded.jobs] == [(0, "job-2"), (1, "job-5"), (2, "job-7")]


async def test_a_terminal_record_is_never_undone(tmp_path: Path) -> None:
    path = tmp_path / JOBS_FILE
    store = JobStore(path)
    store.append_lines(
        [
            StoredJob(0, None, _snapshot("a", "Done")).to_line(),
            StoredJob(0, None, _snapshot("a", "Running")).to_line(),
        ],
        fsync=False,
    )
    (loaded,) = store.load().jobs
    assert loaded.status is JobStatus.DONE


class GatedStore(JobStore):
    """A job store whose disk is stuck until the test opens the gate."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def append_lines(self, lines: list[str], *, fsync: bool) -> None:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super().append_lines(lines, fsync=fsync)


@asynccontextmanager
async def runtime_with(store: JobStore, **config: Any) -> AsyncIterator[Runtime]:
    config.setdefault("max_concurrent_jobs", 100)
    async with open_runtime(
        RuntimeConfig(data_dir=store.path.parent, **config), registry(), job_store=store
    ) as runtime:
        yield runtime


async def test_a_blocked_writer_never_delays_a_job(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = GatedStore(tmp_path / JOBS_FILE, buffer=4)
    count = 60
    async with runtime_with(store) as rt:
        started = trio.current_time()
        jobs = [
            rt.submit("synthetic", {"stages": 3, "ticks": 10, "tickSeconds": 1})
            for _ in range(count)
        ]
        async with trio.open_nursery() as nursery:
            for job in jobs:
                nursery.start_soon(finish, rt, job)
        assert trio.current_time() - started == pytest.approx(30), "not a moment late"
        assert all(job.status is JobStatus.DONE for job in jobs)
        # All the while the store's first write was stuck (its thread may only now
        # be getting there). 3 records per job were handed in; what waits is
        # bounded: the channel plus the latest record of each job.
        await trio.to_thread.run_sync(store.entered.wait)
        assert store.calls == 1
        assert store.buffer < store.pending_count <= store.buffer + count
        store.gate.set()
        await store.flush()
        assert store.pending_count == 0
        writes = store.calls
        assert writes <= 3, f"records waiting were written in batches, not one by one ({writes})"
    records = latest_records(tmp_path)
    assert set(records) == {job.id for job in jobs}
    assert {record["job"]["status"] for record in records.values()} == {"Done"}


class SlowStore(JobStore):
    """A job store on a slow disk: every write takes a while."""

    def append_lines(self, lines: list[str], *, fsync: bool) -> None:
        time.sleep(0.02)
        super().append_lines(lines, fsync=fsync)


async def test_shutdown_writes_every_terminal_record(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / JOBS_FILE, buffer=2)
    async with runtime_with(store, max_concurrent_jobs=5) as rt:
        jobs = [rt.submit("synthetic", WAITING, owner=f"user-{i % 3}") for i in range(30)]
        await wait_running(rt, jobs[0])
    assert rt.job_store is store
    records = latest_records(tmp_path)
    assert set(records) == {job.id for job in jobs}
    for job in jobs:
        record = records[job.id]
        assert record["job"] == job.snapshot() and record["owner"] == job.owner
        assert record["job"]["status"] == "Canceled"
        assert record["job"]["message"] == CANCELED_BY_SHUTDOWN
    loaded = JobStore(tmp_path / JOBS_FILE).load()
    assert loaded.interrupted == 0 and len(loaded.jobs) == len(jobs)


async def test_a_cancelled_runtime_still_writes_every_terminal_record(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / JOBS_FILE, buffer=2)
    with trio.CancelScope() as outer:
        async with runtime_with(store, max_concurrent_jobs=5) as rt:
            jobs = [rt.submit("synthetic", WAITING) for _ in range(12)]
            await wait_running(rt, jobs[0])
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    records = latest_records(tmp_path)
    assert {job_id: r["job"]["status"] for job_id, r in records.items()} == {
        job.id: "Canceled" for job in jobs
    }


async def test_a_stuck_disk_does_not_hold_up_shutdown(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = GatedStore(tmp_path / JOBS_FILE)
    try:
        with caplog.at_level(logging.ERROR, logger="aura_actors.runtime"):
            async with runtime_with(store) as rt:
                job = rt.submit("synthetic", QUICK)
                await finish(rt, job)
                await trio.to_thread.run_sync(store.entered.wait)  # the disk is stuck
                leaving = trio.current_time()
        assert trio.current_time() - leaving == pytest.approx(STORE_CLOSE_TIMEOUT)
        assert any("did not finish writing" in r.getMessage() for r in caplog.records)
    finally:
        store.gate.set()


class FlakyStore(JobStore):
    """A job store whose first writes fail (a full disk, say), then succeed."""

    def __init__(self, path: Path, failures: int, **options: Any) -> None:
        super().__init__(path, **options)
        self.failures = failures

    def append_lines(self, lines: list[str], *, fsync: bool) -> None:
        if self.failures:
            self.failures -= 1
            # half a line reaches the disk before the error
            with open(self.path, "ab") as file:
                file.write("".join(lines).encode()[:25])
            raise OSError(28, "No space left on device")
        super().append_lines(lines, fsync=fsync)


async def test_a_failed_write_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(tmp_path / JOBS_FILE, failures=2, retry_interval=0.01)
    with caplog.at_level(logging.ERROR, logger="aura_actors.store"):
        async with runtime_with(store) as rt:
            jobs = [rt.submit("synthetic", QUICK) for _ in range(5)]
            for job in jobs:
                await finish(rt, job)
            await store.flush()
    assert sum("write failed" in r.getMessage() for r in caplog.records) == 2
    records = latest_records_tolerant(tmp_path)
    assert {job_id: r["job"]["status"] for job_id, r in records.items()} == {
        job.id: "Done" for job in jobs
    }
    async with runtime_with(JobStore(tmp_path / JOBS_FILE)) as rt:
        assert {job.id for job in rt.list_jobs().jobs} == {job.id for job in jobs}


def latest_records_tolerant(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Each job's last record, skipping the partial lines failed writes left."""
    records: dict[str, dict[str, Any]] = {}
    for line in (data_dir / JOBS_FILE).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        records[record["job"]["id"]] = record
    return records


async def test_records_after_close_are_dropped(tmp_path: Path) -> None:
    store = JobStore(tmp_path / JOBS_FILE)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        store.record(StoredJob(0, None, _snapshot("a", "Done")))
        store.close()
        store.record(StoredJob(1, None, _snapshot("b", "Done")))
        await store.wait_closed()
    assert list(latest_records(tmp_path)) == ["a"]


def test_a_job_restores_only_from_a_terminal_snapshot() -> None:
    from aura_actors.runtime import Broadcaster

    with pytest.raises(ValueError):
        Job.restore(_snapshot("a", "Running"), seq=0, owner=None, broadcaster=Broadcaster())
    job = Job.restore(_snapshot("a", "Failed"), seq=3, owner="ann", broadcaster=Broadcaster())
    assert job.snapshot() == _snapshot("a", "Failed") and job.seq == 3 and job.stages == ()
    assert job.status is JobStatus.FAILED and not hasattr(job, "__dict__")


def _snapshot(job_id: str, status: str) -> dict[str, Any]:
    terminal = status in ("Done", "Failed", "Canceled")
    return {
        "id": job_id,
        "pipeline": "synthetic",
        "params": {"stages": 1},
        "status": status,
        "stage": "stage-1",
        "progressPct": 100.0 if status == "Done" else 40.0,
        "message": "done",
        "etaSeconds": None,
        "createdAt": "2026-11-24T08:42:55.123Z",
        "startedAt": "2026-11-24T08:42:55.124Z",
        "finishedAt": "2026-11-24T08:42:56.000Z" if terminal else None,
        "artifacts": [
            {"name": "out.txt", "path": "jobs/x/out.txt", "sizeBytes": 12, "mimeType": "text/plain"}
        ],
        "error": None,
        "lastEventId": "1795509775578-3",
    }


def test_resuming_ids_only_moves_forward() -> None:
    ids = EventIdGenerator(wall_clock_millis=lambda: 5)
    ids.resume_after(EventId(10, 3))
    assert ids.last == EventId(10, 3)
    ids.resume_after(EventId(2, 0))
    assert ids.next_id() == EventId(10, 4), "the clock is behind: the counter grows"
    later = EventIdGenerator(wall_clock_millis=lambda: 50)
    later.resume_after(EventId(10, 3))
    assert later.next_id() == EventId(50, 0), "the clock is ahead: ids follow it"
