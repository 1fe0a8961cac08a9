"""The live half of delivery: which subscriptions follow which job or owner, and fan-out."""

from __future__ import annotations

from operator import attrgetter

from ..protocol import TERMINAL_EVENT_TYPES
from ._events import Event, EventType
from ._ids import EventId
from ._subscription import Subscription


class Hub:
    """Offers each published event to the subscriptions of its job and of its owner.

    Synchronous and never blocking: offering only appends to a subscription's
    bounded buffer (see :class:`Subscription`). A subscription that overflows
    is detached here; one-job subscriptions end after the job's terminal event.
    """

    def __init__(self) -> None:
        self._job_subscribers: dict[str, set[Subscription]] = {}
        self._owner_subscribers: dict[str | None, set[Subscription]] = {}
        self._closed = False
        #: Whether owners' subscriptions get their events only from a cluster's live
        #: feed (``publish_run(..., fed=True)``, each owner's events in id order), not
        #: from the local broadcaster: in a cluster other nodes write an owner's stream
        #: too, and an event of this node offered before the feed gave the others' older
        #: ones would make the subscriptions drop those as passed.
        self.owners_from_feed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ended every subscription (no new ones are added)."""
        return self._closed

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions take live events."""
        return sum(len(s) for s in self._job_subscribers.values()) + sum(
            len(s) for s in self._owner_subscribers.values()
        )

    def follow_job(self, job_id: str, subscription: Subscription) -> None:
        """Offer ``job_id``'s live events to ``subscription`` until its terminal event."""
        if self._closed:
            subscription.end()
            return
        subscribers = self._job_subscribers.setdefault(job_id, set())
        subscribers.add(subscription)
        subscription.on_close(lambda sub: _forget(self._job_subscribers, job_id, sub))

    def follow_owner(self, owner: str | None, subscription: Subscription) -> None:
        """Offer the live events of every job of ``owner`` to ``subscription``."""
        if self._closed:
            subscription.end()
            return
        self._owner_subscribers.setdefault(owner, set()).add(subscription)
        subscription.on_close(lambda sub: _forget(self._owner_subscribers, owner, sub))

    def follows_job(self, job_id: str) -> bool:
        """Whether a subscription follows ``job_id``."""
        return job_id in self._job_subscribers

    def follows_owner(self, owner: str | None) -> bool:
        """Whether a subscription follows every job of ``owner``."""
        return owner in self._owner_subscribers

    def job_position(self, job_id: str) -> EventId | None:
        """The oldest point the subscriptions of ``job_id`` are at (``None``: one of them
        has read nothing yet, or none follows it)."""
        return _oldest(self._job_subscribers.get(job_id, set()))

    def owner_position(self, owner: str | None) -> EventId | None:
        """The oldest point the subscriptions of every job of ``owner`` are at."""
        return _oldest(self._owner_subscribers.get(owner, set()))

    def job_positions(self) -> dict[str, EventId | None]:
        """Each followed job and the oldest point its subscriptions are at (``None``:
        one of them has read nothing yet)."""
        return {job: _oldest(subs) for job, subs in self._job_subscribers.items()}

    def owner_positions(self) -> dict[str | None, EventId | None]:
        """Each followed owner and the oldest point its subscriptions are at."""
        return {owner: _oldest(subs) for owner, subs in self._owner_subscribers.items()}

    def publish(self, event: Event, *, to_job: bool = True, to_owner: bool = True) -> None:
        """Offer ``event`` to its job's and its owner's subscriptions (or only those
        ``to_job`` / ``to_owner`` say). Never blocks."""
        overflowed: list[Subscription] | None = None
        for subscriptions in (
            self._job_subscribers.get(event.job_id or "") if to_job else None,
            self._owner_subscribers.get(event.owner) if to_owner else None,
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
        if to_job and event.type.is_terminal and event.job_id is not None:
            # (Offered to the owner's only, it must not end the job's: they did not get it.)
            for subscription in list(self._job_subscribers.pop(event.job_id, ())):
                subscription.end()

    def publish_run(self, run: list[Event], *, to_job: bool = True, fed: bool = False) -> None:
        """Offer ``run``, consecutive events of one job, to its job's and its owner's subscriptions.

        The same as publishing each event in turn, but each subscriber is looked
        up once and woken once for the run. Only the last event of a run may be
        terminal. Never blocks. A cluster's live feed passes ``fed`` (then the
        owner's subscriptions get the run even with :attr:`owners_from_feed`) and
        ``to_job=False`` for a run the job's subscriptions got already.
        """
        first = run[0]
        job_id = first.job_id
        job_subscriptions = self._job_subscribers.get(job_id or "") if to_job else None
        owner_subscriptions = (
            self._owner_subscribers.get(first.owner) if fed or not self.owners_from_feed else None
        )
        if job_subscriptions or owner_subscriptions:
            # Whether any subscriber must look at each event (to coalesce progress).
            progress = EventType.STEP_PROGRESS in map(_type_of, run)
            overflowed: list[Subscription] | None = None
            for subscriptions in (job_subscriptions, owner_subscriptions):
                if subscriptions:
                    for subscription in subscriptions:
                        if not subscription.offer_many(run, progress):
                            overflowed = overflowed or []
                            overflowed.append(subscription)
            if overflowed:
                for subscription in overflowed:
                    subscription.detach()
        # (Offered to the owner's only, it must not end the job's: they did not get it.)
        if to_job and job_id is not None and run[-1].type in TERMINAL_EVENT_TYPES:
            for subscription in list(self._job_subscribers.pop(job_id, ())):
                subscription.end()

    def close(self) -> None:
        """End every subscription (each reader drains what it has, then ends)."""
        self._closed = True
        for registry in (self._job_subscribers, self._owner_subscribers):
            for subscriptions in list(registry.values()):
                for subscription in list(subscriptions):
                    subscription.end()
            registry.clear()


_type_of = attrgetter("type")


def _oldest(subscriptions: set[Subscription]) -> EventId | None:
    points = [sub.position for sub in subscriptions]
    if not points or any(point is None for point in points):
        return None
    return min(point for point in points if point is not None)


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
