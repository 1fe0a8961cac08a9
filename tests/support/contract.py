"""The contract's tables, written once for every test that checks payload shapes."""

from __future__ import annotations

#: Keys of a job snapshot.
SNAPSHOT_KEYS = frozenset(
    {
        "id",
        "attempt",
        "retryOf",
        "node",
        "pipeline",
        "params",
        "status",
        "stage",
        "progressPct",
        "message",
        "etaSeconds",
        "createdAt",
        "startedAt",
        "finishedAt",
        "artifacts",
        "error",
        "lastEventId",
    }
)

#: Keys of each job event's ``data`` besides ``jobId``, which every one carries.
EVENT_DATA_KEYS: dict[str, frozenset[str]] = {
    "job-status": frozenset({"status", "previousStatus", "stage", "progressPct"}),
    "step-status": frozenset({"step", "stepIndex", "totalSteps", "state"}),
    "step-progress": frozenset(
        {
            "step",
            "progressPct",
            "stepProgressPct",
            "message",
            "etaSeconds",
            "currentItem",
            "totalItems",
        }
    ),
    "job-completed": frozenset({"artifacts", "durationSeconds"}),
    "job-failed": frozenset({"step", "errorMessage", "errors", "logs"}),
    "job-cancelled": frozenset({"step", "message"}),
    "warning": frozenset({"step", "message"}),
}


#: A synthetic job that finishes at once: two stages of three ticks.
QUICK_JOB = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
#: A synthetic job that waits (one ten-minute tick) until cancelled.
WAITING_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
