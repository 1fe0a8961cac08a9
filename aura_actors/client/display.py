"""Showing a job's events to a person (or a pipe): live rich display, plain lines, JSON lines.

Used by ``aura-actors follow`` and ``submit --follow``; usable from scripts too::

    with LiveView(Console()) as view:
        async for event in stream:
            view.event(event)
        view.finish(event)

Every view has the same methods (:class:`EventView`): ``event`` for each event,
``note`` for a message about the connection or the command, ``finish`` for the
summary, ``paused`` to get the terminal back for a question.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Protocol

from rich.console import Console, Group, RenderableType
from rich.filesize import decimal
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..runtime import JobStatus
from ._events import (
    Event,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobStatusEvent,
    StepProgressEvent,
    StepStatusEvent,
    WarningEvent,
)
from ._models import Artifact, ErrorDetail, JobSnapshot

__all__ = [
    "EventView",
    "FollowState",
    "JsonLinesView",
    "LiveView",
    "PlainView",
    "format_eta",
    "outcome_status",
]


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


class EventView(Protocol):
    """What ``follow`` needs from a display."""

    def start(self, state: FollowState) -> None:
        """Begin showing ``state`` (which the view keeps updating)."""

    def event(self, event: Event) -> None:
        """Show one event (the view updates its state with it)."""

    def note(self, text: str) -> None:
        """Show a message about the command or the connection (not an event)."""

    def finish(self, final: Event | JobSnapshot | None) -> None:
        """Stop and show the summary: artifacts, or the error and its remediation."""

    def paused(self) -> AbstractContextManager[None]:
        """Give the terminal back (for a question) for the ``with`` block."""


ArtifactUrl = Callable[[Artifact], str]


# -- summaries shared by the views --------------------------------------------------------


def _summary_lines(final: Event | JobSnapshot | None) -> list[tuple[str, str]]:
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


def _error_lines(errors: tuple[ErrorDetail, ...]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for error in errors:
        lines.append(("red", f"error {error.code}: {error.message}"))
        if error.remediation:
            lines.append(("cyan", f"  remediation: {error.remediation}"))
    return lines


def _artifacts(final: Event | JobSnapshot | None) -> tuple[Artifact, ...]:
    if isinstance(final, JobCompletedEvent | JobSnapshot):
        return final.artifacts
    return ()


# -- JSON lines ---------------------------------------------------------------------------


class JsonLinesView:
    """One JSON object per line on ``out`` for each event (``{"id", "event", "data"}``).

    Notes and nothing else go to ``err``, so ``out`` stays machine-readable.
    """

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def start(self, state: FollowState) -> None:
        pass

    def event(self, event: Event) -> None:
        self.out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def finish(self, final: Event | JobSnapshot | None) -> None:
        pass

    @contextmanager
    def paused(self) -> Iterator[None]:
        yield


# -- plain lines --------------------------------------------------------------------------


class PlainView:
    """Plain text lines, for a pipe or a log file.

    Progress is printed when the overall percentage moves to a new whole number
    or a stage reaches 100 %, not for every tick.
    """

    def __init__(
        self,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        *,
        artifact_url: ArtifactUrl | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.artifact_url = artifact_url
        self.state = FollowState("")
        self._last_printed: tuple[str, int] | None = None

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def start(self, state: FollowState) -> None:
        self.state = state
        what = f" ({state.pipeline})" if state.pipeline else ""
        self._print(f"following job {state.job_id}{what}")

    def event(self, event: Event) -> None:
        self.state.apply(event)
        state = self.state
        if isinstance(event, JobStatusEvent):
            self._print(f"job {event.job_id}: {event.status.value}")
        elif isinstance(event, StepStatusEvent):
            counter = f"{event.step_index + 1}/{event.total_steps}"
            self._print(f"stage {counter} {event.step}: {event.state.lower()}")
        elif isinstance(event, StepProgressEvent):
            mark = (event.step, int(event.progress_pct))
            if mark == self._last_printed and event.step_progress_pct < 100:
                return
            self._last_printed = mark
            parts = [
                f"{event.step}: {event.progress_pct:5.1f}% overall",
                f"{event.step_progress_pct:5.1f}% of stage",
            ]
            if state.items_text:
                parts.append(state.items_text)
            parts.append(f"ETA {format_eta(event.eta_seconds)}")
            line = ", ".join(parts)
            self._print(f"{line} - {event.message}" if event.message else line)
        elif isinstance(event, WarningEvent):
            where = f" [{event.step}]" if event.step else ""
            self._print(f"warning{where}: {event.message}")
        elif event.type == "error":
            self.err.write(f"stream error: {event.data.get('message', '')}\n")
            self.err.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def finish(self, final: Event | JobSnapshot | None) -> None:
        for _, text in _summary_lines(final):
            self._print(text)
        for artifact in _artifacts(final):
            where = self.artifact_url(artifact) if self.artifact_url else artifact.path
            size = decimal(artifact.size_bytes)
            self._print(f"artifact {artifact.name} ({size}, {artifact.mime_type}): {where}")

    @contextmanager
    def paused(self) -> Iterator[None]:
        yield


# -- live rich display --------------------------------------------------------------------


class LiveView:
    """A live progress display on a terminal (rich): header, overall and stage bars,
    the current item, ETA and message; warnings scroll above it as they come; a
    summary with artifacts, or the error and its remediation, at the end.

    Use as a context manager (or call :meth:`start` and :meth:`finish`).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        artifact_url: ArtifactUrl | None = None,
        refresh_per_second: float = 8,
    ) -> None:
        self.console = console or Console()
        self.artifact_url = artifact_url
        self.state = FollowState("")
        self._live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started = False
        self._held: list[RenderableType] = []
        self._paused = False

    def __enter__(self) -> LiveView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started:
            self._live.stop()
            self._started = False

    def start(self, state: FollowState) -> None:
        self.state = state
        self._live.start(refresh=True)
        self._started = True

    def render(self) -> RenderableType:
        """The live part: what the display shows right now."""
        state = self.state
        status = state.status.value if state.status else "connecting"
        header = Text.assemble(
            ("Job ", "bold"),
            (state.job_id, "bold cyan"),
            ("  "),
            (state.pipeline or "", "magenta"),
            ("  "),
            (status, _status_style(state.status)),
        )
        bar_width = max(10, min(40, self.console.width - 50))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(min_width=12, max_width=16, no_wrap=True)
        grid.add_column(width=bar_width)
        grid.add_column(justify="right", width=6)
        grid.add_column(no_wrap=True)
        grid.add_row(
            Text("Overall", style="bold"),
            ProgressBar(total=100, completed=state.progress_pct, width=bar_width),
            f"{state.progress_pct:.1f}%",
            f"ETA {format_eta(state.eta_seconds)}",
        )
        if state.stage is not None:
            extra = "  ".join(part for part in (state.items_text, state.stage_counter) if part)
            grid.add_row(
                Text(state.stage, style="cyan"),
                ProgressBar(total=100, completed=state.stage_pct, width=bar_width),
                f"{state.stage_pct:.1f}%",
                extra,
            )
        parts: list[RenderableType] = [header, grid]
        if state.message:
            parts.append(Text(state.message, style="dim", overflow="ellipsis", no_wrap=True))
        return Group(*parts)

    def _print(self, renderable: RenderableType) -> None:
        if self._paused:
            self._held.append(renderable)
        else:
            self.console.print(renderable)

    def event(self, event: Event) -> None:
        self.state.apply(event)
        if isinstance(event, WarningEvent):
            where = f" [{event.step}]" if event.step else ""
            self._print(Text(f"⚠ warning{where}: {event.message}", style="yellow"))
        elif event.type == "error":
            self._print(Text(f"stream error: {event.data.get('message', '')}", style="red"))
        if self._started and not self._paused:
            self._live.refresh()

    def note(self, text: str) -> None:
        self._print(Text(text, style="dim"))

    def finish(self, final: Event | JobSnapshot | None) -> None:
        if self._started:
            self._live.stop()
            self._started = False
        for style, text in _summary_lines(final):
            self.console.print(Text(text, style=style))
        artifacts = _artifacts(final)
        if artifacts:
            table = Table(title="Artifacts", title_justify="left", show_edge=False)
            table.add_column("name", style="bold")
            table.add_column("size", justify="right")
            table.add_column("type")
            table.add_column("where", overflow="fold")
            for artifact in artifacts:
                where = self.artifact_url(artifact) if self.artifact_url else artifact.path
                table.add_row(
                    escape(artifact.name), decimal(artifact.size_bytes), artifact.mime_type, where
                )
            self.console.print(table)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the live display for the block (to ask a question), then resume it."""
        was_started = self._started
        if was_started:
            self._live.stop()
        self._paused = True
        try:
            yield
        finally:
            self._paused = False
            held, self._held = self._held, []
            for renderable in held:
                self.console.print(renderable)
            if was_started and self._started:
                self._live.start(refresh=True)


def _status_style(status: JobStatus | None) -> str:
    return (
        {
            JobStatus.QUEUED: "yellow",
            JobStatus.RUNNING: "bold blue",
            JobStatus.DONE: "bold green",
            JobStatus.FAILED: "bold red",
            JobStatus.CANCELED: "bold yellow",
        }.get(status, "dim")
        if status is not None
        else "dim"
    )
