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

Answers and events are the models of :mod:`aura_actors.protocol` (a
:class:`JobSnapshot` is the protocol's, a :class:`StepProgressEvent` is a
``StepProgressData`` with its id), validated as they arrive. The client
imports nothing else of the server side: not the runtime, not the web layer.
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
from ._models import (
    Artifact,
    ArtifactInfo,
    ErrorDetail,
    Health,
    JobError,
    JobLogs,
    JobPage,
    JobSnapshot,
    JobStatus,
    LogLine,
)
from ._resume import Reconnecting, ReconnectPolicy
from ._stream import EventStream
from ._websocket import JobSocket

__all__ = [
    "DEFAULT_URL",
    "TERMINAL_EVENT_TYPES",
    "AnyEvent",
    "ApiError",
    "Artifact",
    "ArtifactInfo",
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
    "Health",
    "JobCancelledEvent",
    "JobCompletedEvent",
    "JobError",
    "JobFailedEvent",
    "JobLogs",
    "JobPage",
    "JobSnapshot",
    "JobSocket",
    "JobStatus",
    "JobStatusEvent",
    "LogLine",
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
