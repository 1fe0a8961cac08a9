"""Shutdown: leaving ``open_runtime`` ends every job and stream, promptly, leaving no task."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, collect, job_events

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
                readers.start_soon(read, "all", rt.subscribe_all(owner=None))
                jobs = {kind: rt.submit("busy", {"kind": kind}) for kind in kinds}
                jobs["queued-1"] = rt.submit("synthetic")
                jobs["queued-2"] = rt.submit("synthetic")
                assert rt.queued_count == 2
                for name, job in jobs.items():
                    readers.start_soon(read, name, rt.subscribe_job(job.id))
                for event in started.values():
                    await event.wait()
                t0 = time.perf_counter()
            elapsed = time.perf_counter() - t0
            assert rt.shutting_down
    print(f"\nshutdown with a sleep, a subprocess and a thread running: {elapsed * 1000:.2f} ms")
    assert elapsed < 1.0
    for name, job in jobs.items():
        assert job.status is JobStatus.CANCELED, name
        assert "shutting down" in job.message
        events = streams[name]
        assert events[-1].type is EventType.JOB_CANCELLED, name
        assert events[-1].data["message"] == CANCELED_BY_SHUTDOWN
        assert "shutting down" in CANCELED_BY_SHUTDOWN
        expected_step = None if name.startswith("queued") else "Busy"
        assert events[-1].data["step"] == expected_step
    assert jobs["queued-1"].started_at is None and jobs["queued-2"].started_at is None
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
        running = rt.submit("synthetic", {"ticks": 1000})
        rt.begin_shutdown()
        rt.begin_shutdown()  # idempotent
        assert rt.shutting_down
        with pytest.raises(ShuttingDown) as info:
            rt.submit("synthetic")
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
            job = rt.submit("synthetic", {"ticks": 100_000, "tickSeconds": 1})
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert job.status is JobStatus.CANCELED
    assert job.message == CANCELED_BY_SHUTDOWN
    history = rt.broadcaster.history(job.id)
    assert history is not None and history.events[-1].type is EventType.JOB_CANCELLED
    assert all_tasks() == tasks_before


async def test_an_error_in_the_block_still_shuts_down(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(BaseExceptionGroup) as info:
        async with make_runtime() as rt:
            job = rt.submit("synthetic", {"ticks": 100_000})
            raise KeyError("caller bug")
    assert info.value.subgroup(KeyError) is not None
    assert job.status is JobStatus.CANCELED
    assert job.message == CANCELED_BY_SHUTDOWN
