"""Redis for tests: the shared one at 127.0.0.1:6379 under a unique key prefix, or a
private ``redis-server`` a test may stop, kill and start again.

The shared Redis is the one ``.ci/run`` makes sure answers; each test takes
keys under a prefix of its own and deletes them at the end. A test that takes
Redis down runs its own server (``--save '' --appendonly yes`` in a temporary
dir), on a free port, and stops it when done.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio

from aura_actors.cluster import RedisStorage, open_redis_storage

from .processes import POLL_SECONDS

SHARED_URL = os.environ.get("AURA_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"aura-test-{uuid.uuid4().hex[:12]}:"


async def require_shared_redis() -> None:
    """Skip the test, saying why, when no Redis answers at :data:`SHARED_URL`."""
    try:
        async with coredis.Redis.from_url(SHARED_URL, connect_timeout=2) as client:
            await client.ping()
    except (coredis.exceptions.RedisError, OSError) as exc:
        pytest.skip(f"no Redis at {SHARED_URL} ({exc}); .ci/run starts one")


@asynccontextmanager
async def shared_prefix() -> AsyncIterator[str]:
    """A prefix of the caller's own on the shared Redis, its keys deleted at the end
    (skips the test when no Redis answers there)."""
    await require_shared_redis()
    name = unique_prefix()
    try:
        yield name
    finally:
        with trio.CancelScope(shield=True):
            await delete_prefix(SHARED_URL, name)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the shared Redis, emptied at the end (the
    fixture of the Redis tests; ``conftest.py`` makes it everyone's)."""
    async with shared_prefix() as name:
        yield name


async def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; how many there were."""
    deleted = 0
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            deleted += await client.delete([key])
    return deleted


async def keys_under(url: str, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` and what it holds (a comparable dump)."""
    found: dict[str, object] = {}
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            found[key] = await client.dump(key)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PrivateRedis:
    """A ``redis-server`` of one test, with append-only persistence in ``directory``."""

    directory: Path
    port: int
    process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start it and return once it accepts connections (its log says so)."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH (.ci/run installs it)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        log = self.directory / "redis.log"
        command += ["--appendonly", "yes", "--dir", str(self.directory), "--logfile", str(log)]
        log.write_bytes(b"")
        self.process = await trio.lowlevel.open_process(command, stdout=subprocess.DEVNULL)
        # Nothing tells the test it is ready but its log: look until it says so.
        with trio.fail_after(10):
            while b"Ready to accept connections" not in log.read_bytes():
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {log.read_text()}")
                await trio.sleep(POLL_SECONDS)

    async def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop it (SIGTERM: it writes what it has; SIGKILL: it does not) and wait."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.send_signal(signum)
            with trio.fail_after(10):
                await process.wait()


@asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[PrivateRedis]:
    """A started :class:`PrivateRedis` in ``directory``, stopped at the end."""
    os.makedirs(directory, exist_ok=True)
    server = PrivateRedis(directory, free_port())
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.stop(signal.SIGKILL)


@asynccontextmanager
async def open_store(
    tmp_path: Path, prefix: str, url: str = SHARED_URL, **options: Any
) -> AsyncIterator[RedisStorage]:
    """An opened ``RedisStorage`` on ``url`` under ``prefix``, files in ``tmp_path``."""
    options.setdefault("history_ttl", 3600.0)
    options.setdefault("max_history_events", 10_000)
    options.setdefault("artifacts_dir", tmp_path / "artifacts")
    async with open_redis_storage(url, prefix=prefix, **options) as store:
        await store.open()
        try:
            yield store
        finally:
            await store.aclose()
