"""The one definition of the wire: what crosses between server and clients.

- ids, types and states: :class:`EventId`, :class:`EventType`, :class:`JobStatus`
  and its transition table (:data:`ALLOWED_TRANSITIONS`, :func:`check_transition`);
- the JSON bodies and event payloads as pydantic models, camelCase on the wire
  (:class:`JobSnapshot`, :class:`CreateJobRequest`, :class:`StepProgressData`, ...,
  :data:`EVENT_DATA_MODELS`), with one codec (:func:`dump_json`, :func:`dump_wire`);
- the codes: :class:`ErrorCode`, :class:`CloseCode`;
- the sans-IO Server-Sent Events codec (:class:`SseEncoder`, :class:`SseDecoder`).

Nothing here does I/O, and nothing here imports the rest of aura_actors.
"""

from ._base import UtcDateTime, WireModel, dump_json, dump_json_bytes, dump_wire, format_time
from ._codes import CloseCode, ErrorCode
from ._event_type import TERMINAL_EVENT_TYPES, EventType
from ._ids import EVENT_ID_PATTERN, EventId
from ._models import (
    ArtifactInfo,
    CreateJobRequest,
    ErrorBody,
    ErrorDetail,
    ErrorInfo,
    EventIdText,
    FieldProblem,
    Health,
    HealthJobs,
    HealthNode,
    HealthStorage,
    JobError,
    JobList,
    JobLogs,
    JobSnapshot,
    LogLine,
)
from ._payloads import (
    EVENT_DATA_MODELS,
    AnyEventData,
    ClientMessage,
    ErrorData,
    EventData,
    EventMessage,
    JobCancelledData,
    JobCompletedData,
    JobFailedData,
    JobStatusData,
    StepProgressData,
    StepStatusData,
    WarningData,
    parse_event_data,
)
from ._queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, JobListQuery, StreamQuery
from ._sse import SseComment, SseDecoder, SseEncoder, SseMessage, SseProtocolError
from ._status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    InvalidTransition,
    JobStatus,
    check_transition,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "DEFAULT_PAGE_SIZE",
    "EVENT_DATA_MODELS",
    "EVENT_ID_PATTERN",
    "MAX_PAGE_SIZE",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "AnyEventData",
    "ArtifactInfo",
    "ClientMessage",
    "CloseCode",
    "CreateJobRequest",
    "ErrorBody",
    "ErrorCode",
    "ErrorData",
    "ErrorDetail",
    "ErrorInfo",
    "EventData",
    "EventId",
    "EventIdText",
    "EventMessage",
    "EventType",
    "FieldProblem",
    "Health",
    "HealthJobs",
    "HealthNode",
    "HealthStorage",
    "InvalidTransition",
    "JobCancelledData",
    "JobCompletedData",
    "JobError",
    "JobFailedData",
    "JobList",
    "JobListQuery",
    "JobLogs",
    "JobSnapshot",
    "JobStatus",
    "JobStatusData",
    "LogLine",
    "SseComment",
    "SseDecoder",
    "SseEncoder",
    "SseMessage",
    "SseProtocolError",
    "StepProgressData",
    "StepStatusData",
    "StreamQuery",
    "UtcDateTime",
    "WarningData",
    "WireModel",
    "check_transition",
    "dump_json",
    "dump_json_bytes",
    "dump_wire",
    "format_time",
    "parse_event_data",
]
