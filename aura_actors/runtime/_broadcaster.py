"""The broadcaster actor: ids every event, keeps each job's history, fans out to subscribers."""

from __future__ import annotations

import heapq
from collections import deque

import trio

from ._events import Event, EventType, JsonObject, stream_error
from ._history import JobHistory
from ._ids import EventId, EventIdGenerator
from ._subscription import Subscription

_TERMINAL_TYPES = frozenset(t for t in EventType if t.is_terminal)

#: Error code of the event that opens a replay whose oldest events were dropped.
HISTORY_TRUNCATED = "history_truncated"


class Broadcaster:
    """Gives every event its id, records it, and offers it to every interested subscriber.

    :meth:`publish` is synchronous and never blocks, so a job never waits for
    a subscriber. The broadcaster's own task (:meth:`run`) only drops the
    history of finished jobs once ``history_ttl`` seconds (trio clock) have
    passed.
    """

    def __init__(
        self,
        *,
        history_ttl: float = 3600.0,
        max_history_events: int = 10_000,
        subscriber_buffer: int = 1024,
        id_generator: EventIdGenerator | None = None,
    ) -> None:
        self.history_ttl = history_ttl
        self.max_history_events = max_history_events
        self.subscriber_buffer = subscriber_buffer
        self._ids = id_generator or EventIdGenerator()
        self._histories: dict[str, JobHistory] = {}
        self._owner_of: dict[str, str | None] = {}
        self._jobs_of_owner: dict[str | None, dict[str, None]] = {}
        self._job_subscribers: dict[str, set[Subscription]] = {}
        self._owner_subscribers: dict[str | None, set[Subscription]] = {}
        self._expiries: deque[tuple[float, str]] = deque()
        self._expiry_added = trio.Event()
        self._closed = False

    # -- jobs and publishing ------------------------------------------------------

    def register_job(self, job_id: str, owner: str | None) -> None:
        """Start a history for ``job_id``, belonging to ``owner``."""
        if job_id in self._histories:
            raise ValueError(f"job {job_id!r} is already registered")
        self._histories[job_id] = JobHistory(self.max_history_events)
        self._owner_of[job_id] = owner
        self._jobs_of_owner.setdefault(owner, {})[job_id] = None

    def has_history(self, job_id: str) -> bool:
        """Whether ``job_id``'s history is still retained."""
        return job_id in self._histories

    def history(self, job_id: str) -> JobHistory | None:
        """The retained history of ``job_id``, or ``None`` once dropped."""
        return self._histories.get(job_id)

    @property
    def last_id(self) -> EventId | None:
        """The newest id handed out so far."""
        return self._ids.last

    def publish(self, job_id: str, event_type: EventType, data: JsonObject) -> Event:
        """Stamp, record and fan out one event of a registered job. Never blocks."""
        history = self._histories.get(job_id)
        if history is None:
            raise KeyError(f"job {job_id!r} is not registered or its history has expired")
        owner = self._owner_of[job_id]
        event = Event(self._ids.next_id(), event_type, data, job_id, owner)
        history.append(event)
        overflowed: list[Subscription] | None = None
        for subscriptions in (
            self._job_subscribers.get(job_id),
            self._owner_subscribers.get(owner),
        ):
            if subscriptions:
                for subscription in subscriptions:
                    if not subscription.offer(event):
                        overflowed = overflowed or []
                        overflowed.append(subscription)
        if overflowed:
            # Detached after the loop: detaching edits the set being iterated.
            for subscription in overflowed:
                subscription.detach()
        if event_type in _TERMINAL_TYPES:
            self._finish(job_id)
        return event

    def _finish(self, job_id: str) -> None:
        for subscription in list(self._job_subscribers.pop(job_id, ())):
            subscription.end()
        self._expiries.append((trio.current_time() + self.history_ttl, job_id))
        self._expiry_added.set()

    def _drop(self, job_id: str) -> None:
        self._histories.pop(job_id, None)
        owner = self._owner_of.pop(job_id, None)
        jobs = self._jobs_of_owner.get(owner)
        if jobs is not None:
            jobs.pop(job_id, None)
            if not jobs:
                del self._jobs_of_owner[owner]

    # -- subscribing ----------------------------------------------------------------

    def subscribe_job(self, job_id: str, after: EventId | None = None) -> Subscription:
        """Subscribe to one job: its history after ``after`` (all if ``None``), then live.

        The subscription ends after the job's terminal event. For a job whose
        history was dropped (or never existed) it is born ended and empty.
        """
        history = self._histories.get(job_id)
        replay: list[Event] = []
        if history is not None:
            if history.is_truncated_after(after):
                replay.append(
                    stream_error(
                        HISTORY_TRUNCATED,
                        "the oldest events of this job are no longer retained",
                        job_id,
                    )
                )
            replay.extend(history.after(after))
        subscription = Subscription(
            replay=replay,
            max_buffer=self.subscriber_buffer,
            on_close=lambda sub: self._forget(self._job_subscribers, job_id, sub),
            job_id=job_id,
        )
        if history is None or history.terminal_id is not None or self._closed:
            subscription.end()
        else:
            self._job_subscribers.setdefault(job_id, set()).add(subscription)
        return subscription

    def subscribe_owner(self, owner: str | None, after: EventId | None = None) -> Subscription:
        """Subscribe to every job of ``owner``: events after ``after`` (or from now), then live.

        Never ends on its own, only when closed, overflowed or on shutdown.
        """
        replay: list[Event] = []
        if after is not None:
            histories = [self._histories[job_id] for job_id in self._jobs_of_owner.get(owner, {})]
            replay.extend(heapq.merge(*(h.after(after) for h in histories), key=_id_of))
        subscription = Subscription(
            replay=replay,
            max_buffer=self.subscriber_buffer,
            on_close=lambda sub: self._forget(self._owner_subscribers, owner, sub),
        )
        if self._closed:
            subscription.end()
        else:
            self._owner_subscribers.setdefault(owner, set()).add(subscription)
        return subscription

    @staticmethod
    def _forget(
        registry: dict[str, set[Subscription]] | dict[str | None, set[Subscription]],
        key: str | None,
        subscription: Subscription,
    ) -> None:
        subscriptions = registry.get(key)  # type: ignore[arg-type]
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del registry[key]  # type: ignore[arg-type]

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are currently taking live events."""
        return sum(len(s) for s in self._job_subscribers.values()) + sum(
            len(s) for s in self._owner_subscribers.values()
        )

    def close(self) -> None:
        """End every subscription (each reader drains what it has, then ends)."""
        self._closed = True
        for registry in (self._job_subscribers, self._owner_subscribers):
            for subscriptions in list(registry.values()):
                for subscription in list(subscriptions):
                    subscription.end()
            registry.clear()

    # -- the actor --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drop finished jobs' histories when their TTL runs out. Runs until cancelled."""
        task_status.started()
        while True:
            if not self._expiries:
                self._expiry_added = trio.Event()
                await self._expiry_added.wait()
                continue
            deadline, job_id = self._expiries[0]
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            self._expiries.popleft()
            self._drop(job_id)


def _id_of(event: Event) -> EventId:
    assert event.id is not None
    return event.id
