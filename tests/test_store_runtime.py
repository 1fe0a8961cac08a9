"""The runtime on its SQLite store: commit before acknowledging, restarts, failing storage.

Every runtime here keeps its jobs (``persist_jobs=True``) in ``tmp_path``. A
"crash" in-process is a storage wrapper that stops writing at a chosen moment:
what is on disk then is what a process killed at that instant leaves behind,
and a second ``open_runtime`` on the same data dir is the restart. Tests wait
on events (a stage reaching a gate, a stream reaching an event); where time
passes (storage retries with backoff) the clock is trio's autojump clock.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from support.streams import wait_until

from aura_actors.pipelines import SyntheticPipeline, VideoPipeline
from aura_actors.runtime import (
    Commit,
    DataDirLocked,
    Event,
    EventId,
    EventIdGenerator,
    EventType,
    JobIsLive,
    JobNotFound,
    JobNotRetryable,
    JobStatus,
    PipelineRegistry,
    Runtime,
    RuntimeConfig,
    Stage,
    StageContext,
    StageError,
    StorageFailing,
    StorageUnavailable,
    default_storage,
    open_runtime,
)

# -- a pipeline the test steers, and a storage the test can break -------------------------------


class Gated:
    """Pipeline ``gated``: one stage that reports 50 %, waits at its key's gate (unless
    ``free`` or ``wait`` is false), writes a file, and ends (``fail``: fails)."""

    name = "gated"

    def __init__(self) -> None:
        self.gates: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.entered: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.finished: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        #: The keys of the jobs whose stage began, in that order.
        self.started: list[str] = []
        #: Let every stage through its gate from now on.
        self.free = False

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        key = str(params.get("key", ""))

        async def run(context: StageContext) -> None:
            self.started.append(key)
            self.entered[key].set()
            context.log(f"{key} began")
            await context.report(0.5, "half")
            if not self.free and params.get("wait", True):
                await self.gates[key].wait()
            path = context.artifact_dir / "out.txt"
            path.write_text(key)
            context.add_artifact("out.txt", path)
            self.finished[key].set()
            if params.get("fail"):
                raise StageError(f"{key} failed on purpose", code="on_purpose")
            await context.report(1.0, "all")

        return [Stage("only", run)]


def pipelines(gated: Gated) -> PipelineRegistry:
    return PipelineRegistry([VideoPipeline(), SyntheticPipeline(), gated])


class Breakable:
    """A job storage that passes everything to a real one, but for the faults a test sets.

    ``fail``: commits raise :class:`StorageUnavailable` (a full disk). ``hold``: commits
    wait for it (``holding`` is set once one does). ``crashed``: from now on nothing
    reaches the disk, as if the process had been killed at that instant.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False
        self.hold: trio.Event | None = None
        self.holding = trio.Event()
        self.crashed = False
        self.failed_commits = 0

    async def commit(self, commit: Commit) -> None:
        if self.crashed:
            await trio.lowlevel.checkpoint()
            return
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
            if self.crashed:
                return
        if self.fail:
            self.failed_commits += 1
            await trio.lowlevel.checkpoint()
            raise StorageUnavailable("database or disk is full (injected)")
        await self.inner.commit(commit)

    async def delete(self, job_id: str) -> None:
        if self.crashed:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.delete(job_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.inner.run(task_status=task_status)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def config_for(tmp_path: Path, **options: Any) -> RuntimeConfig:
    options.setdefault("max_concurrent_jobs", 4)
    return RuntimeConfig(persist_jobs=True, data_dir=tmp_path, **options)


@asynccontextmanager
async def breakable_runtime(
    config: RuntimeConfig, gated: Gated
) -> AsyncIterator[tuple[Runtime, Breakable]]:
    storage = Breakable(default_storage(config))
    async with open_runtime(config, pipelines(gated), storage=storage) as runtime:  # type: ignore[arg-type]
        yield runtime, storage


async def stream(runtime: Runtime, job_id: str, after: EventId | None = None) -> list[Event]:
    """The job's stream, from its stored history (after ``after``) to its end."""
    with trio.fail_after(30):
        with await runtime.subscribe_job(job_id, after=after) as subscription:
            return [event async for event in subscription]


def keys(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    return [(event.id, event.type, event.data) for event in events]


def assert_increasing(events: Sequence[Event]) -> None:
    ids = [event.id for event in events if event.id is not None]
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"


def stored_rows(tmp_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows read with a connection of our own, read-only, as another process would."""
    uri = f"file:{tmp_path / 'jobs.sqlite3'}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def newest_stored_id(tmp_path: Path) -> EventId:
    [(millis, counter)] = stored_rows(
        tmp_path, "SELECT millis, counter FROM events ORDER BY millis DESC, counter DESC LIMIT 1"
    )
    return EventId(millis, counter)


# -- commit before acknowledging ----------------------------------------------------------------


async def test_submit_returns_only_once_the_job_row_is_committed(tmp_path: Path) -> None:
    gated = Gated()
    async with breakable_runtime(config_for(tmp_path), gated) as (runtime, storage):
        storage.hold = trio.Event()
        submitted: list[str] = []

        async def submit() -> None:
            job = await runtime.submit("gated", {"key": "a", "wait": False})
            submitted.append(job.id)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit)
            with trio.fail_after(10):
                await storage.holding.wait()
            await trio.testing.wait_all_tasks_blocked()
            # The commit is under way and held: submit has not returned, nothing is stored.
            assert submitted == []
            assert stored_rows(tmp_path, "SELECT id FROM jobs") == []
            storage.hold.set()
        # Returned: and another connection (another process) finds the row.
        [job_id] = submitted
        [(stored_id, snapshot)] = stored_rows(tmp_path, "SELECT id, snapshot FROM jobs")
        assert stored_id == job_id and json.loads(snapshot)["status"] == "Queued"
        [(millis, counter, kind)] = stored_rows(
            tmp_path,
            "SELECT millis, counter, type FROM events WHERE job_id = ? ORDER BY millis, counter "
            "LIMIT 1",
            job_id,
        )
        assert kind == "job-status"
        assert json.loads(snapshot)["lastEventId"] == f"{millis}-{counter}"


async def test_a_cancelled_submitter_still_leaves_the_job_stored(tmp_path: Path) -> None:
    """Submit waits for its commit even when its caller is cancelled meanwhile: a job is
    either stored and queued or never existed, never half there."""
    gated = Gated()
    async with breakable_runtime(config_for(tmp_path), gated) as (runtime, storage):
        storage.hold = trio.Event()
        with trio.fail_after(10), trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runtime.submit, "gated", {"key": "a", "wait": False})
                await storage.holding.wait()
                scope.cancel()
                storage.hold.set()
        await runtime.broadcaster.barrier()
        rows = stored_rows(tmp_path, "SELECT id FROM jobs")
        assert len(rows) == 1
        assert runtime.job_count == 1
        # ... and it runs.
        events = await stream(runtime, rows[0][0])
        assert events[-1].type is EventType.JOB_COMPLETED


async def test_a_canceled_queued_job_is_stored_canceled_before_cancel_answers(
    tmp_path: Path,
) -> None:
    """A cancel that answers Canceled has stored it: killed right after, a restart finds
    the job Canceled, never Queued again."""
    gated = Gated()
    config = config_for(tmp_path, max_concurrent_jobs=1)
    async with breakable_runtime(config, gated) as (runtime, storage):
        await runtime.submit("gated", {"key": "r"})
        queued = await runtime.submit("gated", {"key": "q"})
        await gated.entered["r"].wait()
        storage.hold = trio.Event()
        answers: list[JobStatus] = []

        async def cancel() -> None:
            answers.append((await runtime.cancel(queued.id)).status)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel)
            with trio.fail_after(10):
                await storage.holding.wait()
            await trio.testing.wait_all_tasks_blocked()
            answered = list(answers)
            storage.crashed = True  # killed now: the held commit never lands
            storage.hold.set()
    # It could not answer while its end was not stored; killed then, nothing was
    # acknowledged, and the job is still Queued on disk.
    assert answered == [], "cancel answered Canceled before storing it"
    stored = stored_rows(tmp_path, "SELECT status FROM jobs WHERE id = ?", queued.id)
    assert stored == [("Queued",)]


# -- restarts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [1, 2])
async def test_a_restart_takes_back_queued_and_running_jobs(
    tmp_path: Path, max_attempts: int
) -> None:
    gated = Gated()
    config = config_for(tmp_path, max_concurrent_jobs=1, max_attempts=max_attempts)
    async with breakable_runtime(config, gated) as (runtime, storage):
        running = await runtime.submit("gated", {"key": "r"})
        queued = [await runtime.submit("gated", {"key": f"q{i}"}) for i in range(3)]
        with trio.fail_after(10):
            await gated.entered["r"].wait()
        assert await runtime.broadcaster.barrier() is None
        first_run = await stream_so_far(runtime, running.id)
        assert first_run[-1].type is EventType.STEP_PROGRESS
        storage.crashed = True  # killed here: r Running, the others Queued
    assert stored_rows(tmp_path, "SELECT id, status FROM jobs ORDER BY seq") == [
        (running.id, "Running"),
        *((job.id, "Queued") for job in queued),
    ]
    newest_before = newest_stored_id(tmp_path)

    gated.free = True
    gated.started.clear()
    async with open_runtime(config, pipelines(gated)) as runtime:
        streams = {job.id: await stream(runtime, job.id) for job in (running, *queued)}
        # The queued jobs ran in their order (after r, when it ran again).
        expected_order = ["q0", "q1", "q2"] if max_attempts == 1 else ["r", "q0", "q1", "q2"]
        assert gated.started == expected_order
        for job in queued:
            events = streams[job.id]
            assert_increasing(events)
            assert events[0].data["status"] == "Queued" and events[0].id is not None
            assert events[0].id <= newest_before  # its start is the stored one
            assert events[-1].type is EventType.JOB_COMPLETED
            final = await runtime.get(job.id)
            assert final.status is JobStatus.DONE and final.data["attempt"] == 1

        events = streams[running.id]
        assert_increasing(events)
        # The stored history of the first attempt comes back unchanged...
        assert keys(events[: len(first_run)]) == keys(first_run)
        after_restart = events[len(first_run) :]
        # ... and everything after it is new, with greater ids.
        assert all(e.id is not None and e.id > newest_before for e in after_restart)
        final = await runtime.get(running.id)
        if max_attempts == 2:
            warning, status, *rest = after_restart
            assert warning.type is EventType.WARNING
            assert warning.data["message"] == "running again (attempt 2)"
            assert status.type is EventType.JOB_STATUS
            assert status.data["status"] == "Running"
            assert status.data["previousStatus"] == "Running"
            assert rest[-1].type is EventType.JOB_COMPLETED
            assert final.status is JobStatus.DONE and final.data["attempt"] == 2
        else:
            assert [e.type for e in after_restart] == [EventType.JOB_STATUS, EventType.JOB_FAILED]
            assert after_restart[0].data["status"] == "Failed"
            [error] = after_restart[1].data["errors"]
            assert error["code"] == "interrupted"
            assert final.status is JobStatus.FAILED and final.data["attempt"] == 1
            assert final.data["error"]["errors"] == [error]


async def test_a_restart_without_the_jobs_pipeline_fails_its_queued_and_running_jobs(
    tmp_path: Path,
) -> None:
    """A stored job whose pipeline the new process lacks ends ``Failed`` (``interrupted``),
    Queued as well as Running (a Queued job goes through Running: Queued->Failed is no
    transition), and the runtime opens."""
    gated = Gated()
    config = config_for(tmp_path, max_concurrent_jobs=1, max_attempts=2)
    async with breakable_runtime(config, gated) as (runtime, storage):
        running = await runtime.submit("gated", {"key": "r"})
        queued = await runtime.submit("gated", {"key": "q"})
        with trio.fail_after(10):
            await gated.entered["r"].wait()
        assert await runtime.broadcaster.barrier() is None
        storage.crashed = True  # killed here: r Running, q Queued

    async with open_runtime(config, PipelineRegistry([SyntheticPipeline()])) as runtime:
        for job in (running, queued):
            events = await stream(runtime, job.id)
            assert events[-1].type is EventType.JOB_FAILED
            [error] = events[-1].data["errors"]
            assert error["code"] == "interrupted"
            assert error["message"] == "the job's pipeline is gone"
            assert (await runtime.get(job.id)).status is JobStatus.FAILED
        assert runtime.running_count == 0


async def stream_so_far(runtime: Runtime, job_id: str) -> list[Event]:
    """The job's stored history now (the job is still running)."""
    return await runtime.storage.job_events(job_id, None, 10_000)


async def test_ids_after_a_restart_exceed_every_stored_id_even_if_the_clock_went_back(
    tmp_path: Path,
) -> None:
    gated = Gated()
    config = config_for(tmp_path)
    async with open_runtime(config, pipelines(gated)) as runtime:
        job = await runtime.submit("synthetic", {"stages": 2, "ticks": 3, "tickSeconds": 0})
        await stream(runtime, job.id)
    newest_before = newest_stored_id(tmp_path)
    # The wall clock now says 1970: ids must still go on after the stored ones.
    async with open_runtime(
        config, pipelines(gated), id_generator=EventIdGenerator(lambda: 0)
    ) as runtime:
        again = await runtime.submit("synthetic", {"stages": 2, "ticks": 3, "tickSeconds": 0})
        events = await stream(runtime, again.id)
        assert_increasing(events)
        assert events[0].id is not None and events[0].id > newest_before
        assert runtime.last_event_id is not None and runtime.last_event_id > newest_before
    # And a third start continues after the second's.
    newest_second = newest_stored_id(tmp_path)
    async with open_runtime(
        config, pipelines(gated), id_generator=EventIdGenerator(lambda: 0)
    ) as runtime:
        third = await runtime.submit("synthetic", {"stages": 1, "ticks": 1, "tickSeconds": 0})
        events = await stream(runtime, third.id)
        assert events[0].id is not None and events[0].id > newest_second


async def test_replay_after_a_restart_is_identical_and_resume_is_exact_from_every_id(
    tmp_path: Path,
) -> None:
    gated = Gated()
    config = config_for(tmp_path)
    params: dict[str, dict[str, Any]] = {
        "done": {"stages": 3, "ticks": 4, "tickSeconds": 0, "warnAt": {"stage": 1, "tick": 2}},
        "failed": {"stages": 2, "ticks": 3, "tickSeconds": 0, "failAt": {"stage": 1, "tick": 1}},
    }
    live: dict[str, list[Event]] = {}
    async with open_runtime(config, pipelines(gated)) as runtime:
        ids = {name: (await runtime.submit("synthetic", p)).id for name, p in params.items()}
        ids["canceled"] = (await runtime.submit("gated", {"key": "c"})).id
        with await runtime.subscribe_job(ids["canceled"]) as subscription:
            await gated.entered["c"].wait()
            await runtime.cancel(ids["canceled"])
            live["canceled"] = [event async for event in subscription]
        for name in ("done", "failed"):
            live[name] = await stream(runtime, ids[name])
        before = {name: await stream(runtime, job_id) for name, job_id in ids.items()}
    assert [before[name][-1].type for name in ("done", "failed", "canceled")] == [
        EventType.JOB_COMPLETED,
        EventType.JOB_FAILED,
        EventType.JOB_CANCELLED,
    ]

    async with open_runtime(config, pipelines(gated)) as runtime:
        for name, job_id in ids.items():
            replay = await stream(runtime, job_id)
            assert keys(replay) == keys(before[name]), name
            assert_increasing(replay)
            for index, event in enumerate(replay):
                assert keys(await stream(runtime, job_id, after=event.id)) == keys(
                    replay[index + 1 :]
                ), (name, index)
            # From an id a live reader saw (some of them are progress events the stored
            # history compacted away): exactly the stored events after it.
            for event in live[name]:
                assert event.id is not None
                expected = [e for e in replay if e.id is not None and e.id > event.id]
                assert keys(await stream(runtime, job_id, after=event.id)) == keys(expected)

        # The all-jobs stream resumes exactly too: the stored events of every job, merged.
        merged = sorted((e for name in ids for e in before[name]), key=lambda e: e.id or (0, 0))
        for start in (merged[0], merged[len(merged) // 2], merged[-2]):
            assert start.id is not None
            expected = [e for e in merged if e.id is not None and e.id > start.id]
            with trio.fail_after(10):
                with await runtime.subscribe_all(owner=None, after=start.id) as subscription:
                    got = [await subscription.receive() for _ in expected]
                    with pytest.raises(trio.WouldBlock):
                        subscription.receive_nowait()
            assert keys(got) == keys(expected)


# -- failing storage ----------------------------------------------------------------------------


async def test_failing_storage_refuses_jobs_lets_running_ones_finish_and_recovers(
    tmp_path: Path, thread_aware_autojump_clock: trio.testing.MockClock
) -> None:
    gated = Gated()
    async with breakable_runtime(config_for(tmp_path), gated) as (runtime, storage):
        first = await runtime.submit("gated", {"key": "a"})
        with await runtime.subscribe_job(first.id) as subscription:
            with trio.fail_after(10):
                async for event in subscription:
                    if event.type is EventType.STEP_PROGRESS:
                        break
            assert runtime.storage_problem is None

            storage.fail = True
            with pytest.raises(StorageFailing, match="injected"):
                await runtime.submit("gated", {"key": "b", "wait": False})
            assert runtime.storage_problem is not None
            assert "disk is full" in runtime.storage_problem
            with pytest.raises(StorageFailing):  # refused at once while it fails
                await runtime.submit("gated", {"key": "b2", "wait": False})
            assert runtime.job_count == 1

            # The running job goes on: its stage finishes although nothing can be stored...
            gated.gates["a"].set()
            with trio.fail_after(60):
                await gated.finished["a"].wait()
            await wait_until(lambda: runtime.running_count == 0, within=60)
            assert (await runtime.get(first.id)).status is JobStatus.DONE
            # ... and none of its new events reached a subscriber: none is stored yet.
            with pytest.raises(trio.WouldBlock):
                subscription.receive_nowait()
            assert stored_rows(tmp_path, "SELECT status FROM jobs") == [("Running",)]
            assert storage.failed_commits >= 2

            # The disk works again: the retries store everything, then deliver it.
            storage.fail = False
            with trio.fail_after(60):
                rest = [event async for event in subscription]
        assert rest[-1].type is EventType.JOB_COMPLETED
        assert runtime.storage_problem is None
        stored = await runtime.storage.get(first.id)
        assert stored is not None and stored.status is JobStatus.DONE
        stored_events = await runtime.storage.job_events(first.id, None, 1000)
        assert keys(stored_events[-len(rest) :]) == keys(rest)
        assert [(len(rows),) for rows in [stored_rows(tmp_path, "SELECT id FROM jobs")]] == [(1,)]

        again = await runtime.submit("gated", {"key": "c", "wait": False})
        assert (await stream(runtime, again.id))[-1].type is EventType.JOB_COMPLETED
        listing = await runtime.list_jobs()
        assert [job.id for job in listing.jobs] == [again.id, first.id]


# -- delete, retry, logs ------------------------------------------------------------------------


async def test_delete_retry_and_logs(tmp_path: Path) -> None:
    gated = Gated()
    config = config_for(tmp_path)
    files = tmp_path / "artifacts"
    async with open_runtime(config, pipelines(gated)) as runtime:
        done = await runtime.submit("gated", {"key": "done", "wait": False}, owner="ann")
        failed = await runtime.submit("gated", {"key": "failed", "fail": True}, owner="ann")
        live = await runtime.submit("gated", {"key": "live"}, owner="ann")
        await gated.entered["live"].wait()
        gated.gates["failed"].set()
        for job in (done, failed):
            await stream(runtime, job.id)
        # Files: a Done job keeps them, a Failed one's are removed once it has left memory.
        await wait_until(lambda: failed.id not in runtime._live)
        await wait_until(lambda: not (files / failed.id).exists())
        assert (files / done.id / "out.txt").read_text() == "done"

        # Logs: the owner's, oldest first, from storage once the job ended.
        lines = await runtime.logs(failed.id, owner="ann")
        messages = [line["message"] for line in lines]
        assert {"only started", "failed began"} <= set(messages)
        assert "failed on purpose" in messages[-1]
        assert lines[-1]["level"] == "error"
        assert {tuple(sorted(line)) for line in lines} == {("at", "level", "message", "stage")}
        assert await runtime.logs(failed.id, owner="ann") == await runtime.storage.logs(failed.id)
        assert {line["message"] for line in await runtime.logs(live.id, owner="ann")} == {
            "only started",
            "live began",
        }
        for job_id, owner in ((failed.id, "bob"), ("nope", "ann")):
            with pytest.raises(JobNotFound):
                await runtime.logs(job_id, owner=owner)

        # Retry: Failed (and Canceled) only; a new job, same pipeline and params.
        for job_id in (done.id, live.id):
            with pytest.raises(JobNotRetryable):
                await runtime.retry(job_id, owner="ann")
        with pytest.raises(JobNotFound):
            await runtime.retry(failed.id, owner="bob")
        retried = await runtime.retry(failed.id, owner="ann")
        assert retried.id != failed.id and retried.owner == "ann"
        assert retried.data["retryOf"] == failed.id and retried.data["attempt"] == 1
        assert retried.data["pipeline"] == "gated"
        assert retried.data["params"] == (await runtime.get(failed.id)).data["params"]
        assert (await runtime.storage.get(retried.id)) is not None  # stored before it returned
        await runtime.cancel(live.id)
        await stream(runtime, live.id)
        canceled_retry = await runtime.retry(live.id, owner="ann")
        assert canceled_retry.data["retryOf"] == live.id

        # Delete: terminal only, the owner only; record, history, log and files go.
        with pytest.raises(JobIsLive):
            await runtime.delete(canceled_retry.id, owner="ann")
        with pytest.raises(JobNotFound):
            await runtime.delete(done.id, owner="bob")
        count = runtime.job_count
        await runtime.delete(done.id, owner="ann")
        assert runtime.job_count == count - 1
        for read in (runtime.get, runtime.logs, runtime.subscribe_job, runtime.delete):
            with pytest.raises(JobNotFound):
                await read(done.id, owner="ann")  # type: ignore[operator]
        assert not (files / done.id).exists()
        for table, column in (("jobs", "id"), ("events", "job_id"), ("job_logs", "job_id")):
            sql = f"SELECT count(*) FROM {table} WHERE {column} = ?"
            assert stored_rows(tmp_path, sql, done.id) == [(0,)], table
        assert done.id not in [job.id for job in (await runtime.list_jobs()).jobs]
        gated.free = True
    # Gone for good: not back after a restart.
    async with open_runtime(config, pipelines(gated)) as runtime:
        with pytest.raises(JobNotFound):
            await runtime.get(done.id)


# -- one process per data dir -------------------------------------------------------------------


async def test_a_second_runtime_on_the_same_data_dir_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    gated = Gated()
    config = config_for(tmp_path)
    async with open_runtime(config, pipelines(gated)) as runtime:
        job = await runtime.submit("gated", {"key": "a"})
        await gated.entered["a"].wait()
        await runtime.broadcaster.barrier()
        before = _files(tmp_path)
        with pytest.raises(DataDirLocked) as refused:
            async with open_runtime(config, pipelines(gated)):
                raise AssertionError("a second runtime opened the data dir")
        assert refused.value.holder_pid == os.getpid()
        assert str(tmp_path) in str(refused.value) and str(os.getpid()) in str(refused.value)
        assert _files(tmp_path) == before
        # The first goes on as if nothing happened.
        assert (await runtime.get(job.id)).status is JobStatus.RUNNING
        gated.gates["a"].set()
        assert (await stream(runtime, job.id))[-1].type is EventType.JOB_COMPLETED
    # Once the first has stopped, the dir is free.
    async with open_runtime(config, pipelines(gated)) as runtime:
        assert (await runtime.get(job.id)).status is JobStatus.DONE


def _files(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root``: size, mtime, and content for the small ones."""
    found: dict[str, tuple[int, int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            content = path.read_bytes() if stat.st_size < 4096 else b""
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, content)
    return found


# -- memory holds what is live ------------------------------------------------------------------


async def test_finished_jobs_leave_memory_and_are_read_from_storage(tmp_path: Path) -> None:
    gated = Gated()
    config = config_for(tmp_path, max_concurrent_jobs=3)
    async with open_runtime(config, pipelines(gated)) as runtime:
        jobs = [
            await runtime.submit("synthetic", {"stages": 2, "ticks": 2, "tickSeconds": 0})
            for _ in range(10)
        ]
        held = await runtime.submit("gated", {"key": "held"})
        finished = {job.id: await stream(runtime, job.id) for job in jobs}
        await wait_until(lambda: runtime.live_count == 1)
        assert set(runtime._live) == {held.id}
        for job_id, events in finished.items():
            record = await runtime.get(job_id)
            assert record.status is JobStatus.DONE and record.seq > 0  # from storage
            assert keys(await stream(runtime, job_id)) == keys(events)
        gated.gates["held"].set()
        await stream(runtime, held.id)
        await wait_until(lambda: runtime.live_count == 0)
        assert runtime.job_count == 11
