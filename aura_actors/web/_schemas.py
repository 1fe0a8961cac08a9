"""Pydantic models of the API's bodies, used for the generated OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreateJobRequest(_ApiModel):
    """``POST /api/jobs`` body."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(description="A registered pipeline: `video` or `synthetic`.")
    params: dict[str, Any] = Field(default_factory=dict, description="The pipeline's params.")


class ArtifactModel(_ApiModel):
    """A file a job produced."""

    name: str
    path: str
    size_bytes: int
    mime_type: str


class ErrorItem(_ApiModel):
    """One error of a failed job."""

    code: str
    message: str
    remediation: str


class JobErrorModel(_ApiModel):
    """Why a job failed."""

    message: str
    errors: list[ErrorItem]


class JobSnapshot(_ApiModel):
    """A job as the API shows it."""

    id: str
    pipeline: str
    params: dict[str, Any]
    status: Literal["Queued", "Running", "Done", "Failed", "Canceled"]
    stage: str | None
    progress_pct: float
    message: str
    eta_seconds: float | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    artifacts: list[ArtifactModel]
    error: JobErrorModel | None
    last_event_id: str | None


class JobList(_ApiModel):
    """``GET /api/jobs`` answer."""

    jobs: list[JobSnapshot]
    next_cursor: str | None


class ListJobsQuery(BaseModel):
    """``GET /api/jobs`` query."""

    status: Literal["Queued", "Running", "Done", "Failed", "Canceled"] | None = None
    limit: int | None = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class StreamQuery(BaseModel):
    """Query of the streams, for clients that cannot set headers."""

    lastEventId: str | None = None
    access_token: str | None = None


class ErrorBody(BaseModel):
    """The inside of every error answer."""

    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorBody


class HealthResponse(BaseModel):
    """``GET /api/health`` answer."""

    status: str
    version: str
    jobs: dict[str, int]
    subscribers: int
