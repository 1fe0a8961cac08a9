"""Many concurrent jobs, and admission: at most N running, the rest queued in order."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import trio
import trio.testing
from conftest import (
    FnPipeline,
    RuntimeFactory,
    assert_strictly_increasing,
    job_events,
    status_of,
)

from aura_actors.runtime import (
    Broadcaster,
    Commit,
    Event,
    EventId,
    EventType,
    Hub,
    Job,
    JobStatus,
    MemoryStorage,
    QueueFull,
    RuntimeConfig,
    Stage,
    StageContext,
)
from aura_actors.runtime._runner import JobRunner
from aura_actors.runtime._source import JobSource, LocalJobs

JOBS = 200
STAGES, TICKS = 2, 10


def _tick_seconds(index: int) -> float:
    return 0.01 * (1 + index % 7)


async def test_200_concurrent_jobs_cancel_every_third(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(max_concurrent_jobs=JOBS, subscriber_buffer=100_000) as rt:
        with await rt.subscribe_all(owner="load") as everything:
            jobs = [
                await rt.submit(
                    "synthetic",
                    {"stages": STAGES, "ticks": TICKS, "tickSeconds": _tick_seconds(i)},
                    owner="load",
                )
                for i in range(JOBS)
            ]
            start = trio.current_time()
            assert rt.running_count == JOBS and rt.queued_count == 0
            index_of = {job.id: i for i, job in enumerate(jobs)}
            streams: dict[str, list[Event]] = defaultdict(list)
            ended_at: dict[str, float] = {}
            while len(ended_at) < JOBS:
                event = await everything.receive()
                assert event.job_id is not None
                streams[event.job_id].append(event)
                i = index_of[event.job_id]
                progress = [e for e in streams[event.job_id] if e.type is EventType.STEP_PROGRESS]
                # cancel every third job at its 7th tick (in its first stage)
                if i % 3 == 0 and event.type is EventType.STEP_PROGRESS and len(progress) == 7:
                    await rt.cancel(event.job_id)
                if event.type.is_terminal:
                    ended_at[event.job_id] = trio.current_time() - start
            assert everything.skipped_progress == 0
        per_job_histories = {job.id: await job_events(rt, job.id) for job in jobs[:20]}
        final = {job.id: await status_of(rt, job.id) for job in jobs}

    for i, job in enumerate(jobs):
        stream = streams[job.id]
        assert_strictly_increasing(stream)
        statuses = [e.data["status"] for e in stream if e.type is EventType.JOB_STATUS]
        pcts = [e.data["progressPct"] for e in stream if "progressPct" in e.data]
        assert pcts == sorted(pcts), f"job {i}: progress went back"
        progress = [e for e in stream if e.type is EventType.STEP_PROGRESS]
        if i % 3 == 0:
            assert final[job.id] is JobStatus.CANCELED
            assert statuses == ["Queued", "Running", "Canceled"]
            assert stream[-1].type is EventType.JOB_CANCELLED
            assert stream[-1].data["step"] == "stage-1"
            assert len(progress) == 7, "no progress after the cancel"
            assert ended_at[job.id] == pytest.approx(7 * _tick_seconds(i))
        else:
            assert final[job.id] is JobStatus.DONE, f"job {i} was affected: {final[job.id]}"
            assert statuses == ["Queued", "Running", "Done"]
            assert stream[-1].type is EventType.JOB_COMPLETED
            # independent progress: each job its own ticks, at its own pace
            assert [e.data["currentItem"] for e in progress] == list(range(1, TICKS + 1)) * 2
            assert progress[-1].data["progressPct"] == 100.0
            assert ended_at[job.id] == pytest.approx(STAGES * TICKS * _tick_seconds(i))
    for job_id, history in per_job_histories.items():
        assert_strictly_increasing(history)
        assert history[-1].id == streams[job_id][-1].id


def _gated(gates: dict[str, trio.Event], started: list[str]) -> FnPipeline:
    async def wait_for_gate(ctx: StageContext) -> None:
        started.append(ctx.params["name"])
        await gates[ctx.params["name"]].wait()

    return FnPipeline("gated", lambda params: [Stage("Gate", wait_for_gate)])


async def test_admission_runs_n_and_queues_the_rest_in_order(
    make_runtime: RuntimeFactory,
) -> None:
    names = [f"j{i}" for i in range(6)]
    gates = {name: trio.Event() for name in names}
    started: list[str] = []
    async with make_runtime(_gated(gates, started), max_concurrent_jobs=2, max_queued_jobs=3) as rt:
        with await rt.subscribe_all(owner=None) as everything:
            jobs = {name: await rt.submit("gated", {"name": name}) for name in names[:5]}
            statuses = [jobs[name].status for name in names[:5]]
            assert statuses == [JobStatus.RUNNING] * 2 + [JobStatus.QUEUED] * 3
            assert (rt.running_count, rt.queued_count) == (2, 3)
            with pytest.raises(QueueFull) as info:
                await rt.submit("gated", {"name": "j5"})
            assert info.value.code == "queue_full" and info.value.max_queued == 3
            assert rt.job_count == 5, "a refused job does not exist"
            # cancelling a queued job frees its place in the queue
            await rt.cancel(jobs["j3"].id)
            jobs["j5"] = await rt.submit("gated", {"name": "j5"})
            assert jobs["j5"].status is JobStatus.QUEUED
            with pytest.raises(QueueFull):
                await rt.submit("gated", {"name": "extra"})
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(started) == ["j0", "j1"]  # trio may run the two actors either way
            # finishing running jobs admits the queued ones in submission order
            for name in ["j1", "j0", "j2", "j4", "j5"]:
                gates[name].set()
                await trio.testing.wait_all_tasks_blocked()
                assert rt.running_count <= 2
            assert started[2:] == ["j2", "j4", "j5"]
            running_order = []
            done = 0
            while done < 5:
                event = everything.receive_nowait()
                if event.type is EventType.JOB_STATUS and event.data["status"] == "Running":
                    running_order.append(event.job_id)
                done += event.type is EventType.JOB_COMPLETED
        final = {name: await rt.get(job.id) for name, job in jobs.items()}
    assert running_order == [jobs[n].id for n in ["j0", "j1", "j2", "j4", "j5"]]
    assert final["j3"].status is JobStatus.CANCELED
    assert final["j3"].snapshot()["startedAt"] is None
    assert all(final[n].status is JobStatus.DONE for n in ["j0", "j1", "j2", "j4", "j5"])


async def test_zero_queue_refuses_when_every_slot_is_busy(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(max_concurrent_jobs=1, max_queued_jobs=0) as rt:
        first = await rt.submit("synthetic", {"ticks": 3})
        with pytest.raises(QueueFull):
            await rt.submit("synthetic")
        await job_events(rt, first.id)
        await trio.testing.wait_all_tasks_blocked()
        assert rt.running_count == 0
        second = await rt.submit("synthetic", {"ticks": 3})
        assert second.status is JobStatus.RUNNING


class _GatedStorage(MemoryStorage):
    """Memory storage whose commits wait at a gate the test opens."""

    def __init__(self) -> None:
        super().__init__(history_ttl=3600, max_history_events=1000)
        self.entered = trio.Event()
        self.gate = trio.Event()

    async def commit(self, commit: Commit) -> EventId | None:
        self.entered.set()
        await self.gate.wait()
        return await super().commit(commit)


class _ClusterQueue(LocalJobs):
    """A job source like a cluster node's: new jobs go elsewhere, to any worker."""

    shared = True

    def queued(self, runner: JobRunner, job: Job) -> None:
        pass


@pytest.mark.parametrize(("source", "free_while_stored"), [(None, 0), (_ClusterQueue(), 1)])
async def test_a_job_being_stored_holds_a_slot_only_where_it_will_run(
    tmp_path: Path, source: JobSource | None, free_while_stored: int
) -> None:
    """In one process a submitted job holds its slot while its record is stored (one
    submitted meanwhile queues behind it). In a cluster it goes to any worker's queue: a
    slot held here would turn away the job this node's own worker is starting."""
    storage = _GatedStorage()
    async with trio.open_nursery() as nursery:
        broadcaster = Broadcaster(storage, Hub())
        nursery.start_soon(broadcaster.run)
        config = RuntimeConfig(data_dir=tmp_path, max_concurrent_jobs=1)
        runner = JobRunner(config, broadcaster, nursery, source)
        job = Job(
            job_id="j", pipeline="p", params={}, stages=(), owner=None, broadcaster=broadcaster
        )
        nursery.start_soon(runner.store_new, job)
        await storage.entered.wait()
        try:
            assert runner.free_slots() == free_while_stored
        finally:
            storage.gate.set()  # (the wait for the store is shielded)
        await broadcaster.barrier()
        assert runner.free_slots() == 1
        nursery.cancel_scope.cancel()
