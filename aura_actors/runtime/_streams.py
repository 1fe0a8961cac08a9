"""Opening subscriptions: a replay (from memory or storage) joined to the hub's live events."""

from __future__ import annotations

from functools import partial

import trio

from ._config import RuntimeConfig
from ._events import Event, stream_error
from ._hub import Hub
from ._ids import EventId
from ._job import Job
from ._queries import JobQueries, OwnerFilter, visible
from ._subscription import Subscription


class JobStreams:
    """Subscribes readers to a job's events or to every job of an owner.

    Reads go through ``queries`` (its live jobs first, then storage); live
    events come from ``hub``. With ``shared`` (a cluster's node) a job this
    process does not hold may be running on another node: a subscription to it
    follows the hub (which that node's live feed feeds) until its terminal event.
    """

    def __init__(
        self, config: RuntimeConfig, queries: JobQueries, hub: Hub, *, shared: bool = False
    ) -> None:
        self.config = config
        self.queries = queries
        self.hub = hub
        self.shared = shared

    async def subscribe_job(
        self, job_id: str, *, owner: OwnerFilter, after: EventId | None
    ) -> Subscription:
        """See :meth:`Runtime.subscribe_job <._runtime.Runtime.subscribe_job>`. A checkpoint."""
        live = self.queries.live
        job = live.get(job_id)
        if job is not None and job.history is not None and visible(job.owner, owner):
            await trio.lowlevel.checkpoint()
            return self._follow_live(job, after)
        record = await self.queries.get(job_id, owner=owner)
        # A job not held here came from storage already; a live one resumed from an
        # earlier process needs its stored record (truncation, expiry).
        stored = await self.queries.stored(job_id) if record.id in live else record
        replay: list[Event] = []
        truncated = None if stored is None else stored.truncated_through
        if truncated is not None and (after is None or after < truncated):
            replay.append(_truncated_error(job_id))
        expired = stored is None or stored.history_expired
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer,
            replay=replay,
            fetch=None if expired else partial(self.queries.storage.job_events, record.id),
            after=after,
            job_id=record.id,
        )
        job = live.get(record.id)
        if job is not None and not job.terminal_published:
            self.hub.follow_job(record.id, subscription)
        elif job is None and self.shared and not record.status.is_terminal:
            await self._follow_elsewhere(record.id, subscription)
        else:
            subscription.end()
        return subscription

    async def _follow_elsewhere(self, job_id: str, subscription: Subscription) -> None:
        """Follow a job another node may be running, until its terminal event.

        The subscription joins the hub before its replay is read, so what is
        committed meanwhile is either replayed or fed live (twice is harmless:
        ids are dropped once passed). The job may have ended between reading its
        record and joining: read it again, and end the subscription if so (its
        replay then reads through the terminal event).
        """
        self.hub.follow_job(job_id, subscription)
        try:
            stored = await self.queries.stored(job_id)
        except BaseException:
            subscription.close()
            raise
        if stored is None or stored.status.is_terminal:
            subscription.end()

    def _follow_live(self, job: Job, after: EventId | None) -> Subscription:
        """Replay ``job``'s history from memory, then follow it: no storage read, no gap.

        Taking the replay and joining the hub happen in one step (no checkpoint
        between), so no event is published in between.
        """
        history = job.history
        assert history is not None
        replay: list[Event] = []
        if history.is_truncated_after(after):
            replay.append(_truncated_error(job.id))
        replay.extend(history.after(after))
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer, replay=replay, after=after, job_id=job.id
        )
        if job.terminal_published:
            subscription.end()
        else:
            self.hub.follow_job(job.id, subscription)
        return subscription

    async def subscribe_all(self, *, owner: str | None, after: EventId | None) -> Subscription:
        """See :meth:`Runtime.subscribe_all <._runtime.Runtime.subscribe_all>`. A checkpoint."""
        fetch = None
        if after is not None:
            start = after
            storage = self.queries.storage

            async def fetch_owner(last: EventId | None, limit: int) -> list[Event]:
                return await storage.owner_events(owner, last or start, limit)

            fetch = fetch_owner
        subscription = Subscription(
            max_buffer=self.config.subscriber_buffer, fetch=fetch, after=after
        )
        self.hub.follow_owner(owner, subscription)
        await trio.lowlevel.checkpoint()
        return subscription


def _truncated_error(job_id: str) -> Event:
    return stream_error(
        "history_truncated", "the oldest events of this job are no longer retained", job_id
    )
