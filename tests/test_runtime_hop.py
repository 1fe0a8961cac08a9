"""What the broadcaster hop costs per batch, not per event: task steps, commits, look-ups.

Issue 8 asks the actor hop (job → inbox → commit → fan-out) to cost little
beside the old synchronous publish. These tests pin the per-batch shape that
keeps it cheap, by counting: the broadcaster's task steps and commits for a
burst, the observer calls, the offers each subscriber gets (one per run of a
job's events), and the inbox's wake-ups, without timing anything.
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import trio
import trio.testing

import aura_actors
from aura_actors.protocol import JobCancelledData, JobStatus, JobStatusData, WarningData
from aura_actors.runtime import (
    Broadcaster,
    Commit,
    Event,
    EventId,
    Hub,
    Job,
    MemoryStorage,
    StaleEventIds,
    StorageUnavailable,
    Subscription,
)
from aura_actors.runtime._broadcaster import RESTAMP_ATTEMPTS
from aura_actors.runtime._inbox import Inbox
from aura_actors.runtime._outgoing import Outgoing


class Storage:
    """Records commits; never fails."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []

    async def commit(self, commit: Commit) -> None:
        self.commits.append(commit)


class Observer:
    """Records each ``committed`` call's event count."""

    def __init__(self) -> None:
        self.committed_sizes: list[int] = []

    def committed(self, seconds: float, events: Sequence[Event]) -> None:
        self.committed_sizes.append(len(events))

    def commit_failed(self) -> None:
        raise AssertionError("no commit fails here")

    def cancel_took(self, seconds: float) -> None:
        pass


class StepCounter(trio.abc.Instrument):
    """Counts the steps of tasks whose name ends with ``suffix``."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.suffix):
            self.steps += 1


class RecordingSubscription(Subscription):
    """A subscription that records the length of each run it is offered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_buffer=10_000, **kwargs)
        self.runs: list[int] = []
        self.offered: list[list[Event]] = []

    def offer(self, event: Event) -> bool:
        raise AssertionError("the broadcaster offers runs, not single events")

    def offer_many(self, events: list[Event], progress: bool = True) -> bool:
        self.runs.append(len(events))
        self.offered.append(events)
        return super().offer_many(events, progress)


def _job(broadcaster: Broadcaster, job_id: str) -> Job:
    return Job(
        job_id=job_id, pipeline="p", params={}, stages=(), owner="o", broadcaster=broadcaster
    )


def _warn(job: Job, n: int) -> None:
    job.emit(WarningData.build(job_id=job.id, step=None, message=f"warning {n}"))


def _drain(subscription: Subscription) -> list[Event]:
    return [subscription.receive_nowait() for _ in range(subscription.pending)]


@asynccontextmanager
async def running(
    storage: Storage, observer: Observer | None = None
) -> AsyncIterator[tuple[Broadcaster, Hub]]:
    hub = Hub()
    # Slices as open_runtime makes them for the default 1024-deep subscriber buffers.
    broadcaster = Broadcaster(storage, hub, fanout_slice=256, observer=observer)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.run)
        yield broadcaster, hub
        broadcaster.close()


async def test_a_burst_costs_one_step_one_commit_one_observer_call_and_no_cancel_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scopes: list[float] = []
    move_on_after = trio.move_on_after

    def counting_move_on_after(seconds: float, *, shield: bool = False) -> trio.CancelScope:
        scopes.append(seconds)
        return move_on_after(seconds, shield=shield)

    monkeypatch.setattr(trio, "move_on_after", counting_move_on_after)
    storage, observer = Storage(), Observer()
    counter = StepCounter("Broadcaster.run")
    async with running(storage, observer) as (broadcaster, hub):
        job = _job(broadcaster, "a")
        stream = RecordingSubscription(job_id="a")
        hub.follow_job("a", stream)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(counter)
        for n in range(100):
            _warn(job, n)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(counter)
        # one wake-up of the actor: it took the burst at once, stored it as one
        # commit, told the observer once, and offered it to the reader once
        assert counter.steps == 1
        assert [len(c.events) for c in storage.commits] == [100]
        assert observer.committed_sizes == [100]
        assert stream.runs == [100]
        assert stream.offered[0] is storage.commits[0].events, "one job's batch goes uncopied"
        assert [e.data["message"] for e in _drain(stream)] == [f"warning {n}" for n in range(100)]
    assert scopes == [], "waiting on the inbox while storage works opens no cancel scope"


