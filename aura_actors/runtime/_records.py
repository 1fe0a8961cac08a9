"""What crosses the seam between the runtime and its storage: job records and commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ._events import Event, JsonObject
from ._ids import EventId
from ._stage import Artifact
from ._status import JobStatus

#: A log line of a job: ``{"at", "level", "stage", "message"}``.
LogLine = dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as a reader sees it: the contract's snapshot, plus what the snapshot does not say.

    ``seq`` orders jobs (listings are newest first by ``seq``); ``owner`` is the
    user the job belongs to (``None`` with auth off). ``history_expired`` says
    the job's events are no longer replayable (its history TTL passed);
    ``truncated_through`` is the newest event id dropped from its history for
    the per-job bound, if any.
    """

    seq: int
    owner: str | None
    data: JsonObject
    history_expired: bool = False
    truncated_through: EventId | None = None

    @property
    def id(self) -> str:
        """The job's id."""
        return str(self.data["id"])

    @property
    def status(self) -> JobStatus:
        """The job's status."""
        return JobStatus(self.data["status"])

    @property
    def last_event_id(self) -> EventId | None:
        """The id of the job's newest event, or ``None``."""
        text = self.data.get("lastEventId")
        return None if text is None else EventId.parse(text)

    @property
    def artifacts(self) -> list[Artifact]:
        """The job's files."""
        return [
            Artifact(
                name=item["name"],
                path=item["path"],
                size_bytes=item["sizeBytes"],
                mime_type=item["mimeType"],
            )
            for item in self.data.get("artifacts", ())
        ]

    def snapshot(self) -> JsonObject:
        """The contract's job snapshot (camelCase JSON)."""
        return self.data


@dataclass(slots=True)
class Commit:
    """One atomic write: new jobs, the latest snapshot of changed jobs, and new events.

    ``events`` are stamped and in id order. ``created`` jobs are inserted;
    ``snapshots`` replaces a job's stored snapshot (with its ``logs`` when given).
    ``fences`` names, for each job written that this writer holds as a cluster's
    worker, the claim attempt it writes under (docs/cluster.md, fencing).
    Applied all or nothing.
    """

    created: list[JobRecord] = field(default_factory=list)
    snapshots: dict[str, JsonObject] = field(default_factory=dict)
    logs: dict[str, list[LogLine]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    fences: dict[str, int] = field(default_factory=dict)
    # The token, once asked for: a uuid costs more than the rest of a small commit
    # (os.urandom and UUID's checks), and only a store shared by several writers reads it.
    _token: str | None = field(default=None, repr=False)

    @property
    def token(self) -> str:
        """Names this commit, so a store shared by several writers recognises a retry of
        one it applied already (its reply was lost). Made on first use; kept by
        :meth:`without_jobs`."""
        if self._token is None:
            self._token = uuid.uuid4().hex
        return self._token

    def __bool__(self) -> bool:
        return bool(self.created or self.snapshots or self.events or self.logs)

    def without_jobs(self, job_ids: set[str]) -> Commit:
        """This commit minus everything about ``job_ids`` (whose creation was refused)."""
        return Commit(
            created=[r for r in self.created if r.id not in job_ids],
            snapshots={k: v for k, v in self.snapshots.items() if k not in job_ids},
            logs={k: v for k, v in self.logs.items() if k not in job_ids},
            events=[e for e in self.events if e.job_id not in job_ids],
            _token=self.token,
            fences={k: v for k, v in self.fences.items() if k not in job_ids},
        )

    def merge(self, later: Commit) -> None:
        """Add ``later`` (whose events are newer) to this commit."""
        self.created.extend(later.created)
        self.snapshots.update(later.snapshots)
        self.logs.update(later.logs)
        self.events.extend(later.events)
        self.fences.update(later.fences)
