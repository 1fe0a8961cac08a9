"""What ``follow`` knows about a job, and how a job's end is summed up (no I/O, no rich)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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

__all__ = [
    "FollowState",
    "artifacts_of",
    "format_eta",
    "format_size",
    "job_title",
    "outcome_status",
    "summary_lines",
]

_SIZE_UNITS = ("kB", "MB", "GB", "TB")
_TITLE_WIDTH = 60


def format_size(size_bytes: int) -> str:
    """``"238 B"``, ``"480.0 kB"``, ``"1.2 MB"``: decimal units (1 kB = 1000 bytes).

    The page (``app.js`` ``formatBytes``) writes sizes the same way, digit for
    digit: tenths rounded half up, in integers, so both agree on every size.
    """
    if size_bytes < 1000:
        return f"{size_bytes} B"
    base = 1
    for unit in _SIZE_UNITS:
        base *= 1000
        tenths = (size_bytes * 10 + base // 2) // base
        if tenths < 10_000 or unit == _SIZE_UNITS[-1]:
            return f"{tenths // 10}.{tenths % 10} {unit}"
    raise AssertionError("unreachable")


def job_title(pipeline: str, params: Mapping[str, Any]) -> str:
    """What tells a job apart in a list: its ``topic``, or the pipeline and its params.

    ``"Tides"``; ``"synthetic stages=2 ticks=50"``. One line, at most 60 characters.
    """
    topic = params.get("topic")
    if isinstance(topic, str) and topic.strip():
        title = topic.strip()
    else:
        shown = [f"{key}={_compact(value)}" for key, value in params.items()]
        title = " ".join([pipeline, *shown])
    title = " ".join(title.split())  # no tabs or line breaks in a row
    return title if len(title) <= _TITLE_WIDTH else title[: _TITLE_WIDTH - 1] + "…"


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 600.0 reads as 600
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
            if event.status.is_terminal:
                self.eta_seconds = None  # nothing is left to wait for
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
            self.status = JobStatus.DONE
            self.progress_pct = self.stage_pct = 100.0
            self.eta_seconds = None
        elif isinstance(event, JobFailedEvent):
            self.status = JobStatus.FAILED
            self.eta_seconds = None
        elif isinstance(event, JobCancelledEvent):
            self.status = JobStatus.CANCELED
            self.eta_seconds = None

    def seed(self, snapshot: JobSnapshot) -> None:
        """Start from a snapshot (before any event)."""
        self.pipeline = snapshot.pipeline
        self.status = snapshot.status
        self.stage = snapshot.stage
        self.progress_pct = snapshot.progress_pct
        self.eta_seconds = None if snapshot.is_terminal else snapshot.eta_seconds
        self.message = snapshot.message

    @property
    def eta_text(self) -> str:
        """``"ETA 1:15"`` while the job runs; nothing once it ended (no ETA to show)."""
        if self.status is not None and self.status.is_terminal:
            return ""
        return f"ETA {format_eta(self.eta_seconds)}"

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
