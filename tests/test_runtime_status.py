"""The job state machine: all 25 status pairs, and terminal jobs never change."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, job_events, one_stage, status_of, stored_events

from aura_actors.runtime import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    Event,
    InvalidTransition,
    Job,
    JobAlreadyFinished,
    JobStatus,
    Runtime,
    check_transition,
)
from aura_actors.runtime._outgoing import CommitWaiter

S = JobStatus
VALID = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELED),
    (S.RUNNING, S.DONE),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELED),
}
ALL_PAIRS = list(itertools.product(JobStatus, JobStatus))


def test_status_strings_are_the_contracts() -> None:
    assert [s.value for s in JobStatus] == ["Queued", "Running", "Done", "Failed", "Canceled"]
    assert {s for s in JobStatus if s.is_terminal} == {S.DONE, S.FAILED, S.CANCELED}
    assert {S.DONE, S.FAILED, S.CANCELED} == TERMINAL_STATUSES
    assert ALLOWED_TRANSITIONS == VALID
    assert len(ALL_PAIRS) == 25


@pytest.mark.parametrize(("current", "requested"), ALL_PAIRS, ids=lambda s: s.value)
def test_check_transition_every_pair(current: JobStatus, requested: JobStatus) -> None:
    if (current, requested) in VALID:
        check_transition(current, requested)
    else:
        with pytest.raises(InvalidTransition) as info:
            check_transition(current, requested)
        assert info.value.current is current
        assert info.value.requested is requested
        assert current.value in str(info.value)
        assert requested.value in str(info.value)


async def _job_in(runtime: Runtime, status: JobStatus) -> Job:
    """A live job of ``runtime`` forced into ``status`` through valid transitions only."""
    job = Job(
        job_id=f"job-{status.value}-{len(runtime._live)}",
        pipeline="test",
        params={},
        stages=(),
        owner=None,
        broadcaster=runtime.broadcaster,
    )
    runtime._live[job.id] = job
    waiter = CommitWaiter()
    job.announce_queued(waiter)
    await waiter.done.wait()
    assert waiter.error is None
    path = {
        S.QUEUED: [],
        S.RUNNING: [S.RUNNING],
        S.DONE: [S.RUNNING, S.DONE],
        S.FAILED: [S.RUNNING, S.FAILED],
        S.CANCELED: [S.CANCELED],
    }[status]
    for step in path:
        job.transition(step)
    assert job.status is status
    return job


async def _history(runtime: Runtime, job: Job) -> list[Event]:
    return await stored_events(runtime, job.id)


@pytest.mark.parametrize(("current", "requested"), ALL_PAIRS, ids=lambda s: s.value)
async def test_job_transition_every_pair(
    runtime: Runtime, current: JobStatus, requested: JobStatus
) -> None:
    job = await _job_in(runtime, current)
    events_before = len(await _history(runtime, job))
    if (current, requested) in VALID:
        job.transition(requested)
        assert job.status is requested
        history = await _history(runtime, job)
        assert len(history) == events_before + 1
        last = history[-1]
        assert last.data["status"] == requested.value
        assert last.data["previousStatus"] == current.value
        stored = await runtime.storage.get(job.id)
        assert stored is not None
        # a non-terminal status is stored with its event; a terminal one with the
        # terminal event that follows it (job-completed, ...)
        if requested.is_terminal:
            assert stored.status is current
        else:
            assert stored.status is requested and stored.last_event_id == last.id
    else:
        with pytest.raises(InvalidTransition):
            job.transition(requested)
        assert job.status is current, "a refused transition must leave the status unchanged"
        history = await _history(runtime, job)
        assert len(history) == events_before, "a refused transition must emit nothing"


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES), ids=str)
async def test_terminal_status_never_changes(runtime: Runtime, terminal: JobStatus) -> None:
    job = await _job_in(runtime, terminal)
    finished_at = job.finished_at
    for requested in JobStatus:
        with pytest.raises(InvalidTransition):
            job.transition(requested)
        assert job.status is terminal
    assert job.finished_at == finished_at
    with pytest.raises(JobAlreadyFinished):
        await runtime.cancel(job.id)
    assert job.status is terminal


async def test_finished_jobs_stay_finished(make_runtime: RuntimeFactory) -> None:
    """Through real jobs: Done, Failed and Canceled jobs refuse cancel and keep their status."""

    async def ok(ctx: object) -> None:
        await trio.lowlevel.checkpoint()

    async def boom(ctx: object) -> None:
        raise RuntimeError("boom")

    async def forever(ctx: object) -> None:
        await trio.sleep_forever()

    async with make_runtime(
        one_stage("ok", ok), one_stage("boom", boom), one_stage("forever", forever)
    ) as rt:
        done, failed, canceled = [await rt.submit(name) for name in ("ok", "boom", "forever")]
        await rt.cancel(canceled.id)
        expected = {done.id: S.DONE, failed.id: S.FAILED, canceled.id: S.CANCELED}
        for job_id, status in expected.items():
            events = await job_events(rt, job_id)
            statuses = [e.data["status"] for e in events if e.type.value == "job-status"]
            assert statuses == ["Queued", "Running", status.value]
            assert await status_of(rt, job_id) is status
            with pytest.raises(JobAlreadyFinished) as info:
                await rt.cancel(job_id)
            assert info.value.status == status.value
            assert await status_of(rt, job_id) is status
        # and once they are only in storage
        await trio.testing.wait_all_tasks_blocked()
        for job_id, status in expected.items():
            assert job_id not in rt._live
            with pytest.raises(JobAlreadyFinished) as info:
                await rt.cancel(job_id)
            assert info.value.status == status.value
            assert await status_of(rt, job_id) is status