async def test_each_subscriber_is_offered_a_run_per_job_and_a_terminal_ends_a_run() -> None:
    storage = Storage()
    async with running(storage) as (broadcaster, hub):
        a, b = _job(broadcaster, "a"), _job(broadcaster, "b")
        owner_stream = RecordingSubscription()
        hub.follow_owner("o", owner_stream)
        job_stream = RecordingSubscription(job_id="a")
        hub.follow_job("a", job_stream)
        for job, n in ((a, 0), (a, 1), (a, 2), (b, 3), (b, 4), (a, 5)):
            _warn(job, n)
        a.emit_terminal(JobCancelledData.build(job_id="a", step=None, message="stop"))
        _warn(b, 6)
        await trio.testing.wait_all_tasks_blocked()
        assert [len(c.events) for c in storage.commits] == [8], "one batch"
        assert owner_stream.runs == [3, 2, 2, 1]
        assert job_stream.runs == [3, 2]
        delivered = _drain(owner_stream)
        assert [e.id for e in delivered] == [e.id for e in storage.commits[0].events]
        assert [e.job_id for e in _drain(job_stream)] == ["a"] * 5
        assert job_stream.is_exhausted, "the job's stream ended after its terminal event"


async def test_a_plain_event_is_sent_as_a_pair_without_an_outgoing_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    def counting_outgoing(*args: Any, **kwargs: Any) -> Outgoing:
        made.append(args)
        return Outgoing(*args, **kwargs)

    monkeypatch.setattr("aura_actors.runtime._job.Outgoing", counting_outgoing)
    storage = Storage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        _warn(job, 0)
        assert made == []
        job.emit_terminal(JobCancelledData.build(job_id="a", step=None, message="stop"))
        assert len(made) == 1, "an event with a snapshot and a log goes as an Outgoing"
    [commit] = storage.commits
    assert len(commit.events) == 2 and commit.snapshots["a"]["lastEventId"] == str(
        commit.events[1].id
    )


# -- the inbox -----------------------------------------------------------------------------


async def test_the_inbox_wakes_its_reader_once_and_takes_without_a_checkpoint() -> None:
    inbox = Inbox[int]()
    counter = StepCounter("reader")
    taken: list[list[int]] = []
    ran: list[str] = []

    async def reader() -> None:
        while await inbox.wait():
            taken.append(inbox.take(2))

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, name="reader")
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(counter)
        assert [inbox.send_nowait(n) for n in range(5)] == [1, 2, 3, 4, 5]
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(counter)
        # one wake-up for five items, taken two at a time without yielding in between
        assert counter.steps == 1
        assert taken == [[0, 1], [2, 3], [4]]
        nursery.cancel_scope.cancel()  # the inbox has one reader: this test, from here on
    async with trio.open_nursery() as nursery:
        inbox.send_nowait(5)
        nursery.start_soon(other)
        assert await inbox.wait() is True  # items wait: no checkpoint, other has not run
        assert ran == []
        assert inbox.take(10) == [5]
        inbox.close()
    assert inbox.send_nowait(6) == 0, "dropped once closed"
    assert await inbox.wait() is False


