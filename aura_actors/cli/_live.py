"""The live rich display of ``follow`` on a terminal."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..client import Artifact, Event, JobSnapshot, WarningEvent
from ..protocol import JobStatus
from ._state import FollowState, artifacts_of, format_size, summary_lines
from ._views import ArtifactUrl

__all__ = ["LiveView"]


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
        self._refresh_per_second = refresh_per_second
        self._live = self._new_live()
        self._started = False
        self._held: list[RenderableType] = []
        self._paused = False

    def _new_live(self) -> Live:
        # A fresh Live for each stretch of display: a resumed one would start by moving
        # the cursor up over its old frame's height, over what was printed meanwhile.
        return Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=self._refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

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
            state.eta_text,
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
            if self._paused:
                # Stopped for a question, and not coming back: show the last frame once.
                self.console.print(self.render())
            else:
                self._live.stop()
            self._started = False
        for style, text in summary_lines(final):
            self.console.print(Text(text, style=style))
        artifacts = artifacts_of(final)
        if artifacts:
            self._print_artifacts(artifacts)

    def _print_artifacts(self, artifacts: Sequence[Artifact]) -> None:
        """A table of name, size and type; each URL whole on its own line below its row.

        A URL is never wrapped by rich (``soft_wrap``): the terminal may fold a long
        one at its edge, but it stays one line to copy or click.
        """
        table = Table(title="Artifacts", title_justify="left", show_edge=False, box=None)
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("type", no_wrap=True)
        for artifact in artifacts:
            size = format_size(artifact.size_bytes)
            table.add_row(escape(artifact.name), size, artifact.mime_type)
        self.console.print(table)
        for artifact in artifacts:
            where = self.artifact_url(artifact) if self.artifact_url else artifact.path
            self.console.print(
                Text.assemble((f"  {artifact.name}: ", "bold"), (where, "cyan")), soft_wrap=True
            )

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the live display off the screen for the block (to ask a question).

        Afterwards it comes back below whatever the block printed, so the screen
        shows it once; if :meth:`finish` was called in the block, the last frame
        is printed once instead.
        """
        was_started = self._started
        if was_started:
            self._live.transient = True  # stop by erasing the frame, not by leaving it
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
                self._live = self._new_live()
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
