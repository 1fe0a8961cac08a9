"""Redis failures as the runtime knows them: :class:`~aura_actors.runtime.StorageUnavailable`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from coredis.exceptions import RedisError

from ..runtime import EventId, JobRefused, StaleEventIds, StorageUnavailable


class CommitRefused(StorageUnavailable):
    """The commit script refused a commit (an event id not after the newest stored one,
    a job that exists already); nothing of it was applied."""


class StaleIds(CommitRefused, StaleEventIds):
    """A cluster commit's first id is not after the newest stored one (another node
    stored newer ids): nothing was applied; stamp again after :attr:`newest`."""


class JobClaimed(CommitRefused, JobRefused):
    """The commit would end a queued job (``job_id``) that a worker has claimed (a cancel
    that lost the race to the claim): ask that worker instead
    (:meth:`DispatchQueue.request_cancel`). The broadcaster commits the rest of the batch."""


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
        if message.startswith("CLAIMED job "):
            job_id = message.split(" ", 3)[2]
            raise JobClaimed(f"Redis refused to {action}: {message}", job_id) from exc
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
