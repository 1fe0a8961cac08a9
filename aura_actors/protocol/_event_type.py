"""The eight event types of the contract."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL_EVENT_TYPES", "EventType"]


class EventType(enum.StrEnum):
    """The eight event types of the public contract."""

    JOB_STATUS = "job-status"
    STEP_STATUS = "step-status"
    STEP_PROGRESS = "step-progress"
    JOB_COMPLETED = "job-completed"
    JOB_FAILED = "job-failed"
    JOB_CANCELLED = "job-cancelled"
    WARNING = "warning"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends a job's stream."""
        return self in TERMINAL_EVENT_TYPES


#: The event types that end a job's stream (and the job).
TERMINAL_EVENT_TYPES = frozenset(
    {EventType.JOB_COMPLETED, EventType.JOB_FAILED, EventType.JOB_CANCELLED}
)
