"""Jobs, event histories and logs in Redis: the :class:`~aura_actors.runtime.JobStorage`
of a process started with ``--redis``.

Each :class:`~aura_actors.runtime.Commit` is one call of ``lua/commit.lua``,
which Redis runs atomically: job hashes, the events appended to each job's
stream and to its owner's stream under the id the broadcaster stamped, the
listing indexes, the counts and the logs, all or nothing. Reads are plain
commands on those keys (listing is a read-only script, so a page is one
consistent read). The key layout is in :mod:`._keys` and docs/cluster.md.

A commit is stored once Redis has acknowledged it: how durable that is
depends on Redis's own persistence (``appendonly yes``; docs/cluster.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import trio
from coredis.tokens import PureToken

from ..runtime import (
    Commit,
    Event,
    EventId,
    JobRecord,
    JobStatus,
    LogLine,
    Recovery,
    StorageUnavailable,
)
from ..runtime._files import remove_job_files
from ..runtime._storage import run_upkeep
from ._codec import (
    RECORD_FIELDS,
    decode_commit_reply,
    decode_counts,
    decode_job_event,
    decode_owner_event,
    decode_record,
    encode_commit,
)
from ._errors import redis_errors
from ._keys import ALL_OWNERS, KeyLayout, owner_key
from ._scripts import ALL_SCRIPTS, COMMIT, DELETE, EXPIRE, LIST

logger = logging.getLogger("aura_actors.store")

#: Seconds a Redis call may take before it counts as failed (a hung Redis is a failing one).
REDIS_TIMEOUT = 5.0
#: Seconds to establish a connection.
CONNECT_TIMEOUT = 2.0
#: Histories dropped per call of the expiry script (each call is atomic, and short).
EXPIRE_CHUNK = 100


@asynccontextmanager
async def open_redis_storage(
    url: str, *, call_timeout: float = REDIS_TIMEOUT, **options: Any
) -> AsyncIterator[RedisStorage]:
    """A :class:`RedisStorage` on the Redis at ``url``, connected for the ``async with`` block.

    A call that takes longer than ``call_timeout`` seconds fails (a hung Redis is a
    failing one). ``options`` are :class:`RedisStorage`'s. The client's connections are tasks
    of this block (coredis's pool): leaving it closes them. Nothing is sent to
    Redis until the storage is used, so this does not fail when Redis is down;
    :meth:`RedisStorage.open` does.
    """
    client: coredis.Redis[str] = coredis.Redis.from_url(
        url,
        decode_responses=True,
        stream_timeout=call_timeout,
        connect_timeout=min(call_timeout, CONNECT_TIMEOUT),
    )
    try:
        async with client:
            yield RedisStorage(client, **options)
    except BaseExceptionGroup as group:
        # The pool's task group wraps whatever leaves the block: give callers the
        # exception itself (DataDirLocked, StorageUnavailable...) when it is the only one.
        sole = sole_leaf(group)
        if sole is None:
            raise
        raise sole from None


def sole_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside nested groups, or ``None`` if there are several."""
    leaves: list[BaseException] = [group]
    while len(leaves) == 1 and isinstance(leaves[0], BaseExceptionGroup):
        leaves = list(leaves[0].exceptions)
    return leaves[0] if len(leaves) == 1 else None


class RedisStorage:
    """:class:`~aura_actors.runtime.JobStorage` in Redis, every key under ``prefix``.

    Made by :func:`open_redis_storage`, which owns the connection. ``wall_clock``
    (seconds, like :func:`time.time`) dates job ends for history expiry and
    retention, as in the embedded store. With ``node`` (this node's name in a
    cluster) commits use the dispatch queue (:mod:`._dispatch`): a new ``Queued``
    job is queued for the workers in the commit that stores it.
    """

    def __init__(
        self,
        client: coredis.Redis[str],
        *,
        prefix: str = "aura",
        history_ttl: float,
        max_history_events: int,
        artifacts_dir: Path,
        retention_days: float | None = None,
        retention_jobs: int | None = None,
        upkeep_interval: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
        node: str | None = None,
        max_queued_jobs: int | None = None,
        max_jobs_per_user: int | None = None,
    ) -> None:
        self.keys = KeyLayout(prefix)
        self.history_ttl = history_ttl
        self.max_history_events = max_history_events
        self.artifacts_dir = artifacts_dir
        self.retention_days = retention_days
        self.retention_jobs = retention_jobs
        self.upkeep_interval = upkeep_interval
        self._wall_clock = wall_clock
        self.node = node
        #: The cluster's admission limits (with ``node``), checked by the commit that
        #: creates a job: refused ones raise :class:`~._errors.AdmissionRefused`.
        self.max_queued_jobs = max_queued_jobs
        self.max_jobs_per_user = max_jobs_per_user
        self._client = client
        self._closed = False

    @property
    def client(self) -> coredis.Redis[str]:
        """The client (until :meth:`aclose`)."""
        if self._closed:
            raise StorageUnavailable("the Redis storage is closed")
        return self._client

    # -- opening and closing ---------------------------------------------------------

    async def open(self) -> Recovery:
        """Load the scripts, and report the unfinished jobs and the newest id.

        Raises :class:`StorageUnavailable` when Redis cannot be reached.
        """
        with redis_errors("open the store"):
            for script in ALL_SCRIPTS:
                await script.load(self.client)
            last = await self.client.hget(self.keys.meta, "last_event_id")
            count = await self.client.zcard(self.keys.index(ALL_OWNERS))
        unfinished = await self._list(
            ALL_OWNERS, [JobStatus.QUEUED, JobStatus.RUNNING], None, 2**31 - 1
        )
        return Recovery(
            unfinished=unfinished[::-1],
            last_event_id=None if last is None else EventId.parse(last),
            job_count=count,
        )

    async def aclose(self) -> None:
        """Stop using the connection (:func:`open_redis_storage` closes it). Idempotent.

        Not a checkpoint.
        """
        self._closed = True

    # -- writing -----------------------------------------------------------------------

    async def commit(self, commit: Commit) -> EventId | None:
        """Apply ``commit`` in one atomic script. Raises :class:`StorageUnavailable`.

        An empty commit still writes (a probe of whether storage works). In a
        cluster, when another node stored newer ids since this one stamped the
        events, the script gives them new ids, consecutive from the one returned
        (``None``: their ids were kept; see ``JobStorage.commit``).
        :class:`~._errors.CommitRefused` (a ``StorageUnavailable``) says the
        script refused it whole: an event id not after the newest stored one, or
        (in a cluster) jobs it may not write: :class:`~._errors.JobClaimed` (a
        claimed job ended by another node) or :class:`~._errors.Fenced` (a job
        held by another worker or claim attempt; see ``Commit.fences``).
        """
        args = encode_commit(
            commit,
            prefix=self.keys.root,
            now=self._wall_clock(),
            max_history_events=self.max_history_events,
            node=self.node,
            max_queued=self.max_queued_jobs,
            max_per_owner=self.max_jobs_per_user,
        )
        with redis_errors("commit"):
            reply = await COMMIT.call(self.client, args)
        return decode_commit_reply(reply)

    async def delete(self, job_id: str) -> None:
        """Remove the job's record, history, logs and index entries, then its files."""
        with redis_errors("delete a job"):
            await DELETE.call(self.client, [self.keys.root, job_id])
        await trio.to_thread.run_sync(remove_job_files, self.artifacts_dir, job_id)

    # -- reading -------------------------------------------------------------------------

    def _expired_before(self) -> float:
        return self._wall_clock() - self.history_ttl

    async def get(self, job_id: str) -> JobRecord | None:
        """The stored record of ``job_id``, or ``None``."""
        with redis_errors("read a job"):
            values = await self.client.hmget(self.keys.job(job_id), list(RECORD_FIELDS))
        return decode_record(list(values), self._expired_before())

    async def list_jobs(
        self,
        *,
        owner: str | None,
        any_owner: bool,
        statuses: Collection[JobStatus] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[JobRecord]:
        """Up to ``limit`` jobs newest first, one read-only script."""
        if before_seq is not None:
            with redis_errors("list jobs"):
                last_seq = int(await self.client.get(self.keys.seq) or 0)
            if before_seq > last_seq + 1:
                raise ValueError(f"cursor {before_seq} was never given")
        okey = ALL_OWNERS if any_owner else owner_key(owner)
        return await self._list(okey, statuses, before_seq, limit)

    async def _list(
        self,
        okey: str,
        statuses: Collection[JobStatus] | None,
        before_seq: int | None,
        limit: int,
    ) -> list[JobRecord]:
        args = [
            self.keys.root,
            okey,
            "+inf" if before_seq is None else str(before_seq),
            str(limit),
            *sorted(status.value for status in statuses or ()),
        ]
        if statuses is not None and not statuses:
            return []
        with redis_errors("list jobs"):
            flat: list[Any] = list(await LIST.call(self.client, args))
        expired_before = self._expired_before()
        width = len(RECORD_FIELDS)
        records = []
        for start in range(0, len(flat), width):
            record = decode_record(flat[start : start + width], expired_before)
            if record is not None:
                records.append(record)
        return records

    async def job_events(self, job_id: str, after: EventId | None, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``job_id`` after ``after``: one ``XRANGE``."""
        start = "-" if after is None else f"({after}"
        with redis_errors("read a job's events"):
            entries = await self.client.xrange(self.keys.events(job_id), start, "+", count=limit)
        return [decode_job_event(e.identifier, e.field_values, job_id) for e in entries]

    async def owner_events(self, owner: str | None, after: EventId, limit: int) -> list[Event]:
        """Up to ``limit`` stored events of ``owner``'s jobs after ``after``: one ``XRANGE``."""
        key = self.keys.owner_events(owner_key(owner))
        with redis_errors("read an owner's events"):
            entries = await self.client.xrange(key, f"({after}", "+", count=limit)
        return [decode_owner_event(e.identifier, e.field_values, owner) for e in entries]

    async def count_jobs(self) -> dict[tuple[str, str], int]:
        """Jobs per ``(status, pipeline)``: one ``HGETALL``."""
        with redis_errors("count jobs"):
            raw = await self.client.hgetall(self.keys.counts)
        return decode_counts(dict(raw))

    async def logs(self, job_id: str) -> list[LogLine]:
        """The stored log lines of ``job_id``."""
        with redis_errors("read a job's logs"):
            text = await self.client.get(self.keys.logs(job_id))
        return [] if text is None else list(json.loads(text))

    # -- upkeep ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every ``upkeep_interval`` seconds: expire histories, apply retention."""
        await run_upkeep(self.upkeep, self.upkeep_interval, task_status)

    async def upkeep(self) -> tuple[int, list[str]]:
        """Expire histories past the TTL, delete what retention says; (expired, deleted ids)."""
        now = self._wall_clock()
        expired = 0
        with redis_errors("expire histories"):
            while True:
                args = [self.keys.root, repr(now - self.history_ttl), str(EXPIRE_CHUNK)]
                dropped = int(await EXPIRE.call(self.client, args))
                expired += dropped
                if dropped < EXPIRE_CHUNK:
                    break
        victims = await self._retention_victims(now)
        for job_id in victims:
            await self.delete(job_id)
        if victims:
            logger.info("retention deleted jobs", extra={"count": len(victims)})
        return expired, victims

    async def _retention_victims(self, now: float) -> list[str]:
        victims: dict[str, None] = {}
        with redis_errors("apply retention"):
            if self.retention_days is not None:
                cutoff = now - self.retention_days * 86400.0
                old = await self.client.zrange(
                    self.keys.ended, "-inf", f"({cutoff!r}", sortby=PureToken.BYSCORE
                )
                victims.update((str(job), None) for job in old)
            if self.retention_jobs is not None:
                # The newest retention_jobs finished jobs (by seq) stay; the rest go.
                extra = await self.client.zrange(
                    self.keys.ended_seq, self.retention_jobs, -1, rev=True
                )
                victims.update((str(job), None) for job in extra)
        return list(victims)
