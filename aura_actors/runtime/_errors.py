"""The runtime's exceptions, one class per way a request can be refused."""

from __future__ import annotations

from typing import Any

from ..protocol import ErrorCode


class RuntimeRefusal(Exception):
    """Base class: the runtime refused a request. ``code`` is a stable machine-readable name."""

    code: str = ErrorCode.REFUSED


class JobNotFound(RuntimeRefusal):
    """No such job (or it belongs to someone else, which looks the same)."""

    code: str = ErrorCode.JOB_NOT_FOUND

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class JobAlreadyFinished(RuntimeRefusal):
    """The job is terminal, so it cannot be cancelled."""

    code: str = ErrorCode.JOB_FINISHED

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id!r} already finished with status {status}")
        self.job_id = job_id
        self.status = status


class QueueFull(RuntimeRefusal):
    """Every slot is running and the queue holds its maximum."""

    code: str = ErrorCode.QUEUE_FULL

    def __init__(self, max_queued: int) -> None:
        super().__init__(f"the job queue is full ({max_queued} jobs waiting); retry later")
        self.max_queued = max_queued


class ShuttingDown(RuntimeRefusal):
    """The runtime is shutting down and takes no new jobs."""

    code: str = ErrorCode.SHUTTING_DOWN

    def __init__(self) -> None:
        super().__init__("the server is shutting down and accepts no new jobs")


class InvalidJobRequest(RuntimeRefusal):
    """The pipeline is unknown or its params fail validation.

    ``errors`` lists each problem as ``{"field": ..., "message": ...}``.
    """

    code: str = ErrorCode.VALIDATION_ERROR

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class UnknownPipeline(InvalidJobRequest):
    """No pipeline of that name is registered."""

    code: str = ErrorCode.UNKNOWN_PIPELINE

    def __init__(self, name: object, known: list[str]) -> None:
        super().__init__(
            f"unknown pipeline {name!r}; known pipelines: {', '.join(sorted(known))}",
            [{"field": "pipeline", "message": "unknown pipeline"}],
        )


class InvalidCursor(RuntimeRefusal):
    """A listing cursor that this runtime did not hand out."""

    code: str = ErrorCode.INVALID_CURSOR

    def __init__(self, cursor: str) -> None:
        super().__init__(f"invalid cursor {cursor!r}")


class UserQuotaExceeded(RuntimeRefusal):
    """The user already has the most jobs ``Queued`` or ``Running`` one user may have."""

    code: str = ErrorCode.USER_QUOTA_EXCEEDED

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"you have {limit} jobs queued or running, the most one user may have; "
            "wait for one to end, or cancel one"
        )
        self.limit = limit


class JobIsLive(RuntimeRefusal):
    """The job is still ``Queued`` or ``Running``, so it cannot be deleted."""

    code: str = ErrorCode.JOB_NOT_FINISHED

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id!r} is {status}; cancel it first, or wait until it ends")
        self.job_id = job_id
        self.status = status


class JobNotRetryable(RuntimeRefusal):
    """Only ``Failed`` and ``Canceled`` jobs can be retried."""

    code: str = ErrorCode.JOB_NOT_RETRYABLE

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id!r} is {status}; only Failed or Canceled jobs can be retried")
        self.job_id = job_id
        self.status = status


class StorageFailing(RuntimeRefusal):
    """The job store cannot be written just now; nothing was accepted."""

    code: str = ErrorCode.STORAGE_UNAVAILABLE

    def __init__(self, problem: str) -> None:
        super().__init__(f"the job store cannot be written ({problem}); retry later")
        self.problem = problem
