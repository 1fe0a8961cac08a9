"""Slow subscribers: bounded buffers, progress skipping, overflow and lossless resume."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from conftest import (
    FnPipeline,
    RuntimeFactory,
    assert_strictly_increasing,
    collect,
    is_terminal,
    latest_progress_before_each_event,
    non_progress,
    of_type,
    read_until,
    ready_events,
    stored_events,
)

from aura_actors.runtime import (
    SUBSCRIBER_OVERFLOW,
    Event,
    EventId,
    EventType,
    Hub,
    Stage,
    StageContext,
    Subscription,
)

BUFFER = 16


async def test_a_silent_subscriber_holds_up_nothing(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    ticks, stages, tick_seconds = 200, 3, 0.01
    async with make_runtime(subscriber_buffer=BUFFER) as rt:
        with await rt.subscribe_all(owner="o") as silent_all:
            job = await rt.submit(
                "synthetic",
                {
                    "stages": stages,
                    "ticks": ticks,
                    "tickSeconds": tick_seconds,
                    "warnAt": {"stage": 1, "tick": 50},
                },
                owner="o",
            )
            started = trio.current_time()
            silent = await rt.subscribe_job(job.id)
            fast = await rt.subscribe_job(job.id)
            with silent, fast:
                # (its replay is read from storage lazily, when it reads: it is not held)
                fast_events: list[Event] = []
                async for event in fast:
                    fast_events.append(event)
                    # the silent ones never read, yet stay bounded
                    assert silent.pending <= BUFFER
                    assert silent_all.pending <= BUFFER
                finished = trio.current_time()
                # the job was not slowed: it took exactly its ticks
                assert finished - started == pytest.approx(stages * ticks * tick_seconds)
                assert (await rt.get(job.id)).status.value == "Done"
                # the fast subscriber got every event
                assert fast.skipped_progress == 0
                assert len(of_type(fast_events, EventType.STEP_PROGRESS)) == stages * ticks
                # now the silent one reads what it kept
                slow_events = await collect(silent)
            all_events = [silent_all.receive_nowait() for _ in range(silent_all.pending)]
    for slow in (slow_events, all_events):
        assert_strictly_increasing(slow)
        assert [e.id for e in non_progress(slow)] == [e.id for e in non_progress(fast_events)]
        progress = of_type(slow, EventType.STEP_PROGRESS)
        assert len(progress) < stages * ticks, "a silent subscriber skips intermediate progress"
        fast_ids = {e.id for e in fast_events}
        assert all(e.id in fast_ids for e in slow)
        slow_ids = {e.id for e in slow}
        for latest in latest_progress_before_each_event(fast_events):
            assert latest.id in slow_ids, f"lost the latest progress {latest.id_text}"
    assert silent.skipped_progress > 0
    assert silent_all.skipped_progress > 0


def _warner(count: int) -> FnPipeline:
    async def warn_a_lot(ctx: StageContext) -> None:
        for n in range(count):
            await trio.sleep(0.01)
            await ctx.warn(f"warning {n}")
            await ctx.report((n + 1) / count)

    return FnPipeline("warner", lambda params: [Stage("W", warn_a_lot)])


@pytest.mark.parametrize("stream", ["job", "owner"])
async def test_overflow_ends_with_an_error_and_resume_loses_nothing(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock, stream: str
) -> None:
    async with make_runtime(_warner(30), subscriber_buffer=4) as rt:
        with await rt.subscribe_all(owner="o") as owner_stream:
            job = await rt.submit("warner", owner="o")
            subscription = owner_stream if stream == "owner" else await rt.subscribe_job(job.id)
            with await rt.subscribe_job(job.id) as reference, subscription:
                got = [await subscription.receive() for _ in range(3)]
                full = await collect(reference)  # the job runs to its end meanwhile
                assert reference.skipped_progress == 0
                rest = await collect(subscription)
        assert full[-1].type is EventType.JOB_COMPLETED
        error = rest[-1]
        assert error.type is EventType.ERROR
        assert error.id is None, "the overflow error has no id, so the last id stays valid"
        assert error.data["code"] == SUBSCRIBER_OVERFLOW == "subscriber_overflow"
        # a job stream's error names its job; the owner stream's concerns no single job
        expected_keys = {"code", "message", "jobId"} if stream == "job" else {"code", "message"}
        assert set(error.data) == expected_keys
        if stream == "job":
            assert error.data["jobId"] == job.id == error.job_id
        assert isinstance(error.data["message"], str) and error.data["message"]
        delivered = got + rest[:-1]
        assert all(e.id is not None for e in delivered)
        assert len(delivered) < len(full), "it must have overflowed before the end"
        last = subscription.last_delivered_id
        assert last == delivered[-1].id
        # resubscribing after the last delivered id loses nothing
        with (
            await rt.subscribe_job(job.id, after=last)
            if stream == "job"
            else await rt.subscribe_all(owner="o", after=last)
        ) as resumed:
            if stream == "job":
                more = await collect(resumed)
            else:
                more = await ready_events(resumed)
    union = delivered + more
    assert_strictly_increasing(union)
    assert [e.id for e in non_progress(union)] == [e.id for e in non_progress(full)]
    ids = {e.id for e in union}
    for latest in latest_progress_before_each_event(full):
        assert latest.id in ids


class _Publisher:
    """Stamps events of one job with increasing ids and offers them through a hub."""

    def __init__(self, hub: Hub, owner: str | None = None) -> None:
        self.hub = hub
        self.owner = owner
        self.counter = 0

    def publish(self, job_id: str, event_type: EventType, data: dict[str, object]) -> Event:
        self.counter += 1
        event = Event(EventId(1, self.counter), event_type, data, job_id, self.owner)
        self.hub.publish(event)
        return event


def _job_subscription(hub: Hub, job_id: str, max_buffer: int = 1024) -> Subscription:
    subscription = Subscription(max_buffer=max_buffer, job_id=job_id)
    hub.follow_job(job_id, subscription)
    return subscription


async def test_subscription_buffer_unit() -> None:
    """Directly on a hub: progress is superseded, other events never are."""
    hub = Hub()
    publisher = _Publisher(hub)
    with _job_subscription(hub, "j", max_buffer=8) as sub:
        for n in range(1000):
            publisher.publish("j", EventType.STEP_PROGRESS, {"n": n})
            assert sub.pending == 1
        publisher.publish("j", EventType.WARNING, {"n": "w1"})
        for n in range(1000, 1100):
            publisher.publish("j", EventType.STEP_PROGRESS, {"n": n})
        publisher.publish("j", EventType.WARNING, {"n": "w2"})
        assert sub.pending == 4
        assert sub.skipped_progress == 999 + 99
        got = [sub.receive_nowait().data["n"] for _ in range(4)]
        assert got == [999, "w1", 1099, "w2"]
        with pytest.raises(trio.WouldBlock):
            sub.receive_nowait()
        # eight non-progress events fit; the ninth overflows
        for n in range(8):
            publisher.publish("j", EventType.WARNING, {"n": n})
            assert sub.pending == n + 1
        publisher.publish("j", EventType.WARNING, {"n": 8})
        overflow = sub.receive_nowait()
        assert overflow.type is EventType.ERROR and overflow.data["code"] == SUBSCRIBER_OVERFLOW
        with pytest.raises(trio.EndOfChannel):
            sub.receive_nowait()
        assert hub.subscriber_count == 0, "an overflowed subscriber is detached"


async def test_progress_of_two_jobs_is_superseded_per_job() -> None:
    hub = Hub()
    publisher = _Publisher(hub, owner="o")
    with Subscription(max_buffer=8) as sub:
        hub.follow_owner("o", sub)
        for n in range(10):
            publisher.publish("a", EventType.STEP_PROGRESS, {"n": n})
            publisher.publish("b", EventType.STEP_PROGRESS, {"n": n})
        publisher.publish("a", EventType.WARNING, {"n": "wa"})
        got = [(e.job_id, e.data["n"]) for e in [sub.receive_nowait() for _ in range(3)]]
    assert got == [("a", 9), ("b", 9), ("a", "wa")]
    assert hub.subscriber_count == 0, "a closed subscription is forgotten"


async def test_cancelled_receive_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    publisher = _Publisher(hub)
    with _job_subscription(hub, "j") as sub:
        with trio.move_on_after(1) as scope:
            await sub.receive()
        assert scope.cancelled_caught
        published = publisher.publish("j", EventType.WARNING, {"jobId": "j"})
        with trio.CancelScope() as cancelled:
            cancelled.cancel()
            with pytest.raises(trio.Cancelled):
                await sub.receive()
        assert await sub.receive() is published


async def test_a_cancel_racing_a_wakeup_loses_nothing() -> None:
    """The reader is woken with an event, then cancelled before it runs: the event survives."""
    hub = Hub()
    publisher = _Publisher(hub)
    received: list[Event] = []
    scopes: list[trio.CancelScope] = []

    async def reader(sub: Subscription) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            received.append(await sub.receive())

    with _job_subscription(hub, "j") as sub:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader, sub)
            await trio.testing.wait_all_tasks_blocked()  # parked in receive()
            published = publisher.publish("j", EventType.WARNING, {"jobId": "j"})
            scopes[0].cancel()  # before the woken reader gets to run
        if received:
            assert received == [published]
        else:
            assert sub.receive_nowait() is published


async def test_receive_batch_and_end(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.submit("synthetic", {"stages": 1, "ticks": 5})
        with await rt.subscribe_job(job.id) as reference:
            await read_until(reference, is_terminal)
        history = await stored_events(rt, job.id)
        with await rt.subscribe_job(job.id) as sub:
            batches = []
            while batch := await sub.receive_batch(max_events=3):
                batches.append(batch)
            assert sub.is_exhausted
    # The whole replay is ready at once, so every batch is full but the last.
    total = len(history)
    assert [len(batch) for batch in batches] == [min(3, total - i) for i in range(0, total, 3)]
    assert len(batches) > 1
    assert [e.id for batch in batches for e in batch] == [e.id for e in history]
