"""Stages: the unit of work in a pipeline, and the context a stage reports through."""

from __future__ import annotations

import mimetypes
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from ._messages import Message, Progress, Warning_

T = TypeVar("T")

StageFunction = Callable[["StageContext"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a pipeline.

    ``weight`` sets the stage's share of overall progress. With
    ``stall_timeout`` set, a stage that reports no progress for half of it
    gets a ``warning``; for all of it, it is cancelled and the job fails with
    code ``stalled``.
    """

    name: str
    run: StageFunction
    weight: float = 1.0
    stall_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a job produced, under the runtime's data dir."""

    name: str
    path: str
    size_bytes: int
    mime_type: str

    def to_json(self) -> dict[str, Any]:
        """The contract's ``{name, path, sizeBytes, mimeType}``."""
        return {
            "name": self.name,
            "path": self.path,
            "sizeBytes": self.size_bytes,
            "mimeType": self.mime_type,
        }


class StageError(Exception):
    """Raise from a stage to fail its job with a clear code, message and remediation."""

    def __init__(
        self, message: str, *, code: str = "stage_error", remediation: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.remediation = remediation or "check the job's logs and its params, then retry"


class _StallWatch:
    """One stage's stall watchdog: when it last reported, and the scope a stall cancels.

    A report only notes the time (:meth:`touch`): moving a cancel scope's
    deadline on every report would cost a trio deadline registration per
    event. The watchdog task (``JobActor._stall_warner``) wakes half a
    timeout after the last report it knows of and pushes the failure
    deadline forward then, which it does before that deadline (a whole
    timeout after the same report) can pass.
    """

    __slots__ = ("fail_scope", "half", "last", "rearm", "timeout")

    def __init__(self, fail_scope: trio.CancelScope, timeout: float) -> None:
        self.fail_scope = fail_scope
        self.timeout = timeout
        self.half = timeout / 2
        self.last = trio.current_time()
        fail_scope.deadline = self.last + timeout
        self.rearm: trio.Event | None = None

    def touch(self) -> None:
        """Note a report (not a checkpoint); wakes a watchdog waiting after its warning."""
        self.last = trio.current_time()
        if self.rearm is not None:
            self.rearm.set()
            self.rearm = None

    def push(self) -> None:
        """Move the failure deadline to a whole timeout after the last report."""
        self.fail_scope.deadline = self.last + self.timeout


async def _kill_process_group(process: trio.Process) -> None:
    # The process leads its own session, so this also kills what it spawned.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        # No group of that id: the caller passed start_new_session=False (or the
        # process is already gone). Kill the process itself, or the cancel would
        # wait for it to exit on its own.
        process.kill()
    except PermissionError:  # pragma: no cover - a reused pid we do not own
        process.kill()


class StageContext:
    """What a running stage sees: its params, and how it reports back to its job.

    Reports travel over the job's memory channel to the job actor, which
    turns them into events. Every ``async`` method here is a cancel point, so a
    cancelled job stops at the stage's next report.
    """

    __slots__ = (
        "_artifacts",
        "_log_line",
        "_mailbox",
        "_watch",
        "data_dir",
        "job_id",
        "params",
        "stage_index",
        "stage_name",
        "total_stages",
    )

    def __init__(
        self,
        *,
        job_id: str,
        params: dict[str, Any],
        stage_name: str,
        stage_index: int,
        total_stages: int,
        data_dir: Path,
        mailbox: trio.MemorySendChannel[Message],
        log_line: Callable[[str, str], None],
        artifacts: list[Artifact],
    ) -> None:
        self.job_id = job_id
        self.params = params
        self.stage_name = stage_name
        self.stage_index = stage_index
        self.total_stages = total_stages
        self.data_dir = data_dir
        self._mailbox = mailbox
        self._log_line = log_line
        self._artifacts = artifacts
        self._watch: _StallWatch | None = None

    @property
    def artifact_dir(self) -> Path:
        """``<data dir>/artifacts/<job id>``, created on first use."""
        path = self.data_dir / "artifacts" / self.job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def report(
        self,
        fraction: float,
        message: str | None = None,
        *,
        current_item: int | None = None,
        total_items: int | None = None,
    ) -> None:
        """Report this stage at ``fraction`` (0–1) done.

        A cancel point (a cancelled job's stage stops here); it yields to the
        scheduler only when the job's mailbox is full, so a report costs no
        task switch of its own: the job actor turns it into an event the next
        time the stage waits (its ``sleep``, its I/O, or this full mailbox).
        """
        if self._watch is not None:
            self._watch.touch()
        report = Progress(self.stage_index, fraction, message, current_item, total_items)
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._mailbox.send_nowait(report)
        except trio.WouldBlock:
            await self._mailbox.send(report)

    async def warn(self, message: str) -> None:
        """Emit a non-fatal ``warning`` event (and log it). A checkpoint."""
        self._log_line(message, "warning")
        await self._mailbox.send(Warning_(self.stage_index, message))

    def log(self, line: str) -> None:
        """Keep a log line; the last lines go with a ``job-failed`` event."""
        self._log_line(line, "info")

    def add_artifact(self, name: str, path: Path, mime_type: str | None = None) -> Artifact:
        """Register a file this stage wrote; it must exist under the data dir."""
        resolved = path.resolve()
        data_dir = self.data_dir.resolve()
        if not resolved.is_relative_to(data_dir):
            raise ValueError(f"artifact {path} is not under the data dir {data_dir}")
        if not resolved.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist")
        guessed = mime_type or mimetypes.guess_type(resolved.name)[0]
        artifact = Artifact(
            name=name,
            path=str(resolved.relative_to(data_dir)),
            size_bytes=resolved.stat().st_size,
            mime_type=guessed or "application/octet-stream",
        )
        self._artifacts.append(artifact)
        return artifact

    async def run_process(
        self, command: Sequence[str], **options: Any
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a subprocess with :func:`trio.run_process`; cancelling kills and reaps it.

        The process gets its own session, and cancellation sends SIGKILL to
        its whole process group, so nothing it spawned survives a cancel.
        """
        options.setdefault("start_new_session", True)
        options.setdefault("deliver_cancel", _kill_process_group)
        return await trio.run_process(list(command), **options)

    async def run_in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking ``function(*args)`` in a worker thread.

        On cancel the job stops waiting at once and the thread is told to
        stop: ``function`` must call :func:`trio.from_thread.check_cancelled`
        (or :meth:`report_from_thread`) between chunks of work, and it raises
        :class:`trio.Cancelled` there.
        """
        return await trio.to_thread.run_sync(function, *args, abandon_on_cancel=True)

    def report_from_thread(
        self,
        fraction: float,
        message: str | None = None,
        *,
        current_item: int | None = None,
        total_items: int | None = None,
    ) -> None:
        """:meth:`report` from inside :meth:`run_in_thread`; raises if the job was cancelled."""
        trio.from_thread.check_cancelled()
        trio.from_thread.run(
            lambda: self.report(
                fraction, message, current_item=current_item, total_items=total_items
            )
        )
