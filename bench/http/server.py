"""Starting, watching and stopping the server under test, each run in its own process."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.progress import ROOT


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server: a name and an argv with ``{port}`` and ``{max_jobs}`` holes."""

    name: str
    argv: tuple[str, ...]

    def command(self, port: int, max_jobs: int, data_dir: Path) -> list[str]:
        """The argv for this port and job limit."""
        values = {"port": str(port), "max_jobs": str(max_jobs), "data_dir": str(data_dir)}
        return [part.format(**values) for part in self.argv]


PEER = ServerSpec(
    "peer",
    (sys.executable, "-m", "bench.peers.fastapi_peer", "--host", "127.0.0.1", "--port", "{port}"),
)


def aura_spec() -> ServerSpec | None:
    """``aura-actors serve``, or ``None`` while the server is not there to run."""
    serve_args = (
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--max-concurrent-jobs",
        "{max_jobs}",
        "--max-queued-jobs",
        "{max_jobs}",
        "--data-dir",
        "{data_dir}",
    )
    if importlib.util.find_spec("aura_actors.cli") is None:
        return None
    script = shutil.which("aura-actors")
    if script is not None:
        return ServerSpec("aura", (script, *serve_args))
    launcher = "import sys; from aura_actors.cli import main; sys.exit(main())"
    return ServerSpec("aura", (sys.executable, "-c", launcher, *serve_args))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerFailed(RuntimeError):
    """The server under test did not come up (its log's tail is in the message)."""


@dataclass(slots=True)
class RunningServer:
    """A started server: its process, port and log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        """The server process's id (what ``/proc`` is read for)."""
        return self.process.pid

    def log_tail(self, size: int = 2000) -> str:
        """The end of the server's output."""
        return self.log_path.read_bytes()[-size:].decode(errors="replace")


def healthy(port: int) -> bool:
    """Whether the server on ``port`` answers ``/api/health`` with 200 (within a second)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running(
    spec: ServerSpec, max_jobs: int, *, cpu: int | None = None, timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Start ``spec`` on a free port, wait for ``/api/health``, stop it (SIGINT) on exit.

    With ``cpu`` set, the server is pinned to that core (the load runs on another).
    """
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name}-"))
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            spec.command(port, max_jobs, data_dir / "data"),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    server = RunningServer(spec.name, process, port, log_path)
    try:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, {cpu})
        deadline = time.monotonic() + timeout
        while not healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServerFailed(f"{spec.name} did not come up:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
