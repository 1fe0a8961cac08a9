"""``open_runtime``: a runtime, its storage and its broadcaster for the length of a block."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import TYPE_CHECKING

import trio

from ._broadcaster import Broadcaster
from ._config import RuntimeConfig
from ._datadir import DataDirLock
from ._hub import Hub
from ._ids import EventIdGenerator
from ._memory_store import MemoryStorage
from ._observer import RuntimeObserver
from ._pipeline import PipelineRegistry
from ._runner import STORE_CLOSE_TIMEOUT
from ._runtime import Runtime
from ._sqlite_store import SqliteStorage
from ._storage import JobStorage, Recovery

if TYPE_CHECKING:
    from ..cluster import ClusterNode

logger = logging.getLogger("aura_actors.runtime")


def default_storage(config: RuntimeConfig) -> JobStorage:
    """SQLite in the data dir when ``config.persist_jobs``, else memory.

    Raises :class:`ValueError` with ``config.redis_url``: :func:`open_runtime`
    connects to Redis for the length of its block.
    """
    if config.redis_url is not None:
        raise ValueError("a Redis storage needs a connection: open_runtime makes one")
    if config.persist_jobs:
        return SqliteStorage(
            config.store_path,
            history_ttl=config.history_ttl,
            max_history_events=config.max_history_events,
            artifacts_dir=config.artifacts_dir,
            fsync=config.fsync,
            retention_days=config.retention_days,
            retention_jobs=config.retention_jobs,
        )
    return MemoryStorage(
        history_ttl=config.history_ttl,
        max_history_events=config.max_history_events,
        artifacts_dir=config.artifacts_dir,
    )


@asynccontextmanager
async def open_runtime(
    config: RuntimeConfig,
    pipelines: PipelineRegistry,
    *,
    storage: JobStorage | None = None,
    id_generator: EventIdGenerator | None = None,
    observer: RuntimeObserver | None = None,
) -> AsyncIterator[Runtime]:
    """Run a :class:`Runtime` for the duration of the ``async with`` block.

    With ``config.persist_jobs`` the data dir is locked first (raises
    :class:`~._datadir.DataDirLocked` if another process owns it), then the
    SQLite store is opened: jobs an earlier process left unfinished are taken
    back (see :meth:`Runtime.recover`) and event ids go on after the newest
    stored one. With ``config.redis_url`` the runtime is a node of the cluster
    on that Redis (``config.role``, ``config.node_name``; docs/cluster.md):
    jobs are kept there and queued for the cluster's workers, and the data dir
    keeps the files and a lock per node name. ``storage`` replaces the storage
    the config describes (and makes no cluster node).
    Raises :class:`~._storage.StorageUnavailable` if the storage cannot be opened.

    Leaving the block shuts down: new jobs are refused, running jobs end
    ``Canceled`` (their subscribers see ``job-cancelled``), every subscription
    ends, and everything acknowledged is stored (for at most
    :data:`STORE_CLOSE_TIMEOUT` seconds of failing storage; then
    ``runtime.broadcaster.lost_records`` says how much was not). No task of the
    runtime outlives the block.
    """
    config.check_cluster_flags()
    config = config.with_node_name()
    async with _cluster_if_configured(config, storage) as node:
        lock_name = None if node is None else config.node_name
        with DataDirLock(config.data_dir, lock_name) if config.persist_jobs else nullcontext():
            storage = node.storage if node is not None else storage or default_storage(config)
            recovery = await storage.open()
            try:
                broadcaster = _new_broadcaster(config, storage, recovery, id_generator, observer)
                async with _serving(
                    config, pipelines, storage, broadcaster, recovery, node
                ) as runtime:
                    yield runtime
            finally:
                with trio.CancelScope(shield=True):
                    await storage.aclose()


@asynccontextmanager
async def _cluster_if_configured(
    config: RuntimeConfig, storage: JobStorage | None
) -> AsyncIterator[ClusterNode | None]:
    """This process as a node of the cluster on ``config.redis_url``, connected for the
    block; ``None`` without Redis, or when ``storage`` is given."""
    if storage is not None or config.redis_url is None:
        yield None
        return
    # Imported here: coredis is loaded only by a runtime that uses Redis.
    from ..cluster import open_cluster_node

    async with open_cluster_node(config) as node:
        yield node


@asynccontextmanager
async def _serving(
    config: RuntimeConfig,
    pipelines: PipelineRegistry,
    storage: JobStorage,
    broadcaster: Broadcaster,
    recovery: Recovery,
    node: ClusterNode | None,
) -> AsyncIterator[Runtime]:
    """The runtime on an opened storage, its broadcaster running; stopped on leaving.

    In one process it takes back the jobs an earlier one left unfinished; as a
    cluster's node it joins the cluster instead (its worker takes back what a
    process of its name left).
    """
    async with _running(broadcaster, storage) as system_nursery:
        try:
            async with trio.open_nursery() as job_nursery:
                runtime = Runtime(
                    config,
                    pipelines,
                    storage,
                    broadcaster,
                    job_nursery,
                    job_count=recovery.job_count,
                    source=None if node is None else node.source,
                )
                try:
                    if node is None:
                        runtime.recover(recovery.unfinished)
                    else:
                        await node.join(runtime.runner, pipelines, system_nursery)
                    yield runtime
                finally:
                    runtime.begin_shutdown()
        finally:
            broadcaster.hub.close()
            await _stop_broadcaster(broadcaster)
            system_nursery.cancel_scope.cancel()


def _new_broadcaster(
    config: RuntimeConfig,
    storage: JobStorage,
    recovery: Recovery,
    id_generator: EventIdGenerator | None,
    observer: RuntimeObserver | None,
) -> Broadcaster:
    """The broadcaster to ``storage``, its ids going on after the newest stored one."""
    id_generator = id_generator or EventIdGenerator()
    if recovery.last_event_id is not None:
        id_generator.resume_after(recovery.last_event_id)
    return Broadcaster(
        storage,
        Hub(),
        id_generator=id_generator,
        fanout_slice=max(1, config.subscriber_buffer // 4),
        observer=observer,
    )


@asynccontextmanager
async def _running(broadcaster: Broadcaster, storage: JobStorage) -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        # The broadcaster outlives a cancellation of the block: what was
        # acknowledged must still be stored (see _stop_broadcaster).
        nursery.start_soon(_shielded, broadcaster)
        await nursery.start(storage.run)
        yield nursery


async def _shielded(broadcaster: Broadcaster) -> None:
    with trio.CancelScope(shield=True) as scope:
        broadcaster.stop_scope = scope
        try:
            await broadcaster.run()
        finally:
            broadcaster.stopped.set()


async def _stop_broadcaster(broadcaster: Broadcaster) -> None:
    broadcaster.give_up_after(STORE_CLOSE_TIMEOUT)
    broadcaster.close()
    with trio.CancelScope(shield=True):
        with trio.move_on_after(STORE_CLOSE_TIMEOUT + 1.0):
            await broadcaster.stopped.wait()
            return
        logger.error("the broadcaster did not stop in time; cutting it off")
        if broadcaster.stop_scope is not None:
            broadcaster.stop_scope.cancel()
        await broadcaster.stopped.wait()
        if broadcaster._commit:
            broadcaster._abandon()  # what it still held is lost: count it, say so
