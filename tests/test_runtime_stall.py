"""The stall watchdog: a warning at half the stall timeout, failure at all of it."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, of_type

from aura_actors.runtime import (
    Event,
    EventType,
    JobStatus,
    Runtime,
    Stage,
    StageContext,
    StageError,
    StageFunction,
)

STALL = 10.0


async def _run_timed(rt: Runtime, pipeline: str) -> tuple[list[tuple[float, Event]], float]:
    """Run a job to its end; every event with the trio time it was received at."""
    job = await rt.submit(pipeline)
    start = trio.current_time()
    timed: list[tuple[float, Event]] = []
    with await rt.subscribe_job(job.id) as subscription:
        async for event in subscription:
            timed.append((trio.current_time() - start, event))
    return timed, start


def _watched(name: str, run: StageFunction, stall: float = STALL) -> FnPipeline:
    return FnPipeline(name, lambda p: [Stage("Watched", run, stall_timeout=stall)])


async def test_stalled_stage_warns_at_half_then_fails(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def goes_quiet(ctx: StageContext) -> None:
        await trio.sleep(1.0)
        await ctx.report(0.25, "then silence")
        await trio.sleep_forever()

    async with make_runtime(_watched("quiet", goes_quiet)) as rt:
        timed, _ = await _run_timed(rt, "quiet")
    by_type = {event.type: (at, event) for at, event in timed}
    warned_at, warning = by_type[EventType.WARNING]
    failed_at, failed = by_type[EventType.JOB_FAILED]
    assert warned_at == pytest.approx(1.0 + STALL / 2)
    assert warning.data["step"] == "Watched"
    assert "no progress" in warning.data["message"]
    assert failed_at == pytest.approx(1.0 + STALL)
    assert failed.data["step"] == "Watched"
    assert [e["code"] for e in failed.data["errors"]] == ["stalled"]
    assert failed.data["errors"][0]["remediation"]
    assert len(of_type([e for _, e in timed], EventType.WARNING)) == 1
    status = [e for _, e in timed if e.type is EventType.JOB_STATUS][-1]
    assert status.data["status"] == JobStatus.FAILED.value


async def test_a_stage_that_keeps_reporting_never_stalls(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def steady(ctx: StageContext) -> None:
        for n in range(100):  # 40 s in all, far past the stall timeout of 1 s
            await trio.sleep(0.4)
            await ctx.report((n + 1) / 100)

    async with make_runtime(_watched("steady", steady, stall=1.0)) as rt:
        timed, _ = await _run_timed(rt, "steady")
    events = [e for _, e in timed]
    assert events[-1].type is EventType.JOB_COMPLETED
    assert timed[-1][0] == pytest.approx(40.0)
    assert not of_type(events, EventType.WARNING, EventType.JOB_FAILED)


async def test_the_warning_rearms_after_progress(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def hesitant(ctx: StageContext) -> None:
        for n in range(3):
            await trio.sleep(STALL * 0.6)  # past the warning, short of the failure
            await ctx.report((n + 1) / 3)

    async with make_runtime(_watched("hesitant", hesitant)) as rt:
        timed, _ = await _run_timed(rt, "hesitant")
    events = [e for _, e in timed]
    assert events[-1].type is EventType.JOB_COMPLETED
    warnings = [at for at, e in timed if e.type is EventType.WARNING]
    # one warning per silent stretch, each half the stall timeout after the last report
    assert warnings == pytest.approx([5.0, 11.0, 17.0])


async def test_a_watched_stage_error_keeps_its_code(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """The watchdog runs the stage in a nursery: its StageError must not come out wrapped."""

    async def fails(ctx: StageContext) -> None:
        await ctx.report(0.5)
        raise StageError("the disk is full", code="disk_full", remediation="free some space")

    async with make_runtime(_watched("fails", fails)) as rt:
        timed, _ = await _run_timed(rt, "fails")
    failed = timed[-1][1]
    assert failed.type is EventType.JOB_FAILED
    assert failed.data["errorMessage"] == "the disk is full"
    assert failed.data["errors"] == [
        {"code": "disk_full", "message": "the disk is full", "remediation": "free some space"}
    ]


async def test_cancel_of_a_watched_stage_is_a_cancel_not_a_stall(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def quiet(ctx: StageContext) -> None:
        await trio.sleep_forever()

    async with make_runtime(_watched("quiet", quiet)) as rt:
        job = await rt.submit("quiet")
        with await rt.subscribe_job(job.id) as subscription:
            async for event in subscription:
                if event.type is EventType.WARNING:
                    await rt.cancel(job.id)
                last = event
        assert (await rt.get(job.id)).status is JobStatus.CANCELED
    assert last.type is EventType.JOB_CANCELLED


async def test_a_report_notes_the_time_and_leaves_the_deadline_to_the_watchdog(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A report costs no deadline registration: only the watchdog moves the deadline."""
    from aura_actors.runtime._stage import _StallWatch

    with trio.CancelScope() as scope:
        watch = _StallWatch(scope, 10.0)
        first = scope.deadline
        assert first == trio.current_time() + 10.0
        await trio.sleep(3)
        watch.touch()
        assert scope.deadline == first and watch.last == trio.current_time()
        watch.push()
        assert scope.deadline == watch.last + 10.0
