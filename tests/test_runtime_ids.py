"""Event ids: ``<millis>-<counter>``, parsing, and strict increase everywhere."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, collect, is_terminal, read_until
from hypothesis import given
from hypothesis import strategies as st

from aura_actors.runtime import Event, EventId, EventIdGenerator, EventType, Runtime


def test_str_format() -> None:
    assert str(EventId(1700000000123, 0)) == "1700000000123-0"
    assert str(EventId(0, 42)) == "0-42"


@given(st.integers(0, 10**18 - 1), st.integers(0, 10**18 - 1))
def test_parse_str_round_trip(millis: int, counter: int) -> None:
    event_id = EventId(millis, counter)
    assert EventId.parse(str(event_id)) == event_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "1",
        "1-",
        "-1",
        "1--1",
        "-1-0",
        "1-2-3",
        "01-2",
        "1-02",
        "a-b",
        "1.5-2",
        "1_000-2",
        "0x10-1",
        "１-２",  # fullwidth digits
        "1 -2",
        "1-2x",
        "1" * 19 + "-0",
        "None",
    ],
)
def test_malformed_ids_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        EventId.parse(text)


def test_ids_order_as_integer_pairs() -> None:
    ids = [EventId.parse(t) for t in ["10-0", "9-5", "10-10", "10-2", "100-0"]]
    assert sorted(ids) == [
        EventId(9, 5),
        EventId(10, 0),
        EventId(10, 2),
        EventId(10, 10),
        EventId(100, 0),
    ]
    # not string order
    assert EventId.parse("9-0") < EventId.parse("10-0")
    assert EventId.parse("10-9") < EventId.parse("10-10")


def test_generator_follows_the_clock_and_bumps_the_counter() -> None:
    times = iter([5, 5, 5, 7, 7, 8])
    generator = EventIdGenerator(wall_clock_millis=lambda: next(times))
    assert generator.last is None
    ids = [generator.next_id() for _ in range(6)]
    assert ids == [
        EventId(5, 0),
        EventId(5, 1),
        EventId(5, 2),
        EventId(7, 0),
        EventId(7, 1),
        EventId(8, 0),
    ]
    assert generator.last == EventId(8, 0)


def test_generator_never_goes_back_when_the_clock_does() -> None:
    times = iter([100, 100, 90, 90, 100, 50, 101, 101, 0])
    generator = EventIdGenerator(wall_clock_millis=lambda: next(times))
    ids = [generator.next_id() for _ in range(9)]
    assert ids == [
        EventId(100, 0),
        EventId(100, 1),
        EventId(100, 2),  # clock stepped back to 90: keep 100, bump
        EventId(100, 3),
        EventId(100, 4),
        EventId(100, 5),
        EventId(101, 0),
        EventId(101, 1),
        EventId(101, 2),  # clock at 0
    ]


@given(st.lists(st.integers(0, 50), min_size=1, max_size=300))
def test_generator_strictly_increasing_for_any_clock(times: list[int]) -> None:
    feed = iter(times)
    generator = EventIdGenerator(wall_clock_millis=lambda: next(feed))
    ids = [generator.next_id() for _ in times]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(EventId.parse(str(i)) == i for i in ids)


async def test_ids_increase_across_many_concurrent_jobs(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    """50 jobs tick at once under a wall clock that jitters back and forth."""
    rng = random.Random(7)
    wall = [1_000_000]

    def jittery_clock() -> int:
        wall[0] += rng.choice([-3, -1, 0, 0, 1, 2])
        return wall[0]

    generator = EventIdGenerator(wall_clock_millis=jittery_clock)
    async with make_runtime(
        id_generator=generator, max_concurrent_jobs=50, subscriber_buffer=100_000
    ) as rt:
        with await rt.subscribe_all(owner="ids") as everything:
            jobs = [
                await rt.submit(
                    "synthetic",
                    {"stages": 2, "ticks": 10, "tickSeconds": 0.01 * (1 + i % 3)},
                    owner="ids",
                )
                for i in range(50)
            ]
            per_job = {job.id: await rt.subscribe_job(job.id) for job in jobs}
            streams: dict[str, list[Event]] = {}
            seen: list[Event] = []

            async def read_job(job_id: str) -> None:
                with per_job[job_id] as subscription:
                    streams[job_id] = await collect(subscription)

            async def read_everything() -> None:
                remaining = {job.id for job in jobs}
                while remaining:
                    event = await everything.receive()
                    seen.append(event)
                    if event.type is EventType.JOB_COMPLETED:
                        remaining.discard(event.job_id)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_everything)
                for job in jobs:
                    nursery.start_soon(read_job, job.id)
            assert everything.skipped_progress == 0
    all_ids = [event.id for event in seen]
    assert len(all_ids) == len(set(all_ids))
    assert all(a < b for a, b in itertools.pairwise(all_ids))
    # 50 jobs x (2 statuses + 2 x (2 step-status + 10 progress) + 2 final) events
    assert len(all_ids) == 50 * (2 + 2 * 12 + 2)
    assert len(streams) == 50
    for job_id, events in streams.items():
        assert len(events) == 2 + 2 * 12 + 2
        ids = [event.id for event in events]
        assert all(a < b for a, b in itertools.pairwise(ids)), job_id
        assert set(ids) <= set(all_ids)


async def test_snapshot_last_event_id_tracks_the_stream(runtime: Runtime) -> None:
    job = await runtime.submit("synthetic", {"ticks": 3, "tickSeconds": 0})
    assert job.last_event_id is not None
    with await runtime.subscribe_job(job.id) as subscription:
        events = await read_until(subscription, is_terminal)
    assert events[0].id == job.last_event_id, "submit answers with its first event's id"
    final = await runtime.get(job.id)
    assert final.snapshot()["lastEventId"] == events[-1].id_text
    assert EventId.parse(final.snapshot()["lastEventId"]) == events[-1].id
    assert final.last_event_id == events[-1].id == runtime.last_event_id
