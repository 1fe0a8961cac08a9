"""Shutdown: leaving ``open_runtime`` ends every job and stream, promptly, leaving no task."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, collect, job_events, stored_events

from aura_actors.runtime import (
    CANCELED_BY_SHUTDOWN,
    Event,
    EventType,
    JobStatus,
    ShuttingDown,
    Stage,
    StageContext,
    Subscription,
)


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of this trio run, from the root task down."""
    tasks: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        tasks.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


def _busy_pipeline(started: dict[str, trio.Event], thread_exited: threading.Event) -> FnPipeline:
    """``kind`` = sleep | process | thread: a stage that would run for a minute."""

    def spin() -> None:
        try:
            while True:
                trio.from_thread.check_cancelled()
                time.sleep(0.001)
        finally:
            thread_exited.set()

    async def busy(ctx: StageContext) -> None:
        kind = ctx.params["kind"]
        started[kind].set()
        if kind == "sleep":
            await trio.sleep(60)
        elif kind == "process":
            await ctx.run_process(["sleep", "60"])
        else:
            await ctx.run_in_thread(spin)

    return FnPipeline("busy", lambda params: [Stage("Busy", busy)])


async def test_leaving_the_block_cancels_everything_promptly(make_runtime: RuntimeFactory) -> None:
    kinds = ["sleep", "process", "thread"]
    started = {kind: trio.Event() for kind in kinds}
    thread_exited = threading.Event()
    streams: dict[str, list[Event]] = {}
    tasks_before = all_tasks()

    async def read(name: str, subscription: Subscription) -> None:
        with subscription:
            streams[name] = await collect(subscription)

    with trio.fail_after(10):
        async with trio.open_nursery() as readers:  # subscribers outlive the runtime
            async with make_runtime(
                _busy_pipeline(started, thread_exited), max_concurrent_jobs=3
            ) as rt:
                readers.start_soon(read, "all", await rt.subscribe_all(owner=None))
                jobs = {kind: await rt.submit("busy", {"kind": kind}) for kind in kinds}
                jobs["queued-1"] = await rt.submit("synthetic")
                jobs["queued-2"] = await rt.submit("synthetic")
                assert rt.queued_count == 2
                for name, job in jobs.items():
                    readers.start_soon(read, name, await rt.subscribe_job(job.id))
                for event in started.values():
                    await event.wait()
                t0 = time.perf_counter()
            elapsed = time.perf_counter() - t0
            assert rt.shutting_down
    print(f"\nshutdown with a sleep, a subprocess and a thread running: {elapsed * 1000:.2f} ms")
    assert elapsed < 1.0
    final = {name: await rt.get(job.id) for name, job in jobs.items()}  # as stored
    assert rt.live_count == 0
    for name in jobs:
        assert final[name].status is JobStatus.CANCELED, name
        assert "shutting down" in final[name].data["message"]
        events = streams[name]
        assert events[-1].type is EventType.JOB_CANCELLED, name
        assert events[-1].data["message"] == CANCELED_BY_SHUTDOWN
        assert "shutting down" in CANCELED_BY_SHUTDOWN
        expected_step = None if name.startswith("queued") else "Busy"
        assert events[-1].data["step"] == expected_step
    assert final["queued-1"].data["startedAt"] is None
    assert final["queued-2"].data["startedAt"] is None
    # the owner stream saw every job's end, then ended too
    ends = [e.job_id for e in streams["all"] if e.type is EventType.JOB_CANCELLED]
    assert sorted(ends) == sorted(job.id for job in jobs.values())
    # the thread was told to stop and did
    assert await trio.to_thread.run_sync(thread_exited.wait, 5)
    assert all_tasks() == tasks_before, "a task of the runtime outlived it"


async def test_submit_after_begin_shutdown_is_refused(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        running = await rt.submit("synthetic", {"ticks": 1000})
        rt.begin_shutdown()
        rt.begin_shutdown()  # idempotent
        assert rt.shutting_down
        with pytest.raises(ShuttingDown) as info:
            await rt.submit("synthetic")
        assert info.value.code == "shutting_down"
        events = await job_events(rt, running.id)  # already being cancelled, inside the block
        assert events[-1].type is EventType.JOB_CANCELLED
        assert rt.job_count == 1


async def test_an_outer_cancel_shuts_the_runtime_down(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    tasks_before = all_tasks()
    with trio.move_on_after(5) as scope:
        async with make_runtime() as rt:
            job = await rt.submit("synthetic", {"ticks": 100_000, "tickSeconds": 1})
            await trio.sleep_forever()
    assert scope.cancelled_caught
    final = await rt.get(job.id)  # from the (memory) storage, which outlives the block
    assert final.status is JobStatus.CANCELED
    assert final.data["message"] == CANCELED_BY_SHUTDOWN
    history = await stored_events(rt, job.id)
    assert history[-1].type is EventType.JOB_CANCELLED
    assert final.last_event_id == history[-1].id
    assert rt.broadcaster.lost_records == 0
    assert all_tasks() == tasks_before


async def test_an_error_in_the_block_still_shuts_down(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(BaseExceptionGroup) as info:
        async with make_runtime() as rt:
            job = await rt.submit("synthetic", {"ticks": 100_000})
            raise KeyError("caller bug")
    assert info.value.subgroup(KeyError) is not None
    final = await rt.get(job.id)
    assert final.status is JobStatus.CANCELED
    assert final.data["message"] == CANCELED_BY_SHUTDOWN


async def test_a_persistent_runtime_keeps_queued_jobs_for_its_next_start(
    make_runtime: RuntimeFactory, thread_aware_autojump_clock: trio.testing.MockClock
) -> None:
    """Stored jobs outlive the process: a queued job stays Queued and runs after a restart."""

    async def forever(ctx: StageContext) -> None:
        await trio.sleep_forever()

    pipelines = (FnPipeline("forever", lambda p: [Stage("Forever", forever)]),)
    options = {"persist_jobs": True, "max_concurrent_jobs": 1}
    async with make_runtime(*pipelines, **options) as rt:
        running = await rt.submit("forever")
        queued = await rt.submit("synthetic", {"stages": 1, "ticks": 2})
        assert queued.status is JobStatus.QUEUED
        subscription = await rt.subscribe_job(queued.id)
    with subscription:
        # its stream ends with the runtime, the job not ended
        assert [e.data["status"] for e in await collect(subscription)] == ["Queued"]
    async with make_runtime(*pipelines, **options) as again:
        assert (await again.get(running.id)).status is JobStatus.CANCELED
        events = await job_events(again, queued.id)
        assert events[0].data["status"] == "Queued"
        assert events[-1].type is EventType.JOB_COMPLETED
        record = await again.get(queued.id)
        assert record.status is JobStatus.DONE and record.data["attempt"] == 1
