"""Replay exactness: resuming after any id a client received loses and repeats nothing.

What must hold, precisely. Let F be the stream of a subscriber that never
disconnects and keeps up (it skips nothing: every event published), P the
events a client received before it disconnected, ``last`` any id it took
from P (or none), P' the part of P up to ``last`` and R what a resume with
``after=last`` yields. Then:

- R opens with exactly the events the job's history retains after ``last``
  (as the storage answers when the subscription reads its replay, lazily, a
  page at a time), then continues live with every event of F after those;
- P' + R is strictly increasing (no duplicate, in order) and made only of
  events of F;
- every event of F other than ``step-progress`` is in P' + R exactly once, in
  F's order (step-progress runs may be compacted to their last event);
- for every event of F other than ``step-progress``, the ``step-progress``
  right before it in F (the latest progress before it) is in P' + R;
- resumed after the job ended, R is exactly the final history after ``last``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from conftest import (
    FnPipeline,
    RuntimeFactory,
    collect,
    is_terminal,
    latest_progress_before_each_event,
    non_progress,
    read_until,
    ready_events,
    registry,
    stored_events,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura_actors.runtime import (
    Event,
    EventId,
    EventType,
    JobHistory,
    Runtime,
    RuntimeConfig,
    Stage,
    StageContext,
    StageError,
    Subscription,
    open_runtime,
)

Op = tuple[str, float]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("progress"), st.floats(0.0, 1.0)),
        st.tuples(st.just("warn"), st.just(0.0)),
    ),
    max_size=12,
)
scripts = st.fixed_dictionaries(
    {
        "stages": st.lists(ops, min_size=1, max_size=3),
        "ending": st.sampled_from(["done", "fail"]),
    }
)


def _scripted_pipeline() -> FnPipeline:
    """Stages that follow ``params["stages"]``: progress / warn ops, 10 ms apart."""

    def build(params: dict[str, Any]) -> list[Stage]:
        script: list[list[Op]] = params["stages"]

        def stage(index: int) -> Stage:
            async def run(ctx: StageContext) -> None:
                for kind, value in script[index]:
                    await trio.sleep(0.01)
                    if kind == "progress":
                        await ctx.report(value, f"at {value:.2f}")
                    else:
                        await ctx.warn(f"warning in stage {index}")
                await trio.sleep(0.01)
                if params["ending"] == "fail" and index == len(script) - 1:
                    raise StageError("scripted failure", code="scripted")

            return Stage(f"s{index}", run)

        return [stage(i) for i in range(len(script))]

    return FnPipeline("scripted", build)


class Reference:
    """The subscriber that never disconnects; others can wait for it to reach a count."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ended = False
        self._lot = trio.lowlevel.ParkingLot()

    async def follow(self, subscription: Subscription) -> None:
        with subscription:
            async for event in subscription:
                self.events.append(event)
                self._lot.unpark_all()
            assert subscription.skipped_progress == 0, "the reference must see every event"
        self.ended = True
        self._lot.unpark_all()

    async def wait_for(self, count: int) -> None:
        while len(self.events) < count and not self.ended:
            await self._lot.park()


def _record_replay_reads(runtime: Runtime, job_id: str) -> list[tuple[EventId | None, list[Event]]]:
    """Record every replay read of ``job_id``'s history: ``(after, events)``.

    A live job replays from its history in memory, at subscribe time; a
    finished one from storage, lazily, when its reader first asks. Either way
    what it replays is what these reads answered.
    """
    reads: list[tuple[EventId | None, list[Event]]] = []
    storage = runtime.storage
    read = storage.job_events

    async def recorded(job_id: str, after: EventId | None, limit: int) -> list[Event]:
        page = await read(job_id, after, limit)
        reads.append((after, list(page)))
        return page

    storage.job_events = recorded  # type: ignore[method-assign]
    job = runtime._live.get(job_id)
    if job is not None and job.history is not None:
        recording = _RecordingHistory(job.history.max_events, reads)
        for slot in JobHistory.__slots__:
            setattr(recording, slot, getattr(job.history, slot))
        job.history = recording
    return reads


class _RecordingHistory(JobHistory):
    """A job history that notes what each replay read of it answered."""

    __slots__ = ("reads",)

    def __init__(self, max_events: int, reads: list[tuple[EventId | None, list[Event]]]) -> None:
        super().__init__(max_events)
        self.reads = reads

    def after(self, last_id: EventId | None) -> list[Event]:
        events = super().after(last_id)
        self.reads.append((last_id, list(events)))
        return events


def check_resume(
    full: list[Event],
    prefix: list[Event],
    last: EventId | None,
    replayed: list[Event],
    resumed: list[Event],
) -> None:
    by_id = {event.id: event for event in full}
    assert len(by_id) == len(full)
    # R opens with the retained events after `last`, then continues live with F's tail
    assert [e.id for e in resumed[: len(replayed)]] == [e.id for e in replayed]
    tail_after = replayed[-1].id if replayed else last
    live = resumed[len(replayed) :]
    assert [e.id for e in live] == [
        e.id for e in full if tail_after is None or (e.id is not None and e.id > tail_after)
    ], "the live part after the replay has a gap or a duplicate"
    # P' + R: strictly increasing, only events of F
    union = prefix + resumed
    ids = [e.id for e in union]
    assert all(i is not None for i in ids)
    assert all(a < b for a, b in itertools.pairwise(ids)), "duplicate or out of order"
    for event in union:
        assert event.id in by_id
        assert by_id[event.id].type is event.type
        assert by_id[event.id].data == event.data
    if last is not None:
        assert all(e.id is not None and e.id > last for e in resumed)
    # every non-progress event exactly once, in order; the latest progress before each
    assert [e.id for e in non_progress(union)] == [e.id for e in non_progress(full)]
    union_ids = set(ids)
    for progress in latest_progress_before_each_event(full):
        assert progress.id in union_ids, f"lost the latest progress {progress.id_text}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(script=scripts, data=st.data())
