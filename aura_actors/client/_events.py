"""Typed events: one frozen dataclass per event type of the contract.

Every event is an :class:`Event` (``id``, ``type``, ``job_id``, the raw ``data``)
and, for the eight known types, an instance of the matching subclass with the
payload as typed attributes, so a consumer can ``match`` on it::

    match event:
        case StepProgressEvent(step=step, progress_pct=pct):
            ...
        case JobFailedEvent(errors=errors):
            ...

An event type this client does not know (a newer server) arrives as a plain
:class:`Event` rather than an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..runtime import EventId, EventType, JobStatus
from ._errors import ProtocolError
from ._models import (
    Artifact,
    ErrorDetail,
    objects,
    opt_float,
    opt_int,
    opt_status,
    opt_str,
    req_float,
    req_int,
    req_str,
)

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "AnyEvent",
    "ErrorEvent",
    "Event",
    "EventType",
    "JobCancelledEvent",
    "JobCompletedEvent",
    "JobFailedEvent",
    "JobStatusEvent",
    "StepProgressEvent",
    "StepStatusEvent",
    "WarningEvent",
    "parse_event",
    "parse_event_id",
]

#: The event types that end a job's stream.
TERMINAL_EVENT_TYPES = frozenset(
    {EventType.JOB_COMPLETED.value, EventType.JOB_FAILED.value, EventType.JOB_CANCELLED.value}
)


def parse_event_id(text: str) -> EventId:
    """``"<millis>-<counter>"`` as the ordered pair it is compared as.

    Raises :class:`ProtocolError` for anything else.
    """
    try:
        return EventId.parse(text)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of a job's (or every job's) stream.

    :ivar id: ``"<unixMillis>-<counter>"``; ``None`` only for ``error`` events about
        the stream itself (these are not part of any job's history).
    :ivar type: the event type, e.g. ``"step-progress"`` (an :class:`EventType`
        value for the known types).
    :ivar job_id: the job the event is about (``None`` for stream errors without one).
    :ivar data: the event's JSON payload as received.
    """

    id: str | None
    type: str
    job_id: str | None
    data: Mapping[str, Any] = field(hash=False, repr=False)

    @property
    def key(self) -> EventId | None:
        """The id as the pair ``(millis, counter)`` events are ordered by."""
        return None if self.id is None else parse_event_id(self.id)

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends its job (``job-completed``, ``-failed``, ``-cancelled``)."""
        return self.type in TERMINAL_EVENT_TYPES

    def to_json(self) -> dict[str, Any]:
        """The WebSocket shape ``{"id", "event", "data"}`` (also what ``--json`` prints)."""
        return {"id": self.id, "event": str(self.type), "data": dict(self.data)}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatusEvent(Event):
    """``job-status``: the job changed status (its first event is ``Queued``)."""

    status: JobStatus
    previous_status: JobStatus | None
    stage: str | None
    progress_pct: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStatusEvent(Event):
    """``step-status``: a stage started or completed (``state`` is ``Started``/``Completed``)."""

    step: str
    step_index: int
    total_steps: int
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepProgressEvent(Event):
    """``step-progress``: progress inside a stage.

    ``progress_pct`` is the job's overall progress (0-100, never decreasing),
    ``step_progress_pct`` the stage's; ``eta_seconds`` estimates the time until
    the job ends; ``current_item``/``total_items`` are ``None`` for stages
    without items.
    """

    step: str
    progress_pct: float
    step_progress_pct: float
    message: str
    eta_seconds: float | None
    current_item: int | None
    total_items: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCompletedEvent(Event):
    """``job-completed``: the job is ``Done``; terminal."""

    artifacts: tuple[Artifact, ...]
    duration_seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFailedEvent(Event):
    """``job-failed``: the job is ``Failed``; terminal. ``logs`` are the last log lines."""

    step: str | None
    error_message: str
    errors: tuple[ErrorDetail, ...]
    logs: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCancelledEvent(Event):
    """``job-cancelled``: the job is ``Canceled``; terminal.

    ``step`` is the stage it was in, ``None`` if it never ran.
    """

    step: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningEvent(Event):
    """``warning``: a non-fatal problem."""

    step: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(Event):
    """``error``: a stream or system problem (e.g. ``subscriber_overflow``).

    Without an id it is about the stream, not part of a job's history; the
    client then reconnects from the last id if the stream ends.
    """

    code: str
    message: str


#: Every typed event (use with ``match`` or ``isinstance``).
AnyEvent = (
    JobStatusEvent
    | StepStatusEvent
    | StepProgressEvent
    | JobCompletedEvent
    | JobFailedEvent
    | JobCancelledEvent
    | WarningEvent
    | ErrorEvent
    | Event
)


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ProtocolError(f"field {key!r} should be a list, got {value!r}")
    return tuple(str(item) for item in value)


def _job_status(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    status = opt_status(data, "status")
    if status is None:
        raise ProtocolError("job-status event without a status")
    return JobStatusEvent(
        **common,
        status=status,
        previous_status=opt_status(data, "previousStatus"),
        stage=opt_str(data, "stage"),
        progress_pct=req_float(data, "progressPct"),
    )


def _step_status(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return StepStatusEvent(
        **common,
        step=req_str(data, "step"),
        step_index=req_int(data, "stepIndex"),
        total_steps=req_int(data, "totalSteps"),
        state=req_str(data, "state"),
    )


def _step_progress(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return StepProgressEvent(
        **common,
        step=req_str(data, "step"),
        progress_pct=req_float(data, "progressPct"),
        step_progress_pct=req_float(data, "stepProgressPct"),
        message=req_str(data, "message"),
        eta_seconds=opt_float(data, "etaSeconds"),
        current_item=opt_int(data, "currentItem"),
        total_items=opt_int(data, "totalItems"),
    )


def _job_completed(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return JobCompletedEvent(
        **common,
        artifacts=tuple(Artifact.from_json(item) for item in objects(data, "artifacts")),
        duration_seconds=opt_float(data, "durationSeconds"),
    )


def _job_failed(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return JobFailedEvent(
        **common,
        step=opt_str(data, "step"),
        error_message=req_str(data, "errorMessage"),
        errors=tuple(ErrorDetail.from_json(item) for item in objects(data, "errors")),
        logs=_strings(data, "logs"),
    )


def _job_cancelled(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return JobCancelledEvent(**common, step=opt_str(data, "step"), message=req_str(data, "message"))


def _warning(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return WarningEvent(**common, step=opt_str(data, "step"), message=req_str(data, "message"))


def _error(common: dict[str, Any], data: Mapping[str, Any]) -> Event:
    return ErrorEvent(**common, code=req_str(data, "code"), message=req_str(data, "message"))


_BUILDERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any]], Event]] = {
    EventType.JOB_STATUS.value: _job_status,
    EventType.STEP_STATUS.value: _step_status,
    EventType.STEP_PROGRESS.value: _step_progress,
    EventType.JOB_COMPLETED.value: _job_completed,
    EventType.JOB_FAILED.value: _job_failed,
    EventType.JOB_CANCELLED.value: _job_cancelled,
    EventType.WARNING.value: _warning,
    EventType.ERROR.value: _error,
}


def parse_event(event_id: str | None, event_type: str, data: Any) -> Event:
    """Build the typed event for ``(id, type, data)``; ``data`` may be JSON text or a dict.

    Raises :class:`ProtocolError` if ``data`` is not a JSON object, a field has the
    wrong type, or ``id`` is malformed.
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise ProtocolError(f"{event_type} event data is not JSON: {data[:200]!r}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{event_type} event data should be a JSON object, got {data!r}")
    if event_id is not None:
        parse_event_id(event_id)
    builder = _BUILDERS.get(event_type)
    known_type: str = EventType(event_type) if builder is not None else event_type
    common: dict[str, Any] = {
        "id": event_id,
        "type": known_type,
        "job_id": opt_str(data, "jobId"),
        "data": data,
    }
    if builder is None:
        return Event(**common)
    return builder(common, data)
