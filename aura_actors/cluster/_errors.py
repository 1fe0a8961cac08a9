"""Redis failures as the runtime knows them: :class:`~aura_actors.runtime.StorageUnavailable`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from coredis.exceptions import RedisError

from ..runtime import CreationsRefused, EventId, JobsFenced, StaleEventIds, StorageUnavailable


class CommitRefused(StorageUnavailable):
    """The commit script refused a commit (an event id not after the newest stored one,
    a job that exists already); nothing of it was applied."""


class StaleIds(CommitRefused, StaleEventIds):
    """A cluster commit's first id is not after the newest stored one (another node
    stored newer ids): nothing was applied; stamp again after :attr:`newest`."""


class JobClaimed(CommitRefused, JobsFenced):
    """The commit would end queued jobs (:attr:`job_ids`) that a worker has claimed (a
    cancel that lost the race to the claim): ask that worker instead
    (:meth:`DispatchQueue.request_cancel`)."""


class Fenced(CommitRefused, JobsFenced):
    """The commit writes jobs (:attr:`job_ids`) that another worker holds, or that this
    node holds under a newer claim attempt than the commit's fence (taken from it and
    given back to it): nothing was applied; those jobs are no longer this writer's."""


class AdmissionRefused(CommitRefused, CreationsRefused):
    """The commit creates jobs the cluster's limits refuse (:attr:`refusals`: job id to
    ``queue_full`` or ``user_quota_exceeded``): nothing was applied."""


def _refused_jobs(message: str) -> frozenset[str]:
    """The job ids a CLAIMED or FENCED refusal lists after ``; jobs `` (a JSON array)."""
    start = message.index("; jobs ") + len("; jobs ")
    ids, _ = json.JSONDecoder().raw_decode(message, start)
    return frozenset(str(job_id) for job_id in ids)


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Turn what Redis or the connection raises inside the block into ``StorageUnavailable``.

    Connection refused or lost, timeouts, OOM, READONLY (a replica), a script
    error: the runtime's 503 ``storage_unavailable``, degraded health and
    retries apply to all of them alike.
    """
    try:
        yield
    except RedisError as exc:
        message = str(exc)
        if message.startswith("CLAIMED "):
            refused = _refused_jobs(message)
            raise JobClaimed(f"Redis refused to {action}: {message}", refused) from exc
        if message.startswith("FENCED "):
            refused = _refused_jobs(message)
            raise Fenced(f"Redis refused to {action}: {message}", refused) from exc
        if message.startswith("ADMISSION "):
            found, _ = json.JSONDecoder().raw_decode(message, len("ADMISSION "))
            refusals = {str(job): str(code) for job, code in found.items()}
            raise AdmissionRefused(f"Redis refused to {action}: {message}", refusals) from exc
        if message.startswith("STALE ") and "; newest stored " in message:
            newest = EventId.parse(message.rsplit("; newest stored ", 1)[1].strip())
            raise StaleIds(f"Redis refused to {action}: {message}", newest) from exc
        if message.startswith(("STALE ", "EXISTS ")):
            raise CommitRefused(f"Redis refused to {action}: {message}") from exc
        kind = type(exc).__name__
        raise StorageUnavailable(f"Redis: cannot {action}: {kind}: {message}") from exc
    except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
        # The connection itself broke (coredis wraps most of these; not all).
        raise StorageUnavailable(f"Redis: cannot {action}: {exc!r}") from exc