def test_resume_after_any_received_id_is_exact(
    script: dict[str, Any], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.getbasetemp() / "replay"
    config = RuntimeConfig(data_dir=data_dir, subscriber_buffer=10_000)

    async def scenario() -> None:
        async with open_runtime(config, registry(_scripted_pipeline())) as rt:
            job = await rt.submit("scripted", script)
            reference = Reference()
            fetched = _record_replay_reads(rt, job.id)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reference.follow, await rt.subscribe_job(job.id))
                await reference.wait_for(1)  # it has read its replay: later reads are others'
                # the client: read some events, then disconnect
                disconnect_after = data.draw(st.integers(0, 40), label="disconnect after")
                prefix: list[Event] = []
                with await rt.subscribe_job(job.id) as client:
                    while len(prefix) < disconnect_after:
                        try:
                            prefix.append(await client.receive())
                        except trio.EndOfChannel:
                            break
                # resume after any id it received (or none), a while later
                choice = data.draw(st.integers(-1, len(prefix) - 1), label="resume index")
                last = prefix[choice].id if choice >= 0 else None
                kept = prefix[: choice + 1]
                delay = data.draw(st.integers(0, 30), label="events before resuming")
                await reference.wait_for(len(prefix) + delay)
                fetched.clear()
                with await rt.subscribe_job(job.id, after=last) as resume:
                    resumed = await collect(resume)
                    assert resume.skipped_progress == 0
                # what the storage answered to the resume's replay reads, in order
                assert fetched and fetched[0][0] == last
                replayed = [event for _, page in fetched for event in page]
                ended_before_resume = any(e.type.is_terminal for e in replayed)
            full = reference.events
            assert full and full[-1].type.is_terminal
            check_resume(full, kept, last, replayed, resumed)
            final = await stored_events(rt, job.id, last)
            if ended_before_resume:
                assert [e.id for e in resumed] == [e.id for e in final]
            # and a fresh resume after the job ended is exactly the final history
            with await rt.subscribe_job(job.id, after=last) as late:
                late_events = await collect(late)
            assert [e.id for e in late_events] == [e.id for e in final]
            check_resume(full, kept, last, final, late_events)

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_resume_after_the_terminal_event_is_empty_and_ended(runtime: Runtime) -> None:
    job = await runtime.submit("synthetic", {"ticks": 2, "tickSeconds": 0})
    with await runtime.subscribe_job(job.id) as subscription:
        events = await read_until(subscription, is_terminal)
    assert events[-1].id is not None
    with await runtime.subscribe_job(job.id, after=events[-1].id) as resumed:
        assert await resumed.receive_batch() == []  # reads the (empty) replay, then ends
        assert resumed.is_exhausted
        with pytest.raises(trio.EndOfChannel):
            resumed.receive_nowait()


async def test_resume_of_the_owner_stream_is_exact(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """``subscribe_all(after=...)``: every retained event of the owner's jobs after the id."""
    async with make_runtime(max_concurrent_jobs=8, subscriber_buffer=10_000) as rt:
        with await rt.subscribe_all(owner="ann") as full:
            jobs = [
                await rt.submit(
                    "synthetic", {"ticks": 5, "tickSeconds": 0.01 * (i + 1)}, owner="ann"
                )
                for i in range(3)
            ]
            await rt.submit("synthetic", {"ticks": 5}, owner="bob")  # never in ann's stream
            events: list[Event] = []
            finished = 0
            while finished < len(jobs):
                event = await full.receive()
                events.append(event)
                finished += event.type.is_terminal
            assert full.skipped_progress == 0
        assert {e.job_id for e in events} == {job.id for job in jobs}
        for cut in (0, 5, len(events) // 2, len(events) - 2):
            last = events[cut].id
            assert last is not None
            with await rt.subscribe_all(owner="ann", after=last) as resumed:
                replay = await ready_events(resumed)
            assert replay, "the owner's later events are replayed"
            check_resume(events, events[: cut + 1], last, replay, replay)


async def test_history_truncation_is_announced_on_replay(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def chatty(ctx: StageContext) -> None:
        for n in range(30):
            await ctx.warn(f"warning {n}")

    async with make_runtime(
        FnPipeline("chatty", lambda p: [Stage("C", chatty)]), max_history_events=10
    ) as rt:
        job = await rt.submit("chatty")
        with await rt.subscribe_job(job.id) as subscription:
            await read_until(subscription, is_terminal)
        retained = await stored_events(rt, job.id)
        assert len(retained) == 10
        record = await rt.storage.get(job.id)
        assert record is not None and record.truncated_through is not None
        assert record.truncated_through < retained[0].id
        with await rt.subscribe_job(job.id) as from_start:
            replay = await collect(from_start)
        assert replay[0].type is EventType.ERROR and replay[0].id is None
        assert replay[0].data["code"] == "history_truncated"
        assert [e.id for e in replay[1:]] == [e.id for e in retained]
        # resuming after a retained id needs nothing that was dropped: no error
        with await rt.subscribe_job(job.id, after=retained[3].id) as resumed:
            tail = await collect(resumed)
        assert [e.id for e in tail] == [e.id for e in retained[4:]]
