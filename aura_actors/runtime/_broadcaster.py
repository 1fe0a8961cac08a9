"""The broadcaster actor: ids every event, stores it, then fans it out.

Job actors (and the runtime, for events it makes itself) never publish
directly: they put :class:`Outgoing` items in the broadcaster's inbox, a trio
memory channel, with ``send_nowait`` (never blocking). The broadcaster's own
task takes everything waiting at once, stamps each event with its id, hands
the whole batch to the storage as one commit, and only once that commit is
stored offers the events to the hub. So a subscriber never receives an event
that a crash could lose, and a terminal event is stored before anyone sees it;
under load the batches grow and the storage commits many events at once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from ..protocol import AnyEventData
from ._events import EVENT_TYPE_OF, Event, JsonObject
from ._hub import Hub
from ._ids import EventId, EventIdGenerator
from ._observer import NullObserver, RuntimeObserver
from ._records import Commit, JobRecord, LogLine
from ._storage import JobStorage, StaleEventIds, StorageUnavailable

if TYPE_CHECKING:
    from ._job import Job

logger = logging.getLogger("aura_actors.broadcaster")

#: Seconds between retries of a failed commit: doubling from the first to the last.
RETRY_BACKOFF = (0.05, 5.0)
#: Commits tried in a row while other writers keep storing newer ids (StaleEventIds).
RESTAMP_ATTEMPTS = 8
#: Items waiting in the inbox beyond which job actors wait (see :meth:`Broadcaster.wait_for_room`).
INBOX_HIGH_WATER = 4096


@dataclass(slots=True, eq=False)
class CommitWaiter:
    """Set once the items it waits for are stored (``error`` is ``None``) or refused."""

    done: trio.Event = field(default_factory=trio.Event)
    error: StorageUnavailable | None = None

    def resolve(self, error: StorageUnavailable | None = None) -> None:
        self.error = error
        self.done.set()


@dataclass(slots=True, eq=False)
class Outgoing:
    """One item of the broadcaster's inbox.

    An event of ``job`` (its typed ``payload``), optionally with the job's
    snapshot to store and its log lines; ``create`` marks the job's first event,
    which also inserts its record. An item without a job is a barrier: its
    ``waiter`` is resolved once everything sent before it is stored.
    """

    job: Job | None
    payload: AnyEventData | None = None
    snapshot: JsonObject | None = None
    logs: list[LogLine] | None = None
    create: bool = False
    waiter: CommitWaiter | None = None


class Broadcaster:
    """The broadcaster actor. Send with :meth:`send`; run :meth:`run` in a nursery."""

    def __init__(
        self,
        storage: JobStorage,
        hub: Hub,
        *,
        id_generator: EventIdGenerator | None = None,
        max_batch: int = 2048,
        fanout_slice: int = 64,
        observer: RuntimeObserver | None = None,
    ) -> None:
        self.storage = storage
        self.hub = hub
        self.observer: RuntimeObserver = observer or NullObserver()
        self._ids = id_generator or EventIdGenerator()
        self._max_batch = max_batch
        self._fanout_slice = max(1, fanout_slice)
        self._send, self._receive = trio.open_memory_channel[Outgoing](math.inf)
        self._backlog = 0
        self._room = trio.Event()
        self._room.set()
        #: The last commit's failure while storage is failing; ``None`` when it works.
        self.storage_error: StorageUnavailable | None = None
        #: Records that could not be stored before the broadcaster had to stop.
        self.lost_records = 0
        self._give_up_at = math.inf
        self._retry_wait: trio.CancelScope | None = None
        self._commit = Commit()
        self._staged: list[tuple[Event, Job]] = []
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
        try:
            self._send.send_nowait(item)
            self._backlog += 1
            if self._backlog > INBOX_HIGH_WATER and self._room.is_set():
                self._room = trio.Event()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            if item.waiter is not None:
                item.waiter.resolve(StorageUnavailable("the broadcaster has stopped"))

    @property
    def congested(self) -> bool:
        """Whether senders should wait (:meth:`wait_for_room`) before sending more."""
        return not self._room.is_set()

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
        self._send.close()

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
        open_ = True
        while open_ or self._commit or self._waiters:
            if open_ and not self._commit and not self._waiters:
                open_ = await self._receive_one(backoff if self.storage_error else math.inf)
            open_ = self._stage_waiting() and open_
            # With nothing staged while storage fails, the (empty) commit is a probe:
            # it tells when storage works again, so new jobs are taken again.
            if await self._flush():
                backoff = RETRY_BACKOFF[0]
            elif trio.current_time() >= self._give_up_at:
                self._abandon()
            elif self._commit or self._waiters:
                # Wait before retrying, but never past the time to give up (which
                # give_up_after may bring forward while this waits).
                wake = min(trio.current_time() + backoff, self._give_up_at)
                with trio.CancelScope(deadline=wake) as self._retry_wait:
                    await trio.sleep_forever()
                self._retry_wait = None
                backoff = min(backoff * 2, RETRY_BACKOFF[1])
            else:
                backoff = min(backoff * 2, RETRY_BACKOFF[1])

    async def _receive_one(self, patience: float) -> bool:
        """Stage the next item, waiting at most ``patience`` seconds; ``False`` once closed."""
        with trio.move_on_after(patience):
            try:
                self._stage(await self._receive.receive())
            except trio.EndOfChannel:
                return False
        return True

    def _stage_waiting(self) -> bool:
        """Stage what waits in the inbox (up to a batch); ``False`` once it is closed."""
        while len(self._staged) < self._max_batch:
            try:
                self._stage(self._receive.receive_nowait())
            except trio.WouldBlock:
                return True
            except trio.EndOfChannel:
                return False
        return True

    def _stage(self, item: Outgoing) -> None:
        self._backlog -= 1
        if self._backlog <= INBOX_HIGH_WATER // 2 and not self._room.is_set():
            self._room.set()
        job = item.job
        if job is None:
            assert item.waiter is not None
            self._waiters.append((item.waiter, None))
            return
        payload = item.payload
        assert payload is not None
        event_id = self._ids.next_id()
        event = Event(
            event_id, EVENT_TYPE_OF[type(payload)], job_id=job.id, owner=job.owner, payload=payload
        )
        job.last_event_id = event_id
        commit = self._commit
        if item.snapshot is not None:
            item.snapshot["lastEventId"] = str(event_id)
            if item.create:
                commit.created.append(JobRecord(0, job.owner, item.snapshot))
            else:
                commit.snapshots[job.id] = item.snapshot
        if item.logs is not None:
            commit.logs[job.id] = item.logs
        commit.events.append(event)
        self._staged.append((event, job))
        if item.waiter is not None:
            self._waiters.append((item.waiter, job if item.create else None))

    async def _flush(self) -> bool:
        """Store the staged commit, then fan it out; ``False`` if storage failed."""
        began = time.perf_counter()
        try:
            await self._commit_restamping()
        except StorageUnavailable as exc:
            self.observer.commit_failed()
            if self.storage_error is None:
                logger.error("storage failed; retrying", extra={"error": str(exc)})
            self.storage_error = exc
            self._refuse_creations(exc)
            return False
        self.observer.committed(time.perf_counter() - began, self._commit.events)
        if self.storage_error is not None:
            logger.warning("storage works again")
            self.storage_error = None
        await self._fan_out()
        for waiter, _ in self._waiters:
            waiter.resolve()
        self._commit = Commit()
        self._staged = []
        self._waiters = []
        return True

    async def _commit_restamping(self) -> None:
        """Commit; while another writer of a shared store has stored newer ids, stamp the
        batch again after them and retry (a few times, then it counts as failing)."""
        for _ in range(RESTAMP_ATTEMPTS - 1):
            try:
                await self.storage.commit(self._commit)
                return
            except StaleEventIds as exc:
                self._restamp_after(exc.newest)
        await self.storage.commit(self._commit)

    def _restamp_after(self, newest: EventId) -> None:
        """Give every staged event a new id after ``newest`` (none was published yet)."""
        self._ids.resume_after(newest)
        renamed: dict[str, str] = {}
        for event, job in self._staged:
            new_id = self._ids.next_id()
            renamed[str(event.id)] = str(new_id)
            event.id = new_id
            job.last_event_id = new_id
        commit = self._commit
        for data in [*commit.snapshots.values(), *(record.data for record in commit.created)]:
            old = data.get("lastEventId")
            if old in renamed:
                data["lastEventId"] = renamed[old]

    async def _fan_out(self) -> None:
        """Offer the stored batch to the hub, a slice at a time.

        Readers get to run between slices, so a large batch (many events stored
        at once) never arrives in one burst bigger than a subscriber's buffer.
        """
        hub = self.hub
        staged = self._staged
        for start in range(0, len(staged), self._fanout_slice):
            if start:
                await trio.lowlevel.cancel_shielded_checkpoint()
            now = time.perf_counter()
            for event, job in staged[start : start + self._fanout_slice]:
                event.published_at = now
                if job.history is not None:
                    job.history.append(event)
                hub.publish(event)
                if event.type.is_terminal:
                    job.terminal_published = True
                    if job.cancel_requested_at is not None:
                        self.observer.cancel_took(time.perf_counter() - job.cancel_requested_at)

    def _refuse_creations(self, error: StorageUnavailable) -> None:
        """Drop the new jobs of a failed commit and tell their submitters (they get a 503)."""
        refused = {job.id for waiter, job in self._waiters if job is not None}
        if not refused:
            return
        for waiter, job in self._waiters:
            if job is not None:
                waiter.resolve(error)
        self._waiters = [(w, j) for w, j in self._waiters if j is None]
        self._commit = self._commit.without_jobs(refused)
        self._staged = [(e, j) for e, j in self._staged if j.id not in refused]

    def _abandon(self) -> None:
        """Give up on storage (shutting down while it fails): count and log what is lost."""
        self.lost_records += len(self._commit.events) + len(self._commit.created)
        logger.error(
            "storage still failing at shutdown; acknowledged records are lost",
            extra={"records": self.lost_records, "error": str(self.storage_error)},
        )
        for waiter, _ in self._waiters:
            waiter.resolve(self.storage_error or StorageUnavailable("storage failed"))
        self._commit = Commit()
        self._staged = []
        self._waiters = []
