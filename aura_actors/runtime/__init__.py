"""The runtime core: job actors, stages, the broadcaster, the runner, the storage seam. Pure trio.

Everything a caller may rely on is re-exported here; the ``_``-modules are private.
"""

from ._actor import JobActor
from ._broadcaster import Broadcaster
from ._config import FsyncMode, RuntimeConfig
from ._datadir import DataDirLock, DataDirLocked
from ._errors import (
    InvalidCursor,
    InvalidJobRequest,
    JobAlreadyFinished,
    JobIsLive,
    JobNotFound,
    JobNotRetryable,
    QueueFull,
    RuntimeRefusal,
    ShuttingDown,
    StorageFailing,
    UnknownPipeline,
    UserQuotaExceeded,
)
from ._events import Event, EventType, JsonObject, stream_error
from ._history import JobHistory
from ._hub import Hub
from ._ids import EventId, EventIdGenerator
from ._job import CANCELED_BY_SHUTDOWN, CANCELED_BY_USER, Job
from ._memory_store import MemoryStorage
from ._observer import NullObserver, RuntimeObserver
from ._open import default_storage, open_runtime
from ._pipeline import Pipeline, PipelineRegistry
from ._progress import EtaEstimator, ProgressTracker
from ._queries import ANY_OWNER, MAX_PAGE, JobPage
from ._records import Commit, JobRecord, LogLine
from ._runner import STORE_CLOSE_TIMEOUT
from ._runtime import Runtime
from ._sqlite_schema import SCHEMA_VERSION, SchemaTooNew
from ._sqlite_store import SqliteStorage
from ._stage import Artifact, Stage, StageContext, StageError, StageFunction
from ._status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    InvalidTransition,
    JobStatus,
    check_transition,
)
from ._storage import JobRefused, JobStorage, Recovery, StaleEventIds, StorageUnavailable
from ._subscription import SUBSCRIBER_OVERFLOW, Subscription

#: Error code of the event that opens a replay whose oldest events were dropped.
HISTORY_TRUNCATED = "history_truncated"
#: Error code of a job that was running when the process running it stopped.
INTERRUPTED = "interrupted"

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ANY_OWNER",
    "CANCELED_BY_SHUTDOWN",
    "CANCELED_BY_USER",
    "HISTORY_TRUNCATED",
    "INTERRUPTED",
    "MAX_PAGE",
    "SCHEMA_VERSION",
    "STORE_CLOSE_TIMEOUT",
    "SUBSCRIBER_OVERFLOW",
    "TERMINAL_STATUSES",
    "Artifact",
    "Broadcaster",
    "Commit",
    "DataDirLock",
    "DataDirLocked",
    "EtaEstimator",
    "Event",
    "EventId",
    "EventIdGenerator",
    "EventType",
    "FsyncMode",
    "Hub",
    "InvalidCursor",
    "InvalidJobRequest",
    "InvalidTransition",
    "Job",
    "JobActor",
    "JobAlreadyFinished",
    "JobHistory",
    "JobIsLive",
    "JobNotFound",
    "JobNotRetryable",
    "JobPage",
    "JobRecord",
    "JobRefused",
    "JobStatus",
    "JobStorage",
    "JsonObject",
    "LogLine",
    "MemoryStorage",
    "NullObserver",
    "Pipeline",
    "PipelineRegistry",
    "ProgressTracker",
    "QueueFull",
    "Recovery",
    "Runtime",
    "RuntimeConfig",
    "RuntimeObserver",
    "RuntimeRefusal",
    "SchemaTooNew",
    "ShuttingDown",
    "SqliteStorage",
    "Stage",
    "StageContext",
    "StageError",
    "StageFunction",
    "StaleEventIds",
    "StorageFailing",
    "StorageUnavailable",
    "Subscription",
    "UnknownPipeline",
    "UserQuotaExceeded",
    "check_transition",
    "default_storage",
    "open_runtime",
    "stream_error",
]
