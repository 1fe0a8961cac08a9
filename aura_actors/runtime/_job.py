"""A job's live state (its snapshot) and its cancel scope; events go to the broadcaster."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import trio

from ..protocol import (
    AnyEventData,
    ErrorDetail,
    JobCancelledData,
    JobFailedData,
    JobStatusData,
    WarningData,
)
from ._broadcaster import Broadcaster
from ._events import JsonObject
from ._history import JobHistory
from ._ids import EventId
from ._outgoing import CommitWaiter, Outgoing
from ._records import JobRecord, LogLine
from ._stage import Artifact, Stage
from ._status import JobStatus, check_transition

logger = logging.getLogger("aura_actors.jobs")

#: The cancel message when a user cancels.
CANCELED_BY_USER = "canceled by user"
#: The cancel message when the runtime shuts down.
CANCELED_BY_SHUTDOWN = "canceled: the server is shutting down"


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def utc_iso(moment: datetime | None) -> str | None:
    """ISO 8601 with milliseconds and a ``Z``, or ``None``."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """The inverse of :func:`utc_iso` (a moment without a zone is taken as UTC)."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Job:
    """A live job (``Queued`` or ``Running``): what it runs, where it is, its cancel scope.

    Its events go to the broadcaster (:meth:`emit`, never blocking); status
    changes carry the snapshot to store. Once its terminal event is stored the
    runtime forgets the object, and readers get the stored record.
    """

    __slots__ = (
        "_broadcaster",
        "_started_clock",
        "artifacts",
        "attempt",
        "cancel_message",
        "cancel_requested_at",
        "cancel_scope",
        "created_at",
        "error",
        "eta_seconds",
        "fence",
        "fenced",
        "finished_at",
        "history",
        "id",
        "last_event_id",
        "logs",
        "message",
        "node",
        "owner",
        "params",
        "pipeline",
        "progress_pct",
        "retry_of",
        "stage",
        "stages",
        "started_at",
        "status",
        "terminal_published",
    )

    def __init__(
        self,
        *,
        job_id: str,
        pipeline: str,
        params: dict[str, Any],
        stages: Sequence[Stage],
        owner: str | None,
        broadcaster: Broadcaster,
        retry_of: str | None = None,
    ) -> None:
        self.id = job_id
        self.pipeline = pipeline
        self.params = params
        self.stages = tuple(stages)
        self.owner = owner
        self.status = JobStatus.QUEUED
        self.stage: str | None = None
        self.progress_pct = 0.0
        self.message = ""
        self.eta_seconds: float | None = None
        self.created_at = utc_now()
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.artifacts: list[Artifact] = []
        self.error: JsonObject | None = None
        self.last_event_id: EventId | None = None
        self.attempt = 1
        self.retry_of = retry_of
        self.node: str | None = None
        self.logs: list[LogLine] = []
        self.cancel_scope = trio.CancelScope()
        self.cancel_message: str | None = None
        #: ``time.perf_counter()`` when a cancel was first asked for (for metrics).
        self.cancel_requested_at: float | None = None
        self.terminal_published = False
        #: The job's events this process published, for replay while it is live
        #: (``None`` for a job an earlier process started: its history is stored).
        self.history: JobHistory | None = None
        #: In a cluster, the claim attempt under which this worker holds the job: its
        #: writes carry it, and storage refuses them once the job was taken from it.
        self.fence: int | None = None
        #: Set once storage refused this job's writes (it is held elsewhere now): the
        #: broadcaster drops whatever it sends from then on.
        self.fenced = False
        self._started_clock: float | None = None
        self._broadcaster = broadcaster

    @classmethod
    def resume(cls, record: JobRecord, *, stages: Sequence[Stage], broadcaster: Broadcaster) -> Job:
        """A job an earlier process left ``Queued`` or ``Running``, back as ``Queued``-like state.

        Its status stays what was stored; the runtime decides whether it runs again.
        """
        data = record.data
        job = cls(
            job_id=record.id,
            pipeline=str(data["pipeline"]),
            params=dict(data["params"]),
            stages=stages,
            owner=record.owner,
            broadcaster=broadcaster,
            retry_of=data.get("retryOf"),
        )
        job.status = JobStatus(data["status"])
        job.stage = data.get("stage")
        job.progress_pct = float(data.get("progressPct") or 0.0)
        job.message = str(data.get("message") or "")
        job.created_at = parse_iso(data["createdAt"]) or job.created_at
        job.started_at = parse_iso(data.get("startedAt"))
        job.attempt = int(data.get("attempt") or 1)
        job.node = data.get("node")
        job.last_event_id = record.last_event_id
        return job

    # -- events ------------------------------------------------------------------------

    @property
    def broadcaster(self) -> Broadcaster:
        """Where this job's events go."""
        return self._broadcaster

    def emit(
        self,
        payload: AnyEventData,
        *,
        store_snapshot: bool = False,
        logs: list[LogLine] | None = None,
        create: bool = False,
        waiter: CommitWaiter | None = None,
    ) -> None:
        """Send one event of this job to the broadcaster. Not a checkpoint; never blocks."""
        if not (store_snapshot or create or logs is not None or waiter is not None):
            self._broadcaster.send_event(self, payload)
            return
        self._broadcaster.send(
            Outgoing(
                self,
                payload,
                self.snapshot() if store_snapshot or create else None,
                logs,
                create,
                waiter,
            )
        )

    def transition(self, new_status: JobStatus) -> None:
        """Move to ``new_status`` and emit ``job-status``; raises on an invalid move.

        The job's snapshot is stored with the event, but for a terminal status:
        the terminal event that follows (``job-completed``, ...) carries it.
        """
        check_transition(self.status, new_status)
        previous = self.status
        self.status = new_status
        if new_status is JobStatus.RUNNING:
            self.started_at = utc_now()
            self._started_clock = trio.current_time()
        elif new_status.is_terminal:
            self.finished_at = utc_now()
            self.eta_seconds = None
        logger.info(
            "job transition",
            extra={"job_id": self.id, "from": previous.value, "to": new_status.value},
        )
        self._emit_status(previous, store=not new_status.is_terminal)

    def _emit_status(self, previous: JobStatus | None, *, store: bool, **extra: Any) -> None:
        payload = JobStatusData.build(
            job_id=self.id,
            status=self.status,
            previous_status=previous,
            stage=self.stage,
            progress_pct=float(self.progress_pct),
        )
        self.emit(payload, store_snapshot=store, **extra)

    def start_attempt(self, node: str | None) -> None:
        """Begin a run: ``Queued``→``Running``, or run again after an interruption."""
        self.node = node
        if self.status is JobStatus.QUEUED:
            self.transition(JobStatus.RUNNING)
            return
        self.attempt += 1
        # Running again after the process that ran it stopped: not a transition,
        # but its stream says so (a warning, then job-status Running again).
        self.started_at = utc_now()
        self._started_clock = trio.current_time()
        self.emit(
            WarningData.build(
                job_id=self.id,
                step=self.stage,
                message=f"running again (attempt {self.attempt})",
            )
        )
        self._emit_status(JobStatus.RUNNING, store=True)

    def announce_queued(self, waiter: CommitWaiter) -> None:
        """Emit the job's first event (``job-status`` Queued) and store its record."""
        self._emit_status(None, store=True, create=True, waiter=waiter)

    def request_cancel(self, message: str) -> None:
        """Cancel the job's scope; the actor ends it as ``Canceled`` with ``message``."""
        if self.cancel_message is None:
            self.cancel_message = message
            self.cancel_requested_at = time.perf_counter()
        self.cancel_scope.cancel()

    def finish_canceled(self) -> None:
        """End the job as ``Canceled`` (from Queued or Running) and emit ``job-cancelled``."""
        message = self.cancel_message or CANCELED_BY_USER
        self.message = message
        self.transition(JobStatus.CANCELED)
        self.emit_terminal(JobCancelledData.build(job_id=self.id, step=self.stage, message=message))

    def finish_failed(self, code: str, message: str, remediation: str, log_tail: list[str]) -> None:
        """End the job as ``Failed`` and emit ``job-failed``."""
        detail = {"code": code, "message": message, "remediation": remediation}
        self.error = {"message": message, "errors": [detail]}
        self.message = message
        self.transition(JobStatus.FAILED)
        self.emit_terminal(
            JobFailedData.build(
                job_id=self.id,
                step=self.stage,
                error_message=message,
                errors=[ErrorDetail.build(**detail)],
                logs=log_tail,
            )
        )

    def emit_terminal(self, payload: AnyEventData) -> None:
        """Emit the job's terminal event, storing its final snapshot and its log with it."""
        self.emit(payload, store_snapshot=True, logs=list(self.logs))

    @property
    def running_seconds(self) -> float:
        """Trio-clock seconds since the job started running (0 if it never did)."""
        if self._started_clock is None:
            return 0.0
        return trio.current_time() - self._started_clock

    def snapshot(self) -> JsonObject:
        """The contract's job snapshot (camelCase JSON)."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "params": self.params,
            "status": self.status.value,
            "stage": self.stage,
            "progressPct": self.progress_pct,
            "message": self.message,
            "etaSeconds": self.eta_seconds,
            "createdAt": utc_iso(self.created_at),
            "startedAt": utc_iso(self.started_at),
            "finishedAt": utc_iso(self.finished_at),
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
            "error": self.error,
            "lastEventId": None if self.last_event_id is None else str(self.last_event_id),
            "attempt": self.attempt,
            "retryOf": self.retry_of,
            "node": self.node,
        }
