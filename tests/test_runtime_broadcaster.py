"""The broadcaster actor: ids, batches, store-then-fan-out, storage failures, barriers, giving up.

Most tests drive a :class:`Broadcaster` directly, with a fake storage whose
commits can be held on a :class:`trio.Event` or made to fail, and real
:class:`Job` objects as senders (``job.emit`` is what a job actor calls).
The last ones go through a runtime whose storage fails.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from conftest import collect, non_progress, ready_events, registry

from aura_actors.protocol import JobCancelledData, WarningData
from aura_actors.runtime import (
    STORE_CLOSE_TIMEOUT,
    Broadcaster,
    Commit,
    CreationsRefused,
    Event,
    EventType,
    Hub,
    Job,
    JobsFenced,
    MemoryStorage,
    RuntimeConfig,
    StorageFailing,
    StorageUnavailable,
    Subscription,
    open_runtime,
)
from aura_actors.runtime._broadcaster import INBOX_HIGH_WATER, RETRY_BACKOFF
from aura_actors.runtime._outgoing import CommitWaiter


class FakeStorage:
    """Records commits. ``gate``: commits wait for it; ``failures``: how many fail next."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []
        self.attempts: list[float] = []
        self.gate: trio.Event | None = None
        self.failures = 0

    async def commit(self, commit: Commit) -> None:
        self.attempts.append(trio.current_time())
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("disk full")
        self.commits.append(commit)

    def stored_events(self) -> list[Event]:
        return [event for commit in self.commits for event in commit.events]


def _job(broadcaster: Broadcaster, job_id: str, owner: str | None = "o") -> Job:
    return Job(
        job_id=job_id,
        pipeline="p",
        params={},
        stages=(),
        owner=owner,
        broadcaster=broadcaster,
    )


def _warn(job: Job, n: int) -> None:
    job.emit(WarningData.build(job_id=job.id, step=None, message=f"warning {n}"))


def _follow(hub: Hub, job_id: str) -> Subscription:
    subscription = Subscription(max_buffer=10_000, job_id=job_id)
    hub.follow_job(job_id, subscription)
    return subscription


def _drain(subscription: Subscription) -> list[Event]:
    return [subscription.receive_nowait() for _ in range(subscription.pending)]


@asynccontextmanager
async def running(
    storage: FakeStorage, *, max_batch: int = 2048
) -> AsyncIterator[tuple[Broadcaster, Hub]]:
    """A broadcaster running on ``storage`` for the block; closed (and drained) at its end."""
    hub = Hub()
    broadcaster = Broadcaster(storage, hub, max_batch=max_batch)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.run)
        yield broadcaster, hub
        broadcaster.close()


async def test_an_event_is_fanned_out_only_after_its_commit_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, hub):
        job = _job(broadcaster, "a")
        job_stream = _follow(hub, "a")
        owner_stream = Subscription(max_buffer=100)
        hub.follow_owner("o", owner_stream)
        storage.gate = trio.Event()
        for n in range(3):
            _warn(job, n)
        await trio.testing.wait_all_tasks_blocked()
        # the commit is under way: ids are stamped, nothing is offered yet
        assert len(storage.attempts) == 1 and storage.commits == []
        assert job_stream.pending == 0 and owner_stream.pending == 0
        assert broadcaster.last_id is not None and job.last_event_id == broadcaster.last_id
        await trio.sleep(10)  # however long the storage takes
        assert job_stream.pending == 0 and owner_stream.pending == 0
        storage.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        stored = storage.stored_events()
        assert [e.data["message"] for e in stored] == [f"warning {n}" for n in range(3)]
        assert all(e.job_id == "a" and e.owner == "o" and e.data["jobId"] == "a" for e in stored)
        ids = [e.id for e in stored]
        assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(ids))
        # what subscribers get is exactly what was stored, the same objects, in id order
        for stream in (job_stream, owner_stream):
            delivered = _drain(stream)
            assert len(delivered) == 3
            assert all(d is s for d, s in zip(delivered, stored, strict=True))


async def test_a_terminal_event_is_stored_before_anyone_sees_the_job_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, hub):
        job = _job(broadcaster, "a")
        stream = _follow(hub, "a")
        storage.gate = trio.Event()
        job.logs.append({"at": "t", "level": "info", "stage": None, "message": "bye"})
        job.emit_terminal(JobCancelledData.build(job_id=job.id, step=None, message="stop"))
        await trio.testing.wait_all_tasks_blocked()
        assert not job.terminal_published and stream.pending == 0
        storage.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert job.terminal_published
        [commit] = storage.commits
        # the terminal event carries the final snapshot (with its own id) and the log
        assert commit.snapshots["a"]["lastEventId"] == str(commit.events[0].id)
        assert commit.logs["a"][0]["message"] == "bye"
        assert await collect(stream) == commit.events, "the job's stream ends after it"


