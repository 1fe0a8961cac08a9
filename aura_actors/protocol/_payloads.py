"""Event payloads: the ``data`` of each event type, and the WebSocket frames around them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ._base import WireModel
from ._event_type import EventType
from ._models import ArtifactInfo, ErrorDetail, EventIdText
from ._status import JobStatus

__all__ = [
    "EVENT_DATA_MODELS",
    "AnyEventData",
    "ClientMessage",
    "ErrorData",
    "EventData",
    "EventMessage",
    "JobCancelledData",
    "JobCompletedData",
    "JobFailedData",
    "JobStatusData",
    "StepProgressData",
    "StepStatusData",
    "WarningData",
    "parse_event_data",
]


class EventData(WireModel):
    """Base of every event's ``data``: each one names its job."""

    job_id: str


class JobStatusData(EventData):
    """``job-status``: a status change; a job's first is ``Queued``, ``previous_status`` None."""

    status: JobStatus
    previous_status: JobStatus | None
    stage: str | None
    progress_pct: float


class StepStatusData(EventData):
    """``step-status``: stage ``step_index`` (of ``total_steps``) started or completed."""

    step: str
    step_index: int = Field(ge=0)
    total_steps: int = Field(ge=1)
    state: Literal["Started", "Completed"]


class StepProgressData(EventData):
    """``step-progress``: the overall ``progress_pct`` and the stage's ``step_progress_pct``.

    ``eta_seconds`` estimates the time until the job ends; ``current_item`` and
    ``total_items`` are ``None`` when the stage has no items.
    """

    step: str
    progress_pct: float
    step_progress_pct: float
    message: str
    eta_seconds: float | None
    current_item: int | None
    total_items: int | None


class JobCompletedData(EventData):
    """``job-completed`` (terminal): the job is ``Done``."""

    artifacts: list[ArtifactInfo]
    duration_seconds: float


class JobFailedData(EventData):
    """``job-failed`` (terminal): the job is ``Failed``; ``logs`` are its last log lines."""

    step: str | None
    error_message: str
    errors: list[ErrorDetail]
    logs: list[str]


class JobCancelledData(EventData):
    """``job-cancelled`` (terminal): ``step`` is the stage it was in, None if it never ran."""

    step: str | None
    message: str


class WarningData(EventData):
    """``warning``: a non-fatal problem."""

    step: str | None
    message: str


class ErrorData(WireModel):
    """``error``: a stream or system problem; ``job_id`` is left out when no job applies."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    job_id: str | None = Field(default=None, exclude_if=lambda value: value is None)
    code: str
    message: str


#: Any event's ``data``.
AnyEventData = (
    JobStatusData
    | StepStatusData
    | StepProgressData
    | JobCompletedData
    | JobFailedData
    | JobCancelledData
    | WarningData
    | ErrorData
)

#: The ``data`` model of each event type.
EVENT_DATA_MODELS: Mapping[EventType, type[AnyEventData]] = MappingProxyType(
    {
        EventType.JOB_STATUS: JobStatusData,
        EventType.STEP_STATUS: StepStatusData,
        EventType.STEP_PROGRESS: StepProgressData,
        EventType.JOB_COMPLETED: JobCompletedData,
        EventType.JOB_FAILED: JobFailedData,
        EventType.JOB_CANCELLED: JobCancelledData,
        EventType.WARNING: WarningData,
        EventType.ERROR: ErrorData,
    }
)


def parse_event_data(
    event_type: EventType | str, data: str | bytes | Mapping[str, Any]
) -> AnyEventData:
    """Validate an event's ``data`` (JSON text or a decoded object) into its model.

    Returns the :data:`EVENT_DATA_MODELS` model of ``event_type``. Raises
    :class:`ValueError` for an event type this protocol does not know and
    :class:`pydantic.ValidationError` for data that does not fit. Not a checkpoint.
    """
    model = EVENT_DATA_MODELS[EventType(event_type)]
    if isinstance(data, str | bytes):
        return model.model_validate_json(data)
    return model.model_validate(data)


class EventMessage(WireModel):
    """One WebSocket text frame from the server: ``{"id", "event", "data"}``.

    ``id`` is ``None`` only for ``error`` messages about the stream itself.
    ``event`` is kept as text so that a newer server's event type still parses.
    """

    id: EventIdText | None
    event: str
    data: dict[str, Any]


class ClientMessage(WireModel):
    """A WebSocket frame from the client: ``{"action": "cancel"}`` cancels the job."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["cancel"]
