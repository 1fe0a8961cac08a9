"""Run the ``aura-actors`` client commands as real processes (``python -m aura_actors ...``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence

import trio

CLI = [sys.executable, "-m", "aura_actors"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AURA_")}
    return {**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", **extra}


class Result:
    def __init__(self, completed: subprocess.CompletedProcess[bytes]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout.decode()
        self.err = completed.stderr.decode()

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


async def run_cli(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> Result:
    """Run one command to its end; ``stdin`` is what it reads (nothing by default)."""
    command = [*CLI, *args, *(["--url", url] if url else [])]
    with trio.fail_after(30):
        completed = await trio.run_process(
            command,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            env=env or cli_env(),
        )
    return Result(completed)


async def run_many(*commands: Sequence[str], url: str | None = None) -> list[Result]:
    """Run several CLI invocations at once (each process costs its interpreter start)."""
    results: list[Result | None] = [None] * len(commands)

    async def one(index: int, args: Sequence[str]) -> None:
        results[index] = await run_cli(*args, url=url)

    async with trio.open_nursery() as nursery:
        for index, args in enumerate(commands):
            nursery.start_soon(one, index, args)
    return [result for result in results if result is not None]


class LiveProcess:
    """A CLI process whose stdout is read as it comes."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.out = bytearray()
        self.err = bytearray()

    async def wait_for_output(self, pattern: str) -> None:
        """Read stdout until ``pattern`` shows in it."""
        assert self.process.stdout is not None
        regex = re.compile(pattern.encode())
        while not regex.search(self.out):
            chunk = await self.process.stdout.receive_some(4096)
            assert chunk, f"exited before printing {pattern!r}: {self.out.decode()}"
            self.out.extend(chunk)

    async def wait_for_error(self, pattern: str) -> None:
        """Read stderr until ``pattern`` shows in it."""
        assert self.process.stderr is not None
        regex = re.compile(pattern.encode())
        while not regex.search(self.err):
            chunk = await self.process.stderr.receive_some(4096)
            assert chunk, f"exited before writing {pattern!r} to stderr: {self.err.decode()}"
            self.err.extend(chunk)

    async def finish(self) -> int:
        assert self.process.stdout is not None and self.process.stderr is not None
        async with trio.open_nursery() as nursery:
            for stream, sink in ((self.process.stdout, self.out), (self.process.stderr, self.err)):

                async def drain(
                    stream: trio.abc.ReceiveStream = stream, sink: bytearray = sink
                ) -> None:
                    while chunk := await stream.receive_some(4096):
                        sink.extend(chunk)

                nursery.start_soon(drain)
        return await self.process.wait()


async def start_cli(*args: str) -> LiveProcess:
    process = await trio.lowlevel.open_process(
        [*CLI, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    return LiveProcess(process)
