"""Job histories: dropped ``history_ttl`` after the job ends (not before); bounded; compacted."""

from __future__ import annotations

import itertools

import trio
import trio.testing
from conftest import (
    FnPipeline,
    RuntimeFactory,
    collect,
    is_terminal,
    read_until,
    ready_events,
    stored_events,
)

from aura_actors.runtime import (
    Commit,
    Event,
    EventId,
    EventType,
    JobHistory,
    JobRecord,
    MemoryStorage,
    Runtime,
    Stage,
    StageContext,
)

TTL = 60.0


async def _has_history(rt: Runtime, job_id: str) -> bool:
    """Whether the storage still keeps ``job_id``'s events (and says so in its record)."""
    record = await rt.storage.get(job_id)
    assert record is not None, "the job itself stays stored"
    events = await rt.storage.job_events(job_id, None, 1_000_000)
    assert record.history_expired is (not events)
    return not record.history_expired


async def test_history_is_dropped_after_the_ttl_not_before(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(history_ttl=TTL) as rt:
        job = await rt.submit("synthetic", {"ticks": 10, "tickSeconds": 1})
        with await rt.subscribe_job(job.id) as sub:
            await read_until(sub, is_terminal)
        ended = trio.current_time()
        assert ended >= 30.0  # the TTL counts from the end, not from the submit
        await trio.sleep_until(ended + TTL - 0.001)
        assert await _has_history(rt, job.id)
        with await rt.subscribe_job(job.id) as late:
            assert (await collect(late))[-1].type is EventType.JOB_COMPLETED
        await trio.sleep_until(ended + TTL + 0.001)
        assert not await _has_history(rt, job.id)
        # the job itself is still known; its stream is now born ended and empty
        record = await rt.get(job.id)
        assert record.id == job.id and record.status.value == "Done"
        assert record.history_expired
        with await rt.subscribe_job(job.id) as gone:
            assert gone.is_exhausted
            assert await gone.receive_batch() == []
        # and the owner's events forget it too: a resume of the owner stream finds nothing
        assert await rt.storage.owner_events(None, EventId(0, 0), 100) == []
        with await rt.subscribe_all(owner=None, after=EventId(0, 0)) as everything:
            assert await ready_events(everything) == []


async def test_running_jobs_keep_their_history_however_long(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(history_ttl=1.0) as rt:
        finished = await rt.submit("synthetic", {"ticks": 1, "tickSeconds": 0})
        long = await rt.submit("synthetic", {"ticks": 100, "tickSeconds": 1})
        with await rt.subscribe_job(long.id) as sub:
            await read_until(
                sub, lambda e: e.type is EventType.STEP_PROGRESS and e.data["currentItem"] == 50
            )
        assert trio.current_time() >= 50
        assert await _has_history(rt, long.id)
        assert not await _has_history(rt, finished.id)


async def test_history_ttl_zero_drops_at_once(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(history_ttl=0) as rt:
        job = await rt.submit("synthetic", {"ticks": 1, "tickSeconds": 0})
        with await rt.subscribe_job(job.id) as sub:
            events = await collect(sub)
        assert events[-1].type is EventType.JOB_COMPLETED  # the live subscriber got it all
        await trio.testing.wait_all_tasks_blocked()
        assert not await _has_history(rt, job.id)


def _event(counter: int, event_type: EventType) -> Event:
    return Event(EventId(1, counter), event_type, {"n": counter}, "j")


def test_progress_runs_are_compacted_to_their_latest() -> None:
    history = JobHistory(max_events=100)
    kinds = [EventType.JOB_STATUS] + [EventType.STEP_PROGRESS] * 5 + [EventType.WARNING]
    kinds += [EventType.STEP_PROGRESS] * 3 + [EventType.JOB_COMPLETED]
    for counter, kind in enumerate(kinds):
        history.append(_event(counter, kind))
    assert [e.id.counter for e in history.events if e.id] == [0, 5, 6, 9, 10]
    assert history.terminal_id == EventId(1, 10)
    assert history.truncated_through is None
    # replay after a compacted-away id resumes at the survivor of its run
    assert [e.data["n"] for e in history.after(EventId(1, 2))] == [5, 6, 9, 10]
    assert [e.data["n"] for e in history.after(EventId(1, 5))] == [6, 9, 10]
    assert history.after(EventId(1, 10)) == []
    assert not history.is_truncated_after(None)


def test_history_is_bounded_and_records_what_it_dropped() -> None:
    history = JobHistory(max_events=4)
    for counter in range(10):
        history.append(_event(counter, EventType.WARNING))
        assert len(history) <= 4
    assert [e.data["n"] for e in history.events] == [6, 7, 8, 9]
    assert history.truncated_through == EventId(1, 5)
    assert history.is_truncated_after(None)
    assert history.is_truncated_after(EventId(1, 4))
    assert not history.is_truncated_after(EventId(1, 5))
    assert not history.is_truncated_after(EventId(1, 7))


async def test_a_job_of_a_million_ticks_keeps_a_small_history(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def many(ctx: StageContext) -> None:
        for n in range(1, 5001):
            await ctx.report(n / 5000)
            if n % 1000 == 0:
                await ctx.warn(f"{n} done")

    async with make_runtime(
        FnPipeline("many", lambda p: [Stage("Many", many)]), max_history_events=50
    ) as rt:
        job = await rt.submit("many")
        with await rt.subscribe_job(job.id) as sub:
            await read_until(sub, is_terminal)
        history = await stored_events(rt, job.id)
        record = await rt.storage.get(job.id)
        assert record is not None
    types = [e.type for e in history]
    # Queued, Running, Started, then (progress, warning) x 5, Completed, Done, job-completed
    assert len(types) == 3 + 2 * 5 + 3
    assert record.truncated_through is None
    assert all(not (a is b is EventType.STEP_PROGRESS) for a, b in itertools.pairwise(types))
    progress = [e for e in history if e.type is EventType.STEP_PROGRESS]
    assert [e.data["stepProgressPct"] for e in progress] == [20.0, 40.0, 60.0, 80.0, 100.0]


async def test_memory_storage_drops_a_history_ttl_after_the_terminal_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Directly on the storage: the TTL runs from the commit of the terminal event."""
    storage = MemoryStorage(history_ttl=TTL, max_history_events=100)
    job = Commit(created=[JobRecord(0, "o", {"id": "j", "status": "Queued"})])
    await storage.commit(job)
    async with trio.open_nursery() as nursery:
        await nursery.start(storage.run)
        await storage.commit(Commit(events=[Event(EventId(1, 0), EventType.WARNING, {}, "j", "o")]))
        await trio.sleep(1000)  # a live job keeps its history however long
        assert len(await storage.job_events("j", None, 10)) == 1
        ended = trio.current_time()
        terminal = Event(EventId(1, 1), EventType.JOB_COMPLETED, {}, "j", "o")
        await storage.commit(
            Commit(snapshots={"j": {"id": "j", "status": "Done"}}, events=[terminal])
        )
        await trio.sleep_until(ended + TTL - 0.001)
        assert [e.id for e in await storage.job_events("j", None, 10)] == [
            EventId(1, 0),
            terminal.id,
        ]
        assert [e.id for e in await storage.owner_events("o", EventId(0, 0), 10)] == [
            EventId(1, 0),
            terminal.id,
        ]
        await trio.sleep_until(ended + TTL + 0.001)
        assert await storage.job_events("j", None, 10) == []
        assert await storage.owner_events("o", EventId(0, 0), 10) == []
        record = await storage.get("j")
        assert record is not None and record.history_expired and record.status.value == "Done"
        nursery.cancel_scope.cancel()
