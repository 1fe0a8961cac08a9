"""The views of ``follow`` without a live display: JSON lines and plain lines.

Every view has the same methods (:class:`EventView`): ``start`` with the
state to keep updated, ``event`` for each event, ``note`` for a message about
the connection or the command, ``finish`` for the summary, ``paused`` to get
the terminal back for a question.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Protocol

from ..client import (
    Artifact,
    Event,
    JobSnapshot,
    JobStatusEvent,
    StepProgressEvent,
    StepStatusEvent,
    WarningEvent,
)
from ._state import FollowState, artifacts_of, format_eta, format_size, summary_lines

__all__ = ["ArtifactUrl", "EventView", "JsonLinesView", "PlainView"]


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
        for _, text in summary_lines(final):
            self._print(text)
        for artifact in artifacts_of(final):
            where = self.artifact_url(artifact) if self.artifact_url else artifact.path
            size = format_size(artifact.size_bytes)
            self._print(f"artifact {artifact.name} ({size}, {artifact.mime_type}): {where}")

    @contextmanager
    def paused(self) -> Iterator[None]:
        yield