async def test_a_cancelled_inbox_wait_takes_nothing_and_one_reader_at_a_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inbox = Inbox[int]()
    with trio.move_on_after(1) as scope:
        await inbox.wait()
    assert scope.cancelled_caught
    inbox.send_nowait(1)
    assert inbox.take(10) == [1]

    async def wait() -> None:
        await inbox.wait()

    with pytest.RaisesGroup(trio.BusyResourceError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            await inbox.wait()
    inbox.close()
    assert await inbox.wait() is False


# -- one paced wake-up -----------------------------------------------------------------------

PACKAGE = str(Path(aura_actors.__file__).parent)


class CallRecorder(trio.abc.Instrument):
    """Records the functions of ``aura_actors`` that steps of the task ``name`` call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0
        self.calls: Counter[str] = Counter()
        # A resumed coroutine is a "call" too: each frame counts once (held, so that
        # no later frame takes its place in the set).
        self._seen: set[FrameType] = set()

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        if event == "call" and frame not in self._seen and code.co_filename.startswith(PACKAGE):
            self._seen.add(frame)
            self.calls[code.co_qualname] += 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.name):
            self.steps += 1
            sys.setprofile(self._profile)

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        sys.setprofile(None)


#: What the broadcaster's code does when it wakes for one event and goes back to
#: waiting: each cut of issue 8 shows here (no coroutine around the commit, no
#: comprehension in ``Inbox.take``, no ``Inbox.__len__`` for the room check, no id
#: made for the commit until a shared store asks for its token, no observer call
#: when nothing observes).
ONE_EVENT_WAKE_UP = Counter(
    {
        "Inbox.wait": 1,
        "Inbox.take": 1,
        "Broadcaster._stage": 1,
        "EventIdGenerator.next_id": 1,
        "_wall_clock_millis": 1,
        "Event.__init__": 1,
        "Broadcaster._flush": 1,
        "MemoryStorage.commit": 1,
        "JobHistory.append": 1,
        "EventType.is_terminal": 1,
        "Broadcaster._offer": 1,
        "Hub.publish_run": 1,
        "Subscription.offer_many": 1,
        "Subscription._queued": 1,
    }
)


async def test_a_wake_up_for_one_event_makes_only_the_calls_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uuids: list[uuid.UUID] = []
    make_uuid = uuid.uuid4

    def counting_uuid4() -> uuid.UUID:
        uuids.append(make_uuid())
        return uuids[-1]

    monkeypatch.setattr(uuid, "uuid4", counting_uuid4)
    storage = MemoryStorage(history_ttl=60.0, max_history_events=100)
    hub = Hub()
    broadcaster = Broadcaster(storage, hub, fanout_slice=256)
    recorder = CallRecorder("Broadcaster.run")
    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.run)
        job = _job(broadcaster, "a")
        queued = JobStatusData.build(
            job_id="a", status=JobStatus.QUEUED, previous_status=None, stage=None, progress_pct=0
        )
        job.emit(queued, create=True)
        assert await broadcaster.barrier() is None
        stream = Subscription(max_buffer=100, job_id="a")
        hub.follow_job("a", stream)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(recorder)
        for n in range(11):
            if n == 1:  # the first wake-up also enters the frames waiting since before
                recorder.calls.clear()
                recorder.steps = 0
            _warn(job, n)
            await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(recorder)
        broadcaster.close()
    assert recorder.steps == 10, "one wake-up per event"
    per_wake_up = Counter({name: count / 10 for name, count in recorder.calls.items()})
    assert per_wake_up == ONE_EVENT_WAKE_UP
    assert [e.data["message"] for e in _drain(stream)] == [f"warning {n}" for n in range(11)]
    assert uuids == [], "no commit asked for its token"


def test_a_commit_makes_its_token_once_when_asked_and_keeps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[int] = []
    make_uuid = uuid.uuid4

    def counting_uuid4() -> uuid.UUID:
        made.append(1)
        return make_uuid()

    monkeypatch.setattr(uuid, "uuid4", counting_uuid4)
    commit, other = Commit(), Commit()
    assert made == []
    token = commit.token
    assert commit.token == token and len(token) == 32 and made == [1]
    assert commit.without_jobs({"a"}).token == token, "a retry without a job is the same commit"
    assert other.token != token


class StaleStorage:
    """Refuses the next ``stale`` commits as stale (another writer stored ``newest``)."""

    def __init__(self, stale: int, newest: EventId) -> None:
        self.stale = stale
        self.newest = newest
        self.tried: list[list[EventId | None]] = []
        self.commits: list[Commit] = []

    async def commit(self, commit: Commit) -> None:
        self.tried.append([event.id for event in commit.events])
        if self.stale:
            self.stale -= 1
            self.newest = EventId(self.newest.millis, self.newest.counter + 10)
            raise StaleEventIds("stale", self.newest)
        self.commits.append(commit)


@pytest.mark.parametrize("stale", [1, RESTAMP_ATTEMPTS - 1])
async def test_a_stale_commit_is_stamped_again_after_the_newest_id_and_stored(
    stale: int,
) -> None:
    storage = StaleStorage(stale, EventId(2**40, 0))
    async with running(storage) as (broadcaster, hub):  # type: ignore[arg-type]
        job = _job(broadcaster, "a")
        stream = Subscription(max_buffer=100, job_id="a")
        hub.follow_job("a", stream)
        _warn(job, 0)
        _warn(job, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert len(storage.tried) == stale + 1
        [commit] = storage.commits
        ids = [event.id for event in commit.events]
        first, second = ids
        assert first is not None and second is not None
        assert storage.newest < first < second
        assert job.last_event_id == ids[1]
        assert [e.id for e in _drain(stream)] == ids, "published once, with the new ids"


async def test_a_commit_stale_every_time_counts_as_storage_failing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = StaleStorage(RESTAMP_ATTEMPTS, EventId(2**40, 0))
    async with running(storage) as (broadcaster, _hub):  # type: ignore[arg-type]
        _warn(_job(broadcaster, "a"), 0)
        await trio.testing.wait_all_tasks_blocked()
        assert len(storage.tried) == RESTAMP_ATTEMPTS
        assert isinstance(broadcaster.storage_error, StorageUnavailable)
        assert storage.commits == []
        await trio.sleep(1)  # the retry after the backoff is stored
        assert len(storage.commits) == 1 and broadcaster.storage_error is None
