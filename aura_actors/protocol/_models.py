"""The REST bodies: job snapshots, requests, listings, errors, logs, health."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from ._base import UtcDateTime, WireModel
from ._ids import EVENT_ID_PATTERN
from ._status import JobStatus

__all__ = [
    "ArtifactInfo",
    "CreateJobRequest",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfo",
    "EventIdText",
    "FieldProblem",
    "Health",
    "HealthJobs",
    "HealthNode",
    "JobError",
    "JobList",
    "JobLogs",
    "JobSnapshot",
    "LogLine",
]

#: An event id as text, ``"<unixMillis>-<counter>"`` (see :class:`~._ids.EventId`).
EventIdText = Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]


class ArtifactInfo(WireModel):
    """A file a job produced; ``path`` is relative to the server's data dir.

    Downloadable at ``GET /api/jobs/{id}/artifacts/{name}`` (owner only).
    """

    name: str
    path: str
    size_bytes: int = Field(ge=0)
    mime_type: str


class ErrorDetail(WireModel):
    """One reason a job failed, with what to do about it.

    ``code`` is usually an :class:`~._codes.ErrorCode`; pipelines may add their own.
    """

    code: str
    message: str
    remediation: str


class JobError(WireModel):
    """Why a job failed: a summary and the individual errors."""

    message: str
    errors: list[ErrorDetail]


class JobSnapshot(WireModel):
    """A job as the API shows it (contract section 2).

    ``progress_pct`` is 0-100 and never decreases; ``attempt`` is 1 on the
    first run; ``retry_of`` is the id of the job this one retries; ``node``
    the node that runs or ran it (``None`` while it waits).
    """

    id: str
    pipeline: str
    params: dict[str, Any]
    status: JobStatus
    stage: str | None
    progress_pct: float = Field(ge=0, le=100)
    message: str
    eta_seconds: float | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    artifacts: list[ArtifactInfo]
    error: JobError | None
    last_event_id: EventIdText | None
    attempt: int = Field(default=1, ge=1)
    retry_of: str | None = None
    node: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job ended (``Done``, ``Failed`` or ``Canceled``) and will not change."""
        return self.status.is_terminal


#: Keys of a job's ``params`` at most (a pipeline takes a handful; more is abuse).
MAX_PARAMS = 100


class CreateJobRequest(WireModel):
    """``POST /api/jobs`` body: a registered pipeline and its params (checked by the pipeline)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(min_length=1, description="A registered pipeline, e.g. `video`.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_PARAMS,
        description=f"The pipeline's params (at most {MAX_PARAMS}).",
    )


class JobList(WireModel):
    """``GET /api/jobs`` answer: newest first; ``next_cursor`` is ``None`` on the last page."""

    jobs: list[JobSnapshot]
    next_cursor: str | None


class FieldProblem(WireModel):
    """One field that failed validation, e.g. ``params.durationSeconds``."""

    field: str
    message: str


class ErrorInfo(WireModel):
    """The inside of an error answer; ``details`` only on validation errors."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    code: str
    message: str
    details: list[FieldProblem] | None = Field(default=None, exclude_if=lambda value: value is None)


class ErrorBody(WireModel):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorInfo


class LogLine(WireModel):
    """One line of a job's log."""

    at: UtcDateTime
    level: str
    stage: str | None
    message: str


class JobLogs(WireModel):
    """``GET /api/jobs/{id}/logs`` answer (bounded, oldest first)."""

    lines: list[LogLine]


class HealthJobs(WireModel):
    """How many jobs there are: the server's in one process, the whole cluster's on a
    cluster's node (its own are in :class:`HealthNode`)."""

    running: int
    queued: int
    total: int


class HealthNode(WireModel):
    """The cluster's node that answered: its name, its role (``api``, ``worker`` or
    ``all``) and the jobs it holds itself (an ``api`` node holds none)."""

    name: str
    role: str
    running: int
    queued: int


class HealthStorage(WireModel):
    """Whether the server's storage works; ``problem`` says why not."""

    ok: bool
    problem: str | None = None


def _node_not_required(schema: dict[str, Any]) -> None:
    """The server writes ``node`` only in a cluster: not a required key of what it sends."""
    required = [name for name in schema.get("required", ()) if name != "node"]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)


class Health(WireModel):
    """``GET /api/health`` answer: ``status`` is ``ok``, ``degraded`` or ``shutting_down``.

    ``node`` is there only on a cluster's node (then ``jobs`` counts the whole
    cluster's). Further keys a server adds are kept (``extra="allow"``).
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_node_not_required)

    status: str
    version: str | None = None
    storage: HealthStorage | None = None
    jobs: HealthJobs | None = None
    subscribers: int | None = None
    node: HealthNode | None = Field(default=None, exclude_if=lambda value: value is None)
