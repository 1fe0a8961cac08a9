"""Delivery without storage: the hub's fan-out, and a subscription's paged, deduplicated replay."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from conftest import collect

from aura_actors.runtime import Event, EventId, EventType, Hub, Subscription, stream_error


def _event(
    counter: int,
    job_id: str = "j",
    owner: str | None = "o",
    event_type: EventType = EventType.WARNING,
) -> Event:
    return Event(EventId(1, counter), event_type, {"n": counter}, job_id, owner)


def _ns(events: list[Event]) -> list[object]:
    return [event.data.get("n") for event in events]


def _job_subscription(hub: Hub, job_id: str, max_buffer: int = 100) -> Subscription:
    subscription = Subscription(max_buffer=max_buffer, job_id=job_id)
    hub.follow_job(job_id, subscription)
    return subscription


def _owner_subscription(hub: Hub, owner: str | None, max_buffer: int = 100) -> Subscription:
    subscription = Subscription(max_buffer=max_buffer)
    hub.follow_owner(owner, subscription)
    return subscription


def _ready(subscription: Subscription) -> list[Event]:
    return [subscription.receive_nowait() for _ in range(subscription.pending)]


# -- the hub ----------------------------------------------------------------------------------


def test_the_hub_offers_an_event_to_its_jobs_and_its_owners_subscribers() -> None:
    hub = Hub()
    job_a = _job_subscription(hub, "a")
    job_a_too = _job_subscription(hub, "a")
    job_b = _job_subscription(hub, "b")
    owner_o = _owner_subscription(hub, "o")
    anonymous = _owner_subscription(hub, None)
    assert hub.subscriber_count == 5
    hub.publish(_event(1, "a", "o"))
    hub.publish(_event(2, "b", "o"))
    hub.publish(_event(3, "c", None))
    assert _ns(_ready(job_a)) == [1] and _ns(_ready(job_a_too)) == [1]
    assert _ns(_ready(job_b)) == [2]
    assert _ns(_ready(owner_o)) == [1, 2]
    assert _ns(_ready(anonymous)) == [3], "no owner is an owner of its own, not everyone"


def test_a_terminal_event_ends_the_jobs_subscriptions_not_the_owners() -> None:
    hub = Hub()
    job = _job_subscription(hub, "a")
    owner = _owner_subscription(hub, "o")
    hub.publish(_event(1, "a"))
    hub.publish(_event(2, "a", event_type=EventType.JOB_COMPLETED))
    assert hub.subscriber_count == 1, "the job's subscription is forgotten"
    hub.publish(_event(3, "a"))  # (nothing follows a terminal event; if it did)
    assert _ns(_ready(job)) == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        job.receive_nowait()
    assert job.is_exhausted
    assert _ns(_ready(owner)) == [1, 2, 3]


def test_a_terminal_event_offered_to_the_owners_only_leaves_the_jobs_going() -> None:
    """A live feed reads an owner's stream and a job's stream apart: the terminal event
    read from the owner's first must not end the job's subscriptions before they get it."""
    hub = Hub()
    job = _job_subscription(hub, "a")
    owner = _owner_subscription(hub, "o")
    terminal = _event(2, "a", event_type=EventType.JOB_COMPLETED)
    hub.publish(terminal, to_job=False)
    assert _ns(_ready(owner)) == [2] and job.pending == 0 and hub.follows_job("a")
    hub.publish(_event(1, "a"), to_owner=False)
    hub.publish(terminal, to_owner=False)
    assert _ns(_ready(job)) == [1, 2] and not hub.follows_job("a")
    with pytest.raises(trio.EndOfChannel):
        job.receive_nowait()


def test_an_overflowed_subscription_is_detached_and_the_others_go_on() -> None:
    hub = Hub()
    small = _job_subscription(hub, "a", max_buffer=2)
    large = _job_subscription(hub, "a", max_buffer=100)
    owner = _owner_subscription(hub, "o", max_buffer=2)
    for n in range(1, 6):
        hub.publish(_event(n, "a"))
    assert hub.subscriber_count == 1
    for overflowed, job_id in ((small, "a"), (owner, None)):
        assert overflowed.pending == 0
        error = overflowed.receive_nowait()
        assert error.id is None and error.type is EventType.ERROR
        assert error.data["code"] == "subscriber_overflow"
        assert error.data.get("jobId") == job_id
        with pytest.raises(trio.EndOfChannel):
            overflowed.receive_nowait()
    assert _ns(_ready(large)) == [1, 2, 3, 4, 5]


def test_a_closed_subscription_is_forgotten() -> None:
    hub = Hub()
    with _job_subscription(hub, "a") as job, _owner_subscription(hub, "o") as owner:
        assert hub.subscriber_count == 2
    assert hub.subscriber_count == 0
    job.close()  # idempotent
    owner.close()
    hub.publish(_event(1, "a"))
    assert job.pending == 0 and owner.pending == 0


def test_closing_the_hub_ends_every_subscription_after_what_it_holds() -> None:
    hub = Hub()
    job = _job_subscription(hub, "a")
    owner = _owner_subscription(hub, "o")
    hub.publish(_event(1, "a"))
    hub.close()
    assert hub.closed and hub.subscriber_count == 0
    for subscription in (job, owner):
        assert _ns(_ready(subscription)) == [1]
        with pytest.raises(trio.EndOfChannel):
            subscription.receive_nowait()
    late = _job_subscription(hub, "a")
    late_owner = _owner_subscription(hub, "o")
    assert hub.subscriber_count == 0
    for subscription in (late, late_owner):
        with pytest.raises(trio.EndOfChannel):
            subscription.receive_nowait()


# -- a subscription's replay ---------------------------------------------------------------


class Store:
    """Stored events, and the pages a subscription asked for."""

    def __init__(self, events: list[Event]) -> None:
        self.events = list(events)
        self.calls: list[tuple[EventId | None, int]] = []
        self.gate: trio.Event | None = None

    async def fetch(self, after: EventId | None, limit: int) -> list[Event]:
        self.calls.append((after, limit))
        if self.gate is not None:
            await self.gate.wait()
        else:
            await trio.lowlevel.checkpoint()
        return [e for e in self.events if after is None or (e.id is not None and e.id > after)][
            :limit
        ]

    def commit_and_publish(self, hub: Hub, event: Event) -> None:
        """What the broadcaster does: store, then offer."""
        self.events.append(event)
        hub.publish(event)


async def test_the_replay_is_fetched_a_page_at_a_time() -> None:
    store = Store([_event(n) for n in range(1, 11)])
    with Subscription(max_buffer=100, fetch=store.fetch, replay_page=3, job_id="j") as sub:
        sub.end()  # the job has ended: replay, then the end
        assert store.calls == [], "nothing is read before the reader asks"
        received = []
        while True:
            try:
                received.append(await sub.receive())
            except trio.EndOfChannel:
                break
            assert sub.pending <= 3, "never more than a page held"
    assert _ns(received) == list(range(1, 11))
    ids = [EventId(1, n) for n in (3, 6, 9)]
    assert store.calls == [(None, 3), (ids[0], 3), (ids[1], 3), (ids[2], 3)]
    assert sub.last_delivered_id == EventId(1, 10)


async def test_the_replay_follows_what_it_was_created_with() -> None:
    store = Store([_event(n) for n in range(1, 5)])
    truncated = stream_error("history_truncated", "gone", "j")
    with Subscription(max_buffer=100, replay=[truncated], fetch=store.fetch, replay_page=2) as sub:
        sub.end()
        events = await collect(sub)
    assert events[0] is truncated
    assert _ns(events[1:]) == [1, 2, 3, 4]
    assert sub.last_delivered_id == EventId(1, 4)


async def test_live_events_during_the_replay_come_once_in_order() -> None:
    hub = Hub()
    store = Store([_event(n) for n in range(1, 4)])
    sub = Subscription(max_buffer=100, fetch=store.fetch, replay_page=2, job_id="j")
    hub.follow_job("j", sub)
    with sub:
        # stored and offered before the reader reads anything: buffered, and in storage
        store.commit_and_publish(hub, _event(4))
        store.commit_and_publish(hub, _event(5, event_type=EventType.STEP_PROGRESS))
        first = [await sub.receive()]  # reads page 1: events 1, 2
        assert store.calls == [(None, 2)]
        # more arrive while the replay is under way
        store.commit_and_publish(hub, _event(6))
        first.append(await sub.receive())
        store.commit_and_publish(hub, _event(7))
        store.commit_and_publish(hub, _event(8, event_type=EventType.JOB_COMPLETED))
        rest = await collect(sub)
    received = first + rest
    assert _ns(received) == list(range(1, 9)), "each event once, in id order"
    pages_after = [None, *(EventId(1, n) for n in (2, 4, 6, 8))]
    assert [after for after, _ in store.calls] == pages_after


async def test_a_compacted_history_does_not_repeat_superseded_live_progress() -> None:
    """Live progress 2 is replaced by 3 in the history: the replay gives 3, and 2 is skipped."""
    hub = Hub()
    store = Store([_event(1)])
    sub = Subscription(max_buffer=100, fetch=store.fetch, job_id="j")
    hub.follow_job("j", sub)
    with sub:
        store.commit_and_publish(hub, _event(2, event_type=EventType.STEP_PROGRESS))
        store.events.pop()  # compacted away by the next progress
        store.commit_and_publish(hub, _event(3, event_type=EventType.STEP_PROGRESS))
        store.commit_and_publish(hub, _event(4, event_type=EventType.JOB_COMPLETED))
        assert _ns(await collect(sub)) == [1, 3, 4]


async def test_after_a_future_id_live_events_up_to_it_are_skipped() -> None:
    hub = Hub()
    store = Store([_event(n) for n in range(1, 6)])
    with (
        Subscription(max_buffer=100, fetch=store.fetch, after=EventId(1, 8)) as fetching,
        Subscription(max_buffer=100, after=EventId(1, 8)) as live_only,
    ):
        hub.follow_owner("o", fetching)
        hub.follow_owner("o", live_only)
        for n in range(6, 11):
            store.commit_and_publish(hub, _event(n))
        for sub in (fetching, live_only):
            got = [await sub.receive(), await sub.receive()]
            assert _ns(got) == [9, 10]
            assert sub.last_delivered_id == EventId(1, 10)
            with pytest.raises(trio.WouldBlock):
                sub.receive_nowait()
    assert store.calls == [(EventId(1, 8), 500)]


async def test_a_receive_cancelled_during_a_fetch_loses_nothing() -> None:
    store = Store([_event(n) for n in range(1, 4)])
    store.gate = trio.Event()
    with Subscription(max_buffer=100, fetch=store.fetch, job_id="j") as sub:
        sub.end()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sub.receive)
            await trio.testing.wait_all_tasks_blocked()
            assert store.calls == [(None, 500)]
            nursery.cancel_scope.cancel()
        store.gate.set()
        assert _ns(await collect(sub)) == [1, 2, 3]
    assert store.calls == [(None, 500), (None, 500)]


async def test_closing_during_a_fetch_ends_the_subscription() -> None:
    store = Store([_event(n) for n in range(1, 4)])
    store.gate = trio.Event()
    sub = Subscription(max_buffer=100, fetch=store.fetch, job_id="j")
    received: list[list[Event]] = []

    async def read() -> None:
        received.append(await sub.receive_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        sub.close()
        store.gate.set()
    assert received == [[]], "the page read after the close is dropped"
    assert sub.is_exhausted
    with pytest.raises(trio.EndOfChannel):
        sub.receive_nowait()


async def test_a_job_subscription_ends_with_a_terminal_event_from_its_replay() -> None:
    """On a cluster node a job followed from elsewhere may have its terminal event in the
    replay read from storage while the live feed, starting after the replay's position,
    offers nothing more: the subscription ends after the replayed terminal event all
    the same (it once stayed open, its stream sending keep-alives for ever)."""
    stored = [_event(1), _event(2), _event(3, event_type=EventType.JOB_COMPLETED)]

    async def fetch(after: EventId | None, limit: int) -> list[Event]:
        return [event for event in stored if after is None or event.id > after][:limit]

    hub = Hub()
    subscription = Subscription(max_buffer=100, fetch=fetch, job_id="j")
    hub.follow_job("j", subscription)
    with trio.fail_after(5):
        received = await collect(subscription)
    assert _ns(received) == [1, 2, 3]
    assert received[-1].type is EventType.JOB_COMPLETED


async def test_an_owner_subscription_goes_on_after_one_jobs_terminal_event() -> None:
    hub = Hub()
    subscription = _owner_subscription(hub, "o")
    hub.publish(_event(1, event_type=EventType.JOB_COMPLETED))
    hub.publish(_event(2, job_id="k"))
    assert _ns(_ready(subscription)) == [1, 2]
    subscription.close()
