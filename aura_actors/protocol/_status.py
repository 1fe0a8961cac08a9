"""The job state machine: the statuses and the only transitions allowed between them."""

from __future__ import annotations

import enum

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATUSES",
    "InvalidTransition",
    "JobStatus",
    "check_transition",
]


class JobStatus(enum.StrEnum):
    """A job's status; the values are the exact strings of the public contract."""

    QUEUED = "Queued"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_terminal(self) -> bool:
        """Whether a job in this status will never change again."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELED})

ALLOWED_TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.QUEUED, JobStatus.CANCELED),
        (JobStatus.RUNNING, JobStatus.DONE),
        (JobStatus.RUNNING, JobStatus.FAILED),
        (JobStatus.RUNNING, JobStatus.CANCELED),
    }
)


class InvalidTransition(RuntimeError):
    """Raised when code asks for a status change the state machine forbids.

    This is always a bug in the caller: a terminal job never changes again.
    """

    def __init__(self, current: JobStatus, requested: JobStatus) -> None:
        super().__init__(f"invalid job status transition {current.value} -> {requested.value}")
        self.current = current
        self.requested = requested


def check_transition(current: JobStatus, requested: JobStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> requested`` is allowed."""
    if (current, requested) not in ALLOWED_TRANSITIONS:
        raise InvalidTransition(current, requested)
