"""The processes of one cluster measure: a private Redis and aura-actors nodes on it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster.plan import ClusterPlan
from bench.http.server import free_port, healthy
from bench.progress import ROOT

#: Seconds a node or Redis gets to come up.
START_TIMEOUT = 30.0


class NodeFailed(RuntimeError):
    """A node or Redis did not come up (the log's tail is in the message)."""


@dataclass(slots=True)
class Node:
    """One started ``aura-actors serve`` process."""

    role: str
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        """The node's process id."""
        return self.process.pid

    def log_tail(self, size: int = 2000) -> str:
        """The end of the node's output."""
        return self.log_path.read_bytes()[-size:].decode(errors="replace")


@dataclass(slots=True)
class Cluster:
    """The nodes on one Redis and key prefix, sharing one data dir."""

    redis_url: str
    prefix: str
    data_dir: Path
    worker_timeout: float
    max_jobs: int
    apis: list[Node] = field(default_factory=list)
    workers: list[Node] = field(default_factory=list)
    #: Nodes started so far (each node's name takes the next number).
    started: int = 0

    @property
    def api(self) -> Node:
        """The first API node (where the load goes)."""
        return self.apis[0]

    def start(self, role: str) -> Node:
        """Start one more node of ``role`` (``api`` or ``worker``); wait until it is up."""
        nodes = self.apis if role == "api" else self.workers
        self.started += 1  # names are never reused: a killed node's lock may still be held
        name = f"{role}-{self.started}"
        port = free_port()
        log_path = self.data_dir / f"{name}.log"
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
            str(self.data_dir / "data"),
            "--redis",
            self.redis_url,
            "--redis-prefix",
            self.prefix,
            "--role",
            role,
            "--node-name",
            name,
            "--max-concurrent-jobs",
            str(self.max_jobs),
            "--max-queued-jobs",
            str(self.max_jobs),
            "--worker-timeout",
            str(self.worker_timeout),
            # A job whose worker dies runs again (the measure times that).
            "--max-attempts",
            "2",
        ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
            )
        node = Node(role, name, process, port, log_path)
        nodes.append(node)
        _wait_until(lambda: _ready(node), process, lambda: node.log_tail(), name)
        return node

    def stop(self, node: Node, sig: int = signal.SIGINT) -> None:
        """Stop ``node`` with ``sig`` and wait for it (killing it after 10 s)."""
        _stop(node.process, sig)


def _ready(node: Node) -> bool:
    """Every role answers ``/api/health`` (a worker serves it and ``/metrics`` only)."""
    return healthy(node.port)


def _wait_until(ready: object, process: subprocess.Popen[bytes], tail: object, what: str) -> None:
    assert callable(ready) and callable(tail)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise NodeFailed(f"{what} did not come up:\n{tail()}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private ``redis-server`` on a free port, keeping nothing on disk; stopped at exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise NodeFailed("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    with open(workdir / "redis.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_until(
            lambda: _pings(port),
            process,
            lambda: (workdir / "redis.log").read_text(errors="replace")[-2000:],
            "redis-server",
        )
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        _stop(process, signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def cluster(redis_url: str, plan: ClusterPlan, *, apis: int, workers: int) -> Iterator[Cluster]:
    """``apis`` API nodes and ``workers`` workers on a fresh key prefix; all stopped at exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    nodes = Cluster(redis_url, prefix, data_dir, plan.worker_timeout, plan.max_jobs)
    try:
        for _ in range(workers):
            nodes.start("worker")
        for _ in range(apis):
            nodes.start("api")
        yield nodes
    finally:
        for node in [*nodes.apis, *nodes.workers]:
            _stop(node.process, signal.SIGINT)
        shutil.rmtree(data_dir, ignore_errors=True)