async def test_what_waits_while_a_commit_runs_goes_in_the_next_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage, max_batch=4) as (broadcaster, hub):
        job = _job(broadcaster, "a")
        stream = _follow(hub, "a")
        storage.gate = trio.Event()
        _warn(job, 0)
        await trio.testing.wait_all_tasks_blocked()  # the first commit is under way
        for n in range(1, 11):
            _warn(job, n)
        stored_all = trio.Event()

        async def wait_barrier() -> None:
            assert await broadcaster.barrier() is None
            stored_all.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_barrier)
            await trio.testing.wait_all_tasks_blocked()
            assert not stored_all.is_set()
            storage.gate.set()
        assert stored_all.is_set()
        # under load batches grow, up to max_batch events a commit
        assert [len(c.events) for c in storage.commits] == [1, 4, 4, 2]
        delivered = _drain(stream)
        assert [e.data["message"] for e in delivered] == [f"warning {n}" for n in range(11)]
        assert [e.id for e in delivered] == [e.id for e in storage.stored_events()]


@pytest.mark.parametrize("fanout_slice", [4, 1000])
async def test_a_large_batch_is_fanned_out_in_slices_readers_keep_up_with(
    autojump_clock: trio.testing.MockClock, fanout_slice: int
) -> None:
    """Readers run between slices: a buffer of two slices holds a batch of any size."""
    storage = FakeStorage()
    hub = Hub()
    broadcaster = Broadcaster(storage, hub, fanout_slice=fanout_slice)  # type: ignore[arg-type]
    job = _job(broadcaster, "a")
    stream = Subscription(max_buffer=8, job_id="a")
    hub.follow_job("a", stream)
    received: list[Event] = []

    async def read() -> None:
        while batch := await stream.receive_batch():
            received.extend(batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await nursery.start(broadcaster.run)
        storage.gate = trio.Event()
        _warn(job, 0)
        await trio.testing.wait_all_tasks_blocked()
        for n in range(1, 101):
            _warn(job, n)
        storage.gate.set()
        assert await broadcaster.barrier() is None
        assert [len(c.events) for c in storage.commits] == [1, 100]
        await trio.testing.wait_all_tasks_blocked()
        broadcaster.close()
        hub.close()
    if fanout_slice == 4:
        assert [e.data["message"] for e in received] == [f"warning {n}" for n in range(101)]
    else:  # one burst of 100 events overflows a buffer of 8
        assert received[-1].data["code"] == "subscriber_overflow"


async def test_a_full_inbox_asks_senders_to_wait_until_half_of_it_is_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        storage.gate = trio.Event()
        _warn(job, 0)
        await trio.testing.wait_all_tasks_blocked()  # the first commit is under way
        for n in range(INBOX_HIGH_WATER):
            _warn(job, n)
        assert not broadcaster.congested
        _warn(job, INBOX_HIGH_WATER)
        assert broadcaster.congested
        room = trio.Event()
        stored_at_room: list[int] = []

        async def sender() -> None:
            await broadcaster.wait_for_room()
            stored_at_room.append(len(storage.stored_events()))
            room.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert not room.is_set()
            storage.gate.set()
        assert not broadcaster.congested
        # room came once half the high-water mark was stored, before the rest was
        [stored] = stored_at_room
        assert INBOX_HIGH_WATER // 2 <= stored < INBOX_HIGH_WATER + 2
        assert await broadcaster.barrier() is None
        assert len(storage.stored_events()) == INBOX_HIGH_WATER + 2
        await broadcaster.wait_for_room()  # not congested: returns at once


async def test_barrier_waits_for_everything_sent_before_it() -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        assert await broadcaster.barrier() is None  # nothing to wait for
        storage.gate = trio.Event()
        _warn(job, 0)
        _warn(job, 1)
        done = trio.Event()

        async def barrier() -> None:
            assert await broadcaster.barrier() is None
            assert len(storage.stored_events()) == 2
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(barrier)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set(), "the barrier returned before the commit did"
            storage.gate.set()
        assert done.is_set()
        # cancelling a barrier stops the wait, not the storing
        storage.gate = trio.Event()
        _warn(job, 2)
        with trio.CancelScope() as scope:
            scope.cancel()
            await broadcaster.barrier()
        storage.gate.set()
        assert await broadcaster.barrier() is None
        assert len(storage.stored_events()) == 3
    # once the broadcaster has stopped, a barrier says so at once
    error = await broadcaster.barrier()
    assert isinstance(error, StorageUnavailable)


async def test_a_failing_commit_is_retried_with_backoff_until_it_works(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, hub):
        job = _job(broadcaster, "a")
        stream = _follow(hub, "a")
        storage.failures = 9
        start = trio.current_time()
        _warn(job, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(broadcaster.storage_error, StorageUnavailable)
        assert str(broadcaster.storage_error) == "disk full"
        _warn(job, 1)  # sent while failing: stored after the retried batch, in order
        assert await broadcaster.barrier() is None
        assert broadcaster.storage_error is None, "storage works again"
        retried = storage.attempts[:10]  # 9 failures and the success (then warning 1's)
        gaps = [round(b - a, 6) for a, b in itertools.pairwise(retried)]
        first, cap = RETRY_BACKOFF
        assert gaps == [first * 2**n for n in range(7)] + [cap, cap]
        assert storage.attempts[0] == start
        # (the retried batch takes nothing new: see the lost-reply test below)
        assert [[e.data["message"] for e in c.events] for c in storage.commits] == [
            ["warning 0"],
            ["warning 1"],
        ]
        assert [e.data["message"] for e in _drain(stream)] == ["warning 0", "warning 1"]
        # the backoff starts over after a success
        storage.failures = 1
        _warn(job, 2)
        before = len(storage.attempts)
        assert await broadcaster.barrier() is None
        assert storage.attempts[-1] - storage.attempts[before] == pytest.approx(first)


async def test_a_creation_is_refused_when_its_commit_fails_and_the_rest_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, hub):
        old, new = _job(broadcaster, "old"), _job(broadcaster, "new")
        everything = Subscription(max_buffer=100)
        hub.follow_owner("o", everything)
        storage.gate = trio.Event()
        _warn(old, 0)
        created = CommitWaiter()
        new.announce_queued(created)
        _warn(old, 1)
        storage.failures = 1
        storage.gate.set()
        await created.done.wait()
        # the submitter hears at once (it answers 503); the job is in no commit
        assert isinstance(created.error, StorageUnavailable)
        assert await broadcaster.barrier() is None
        [commit] = [c for c in storage.commits if c]  # (and the barrier's, empty)
        assert commit.created == []
        assert [(e.job_id, e.data["message"]) for e in commit.events] == [
            ("old", "warning 0"),
            ("old", "warning 1"),
        ]
        assert [e.job_id for e in _drain(everything)] == ["old", "old"]


async def test_giving_up_at_shutdown_counts_what_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FakeStorage()
    storage.failures = 1_000_000
    hub = Hub()
    broadcaster = Broadcaster(storage, hub)  # type: ignore[arg-type]
    stream = _follow(hub, "a")
    job, refused = _job(broadcaster, "a"), _job(broadcaster, "b")
    errors: list[StorageUnavailable | None] = []

    async def barrier() -> None:
        errors.append(await broadcaster.barrier())

    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.run)
        for n in range(3):
            _warn(job, n)
        created = CommitWaiter()
        refused.announce_queued(created)
        nursery.start_soon(barrier)
        await trio.sleep(30)  # retrying all along
        assert isinstance(created.error, StorageUnavailable)
        assert errors == []
        start = trio.current_time()
        broadcaster.give_up_after(1.0)
        broadcaster.close()
    stopped = trio.current_time() - start
    # A retry wait in progress is cut short: it stops exactly when told to give up.
    assert stopped == pytest.approx(1.0, abs=1e-9)
    assert broadcaster.lost_records == 3, "the three events (the refused creation was answered)"
    assert len(errors) == 1 and isinstance(errors[0], StorageUnavailable)
    assert stream.pending == 0, "nothing unstored was fanned out"
    assert storage.commits == []


