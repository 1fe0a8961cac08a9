"""A subscriber's view of the event stream: replay, then live, through a bounded buffer."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

import trio

from ._events import Event, EventType, stream_error
from ._ids import EventId

#: Error code of the event that ends a subscription whose buffer overflowed.
SUBSCRIBER_OVERFLOW = "subscriber_overflow"


class _Slot:
    """One buffered event; ``event`` becomes ``None`` when a newer progress supersedes it."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event: Event | None = event


class Subscription:
    """One subscriber's stream of events.

    It first yields the replayed history it was created with, then live
    events as the broadcaster offers them. Offering never blocks: a reader
    that falls behind has its older ``step-progress`` events of a job replaced
    by the newest one (never one that precedes another event of that job, so
    the latest progress before every other event still arrives). If even so
    more than ``max_buffer`` events wait, the subscription ends with an
    id-less ``error`` event, code ``subscriber_overflow`` (with the ``jobId``
    of a one-job subscription, ``job_id``); the reader can
    resubscribe after the last id it received and lose nothing.

    A trio memory channel cannot drop superseded items, which is why this
    is its own small queue. Create subscriptions with
    :meth:`Broadcaster.subscribe_job` or :meth:`Broadcaster.subscribe_owner`
    and use them as a context manager (or call :meth:`close`), so they stop
    receiving when the reader goes away.
    """

    def __init__(
        self,
        *,
        replay: Iterable[Event],
        max_buffer: int,
        on_close: Callable[[Subscription], None],
        job_id: str | None = None,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self._replay: deque[Event] = deque(replay)
        self._buffer: deque[_Slot] = deque()
        self._pending_progress: dict[str | None, _Slot] = {}
        self._live = 0
        self._superseded = 0
        self._max_buffer = max_buffer
        self._job_id = job_id
        self._on_close: Callable[[Subscription], None] | None = on_close
        self._lot = trio.lowlevel.ParkingLot()
        self._ended = False
        self._final_error: Event | None = None
        self.last_delivered_id: EventId | None = None
        self.skipped_progress = 0

    # -- the broadcaster's side (synchronous, never blocks) --------------------

    def offer(self, event: Event) -> bool:
        """Queue ``event`` for the reader; return ``False`` if it overflowed and ended."""
        if self._ended:
            return True
        pending = self._pending_progress
        if event.type is EventType.STEP_PROGRESS:
            previous = pending.get(event.job_id)
            if previous is not None and previous.event is not None:
                previous.event = None
                self._live -= 1
                self._superseded += 1
                self.skipped_progress += 1
            slot = _Slot(event)
            pending[event.job_id] = slot
        else:
            slot = _Slot(event)
            if pending:
                pending.pop(event.job_id, None)
        self._buffer.append(slot)
        self._live += 1
        if self._live > self._max_buffer:
            self._overflow()
            return False
        if self._superseded > 64 and self._superseded > self._live:
            self._compact()
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
        self._pending_progress.clear()
        self._live = 0
        self._superseded = 0
        error = stream_error(
            SUBSCRIBER_OVERFLOW,
            f"subscriber fell more than {self._max_buffer} events behind; "
            "resume from the last event id received",
            self._job_id,
        )
        self.end(error)
        self._detach()

    def _compact(self) -> None:
        self._buffer = deque(slot for slot in self._buffer if slot.event is not None)
        self._superseded = 0

    # -- the reader's side ------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many events wait to be received (replay and live)."""
        return len(self._replay) + self._live

    @property
    def is_exhausted(self) -> bool:
        """Whether nothing will ever be received: ended, and nothing waits."""
        return self._ended and self.pending == 0 and self._final_error is None

    def _pop_ready(self) -> Event | None:
        if self._replay:
            return self._replay.popleft()
        buffer = self._buffer
        while buffer:
            slot = buffer.popleft()
            event = slot.event
            if event is None:
                self._superseded -= 1
                continue
            slot.event = None
            self._live -= 1
            if (
                event.type is EventType.STEP_PROGRESS
                and self._pending_progress.get(event.job_id) is slot
            ):
                del self._pending_progress[event.job_id]
            return event
        if self._ended and self._final_error is not None:
            error, self._final_error = self._final_error, None
            return error
        return None

    def receive_nowait(self) -> Event:
        """Return the next event at once, or raise :class:`trio.WouldBlock`.

        Raises :class:`trio.EndOfChannel` once the subscription has ended and
        everything buffered has been received.
        """
        event = self._pop_ready()
        if event is not None:
            if event.id is not None:
                self.last_delivered_id = event.id
            return event
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """Wait for and return the next event.

        A checkpoint. Raises :class:`trio.EndOfChannel` after the last event.
        If cancelled, no event is lost: it stays for the next call.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
                continue
            await trio.lowlevel.cancel_shielded_checkpoint()
            return event

    async def receive_batch(self, max_events: int = 256) -> list[Event]:
        """Wait for at least one event, then return every ready one (up to ``max_events``).

        Returns ``[]`` only when the subscription has ended and is drained.
        A checkpoint.
        """
        try:
            batch = [await self.receive()]
        except trio.EndOfChannel:
            return []
        while len(batch) < max_events:
            try:
                batch.append(self.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

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
        self._replay.clear()
        self._pending_progress.clear()
        self._live = 0
        self._final_error = None
        self._detach()

    def _detach(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
