"""The job state machine: all 25 status pairs, and terminal jobs never change."""

from __future__ import annotations

import itertools

import pytest
import trio
from conftest import RuntimeFactory, job_events, one_stage

from aura_actors.runtime import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    InvalidTransition,
    Job,
    JobAlreadyFinished,
    JobStatus,
    Runtime,
    check_transition,
)

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


def _job_in(runtime: Runtime, status: JobStatus) -> Job:
    """A job of ``runtime`` forced into ``status`` through valid transitions only."""
    job = Job(
        job_id=f"job-{status.value}-{len(runtime._jobs)}",
        seq=0,
        pipeline="test",
        params={},
        stages=(),
        owner=None,
        broadcaster=runtime.broadcaster,
    )
    runtime._jobs[job.id] = job
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


@pytest.mark.parametrize(("current", "requested"), ALL_PAIRS, ids=lambda s: s.value)
async def test_job_transition_every_pair(
    runtime: Runtime, current: JobStatus, requested: JobStatus
) -> None:
    job = _job_in(runtime, current)
    history = runtime.broadcaster.history(job.id)
    assert history is not None
    events_before = len(history)
    if (current, requested) in VALID:
        job.transition(requested)
        assert job.status is requested
        last = history.events[-1]
        assert last.data["status"] == requested.value
        assert last.data["previousStatus"] == current.value
    else:
        with pytest.raises(InvalidTransition):
            job.transition(requested)
        assert job.status is current, "a refused transition must leave the status unchanged"
        assert len(history) == events_before, "a refused transition must emit nothing"


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES), ids=str)
async def test_terminal_status_never_changes(runtime: Runtime, terminal: JobStatus) -> None:
    job = _job_in(runtime, terminal)
    finished_at = job.finished_at
    for requested in JobStatus:
        with pytest.raises(InvalidTransition):
            job.transition(requested)
        assert job.status is terminal
    assert job.finished_at == finished_at
    with pytest.raises(JobAlreadyFinished):
        runtime.cancel(job.id)
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
        done, failed, canceled = rt.submit("ok"), rt.submit("boom"), rt.submit("forever")
        rt.cancel(canceled.id)
        expected = {done: S.DONE, failed: S.FAILED, canceled: S.CANCELED}
        for job, status in expected.items():
            events = await job_events(rt, job.id)
            statuses = [e.data["status"] for e in events if e.type.value == "job-status"]
            assert statuses == ["Queued", "Running", status.value]
            assert job.status is status
            with pytest.raises(JobAlreadyFinished) as info:
                rt.cancel(job.id)
            assert info.value.status == status.value
            assert job.status is status