async def test_close_stores_what_was_sent_then_run_returns() -> None:
    storage = FakeStorage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        for n in range(5):
            _warn(job, n)
    assert len(storage.stored_events()) == 5
    _warn(job, 5)  # after close: dropped, never raises
    assert len(storage.stored_events()) == 5


# -- through a runtime whose storage fails -------------------------------------------------


class FlakyStorage(MemoryStorage):
    """Memory storage whose commits raise :class:`StorageUnavailable` while ``failing``."""

    def __init__(self) -> None:
        super().__init__(history_ttl=3600, max_history_events=1000)
        self.failing = False

    async def commit(self, commit: Commit) -> None:
        if self.failing:
            raise StorageUnavailable("disk full")
        await super().commit(commit)


async def test_a_refused_creation_leaves_no_job_behind(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    storage = FlakyStorage()
    config = RuntimeConfig(data_dir=tmp_path)
    async with open_runtime(config, registry(), storage=storage) as rt:
        with await rt.subscribe_all(owner=None) as everything:
            storage.failing = True
            with pytest.raises(StorageFailing) as info:
                await rt.submit("synthetic")
            assert info.value.code == "storage_unavailable"
            assert (rt.live_count, rt.job_count, rt.queued_count, rt.running_count) == (0, 0, 0, 0)
            assert rt.storage_problem == "disk full"
            assert (await rt.list_jobs()).jobs == []
            # while storage fails, submit refuses at once
            with pytest.raises(StorageFailing):
                await rt.submit("synthetic")
            assert rt.live_count == 0
            assert everything.pending == 0, "no subscriber saw the refused job"


async def test_running_jobs_go_on_while_storage_fails_and_nothing_is_lost(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    storage = FlakyStorage()
    config = RuntimeConfig(data_dir=tmp_path)
    async with open_runtime(config, registry(), storage=storage) as rt:
        job = await rt.submit("synthetic", {"stages": 1, "ticks": 20, "tickSeconds": 1})
        with await rt.subscribe_job(job.id) as stream:
            events = await ready_events(stream)
            storage.failing = True
            await trio.sleep(10.5)
            assert rt.storage_problem is not None
            assert await ready_events(stream) == [], "nothing unstored reaches a subscriber"
            storage.failing = False
            events += await collect(stream)
        assert rt.storage_problem is None
    assert events[-1].type is EventType.JOB_COMPLETED
    history = await storage.job_events(job.id, None, 1000)
    assert history[-1].id == events[-1].id
    assert [e.id for e in non_progress(history)] == [e.id for e in non_progress(events)]
    assert rt.broadcaster.lost_records == 0


async def test_an_idle_runtime_accepts_jobs_again_once_storage_recovers(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    storage = FlakyStorage()
    config = RuntimeConfig(data_dir=tmp_path)
    async with open_runtime(config, registry(), storage=storage) as rt:
        storage.failing = True
        with pytest.raises(StorageFailing):
            await rt.submit("synthetic")
        storage.failing = False
        await trio.sleep(60)  # far past any retry backoff
        assert rt.storage_problem is None
        job = await rt.submit("synthetic")
        assert job.id in rt._live


async def test_leaving_the_block_gives_failing_storage_a_bounded_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    storage = FlakyStorage()
    config = RuntimeConfig(data_dir=tmp_path)
    async with open_runtime(config, registry(), storage=storage) as rt:
        await rt.submit("synthetic", {"ticks": 1000, "tickSeconds": 1})
        await trio.sleep(2.5)
        storage.failing = True
        await trio.sleep(2.0)
        start = trio.current_time()
    took = trio.current_time() - start
    # "everything acknowledged is stored (for at most STORE_CLOSE_TIMEOUT seconds of
    # failing storage; then runtime.broadcaster.lost_records says how much was not)"
    assert STORE_CLOSE_TIMEOUT <= took <= STORE_CLOSE_TIMEOUT + 0.5
    assert rt.broadcaster.lost_records > 0
    assert rt.broadcaster.stopped.is_set()


class FencingStorage(FakeStorage):
    """Refuses whole (``JobsFenced``) every commit that writes a job in ``taken``."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: set[str] = set()

    async def commit(self, commit: Commit) -> None:
        refused = {e.job_id for e in commit.events if e.job_id in self.taken}
        if refused:
            self.attempts.append(trio.current_time())
            raise JobsFenced("held elsewhere", frozenset(str(j) for j in refused))
        await super().commit(commit)


async def test_a_fenced_job_is_dropped_and_the_rest_of_its_batch_stored_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = FencingStorage()
    async with running(storage) as (broadcaster, hub):
        fenced: list[list[Job]] = []
        broadcaster.on_fenced = fenced.append
        a, b, plain = _job(broadcaster, "a"), _job(broadcaster, "b"), _job(broadcaster, "c")
        a.fence, b.fence = 3, 1
        everything = Subscription(max_buffer=100)
        hub.follow_owner("o", everything)
        storage.taken.add("a")
        for n in range(2):
            for job in (a, b, plain):
                _warn(job, n)
        assert await broadcaster.barrier() is None
        # one refusal, then the rest stored at once (no backoff), with b's fence
        assert len(storage.attempts) == 2 and storage.attempts[0] == storage.attempts[1]
        [commit] = storage.commits
        assert [e.job_id for e in commit.events] == ["b", "c", "b", "c"]
        assert commit.fences == {"b": 1}
        assert [e.job_id for e in _drain(everything)] == ["b", "c", "b", "c"]
        assert fenced == [[a]] and a.fenced and not b.fenced

        # what "a" sends from now on never reaches the storage
        _warn(a, 2)
        _warn(b, 2)
        assert await broadcaster.barrier() is None
        assert len(storage.attempts) == 3 and fenced == [[a]]
        assert [e.job_id for e in storage.commits[-1].events] == ["b"]


class AdmittingStorage(FakeStorage):
    """Refuses whole (``CreationsRefused``) every commit that creates a job in ``refuse``."""

    def __init__(self, refuse: dict[str, str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def commit(self, commit: Commit) -> None:
        refused = {r.id: self.refuse[r.id] for r in commit.created if r.id in self.refuse}
        if refused:
            self.attempts.append(trio.current_time())
            raise CreationsRefused("the cluster's limits", refused)
        await super().commit(commit)


async def test_a_creation_refused_by_admission_is_answered_and_the_rest_stored_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = AdmittingStorage({"x": "queue_full"})
    async with running(storage) as (broadcaster, hub):
        old, x, y = _job(broadcaster, "old"), _job(broadcaster, "x"), _job(broadcaster, "y")
        everything = Subscription(max_buffer=100)
        hub.follow_owner("o", everything)
        storage.gate = trio.Event()
        _warn(old, 0)
        refused, admitted = CommitWaiter(), CommitWaiter()
        x.announce_queued(refused)
        y.announce_queued(admitted)
        storage.gate.set()
        await refused.done.wait()
        await admitted.done.wait()
        # x's submitter gets its own refusal (its code); y and old's events in one commit
        assert isinstance(refused.error, CreationsRefused)
        assert refused.error.refusals == {"x": "queue_full"}
        assert admitted.error is None
        assert len(storage.attempts) == 2 and storage.attempts[0] == storage.attempts[1]
        [commit] = storage.commits
        assert [record.id for record in commit.created] == ["y"]
        assert [e.job_id for e in commit.events] == ["old", "y"]
        assert [e.job_id for e in _drain(everything)] == ["old", "y"]


class LostReplyStorage(FakeStorage):
    """Like a cluster's Redis: a commit is recognised by its token, so one sent again after
    its reply was lost is answered "applied" whatever it holds now. ``lose_next``: the
    next commit is applied, then its reply is lost (it raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()
        self.lose_next = False
        self.lost = trio.Event()

    async def commit(self, commit: Commit) -> None:
        self.attempts.append(trio.current_time())
        if commit.token in self.tokens:
            return
        self.tokens.add(commit.token)
        self.commits.append(Commit(events=list(commit.events)))  # what was applied
        if self.lose_next:
            self.lose_next = False
            self.lost.set()
            raise StorageUnavailable("Redis: timeout")


async def test_a_commit_sent_again_after_a_lost_reply_takes_nothing_new(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Events sent while a commit waits to be sent again go in the next commit: added to
    the retried one, they would be "applied" with it by a store that knows its token (a
    cluster's Redis, after a lost reply), and never stored."""
    storage = LostReplyStorage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        storage.lose_next = True
        _warn(job, 0)
        await storage.lost.wait()
        _warn(job, 1)  # while the commit of warning 0 waits to be sent again
        assert await broadcaster.barrier() is None
    stored = [e.data["message"] for e in storage.stored_events()]
    assert stored == ["warning 0", "warning 1"]
    assert len(storage.attempts) == 3  # warning 0, its retry, warning 1


async def test_a_job_submitted_while_a_commit_waits_to_be_sent_again_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The commit sent again takes nothing new, but a new job does not wait behind it for
    storage to work again: its submitter hears at once (a 503), as those of the failed
    commit did."""
    storage = FakeStorage()
    async with running(storage) as (broadcaster, _hub):
        job = _job(broadcaster, "a")
        storage.failures = 1_000
        _warn(job, 0)
        await trio.testing.wait_all_tasks_blocked()
        assert broadcaster.storage_error is not None
        created = CommitWaiter()
        _job(broadcaster, "new").announce_queued(created)
        with trio.fail_after(10):
            await created.done.wait()
        assert isinstance(created.error, StorageUnavailable)
        storage.failures = 0
        assert await broadcaster.barrier() is None
    assert [(e.job_id, e.data.get("message")) for e in storage.stored_events()] == [
        ("a", "warning 0")
    ]
    assert all(not commit.created for commit in storage.commits)
