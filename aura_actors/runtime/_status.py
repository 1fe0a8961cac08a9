"""The job state machine; defined in :mod:`aura_actors.protocol`, re-exported here."""

from __future__ import annotations

from ..protocol._status import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    InvalidTransition,
    JobStatus,
    check_transition,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATUSES",
    "InvalidTransition",
    "JobStatus",
    "check_transition",
]
