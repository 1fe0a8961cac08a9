"""Failures stay inside their job: codes, messages, logs; the runtime and other jobs go on."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, job_events, one_stage, status_of

from aura_actors.runtime import (
    EventType,
    JobStatus,
    Stage,
    StageContext,
    StageError,
    StageFunction,
)


async def _crashes(ctx: StageContext) -> None:
    ctx.log("loading the model")
    ctx.log("model loaded")
    await ctx.report(0.4, "working")
    raise ValueError("bad frame 17")


async def _typed_error(ctx: StageContext) -> None:
    raise StageError("quota exceeded", code="quota", remediation="wait an hour")


async def _bad_report(ctx: StageContext) -> None:
    await ctx.report("half")  # type: ignore[arg-type]  # a pipeline bug inside the job actor


def _two_stages(run: StageFunction) -> FnPipeline:
    async def fine(ctx: StageContext) -> None:
        await ctx.report(1.0)

    return FnPipeline("two", lambda p: [Stage("First", fine), Stage("Second", run)])


async def test_a_raising_stage_fails_only_its_job(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(one_stage("crash", _crashes)) as rt:
        healthy = await rt.submit("synthetic", {"ticks": 50, "tickSeconds": 0.1})
        crashing = await rt.submit("crash")
        events = await job_events(rt, crashing.id)
        assert await status_of(rt, healthy.id) is JobStatus.RUNNING, (
            "another job's failure stopped this one"
        )
        failed = events[-1]
        assert failed.type is EventType.JOB_FAILED
        crashed = await rt.get(crashing.id)
        assert crashed.status is JobStatus.FAILED
        assert failed.data["step"] == "crash"
        assert [e["code"] for e in failed.data["errors"]] == ["stage_error"]
        assert "ValueError: bad frame 17" in failed.data["errorMessage"]
        # the tail of the job's log: the runtime's own lines and the stage's, in order
        assert failed.data["logs"] == [
            "crash started",
            "loading the model",
            "model loaded",
            "crash: ValueError: bad frame 17",
        ]
        error = crashed.snapshot()["error"]
        assert error["message"] == failed.data["errorMessage"]
        assert error["errors"] == failed.data["errors"]
        assert crashed.snapshot()["progressPct"] == 40.0
        # the job's log is stored with its end: the same lines, with level and stage
        logs = await rt.logs(crashing.id)
        assert [line["message"] for line in logs] == failed.data["logs"]
        assert [line["level"] for line in logs] == ["info", "info", "info", "error"]
        assert {line["stage"] for line in logs} == {"crash"}
        # the runtime is fine: the other job finishes, new jobs run
        assert (await job_events(rt, healthy.id))[-1].type is EventType.JOB_COMPLETED
        later = await rt.submit("synthetic", {"ticks": 2})
        assert (await job_events(rt, later.id))[-1].type is EventType.JOB_COMPLETED


@pytest.mark.parametrize("stall_timeout", [None, 30.0], ids=["plain", "watched"])
async def test_stage_error_code_and_remediation_propagate(
    make_runtime: RuntimeFactory,
    autojump_clock: trio.testing.MockClock,
    stall_timeout: float | None,
) -> None:
    pipeline = one_stage("typed", _typed_error, stall_timeout=stall_timeout)
    async with make_runtime(pipeline) as rt:
        job = await rt.submit("typed")
        failed = (await job_events(rt, job.id))[-1]
        error = (await rt.get(job.id)).data["error"]
    assert failed.data["errorMessage"] == "quota exceeded"
    assert failed.data["errors"] == [
        {"code": "quota", "message": "quota exceeded", "remediation": "wait an hour"}
    ]
    assert failed.data["logs"] == ["typed started", "typed: quota exceeded"]
    assert error == {"message": "quota exceeded", "errors": failed.data["errors"]}


async def test_a_failure_in_a_later_stage_names_it(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(_two_stages(_typed_error)) as rt:
        job = await rt.submit("two")
        events = await job_events(rt, job.id)
    steps = [(e.data["step"], e.data["state"]) for e in events if e.type is EventType.STEP_STATUS]
    assert steps == [("First", "Started"), ("First", "Completed"), ("Second", "Started")]
    assert events[-1].data["step"] == "Second"
    assert events[-2].data == {
        "jobId": job.id,
        "status": "Failed",
        "previousStatus": "Running",
        "stage": "Second",
        "progressPct": 50.0,
    }


async def test_a_pipeline_bug_in_the_job_actor_fails_only_that_job(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(one_stage("bad", _bad_report)) as rt:
        other = await rt.submit("synthetic", {"ticks": 20})
        job = await rt.submit("bad")
        failed = (await job_events(rt, job.id))[-1]
        assert failed.type is EventType.JOB_FAILED
        assert failed.data["errors"][0]["code"] == "internal_error"
        assert (await job_events(rt, other.id))[-1].type is EventType.JOB_COMPLETED


async def test_a_pipeline_with_bad_stages_is_refused_at_submit(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """A queued job whose stages cannot run must not crash the runtime when admitted."""

    async def quick(ctx: StageContext) -> None:
        await trio.sleep(1)

    zero_weight = FnPipeline("zero", lambda p: [Stage("Z", quick, weight=0)])
    no_stages = FnPipeline("empty", lambda p: [])
    async with make_runtime(
        zero_weight, no_stages, one_stage("quick", quick), max_concurrent_jobs=1
    ) as rt:
        first = await rt.submit("quick")
        for name in ("zero", "empty"):
            with pytest.raises(ValueError):
                await rt.submit(name)
        assert rt.job_count == 1 and rt.queued_count == 0
        assert len((await rt.list_jobs()).jobs) == 1, "a refused job is not stored"
        assert (await job_events(rt, first.id))[-1].type is EventType.JOB_COMPLETED
        assert (await rt.submit("quick")).status is JobStatus.RUNNING


async def test_keyboard_interrupt_is_not_swallowed(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def interrupted(ctx: StageContext) -> None:
        await trio.sleep(1)
        raise KeyboardInterrupt

    with pytest.raises(BaseExceptionGroup) as info:
        async with make_runtime(one_stage("ki", interrupted)) as rt:
            job = await rt.submit("ki")
            await trio.sleep_forever()
    assert info.value.subgroup(KeyboardInterrupt) is not None
    assert (await status_of(rt, job.id)).is_terminal


def _logging_stages(name: str) -> FnPipeline:
    def stage(stage_name: str) -> Stage:
        async def run(ctx: StageContext) -> None:
            ctx.log(f"{stage_name} says hi")
            await ctx.report(1.0)

        return Stage(stage_name, run)

    return FnPipeline(name, lambda p: [stage("A"), stage("B")])


async def test_log_order_and_stage_of_each_line(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """A job's log is in the order things happened, each line naming the stage it came from."""
    async with make_runtime(_logging_stages("logs")) as rt:
        logs = []
        for _ in range(20):  # the order depends on how trio schedules two tasks
            job = await rt.submit("logs")
            await job_events(rt, job.id)
            logs.append([(line["stage"], line["message"]) for line in await rt.logs(job.id)])
    for lines in logs:
        assert lines[:-1] == [
            ("A", "A started"),
            ("A", "A says hi"),
            ("A", "A completed"),
            ("B", "B started"),
            ("B", "B says hi"),
            ("B", "B completed"),
        ]
        assert lines[-1][1].startswith("done in")
