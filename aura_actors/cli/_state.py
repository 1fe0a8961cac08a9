"""What ``follow`` knows about a job, and how a job's end is summed up (no I/O, no rich)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..client import (
    Artifact,
    ErrorDetail,
    Event,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobSnapshot,
    JobStatusEvent,
    StepProgressEvent,
    StepStatusEvent,
    WarningEvent,
)
from ..protocol import JobStatus

__all__ = ["FollowState", "artifacts_of", "format_eta", "outcome_status", "summary_lines"]


def format_eta(seconds: float | None) -> str:
    """``"0:09"``, ``"12:04"``, ``"1:02:03"``; ``"--"`` when unknown."""
    if seconds is None or seconds < 0:
        return "--"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def outcome_status(final: Event | JobSnapshot | None) -> JobStatus | None:
    """The job's final status from its terminal event or snapshot (``None`` if not ended)."""
    if isinstance(final, JobCompletedEvent):
        return JobStatus.DONE
    if isinstance(final, JobFailedEvent):
        return JobStatus.FAILED
    if isinstance(final, JobCancelledEvent):
        return JobStatus.CANCELED
    if isinstance(final, JobSnapshot) and final.is_terminal:
        return final.status
    return None


@dataclass
class FollowState:
    """What is known about a job from its events so far."""

    job_id: str
    pipeline: str | None = None
    status: JobStatus | None = None
    stage: str | None = None
    stage_index: int | None = None
    total_stages: int | None = None
    progress_pct: float = 0.0
    stage_pct: float = 0.0
    current_item: int | None = None
    total_items: int | None = None
    eta_seconds: float | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        """Update from one event."""
        if isinstance(event, JobStatusEvent):
            self.status = event.status
            self.progress_pct = max(self.progress_pct, event.progress_pct)
            if event.stage is not None:
                self.stage = event.stage
        elif isinstance(event, StepStatusEvent):
            self.stage = event.step
            self.stage_index = event.step_index
            self.total_stages = event.total_steps
            if event.state == "Started":
                self.stage_pct = 0.0
                self.current_item = self.total_items = None
                self.message = ""
            else:
                self.stage_pct = 100.0
        elif isinstance(event, StepProgressEvent):
            self.stage = event.step
            self.progress_pct = max(self.progress_pct, event.progress_pct)
            self.stage_pct = event.step_progress_pct
            self.current_item = event.current_item
            self.total_items = event.total_items
            self.eta_seconds = event.eta_seconds
            self.message = event.message
        elif isinstance(event, WarningEvent):
            self.warnings.append(event.message)
        elif isinstance(event, JobCompletedEvent):
            self.progress_pct = 100.0
            self.eta_seconds = 0.0

    def seed(self, snapshot: JobSnapshot) -> None:
        """Start from a snapshot (before any event)."""
        self.pipeline = snapshot.pipeline
        self.status = snapshot.status
        self.stage = snapshot.stage
        self.progress_pct = snapshot.progress_pct
        self.eta_seconds = snapshot.eta_seconds
        self.message = snapshot.message

    @property
    def items_text(self) -> str:
        if self.current_item is None or self.total_items is None:
            return ""
        return f"item {self.current_item}/{self.total_items}"

    @property
    def stage_counter(self) -> str:
        if self.stage_index is None or self.total_stages is None:
            return ""
        return f"stage {self.stage_index + 1}/{self.total_stages}"


def summary_lines(final: Event | JobSnapshot | None) -> list[tuple[str, str]]:
    """``(style, text)`` lines summing up how the job ended (none if it has not)."""
    lines: list[tuple[str, str]] = []
    if isinstance(final, JobCompletedEvent):
        took = "" if final.duration_seconds is None else f" in {final.duration_seconds:.1f} s"
        lines.append(("bold green", f"Done{took}"))
    elif isinstance(final, JobFailedEvent):
        where = f" in stage {final.step}" if final.step else ""
        lines.append(("bold red", f"Failed{where}: {final.error_message}"))
        lines.extend(_error_lines(final.errors))
        if final.logs:
            lines.append(("dim", "last log lines:"))
            lines.extend(("dim", f"  {line}") for line in final.logs[-10:])
    elif isinstance(final, JobCancelledEvent):
        where = f" during stage {final.step}" if final.step else " before it started"
        lines.append(("bold yellow", f"Canceled{where}: {final.message}"))
    elif isinstance(final, JobSnapshot):
        status = final.status
        if status is JobStatus.DONE:
            lines.append(("bold green", "Done"))
        elif status is JobStatus.FAILED:
            message = final.error.message if final.error else final.message
            where = f" in stage {final.stage}" if final.stage else ""
            lines.append(("bold red", f"Failed{where}: {message}"))
            if final.error is not None:
                lines.extend(_error_lines(final.error.errors))
        elif status is JobStatus.CANCELED:
            where = f" during stage {final.stage}" if final.stage else ""
            lines.append(("bold yellow", f"Canceled{where}: {final.message}"))
        else:
            lines.append(("", f"{status.value} at {final.progress_pct:.1f}%"))
    return lines


def _error_lines(errors: Sequence[ErrorDetail]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for error in errors:
        lines.append(("red", f"error {error.code}: {error.message}"))
        if error.remediation:
            lines.append(("cyan", f"  remediation: {error.remediation}"))
    return lines


def artifacts_of(final: Event | JobSnapshot | None) -> Sequence[Artifact]:
    """The artifacts of a job that ended ``Done`` (none otherwise)."""
    if isinstance(final, JobCompletedEvent | JobSnapshot):
        return final.artifacts
    return ()
