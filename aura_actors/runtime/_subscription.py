"""A subscriber's view of the event stream: replay, then live, through a bounded buffer."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType

import trio

from ..protocol import TERMINAL_EVENT_TYPES
from ._events import Event, EventType, stream_error
from ._ids import EventId

#: Error code of the event that ends a subscription whose buffer overflowed.
SUBSCRIBER_OVERFLOW = "subscriber_overflow"
#: Events fetched from storage at a time while replaying.
REPLAY_PAGE = 500

#: ``fetch(after, limit)``: up to ``limit`` stored events after ``after``, in id order.
ReplayFetch = Callable[[EventId | None, int], Awaitable[list[Event]]]


class Subscription:
    """One subscriber's stream of events.

    It first yields its replay: the events it was created with, then the
    stored history after ``after`` that ``fetch`` gives, a page at a time (so
    a long history is never held whole). Meanwhile live events the hub offers
    are buffered; once the replay is done they follow, minus any the replay
    already gave or whose id is not past ``after``, so nothing comes twice.
    Offering never blocks: a reader
    that falls behind has its older ``step-progress`` events of a job replaced
    by the newest one (never one that precedes another event of that job, so
    the latest progress before every other event still arrives). If even so
    more than ``max_buffer`` events wait, the subscription ends with an
    id-less ``error`` event, code ``subscriber_overflow`` (with the ``jobId``
    of a one-job subscription, ``job_id``); the reader can
    resubscribe after the last id it received and lose nothing.

    A trio memory channel cannot drop superseded items, which is why this
    is its own small queue. Create subscriptions with
    :meth:`Runtime.subscribe_job <._runtime.Runtime.subscribe_job>` or
    :meth:`Runtime.subscribe_all <._runtime.Runtime.subscribe_all>`
    and use them as a context manager (or call :meth:`close`), so they stop
    receiving when the reader goes away.
    """

    def __init__(
        self,
        *,
        max_buffer: int,
        replay: Iterable[Event] = (),
        fetch: ReplayFetch | None = None,
        after: EventId | None = None,
        job_id: str | None = None,
        replay_page: int = REPLAY_PAGE,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._replay: deque[Event] = deque(replay)
        # Where the rest of the replay comes from, a page at a time (None: no more).
        self._fetch = fetch
        self._replay_page = replay_page
        # Live events with an id up to here were (or will be) replayed, or precede
        # the reader's last event id: they are skipped, so nothing comes twice.
        self._skip_through: EventId | None = after
        # Buffered live events, some of them superseded (kept in place, skipped on the way
        # out: removing from the middle of a deque is O(n)). ``Event`` hashes by identity.
        self._buffer: deque[Event] = deque()
        self._superseded: set[Event] = set()
        # The newest undelivered step-progress of each job, the one a newer one replaces.
        self._pending_progress: dict[str | None, Event] = {}
        self._max_buffer = max_buffer
        self._job_id = job_id
        self._on_close: list[Callable[[Subscription], None]] = []
        self._lot = trio.lowlevel.ParkingLot()
        self._ended = False
        self._final_error: Event | None = None
        self.last_delivered_id: EventId | None = None
        self.skipped_progress = 0

    def on_close(self, callback: Callable[[Subscription], None]) -> None:
        """Call ``callback(self)`` once when the subscription is closed or detached."""
        self._on_close.append(callback)

    # -- the broadcaster's side (synchronous, never blocks) --------------------

    def offer(self, event: Event) -> bool:
        """Queue ``event`` for the reader; ``False`` if it overflowed and ended.

        An overflowed subscription must then be :meth:`detach`-ed by the caller.
        """
        if self._ended:
            return True
        if event.type is EventType.STEP_PROGRESS:
            pending = self._pending_progress
            previous = pending.get(event.job_id)
            if previous is not None:
                self._superseded.add(previous)
                self.skipped_progress += 1
            pending[event.job_id] = event
        elif self._pending_progress:
            self._pending_progress.pop(event.job_id, None)
        self._buffer.append(event)
        return self._queued()

    def offer_many(self, events: list[Event], progress: bool = True) -> bool:
        """Queue ``events`` (in order) for the reader, waking it once; ``False`` if it overflowed.

        The same as :meth:`offer` for each event. ``progress=False`` says none of
        them is a ``step-progress`` (they are then queued as they are).
        """
        if self._ended:
            return True
        if progress or self._pending_progress:
            pending = self._pending_progress
            for event in events:
                if event.type is EventType.STEP_PROGRESS:
                    previous = pending.get(event.job_id)
                    if previous is not None:
                        self._superseded.add(previous)
                        self.skipped_progress += 1
                    pending[event.job_id] = event
                elif pending:
                    pending.pop(event.job_id, None)
                self._buffer.append(event)
        else:
            self._buffer.extend(events)
        return self._queued()

    def _queued(self) -> bool:
        """After events were queued: end on overflow (``False``), compact, wake the reader."""
        buffer = self._buffer
        superseded = self._superseded
        live = len(buffer) - len(superseded)
        if live > self._max_buffer:
            self._overflow()
            return False
        if len(superseded) > 64 and len(superseded) > live:
            self._buffer = deque(e for e in buffer if e not in superseded)
            superseded.clear()
        if self._lot:
            self._lot.unpark_all()
        return True

    def end(self, final_error: Event | None = None) -> None:
        """Stop taking events; the reader gets what is buffered, then the end."""
        if self._ended:
            return
        self._ended = True
        self._final_error = final_error
        self._lot.unpark_all()

    def _overflow(self) -> None:
        self._buffer.clear()
        self._superseded.clear()
        self._pending_progress.clear()
        error = stream_error(
            SUBSCRIBER_OVERFLOW,
            f"subscriber fell more than {self._max_buffer} events behind; "
            "resume from the last event id received",
            self._job_id,
        )
        self.end(error)

    # -- the reader's side ------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many events wait to be received (fetched replay and live)."""
        return len(self._replay) + len(self._buffer) - len(self._superseded)

    @property
    def is_exhausted(self) -> bool:
        """Whether nothing will ever be received: ended, replayed, and nothing waits."""
        return (
            self._ended and self._fetch is None and self.pending == 0 and self._final_error is None
        )

    async def _fetch_replay(self) -> None:
        """Fetch the next page of the replay (a checkpoint when the storage is)."""
        fetch = self._fetch
        assert fetch is not None
        page = await fetch(self._skip_through, self._replay_page)
        if self._fetch is None:  # closed meanwhile
            return
        if page:
            last_id = page[-1].id
            if last_id is not None and (self._skip_through is None or last_id > self._skip_through):
                self._skip_through = last_id
            self._replay.extend(page)
        if len(page) < self._replay_page:
            self._fetch = None

    def _take(self, max_events: int) -> list[Event]:
        """Up to ``max_events`` ready events: replay first, then live, then a final error."""
        taken: list[Event] = []
        replay = self._replay
        while replay and len(taken) < max_events:
            taken.append(replay.popleft())
        if replay or self._fetch is not None:
            return self._stamp(taken)  # live events wait until the replay is done
        skip_through = self._skip_through
        buffer = self._buffer
        superseded = self._superseded
        pending = self._pending_progress
        while buffer and len(taken) < max_events:
            event = buffer.popleft()
            if superseded and event in superseded:
                superseded.discard(event)
                continue
            if event.type is EventType.STEP_PROGRESS and pending.get(event.job_id) is event:
                del pending[event.job_id]
            if event.id is not None:
                if skip_through is not None and event.id <= skip_through:
                    continue
                # An event offered twice (a live feed reading a stream again after a
                # reconnect) comes once: live ids only go up.
                skip_through = event.id
            taken.append(event)
        if (
            self._ended
            and self._final_error is not None
            and not buffer
            and not replay
            and len(taken) < max_events
        ):
            taken.append(self._final_error)
            self._final_error = None
        self._skip_through = skip_through
        return self._stamp(taken)

    @property
    def position(self) -> EventId | None:
        """The newest id delivered or known to come by replay (``None``: from the start)."""
        points = [p for p in (self._skip_through, self.last_delivered_id) if p is not None]
        return max(points) if points else None

    def _stamp(self, taken: list[Event]) -> list[Event]:
        for event in reversed(taken):
            if event.id is not None:
                self.last_delivered_id = event.id
                # A job's terminal event is its last: a one-job subscription that gives it
                # (from its replay, say, while the live copy was skipped) has ended.
                if self._job_id is not None and event.type in TERMINAL_EVENT_TYPES:
                    self.end()
                break
        return taken

    def receive_nowait(self) -> Event:
        """Return the next event at once, or raise :class:`trio.WouldBlock`.

        Raises :class:`trio.EndOfChannel` once the subscription has ended and
        everything buffered has been received.
        """
        taken = self._take(1)
        if taken:
            return taken[0]
        if self._ended and self._fetch is None:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """Wait for and return the next event.

        A checkpoint. Raises :class:`trio.EndOfChannel` after the last event.
        If cancelled, no event is lost: it stays for the next call.
        """
        batch = await self.receive_batch(1)
        if not batch:
            raise trio.EndOfChannel
        return batch[0]

    async def receive_batch(self, max_events: int = 256) -> list[Event]:
        """Wait for at least one event, then return every ready one (up to ``max_events``).

        Returns ``[]`` only when the subscription has ended and is drained.
        A checkpoint; if cancelled, no event is lost.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        parked = False
        while True:
            if self._fetch is not None and not self._replay:
                await self._fetch_replay()
                continue
            batch = self._take(max_events)
            if batch or self._ended:
                # Parking was a checkpoint already; a second one would only cost a
                # trip through the scheduler (and the reader's whole await stack).
                if not parked:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return batch
            await self._lot.park()
            parked = True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop the subscription and release its buffer. Idempotent."""
        self.end()
        self._buffer.clear()
        self._superseded.clear()
        self._replay.clear()
        self._fetch = None
        self._pending_progress.clear()
        self._final_error = None
        self._detach()

    def detach(self) -> None:
        """Tell the owner (the broadcaster) to stop offering events. Idempotent."""
        self._detach()

    def _detach(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
