"""Where everything lives in Redis: every key name, under one prefix.

Sans-IO: names only. The Lua scripts (``lua/*.lua``) build the same names
from the same prefix; docs/cluster.md lists them. ``<okey>`` is a job owner's
key part: ``u:<user>`` for a user, ``none`` for jobs without one (auth off),
``all`` for the indexes of every owner's jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime import JobStatus

#: The ``<okey>`` of the indexes that hold every owner's jobs.
ALL_OWNERS = "all"
#: The ``<okey>`` of jobs without an owner.
NO_OWNER = "none"


def owner_key(owner: str | None) -> str:
    """The key part of ``owner``'s keys: ``u:<owner>``, or ``none`` without one."""
    return NO_OWNER if owner is None else f"u:{owner}"


def owner_of(okey: str) -> str | None:
    """The owner whose key part is ``okey`` (:func:`owner_key` undone)."""
    return None if okey == NO_OWNER else okey.removeprefix("u:")


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Every key name under ``prefix`` (a ``:`` is added when it does not end with one)."""

    prefix: str = "aura"

    @property
    def root(self) -> str:
        """The prefix every key starts with, ending in ``:``."""
        return self.prefix if self.prefix.endswith(":") else self.prefix + ":"

    @property
    def meta(self) -> str:
        """Hash: ``last_event_id`` (the newest id stored), ``probed_at``."""
        return self.root + "meta"

    @property
    def seq(self) -> str:
        """String: the last job sequence number handed out (``INCR``)."""
        return self.root + "seq"

    @property
    def counts(self) -> str:
        """Hash: jobs per ``"<status>\\n<pipeline>"``."""
        return self.root + "counts"

    @property
    def ended(self) -> str:
        """Sorted set: finished jobs by the wall-clock time they ended (retention by age)."""
        return self.root + "ended"

    @property
    def ended_seq(self) -> str:
        """Sorted set: finished jobs by ``seq`` (retention by count)."""
        return self.root + "ended-seq"

    @property
    def expiring(self) -> str:
        """Sorted set: finished jobs whose history is still kept, by the time they ended."""
        return self.root + "expiring"

    @property
    def dispatch(self) -> str:
        """Stream: one entry (``j`` job id) per claimed job, pending in the workers'
        consumer group for the worker holding it until the job ends."""
        return self.root + "dispatch"

    @property
    def queued(self) -> str:
        """Sorted set: the jobs queued and held by no worker, by queue order (the
        cluster's queue, which ``--max-queued-jobs`` bounds)."""
        return self.root + "queued"

    @property
    def ring(self) -> str:
        """List: the owners (okeys) with jobs in the queue, in the order they take turns."""
        return self.root + "ring"

    def line(self, okey: str) -> str:
        """Sorted set: one owner's jobs in the queue, by queue order (first in, first out)."""
        return f"{self.root}line:{okey}"

    @property
    def wake(self) -> str:
        """Stream (capped): an entry each time a job is queued; workers wait on it."""
        return self.root + "wake"

    @property
    def live_channel(self) -> str:
        """Pub/sub channel: after each commit (in a cluster), which jobs have new events."""
        return self.root + "live"

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel: ids of claimed jobs whose cancel was asked for."""
        return self.root + "cancel"

    @property
    def workers(self) -> str:
        """Set: the names of the workers that have sent a heartbeat (live or not; the
        reaper removes dead ones once nothing of theirs is left)."""
        return self.root + "workers"

    def heartbeat(self, node: str) -> str:
        """String with a TTL: worker ``node`` is alive while it exists."""
        return f"{self.root}worker:{node}"

    def job(self, job_id: str) -> str:
        """Hash: the job's record (``seq``, ``okey``, ``owner``, ``status``, ``pipeline``,
        ``snapshot``, ``finished``, ``expired``, ``truncated``; in a cluster ``entry`` its
        dispatch entry, ``worker`` the node holding it, ``attempt`` the claim attempt it
        holds it under (the fence), ``cancel`` its cancel flag)."""
        return f"{self.root}job:{job_id}"

    def events(self, job_id: str) -> str:
        """Stream: the job's retained events (fields ``t`` type, ``d`` data, ``o`` owner)."""
        return f"{self.root}events:{job_id}"

    def logs(self, job_id: str) -> str:
        """String: the job's log lines (JSON)."""
        return f"{self.root}logs:{job_id}"

    def owner_events(self, okey: str) -> str:
        """Stream: the retained events of every job of one owner (``j``, ``t``, ``d``),
        with the same ids as in the jobs' streams."""
        return f"{self.root}owner-events:{okey}"

    def index(self, okey: str, status: JobStatus | None = None) -> str:
        """Sorted set of job ids by ``seq``: one owner's (or ``all``), of one status or any."""
        base = f"{self.root}jobs:{okey}"
        return base if status is None else f"{base}:{status.value}"
