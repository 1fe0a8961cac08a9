"""Typed events: each is the protocol's payload model of its type, plus the envelope.

Every event is an :class:`Event` (``id``, ``type``, ``job_id``, the raw
``data``) and, for the eight known types, an instance of the matching
subclass, which is also the payload model of :mod:`aura_actors.protocol`
(``StepProgressEvent`` is a ``StepProgressData``), so a consumer can ``match``
on it::

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
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError

from ..protocol import (
    EVENT_DATA_MODELS,
    TERMINAL_EVENT_TYPES,
    ErrorData,
    EventId,
    EventIdText,
    EventType,
    JobCancelledData,
    JobCompletedData,
    JobFailedData,
    JobStatusData,
    StepProgressData,
    StepStatusData,
    WarningData,
    WireModel,
)
from ._errors import ProtocolError

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


def parse_event_id(text: str) -> EventId:
    """``"<millis>-<counter>"`` as the ordered pair it is compared as.

    Raises :class:`ProtocolError` for anything else.
    """
    try:
        return EventId.parse(text)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


class Event(WireModel):
    """One event of a job's (or every job's) stream; immutable.

    :ivar id: ``"<unixMillis>-<counter>"``; ``None`` only for ``error`` events about
        the stream itself (these are not part of any job's history).
    :ivar type: the event type, e.g. ``"step-progress"`` (an :class:`EventType`
        for the known types).
    :ivar job_id: the job the event is about (``None`` for stream errors without one).
    :ivar data: the event's JSON payload as received.
    """

    model_config = ConfigDict(frozen=True)

    id: EventIdText | None
    type: Annotated[EventType | str, Field(union_mode="left_to_right")]
    job_id: str | None = None
    data: dict[str, Any] = Field(repr=False)

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


class JobStatusEvent(JobStatusData, Event):
    """``job-status``: the job changed status (its first event is ``Queued``)."""

    job_id: str


class StepStatusEvent(StepStatusData, Event):
    """``step-status``: a stage started or completed (``state`` is ``Started``/``Completed``)."""

    job_id: str


class StepProgressEvent(StepProgressData, Event):
    """``step-progress``: progress inside a stage.

    ``progress_pct`` is the job's overall progress (0-100, never decreasing),
    ``step_progress_pct`` the stage's; ``eta_seconds`` estimates the time until
    the job ends; ``current_item``/``total_items`` are ``None`` for stages
    without items.
    """

    job_id: str


class JobCompletedEvent(JobCompletedData, Event):
    """``job-completed``: the job is ``Done``; terminal."""

    job_id: str


class JobFailedEvent(JobFailedData, Event):
    """``job-failed``: the job is ``Failed``; terminal. ``logs`` are the last log lines."""

    job_id: str


class JobCancelledEvent(JobCancelledData, Event):
    """``job-cancelled``: the job is ``Canceled``; terminal.

    ``step`` is the stage it was in, ``None`` if it never ran.
    """

    job_id: str


class WarningEvent(WarningData, Event):
    """``warning``: a non-fatal problem."""

    job_id: str


class ErrorEvent(ErrorData, Event):
    """``error``: a stream or system problem (e.g. ``subscriber_overflow``).

    Without an id it is about the stream, not part of a job's history; the
    client then reconnects from the last id if the stream ends.
    """


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

#: The typed event class of each known event type: the one built on its payload model.
_TYPED: dict[str, type[Event]] = {
    event_type.value: event_class
    for event_class in (
        JobStatusEvent,
        StepStatusEvent,
        StepProgressEvent,
        JobCompletedEvent,
        JobFailedEvent,
        JobCancelledEvent,
        WarningEvent,
        ErrorEvent,
    )
    for event_type, model in EVENT_DATA_MODELS.items()
    if issubclass(event_class, model)
}


def parse_event(event_id: str | None, event_type: str, data: Any) -> Event:
    """Build the typed event for ``(id, type, data)``; ``data`` may be JSON text or a dict.

    The payload is validated by the protocol's model of its type. Raises
    :class:`ProtocolError` if ``data`` is not a JSON object, does not fit the
    model, or ``id`` is malformed. Not a checkpoint.
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
    typed = _TYPED.get(event_type)
    try:
        if typed is None:
            job_id = data.get("jobId")
            return Event(id=event_id, type=event_type, job_id=job_id, data=data)
        return typed.model_validate({**data, "id": event_id, "type": event_type, "data": data})
    except ValidationError as exc:
        raise ProtocolError(f"{event_type} event does not fit the protocol: {exc}") from None
