"""Run the real server for a test: in-process (Hypercorn on a free port) or as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from aura_actors.runtime import Runtime
from aura_actors.web import ServerSettings, serve

_URL_RE = re.compile(rb"listening on (http://[0-9.]+:[0-9]+)")


@dataclass
class InProcessServer:
    """A server running inside the test's trio run."""

    url: str
    settings: ServerSettings
    stop: trio.Event = field(default_factory=trio.Event)
    #: The server's runtime, in this same trio run (its broadcaster, its jobs).
    runtime: Runtime | None = None

    def shutdown(self) -> None:
        """Start the graceful shutdown, as SIGTERM would."""
        self.stop.set()


@asynccontextmanager
async def run_server(
    settings: ServerSettings | None = None, *, data_dir: Path
) -> AsyncIterator[InProcessServer]:
    """Serve on ``127.0.0.1`` and a free port for the ``async with`` body, then shut down."""
    settings = (settings or ServerSettings()).updated(host="127.0.0.1", port=0, data_dir=data_dir)
    listening = trio.Event()
    holder: dict[str, str] = {}
    runtimes: list[Runtime] = []
    stop = trio.Event()

    def on_listening(url: str) -> None:
        holder["url"] = url
        listening.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve(
                settings,
                on_listening=on_listening,
                shutdown_trigger=stop.wait,
                on_runtime=runtimes.append,
            )
        )
        await listening.wait()
        server = InProcessServer(
            url=holder["url"], settings=settings, stop=stop, runtime=runtimes[0]
        )
        try:
            yield server
        finally:
            stop.set()


def write_tokens(path: Path, tokens: dict[str, str]) -> Path:
    """Write an ``--auth-tokens`` file."""
    path.write_text(json.dumps({"tokens": tokens}), encoding="utf-8")
    return path


@dataclass
class ServerProcess:
    """``aura-actors serve`` in its own process."""

    process: trio.Process
    url: str
    stdout: bytearray
    #: Everything the server wrote to stderr so far (its JSON log lines).
    stderr: bytearray = field(default_factory=bytearray)
    #: Set once stdout and stderr reached end of file.
    output_closed: trio.Event = field(default_factory=trio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def wait(self) -> int:
        """Wait for the exit code, and for all of stdout and stderr to be read."""
        code = await self.process.wait()
        await self.output_closed.wait()
        return code

    def log_lines(self) -> list[dict[str, object]]:
        """The JSON log lines on stderr so far (every line must be JSON)."""
        return [json.loads(line) for line in self.stderr.decode().splitlines() if line.strip()]


@asynccontextmanager
async def server_process(
    data_dir: Path, extra_args: Sequence[str] = (), *, port: int = 0
) -> AsyncIterator[ServerProcess]:
    """Start ``python -m aura_actors serve`` on a free port; kill it at the end if still alive."""
    command = [
        sys.executable,
        "-m",
        "aura_actors",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra_args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    assert process.stderr is not None
    output = bytearray()
    errors = bytearray()
    stdout_closed = trio.Event()
    stderr_closed = trio.Event()
    output_closed = trio.Event()

    async def drain_stderr() -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.receive_some(4096):
            errors.extend(chunk)
        stderr_closed.set()
        await stdout_closed.wait()
        output_closed.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain_stderr)
            with trio.fail_after(30):
                while (match := _URL_RE.search(output)) is None:
                    chunk = await process.stdout.receive_some(4096)
                    if not chunk:
                        raise RuntimeError(
                            f"server exited before listening: {output.decode()!r} "
                            f"{errors.decode(errors='replace')!r}"
                        )
                    output.extend(chunk)
            url = match.group(1).decode()

            async def drain() -> None:
                assert process.stdout is not None
                while chunk := await process.stdout.receive_some(4096):
                    output.extend(chunk)
                stdout_closed.set()

            nursery.start_soon(drain)
            try:
                yield ServerProcess(process, url, output, errors, output_closed)
            finally:
                if process.returncode is None:
                    process.kill()
                with trio.move_on_after(10):
                    await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
