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
from dataclasses import dataclass, field, replace
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
    runtime: Runtime | None = None

    def shutdown(self) -> None:
        """Start the graceful shutdown, as SIGTERM would."""
        self.stop.set()


@asynccontextmanager
async def run_server(
    settings: ServerSettings | None = None, *, data_dir: Path
) -> AsyncIterator[InProcessServer]:
    """Serve on ``127.0.0.1`` and a free port for the ``async with`` body, then shut down."""
    settings = replace(
        settings or ServerSettings(), host="127.0.0.1", port=0, data_dir=data_dir
    )
    listening = trio.Event()
    holder: dict[str, str] = {}
    stop = trio.Event()

    def on_listening(url: str) -> None:
        holder["url"] = url
        listening.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve(settings, on_listening=on_listening, shutdown_trigger=stop.wait)
        )
        await listening.wait()
        server = InProcessServer(url=holder["url"], settings=settings, stop=stop)
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

    @property
    def pid(self) -> int:
        return self.process.pid

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def wait(self) -> int:
        return await self.process.wait()


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
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(30):
            while (match := _URL_RE.search(output)) is None:
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"server exited before listening: {output.decode()!r}")
                output.extend(chunk)
        url = match.group(1).decode()

        async def drain() -> None:
            assert process.stdout is not None
            while chunk := await process.stdout.receive_some(4096):
                output.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            try:
                yield ServerProcess(process, url, output)
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
