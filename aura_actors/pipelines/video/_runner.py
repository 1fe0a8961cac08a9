"""Running ffmpeg inside a stage: progress as it encodes, a clear error when it fails.

The process runs through :meth:`StageContext.run_process
<aura_actors.runtime.StageContext.run_process>`: in its own session, and a
cancel (of the job, or by the stage's stall watchdog) sends SIGKILL to its
whole process group and reaps it before the cancel goes on.
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import trio

from ...runtime import StageContext, StageError
from ._ffmpeg import ProgressParser

#: Lines of a program's stderr kept for its error message and the job's log.
TAIL_LINES = 20
#: Bytes of stderr read at most (the rest is drained and dropped).
TAIL_BYTES = 64 * 1024

ProgressCallback = Callable[[float], Awaitable[None]]


class OutputTail:
    """The last lines a process wrote to a pipe (bounded), read until the pipe closes."""

    def __init__(self) -> None:
        self._data = bytearray()

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        """Read ``stream`` to its end, keeping the last :data:`TAIL_BYTES`. A checkpoint."""
        async for chunk in stream:
            self._data += chunk
            if len(self._data) > 2 * TAIL_BYTES:
                del self._data[:-TAIL_BYTES]

    def lines(self) -> list[str]:
        """The kept lines, at most :data:`TAIL_LINES`, without blank ones."""
        text = bytes(self._data[-TAIL_BYTES:]).decode("utf-8", "replace")
        return [line.strip() for line in text.splitlines() if line.strip()][-TAIL_LINES:]


def process_failure(name: str, returncode: int, stderr_lines: Sequence[str]) -> StageError:
    """The :class:`StageError` of a program that exited with ``returncode``."""
    if returncode < 0:
        what = f"{name} was killed by signal {-returncode}"
    else:
        what = f"{name} failed with exit status {returncode}"
    detail = f": {stderr_lines[-1]}" if stderr_lines else ""
    return StageError(
        what + detail,
        code=f"{name.replace('-', '_')}_failed",
        remediation="see the job's log for the program's output; check free disk space, then retry",
    )


def log_tail(context: StageContext, name: str, lines: Sequence[str]) -> None:
    """Keep a program's stderr tail in the job's log."""
    for line in lines:
        context.log(f"{context.stage_name}: {name}: {line}")


async def run_ffmpeg(
    context: StageContext,
    command: Sequence[str],
    expected_seconds: float,
    on_progress: ProgressCallback,
) -> None:
    """Run ffmpeg ``command`` (which writes ``-progress pipe:1``) to its end.

    Calls ``on_progress(fraction)`` for each progress block, ``fraction``
    being ``out_time`` over ``expected_seconds`` (0–1). Raises
    :class:`StageError` (code ``ffmpeg_failed``) when ffmpeg fails. A
    checkpoint; cancelling kills ffmpeg's process group at once.
    """
    parser = ProgressParser()
    tail = OutputTail()
    async with trio.open_nursery() as nursery:
        start = partial(
            context.run_process,
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        process: trio.Process = await nursery.start(start)
        assert process.stdout is not None and process.stderr is not None
        nursery.start_soon(tail.drain, process.stderr)
        async for chunk in process.stdout:
            for block in parser.feed(chunk):
                await on_progress(block.fraction(expected_seconds))
    if process.returncode != 0:
        lines = tail.lines()
        log_tail(context, "ffmpeg", lines)
        raise process_failure("ffmpeg", process.returncode or 0, lines)


async def run_tool(context: StageContext, name: str, command: Sequence[str], stdin: bytes) -> None:
    """Run a short program that needs no progress (espeak-ng), feeding it ``stdin``.

    Raises :class:`StageError` (code ``<name>_failed``) when it fails. A
    checkpoint; cancelling kills its process group at once.
    """
    result = await context.run_process(
        command, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
    )
    if result.returncode != 0:
        text = (result.stderr or b"").decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()][-TAIL_LINES:]
        log_tail(context, name, lines)
        raise process_failure(name, result.returncode, lines)
