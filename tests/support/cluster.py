"""Nodes of a cluster for tests, on one Redis prefix: each node's store (sharing one
client), its broadcaster, and jobs made and run the way the runtime makes and runs them
(a job's record from a real :class:`Job`, a worker's run from the claimed record).
"""

from __future__ import annotations

import coredis
import trio
from coredis.response.types import StreamPending

from aura_actors.cluster import Claim, DispatchQueue, RedisStorage
from aura_actors.runtime import Broadcaster, Event, EventType, Hub, Job, JobRecord
from aura_actors.runtime._outgoing import CommitWaiter


def node_store(store: RedisStorage, node: str) -> RedisStorage:
    """Node ``node``'s store on ``store``'s client and prefix."""
    return RedisStorage(
        store.client,
        prefix=store.keys.prefix,
        node=node,
        history_ttl=store.history_ttl,
        max_history_events=store.max_history_events,
        artifacts_dir=store.artifacts_dir,
    )


def queue_of(store: RedisStorage) -> DispatchQueue:
    """The dispatch queue as ``store``'s node sees it."""
    assert store.node is not None
    return DispatchQueue(store.client, store.keys, store.node)


def running_broadcaster(store: RedisStorage, nursery: trio.Nursery) -> Broadcaster:
    """A broadcaster storing into ``store``, running in ``nursery``."""
    broadcaster = Broadcaster(store, Hub())
    nursery.start_soon(broadcaster.run)
    return broadcaster


async def submit(broadcaster: Broadcaster, job_id: str, owner: str | None = "alice") -> Job:
    """Store a new ``Queued`` job through ``broadcaster`` (an API node's: it is queued)."""
    job = Job(
        job_id=job_id, pipeline="p", params={}, stages=(), owner=owner, broadcaster=broadcaster
    )
    waiter = CommitWaiter()
    job.announce_queued(waiter)
    await waiter.done.wait()
    assert waiter.error is None
    return job


async def record_of(store: RedisStorage, job_id: str) -> JobRecord:
    record = await store.get(job_id)
    assert record is not None
    return record


async def start(broadcaster: Broadcaster, store: RedisStorage, claim: Claim) -> Job:
    """Run a claimed job as a worker does: rebuilt from its record, fenced with the
    claim's attempt, started (Running, or running again); stored before it returns."""
    job = Job.resume(await record_of(store, claim.job_id), stages=(), broadcaster=broadcaster)
    job.fence = claim.attempt
    job.start_attempt(store.node)
    assert await broadcaster.barrier() is None
    return job


async def holder(client: coredis.Redis[str], store: RedisStorage, job_id: str) -> tuple[str, str]:
    """(worker, claim attempt) named by ``job_id``'s hash."""
    worker, attempt = await client.hmget(store.keys.job(job_id), ["worker", "attempt"])
    return str(worker), str(attempt)


async def stream(store: RedisStorage, job_id: str) -> list[Event]:
    return await store.job_events(job_id, None, 1000)


def kinds(events: list[Event]) -> list[tuple[EventType, object]]:
    """Each event's type, with the status of ``job-status`` events."""
    return [(e.type, e.data.get("status")) for e in events]


async def pending_of(store: RedisStorage) -> dict[str, int]:
    """Pending (claimed, unacknowledged) dispatch entries per consumer."""
    summary = await store.client.xpending(store.keys.dispatch, "workers")
    assert isinstance(summary, StreamPending)
    return {str(name): int(count) for name, count in (summary.consumers or {}).items()}
