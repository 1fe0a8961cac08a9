"""The runtime core: job actors, stages, the broadcaster, the runner, the job store. Pure trio.

Everything a caller may rely on is re-exported here; the ``_``-modules are private.
"""

from ._broadcaster import HISTORY_TRUNCATED, Broadcaster
from ._errors import (
    InvalidCursor,
    InvalidJobRequest,
    JobAlreadyFinished,
    JobNotFound,
    QueueFull,
    RuntimeRefusal,
    ShuttingDown,
    UnknownPipeline,
)
from ._events import Event, EventType, JsonObject, stream_error
from ._history import JobHistory
from ._ids import EventId, EventIdGenerator
from ._job import CANCELED_BY_SHUTDOWN, CANCELED_BY_USER, Job, JobActor
from ._pipeline import Pipeline, PipelineRegistry
from ._progress import EtaEstimator, ProgressTracker
from ._runtime import (
    ANY_OWNER,
    STORE_CLOSE_TIMEOUT,
    JobPage,
    Runtime,
    RuntimeConfig,
    open_runtime,
)
from ._stage import Artifact, Stage, StageContext, StageError, StageFunction
from ._status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    InvalidTransition,
    JobStatus,
    check_transition,
)
from ._store import (
    CANCELED_BY_RESTART,
    INTERRUPTED,
    JOBS_FILE,
    JobStore,
    JobStoreError,
    LoadedJobs,
    StoredJob,
)
from ._subscription import SUBSCRIBER_OVERFLOW, Subscription

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ANY_OWNER",
    "CANCELED_BY_RESTART",
    "CANCELED_BY_SHUTDOWN",
    "CANCELED_BY_USER",
    "HISTORY_TRUNCATED",
    "INTERRUPTED",
    "JOBS_FILE",
    "STORE_CLOSE_TIMEOUT",
    "SUBSCRIBER_OVERFLOW",
    "TERMINAL_STATUSES",
    "Artifact",
    "Broadcaster",
    "EtaEstimator",
    "Event",
    "EventId",
    "EventIdGenerator",
    "EventType",
    "InvalidCursor",
    "InvalidJobRequest",
    "InvalidTransition",
    "Job",
    "JobActor",
    "JobAlreadyFinished",
    "JobHistory",
    "JobNotFound",
    "JobPage",
    "JobStatus",
    "JobStore",
    "JobStoreError",
    "JsonObject",
    "LoadedJobs",
    "Pipeline",
    "PipelineRegistry",
    "ProgressTracker",
    "QueueFull",
    "Runtime",
    "RuntimeConfig",
    "RuntimeRefusal",
    "ShuttingDown",
    "Stage",
    "StageContext",
    "StageError",
    "StageFunction",
    "StoredJob",
    "Subscription",
    "UnknownPipeline",
    "check_transition",
    "open_runtime",
    "stream_error",
]
