"""The broadcaster actor: ids every event, stores it, then fans it out.

Job actors (and the runtime, for events it makes itself) never publish
directly: they put :class:`Outgoing` items in the broadcaster's inbox (an
:class:`~._inbox.Inbox`, a trio memory channel), never blocking. The
broadcaster's own task takes everything waiting at once, stamps each event
with its id, hands the whole batch to the storage as one commit, and only once
that commit is stored offers the events to the hub, a run of one job's events
at a time. So a subscriber never receives an event that a crash could lose,
and a terminal event is stored before anyone sees it; under load the batches
grow and the storage commits many events at once. The work is per batch
wherever it can be (one observer call, one look-up of a job's subscribers per
run, one wake-up of each subscriber), so the hop costs little per event.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ..protocol import TERMINAL_EVENT_TYPES, AnyEventData
from ._events import EVENT_TYPE_OF as _TYPE_OF
from ._events import Event
from ._held_back import HeldBack
from ._hub import Hub
from ._ids import EventId, EventIdGenerator
from ._inbox import Inbox
from ._observer import NullObserver, RuntimeObserver
from ._outgoing import CommitWaiter, InboxItem, Outgoing
from ._records import Commit, JobRecord
from ._refusals import drop_creations, drop_refused, renamed_from, restamp, split_fenced
from ._storage import CreationsRefused, JobsFenced, JobStorage, StaleEventIds, StorageUnavailable

if TYPE_CHECKING:
    from ._job import Job

logger = logging.getLogger("aura_actors.broadcaster")

#: Seconds between retries of a failed commit: doubling from the first to the last.
RETRY_BACKOFF = (0.05, 5.0)
#: Commits tried in a row while other writers keep storing newer ids (StaleEventIds).
RESTAMP_ATTEMPTS = 8
#: Items waiting in the inbox beyond which job actors wait (see :meth:`Broadcaster.wait_for_room`).
INBOX_HIGH_WATER = 4096


class Broadcaster:
    """The broadcaster actor. Send with :meth:`send_event` or :meth:`send`; run :meth:`run`."""

    def __init__(
        self,
        storage: JobStorage,
        hub: Hub,
        *,
        id_generator: EventIdGenerator | None = None,
        max_batch: int = 2048,
        fanout_slice: int = 64,
        observer: RuntimeObserver | None = None,
        on_fenced: Callable[[list[Job]], None] | None = None,
    ) -> None:
        self.storage = storage
        self.hub = hub
        self.observer: RuntimeObserver = observer or NullObserver()
        # Commits are timed only for an observer: unobserved, a wake-up saves a call.
        self._timed = observer is not None
        #: Called with the jobs whose writes storage refused for good (held elsewhere:
        #: fenced), their writes dropped from then on: the runtime cancels their actors.
        self.on_fenced = on_fenced
        self._ids = id_generator or EventIdGenerator()
        self._max_batch = max_batch
        self._fanout_slice = max(1, fanout_slice)
        self._inbox = Inbox[InboxItem]()
        self._room = trio.Event()
        self._room.set()
        self._congested = False  # whether ``_room`` is unset (checked every batch)
        #: The last commit's failure while storage is failing; ``None`` when it works.
        self.storage_error: StorageUnavailable | None = None
        #: Records that could not be stored before the broadcaster had to stop.
        self.lost_records = 0
        self._give_up_at = math.inf
        self._retry_wait: trio.CancelScope | None = None
        self._commit = Commit()
        # While storage fails the staged commit was sent with its outcome unknown: it takes
        # nothing more, and what arrives meanwhile is held back (``_held_back``).
        self._held = HeldBack(INBOX_HIGH_WATER)
        #: The job of each staged event (``self._commit.events``), in the same order.
        self._staged_jobs: list[Job] = []
        self._waiters: list[tuple[CommitWaiter, Job | None]] = []
        #: Set when :meth:`run` has returned.
        self.stopped = trio.Event()
        #: The cancel scope :meth:`run` runs in, for cutting it off as a last resort.
        self.stop_scope: trio.CancelScope | None = None

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions take live events (the hub's)."""
        return self.hub.subscriber_count

    @property
    def last_id(self) -> EventId | None:
        """The newest id handed out so far."""
        return self._ids.last

    # -- the senders' side (synchronous, never blocks) --------------------------------

    def send(self, item: Outgoing) -> None:
        """Put ``item`` in the inbox. Not a checkpoint; never blocks."""
        waiting = self._inbox.send_nowait(item)
        if not waiting:
            if item.waiter is not None:
                item.waiter.resolve(StorageUnavailable("the broadcaster has stopped"))
        elif waiting > INBOX_HIGH_WATER and not self._congested:
            self._congested, self._room = True, trio.Event()

    def send_event(self, job: Job, payload: AnyEventData) -> None:
        """Put a plain event of ``job`` in the inbox: :meth:`send` without an :class:`Outgoing`.

        The common case (no snapshot, log or waiter), sent as a pair: it makes
        no object per event. Dropped once closed. Not a checkpoint; never blocks.
        """
        if self._inbox.send_nowait((job, payload)) > INBOX_HIGH_WATER and not self._congested:
            self._congested, self._room = True, trio.Event()

    @property
    def congested(self) -> bool:
        """Whether senders should wait (:meth:`wait_for_room`) before sending more."""
        return self._congested

    async def wait_for_room(self) -> None:
        """Wait until the inbox has drained below half its high-water mark.

        Job actors call it when :attr:`congested`, so a job that reports faster
        than its events can be stored is slowed to the storage's pace instead
        of queueing without bound. A checkpoint.
        """
        await self._room.wait()

    async def barrier(self) -> StorageUnavailable | None:
        """Wait until everything sent so far is stored; the storage error if it never was.

        A checkpoint. Cancelling it stops the wait, not the storing.
        """
        waiter = CommitWaiter()
        self.send(Outgoing(None, waiter=waiter))
        await waiter.done.wait()
        return waiter.error

    def close(self) -> None:
        """Take no more items; :meth:`run` ends once it has stored what it has."""
        self._inbox.close()

    def give_up_after(self, seconds: float) -> None:
        """While storage fails, stop retrying ``seconds`` from now (trio clock)."""
        self._give_up_at = min(self._give_up_at, trio.current_time() + seconds)
        if self._retry_wait is not None:
            self._retry_wait.deadline = min(self._retry_wait.deadline, self._give_up_at)

    # -- the actor ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Store and fan out batches until :meth:`close`; then store the rest and return."""
        task_status.started()
        backoff = RETRY_BACKOFF[0]
        inbox = self._inbox
        while True:
            if not self._staged_jobs and not self._waiters and not self._held.items:
                if self.storage_error is None:
                    # No cancel scope around this wait: entering one costs more
                    # than the rest of a wake-up for one event.
                    if not await inbox.wait():
                        return
                else:
                    with trio.move_on_after(backoff):
                        if not await inbox.wait():
                            return
            if self.storage_error is not None:
                self._held.hold(inbox, self.storage_error)
            elif self._held.items:
                self._stage(self._held.take(inbox, self._max_batch - len(self._staged_jobs)))
            else:
                self._stage(inbox.take(self._max_batch - len(self._staged_jobs)))
            # With nothing staged while storage fails, the (empty) commit is a probe:
            # it tells when storage works again, so new jobs are taken again.
            if await self._flush():
                backoff = RETRY_BACKOFF[0]
            elif trio.current_time() >= self._give_up_at:
                self._abandon()
            elif self._staged_jobs or self._waiters or self._held.items:
                # Wait before retrying, but never past the time to give up (which
                # give_up_after may bring forward while this waits).
                wake = min(trio.current_time() + backoff, self._give_up_at)
                with trio.CancelScope(deadline=wake) as self._retry_wait:
                    await trio.sleep_forever()
                self._retry_wait = None
                backoff = min(backoff * 2, RETRY_BACKOFF[1])
            else:
                backoff = min(backoff * 2, RETRY_BACKOFF[1])

    def _stage(self, items: list[InboxItem]) -> None:
        """Stamp each event of ``items`` with its id and stage it; note each barrier's waiter."""
        next_id = self._ids.next_id
        events = self._commit.events
        fences = self._commit.fences
        jobs = self._staged_jobs
        for item in items:
            extras = None
            if type(item) is tuple:
                job, payload = item
            else:
                assert isinstance(item, Outgoing)
                if item.job is None or item.payload is None:
                    assert item.waiter is not None
                    self._waiters.append((item.waiter, None))
                    continue
                job, payload, extras = item.job, item.payload, item
            if job.fenced:  # held elsewhere now: it writes nothing more
                if extras is not None and extras.waiter is not None:
                    extras.waiter.resolve(StorageUnavailable("the job is held elsewhere"))
                continue
            if job.fence is not None:
                fences[job.id] = job.fence
            event_id = next_id()
            event = Event(
                event_id, _TYPE_OF[type(payload)], None, job.id, job.owner, payload=payload
            )
            job.last_event_id = event_id
            if extras is not None:
                self._stage_extras(extras, job, event_id)
            events.append(event)
            jobs.append(job)
        if self._congested and len(self._inbox) <= INBOX_HIGH_WATER // 2:
            self._congested = False
            self._room.set()

    def _stage_extras(self, item: Outgoing, job: Job, event_id: EventId) -> None:
        """Stage what comes with an event: the job's snapshot or record, its log, a waiter."""
        commit = self._commit
        if item.snapshot is not None:
            item.snapshot["lastEventId"] = str(event_id)
            if item.create:
                commit.created.append(JobRecord(0, job.owner, item.snapshot))
            else:
                commit.snapshots[job.id] = item.snapshot
        if item.logs is not None:
            commit.logs[job.id] = item.logs
        if item.waiter is not None:
            self._waiters.append((item.waiter, job if item.create else None))

    async def _flush(self) -> bool:
        """Store the staged commit, then fan it out; ``False`` if storage failed."""
        began = time.perf_counter() if self._timed else 0.0
        try:
            try:
                first = await self.storage.commit(self._commit)
                if first is not None:  # new ids, after another node's newer ones
                    renamed_from(self._commit, self._staged_jobs, first, self._ids)
            except (StaleEventIds, JobsFenced, CreationsRefused) as refusal:
                await self._commit_after(refusal)
        except StorageUnavailable as exc:
            self.observer.commit_failed()
            if self.storage_error is None:
                logger.error("storage failed; retrying", extra={"error": str(exc)})
            self.storage_error = exc
            self._refuse_creations(exc)
            return False
        stored_at = time.perf_counter()
        commit = self._commit  # what was stored: refused jobs may have been taken out
        if self._timed:
            self.observer.committed(stored_at - began, commit.events)
        if self.storage_error is not None:
            logger.warning("storage works again")
            self.storage_error = None
        events, jobs = commit.events, self._staged_jobs
        if len(events) <= self._fanout_slice:
            self._offer(events, jobs, stored_at)  # no coroutine for what needs no slicing
        else:
            await self._fan_out(events, jobs)
        if self._waiters:
            for waiter, _ in self._waiters:
                waiter.resolve()
            self._waiters = []
        self._commit, self._staged_jobs = Commit([], {}, {}, []), []
        return True

    async def _commit_after(self, refusal: StorageUnavailable) -> None:
        """After a refused commit, mend the batch and commit again until it is stored: stamp
        it again after a shared store's newer ids (``StaleEventIds``: ``RESTAMP_ATTEMPTS``
        in a row, then it counts as failing), drop the jobs it may not write (fenced) or
        create (refused by the store's limits). Each refusal but a stale one drops a job."""
        restamped = 0
        while True:
            if isinstance(refusal, StaleEventIds):
                restamped += 1
                if restamped >= RESTAMP_ATTEMPTS:
                    raise refusal
                self._ids.resume_after(refusal.newest)  # new ids after it: none was published
                restamp(self._commit, self._staged_jobs, self._ids)
            elif isinstance(refusal, JobsFenced):
                self._fence_off(refusal)
            else:
                assert isinstance(refusal, CreationsRefused)
                self._commit, self._staged_jobs, self._waiters = drop_refused(
                    self._commit, self._staged_jobs, self._waiters, refusal
                )
            try:
                first = await self.storage.commit(self._commit)
                if first is not None:  # new ids, after another node's newer ones
                    renamed_from(self._commit, self._staged_jobs, first, self._ids)
                return
            except (StaleEventIds, JobsFenced, CreationsRefused) as again:
                refusal = again

    def _fence_off(self, refusal: JobsFenced) -> None:
        """Drop the jobs ``refusal`` names (``split_fenced``) and tell :attr:`on_fenced`."""
        self._commit, self._staged_jobs, fenced = split_fenced(
            self._commit, self._staged_jobs, refusal
        )
        if self.on_fenced is not None:
            self.on_fenced(fenced)

    async def _fan_out(self, events: list[Event], jobs: list[Job]) -> None:
        """Offer a large stored batch to the hub, a slice at a time.

        Readers get to run between slices, so a large batch (many events stored
        at once) never arrives in one burst bigger than a subscriber's buffer.
        """
        step = self._fanout_slice
        for start in range(0, len(events), step):
            if start:
                await trio.lowlevel.cancel_shielded_checkpoint()
            self._offer(
                events[start : start + step], jobs[start : start + step], time.perf_counter()
            )

    def _offer(self, events: list[Event], jobs: list[Job], now: float) -> None:
        """Record ``events`` in their jobs' histories and offer them, a run per job, to the hub.

        Consecutive events of one job go to the hub as one run, a slice of ``events``
        (its subscribers are looked up once, each is woken once); a terminal event
        ends a run. A batch of one job's events goes as it is, not copied.
        """
        if not events:
            return
        publish_run = self.hub.publish_run
        start, run_job = 0, jobs[0]
        for index, event in enumerate(events):
            job = jobs[index]
            event.published_at = now
            if job is not run_job:
                if index > start:
                    publish_run(events[start:index])
                start, run_job = index, job
            history = job.history
            if history is not None:
                history.append(event)
            if event.type in TERMINAL_EVENT_TYPES:
                publish_run(events[start : index + 1])
                start = index + 1
                self._published_terminal(job)
        if start == 0:
            publish_run(events)
        elif start < len(events):
            publish_run(events[start:])

    def _published_terminal(self, job: Job) -> None:
        job.terminal_published = True
        if job.cancel_requested_at is not None:
            self.observer.cancel_took(time.perf_counter() - job.cancel_requested_at)

    def _refuse_creations(self, error: StorageUnavailable) -> None:
        """Drop the new jobs of a failed commit and tell their submitters (they get a 503)."""
        self._commit, self._staged_jobs, self._waiters = drop_creations(
            self._commit, self._staged_jobs, self._waiters, error
        )

    def _abandon(self) -> None:
        """Give up on storage (shutting down while it fails): count and log what is lost."""
        self.lost_records += len(self._commit.events) + len(self._commit.created)
        error = self.storage_error or StorageUnavailable("storage failed")
        self.lost_records += self._held.drop(error)
        logger.error(
            "storage still failing at shutdown; acknowledged records are lost",
            extra={"records": self.lost_records, "error": str(self.storage_error)},
        )
        for waiter, _ in self._waiters:
            waiter.resolve(error)
        self._commit = Commit()
        self._staged_jobs = []
        self._waiters = []
