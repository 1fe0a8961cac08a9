"""The Python client of aura-actors: async (trio) over httpx, with a thin sync facade.

::

    import trio
    from aura_actors.client import AuraClient, StepProgressEvent

    async def main() -> None:
        async with AuraClient("http://127.0.0.1:8000") as client:
            job = await client.create_job("video", {"topic": "Tides"})
            async with client.events(job.id) as stream:
                async for event in stream:
                    if isinstance(event, StepProgressEvent):
                        print(f"{event.step}: {event.progress_pct:.0f}%")

    trio.run(main)

Streams reconnect on their own (:class:`ReconnectPolicy`) and resume after the
last event delivered, so each event arrives once. Errors derive from
:class:`AuraError`. For scripts without async code see :mod:`aura_actors.client.sync`.
"""

from ._client import DEFAULT_URL, AuraClient
from ._errors import (
    ApiError,
    AuraError,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    NotFound,
    ProtocolError,
    QueueFull,
    ServerUnavailable,
    Unauthorized,
    ValidationFailed,
)
from ._events import (
    TERMINAL_EVENT_TYPES,
    AnyEvent,
    ErrorEvent,
    Event,
    EventType,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobStatusEvent,
    StepProgressEvent,
    StepStatusEvent,
    WarningEvent,
    parse_event,
    parse_event_id,
)
from ._models import Artifact, ErrorDetail, JobError, JobPage, JobSnapshot, JobStatus
from ._reconnect import ReconnectPolicy
from ._stream import EventStream, Reconnecting
from ._websocket import JobSocket

__all__ = [
    "DEFAULT_URL",
    "TERMINAL_EVENT_TYPES",
    "AnyEvent",
    "ApiError",
    "Artifact",
    "AuraClient",
    "AuraError",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "ErrorDetail",
    "ErrorEvent",
    "Event",
    "EventStream",
    "EventType",
    "JobCancelledEvent",
    "JobCompletedEvent",
    "JobError",
    "JobFailedEvent",
    "JobPage",
    "JobSnapshot",
    "JobSocket",
    "JobStatus",
    "JobStatusEvent",
    "NotFound",
    "ProtocolError",
    "QueueFull",
    "ReconnectPolicy",
    "Reconnecting",
    "ServerUnavailable",
    "StepProgressEvent",
    "StepStatusEvent",
    "Unauthorized",
    "ValidationFailed",
    "WarningEvent",
    "parse_event",
    "parse_event_id",
]
