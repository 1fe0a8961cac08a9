"""Nodes of a cluster for tests, on one Redis prefix: each node's store (sharing one
client), its broadcaster, and jobs made and run the way the runtime makes and runs them
(a job's record from a real :class:`Job`, a worker's run from the claimed record); or
whole runtimes as nodes (:func:`node`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import trio
from coredis.response.types import StreamPending

from aura_actors.cluster import Claim, DispatchQueue, Reaper, RedisStorage
from aura_actors.pipelines import default_pipelines
from aura_actors.runtime import (
    Broadcaster,
    Event,
    EventType,
    Hub,
    Job,
    JobRecord,
    JobStatus,
    PipelineRegistry,
    Runtime,
    RuntimeConfig,
    StorageUnavailable,
    open_runtime,
)
from aura_actors.runtime._config import Role
from aura_actors.runtime._outgoing import CommitWaiter
from aura_actors.web import ServerSettings

from .redis import SHARED_URL, open_store
from .servers import InProcessServer, run_server


@asynccontextmanager
async def api_store(
    tmp_path: Path, prefix: str, **options: Any
) -> AsyncIterator[tuple[RedisStorage, trio.Nursery]]:
    """Node api-1's store under ``prefix`` (``options`` as :func:`open_store`'s), and a
    nursery for the broadcasters and feeds a test runs, cancelled when the block ends."""
    async with (
        open_store(tmp_path, prefix, node="api-1", **options) as api,
        trio.open_nursery() as nursery,
    ):
        yield api, nursery
        nursery.cancel_scope.cancel()


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


def node_and_broadcaster(
    store: RedisStorage, node: str, nursery: trio.Nursery
) -> tuple[RedisStorage, Broadcaster]:
    """Node ``node``'s store on ``store``'s client and prefix, and a broadcaster storing into
    it, running in ``nursery``."""
    mine = node_store(store, node)
    return mine, running_broadcaster(mine, nursery)


def new_job(
    broadcaster: Broadcaster,
    job_id: str,
    owner: str | None = "alice",
    *,
    pipeline: str = "p",
    params: Mapping[str, Any] | None = None,
) -> Job:
    """A new job of ``owner``, stored through ``broadcaster`` (no stages: a test runs it)."""
    return Job(
        job_id=job_id,
        pipeline=pipeline,
        params=dict(params or {}),
        stages=(),
        owner=owner,
        broadcaster=broadcaster,
    )


async def announce(job: Job) -> StorageUnavailable | None:
    """Announce ``job`` ``Queued``: what refused its commit (``None``: stored, and queued
    when its broadcaster is an API node's)."""
    waiter = CommitWaiter()
    job.announce_queued(waiter)
    await waiter.done.wait()
    return waiter.error


async def submit(broadcaster: Broadcaster, job_id: str, owner: str | None = "alice") -> Job:
    """Store a new ``Queued`` job through ``broadcaster`` (an API node's: it is queued)."""
    job = new_job(broadcaster, job_id, owner)
    assert await announce(job) is None
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


async def claimed(
    api: Broadcaster, worker: RedisStorage, names: Sequence[str], owner: str | None = "alice"
) -> list[Claim]:
    """Jobs ``names`` of ``owner``, stored and queued through ``api`` (an API node's
    broadcaster), then claimed by ``worker``: its claims, in that order."""
    await queue_of(worker).ensure_group()
    for name in names:
        await submit(api, name, owner)
    claims = await queue_of(worker).claim(len(names))
    assert [claim.job_id for claim in claims] == list(names)
    return claims


async def running_on(
    api: Broadcaster,
    worker: RedisStorage,
    worker_broadcaster: Broadcaster,
    names: Sequence[str],
    owner: str | None = "alice",
) -> list[Job]:
    """Jobs ``names`` :func:`claimed` by ``worker``, then started there (their ``Running``
    stored through ``worker_broadcaster``)."""
    claims = await claimed(api, worker, names, owner)
    return [await start(worker_broadcaster, worker, claim) for claim in claims]


def reaper_of(
    store: RedisStorage, broadcaster: Broadcaster, *, max_attempts: int = 1, min_idle: float = 0
) -> Reaper:
    """Node ``store.node``'s reaper, called by hand (``reap()``): a worker is dead when its
    heartbeat key is absent, and an entry may be taken over at once unless ``min_idle``."""
    return Reaper(
        queue_of(store),
        store,
        broadcaster,
        worker_timeout=5,
        max_attempts=max_attempts,
        min_idle=min_idle,
    )


async def ended_failed(
    store: RedisStorage, job_id: str, code: str
) -> tuple[JobRecord, list[Event]]:
    """Check that ``job_id`` is stored ``Failed`` with error ``code`` and that its stream
    ends with ``job-status`` Failed, then ``job-failed``: its record and its events."""
    record = await record_of(store, job_id)
    assert record.status is JobStatus.FAILED
    assert record.data["error"]["errors"][0]["code"] == code
    events = await stream(store, job_id)
    assert kinds(events)[-2:] == [
        (EventType.JOB_STATUS, "Failed"),
        (EventType.JOB_FAILED, None),
    ]
    return record, events


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


# -- whole runtimes as nodes -------------------------------------------------------------------

#: A synthetic job's params: it sits in its first tick until cancelled.
WAITING = {"stages": 1, "ticks": 1, "tickSeconds": 600}


@asynccontextmanager
async def node(
    tmp_path: Path,
    prefix: str,
    role: Role,
    name: str,
    pipelines: PipelineRegistry | None = None,
    **settings: Any,
) -> AsyncIterator[Runtime]:
    """A runtime as node ``name`` of the cluster on ``prefix`` (one shared data dir); a
    worker leaving the block hands its jobs back at once (no drain) unless told."""
    settings.setdefault("drain_seconds", 0.0)
    config = RuntimeConfig(
        persist_jobs=True,
        data_dir=tmp_path / "data",
        redis_url=SHARED_URL,
        redis_prefix=prefix,
        role=role,
        node_name=name,
        **settings,
    )
    async with open_runtime(config, pipelines or default_pipelines()) as runtime:
        yield runtime


def server_node(
    tmp_path: Path, prefix: str, role: Role, name: str, **settings: Any
) -> AbstractAsyncContextManager[InProcessServer]:
    """:func:`node` as an in-process HTTP server (``settings`` as ``ServerSettings``')."""
    settings.setdefault("drain_seconds", 0.0)
    values = {"redis_url": SHARED_URL, "redis_prefix": prefix, "role": role, "node_name": name}
    return run_server(ServerSettings.of(**values, **settings), data_dir=tmp_path / "data")


async def until(check: Callable[..., Any], *args: Any, seconds: float = 10) -> None:
    """Wait until ``check(*args)`` (awaited, when it gives an awaitable) is true: it reads
    state no event announces, so it is polled."""
    with trio.fail_after(seconds):
        while not await _value(check(*args)):  # noqa: ASYNC110 - polled: nothing announces it
            await trio.sleep(0.01)


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def has_status(runtime: Runtime, job_id: str, status: JobStatus) -> bool:
    """Whether ``job_id`` has ``status`` as ``runtime`` answers for it now."""
    return (await runtime.get(job_id)).status is status
