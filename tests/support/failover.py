"""A cluster of ``serve`` processes on one Redis prefix and data dir, and a job running on
its worker ``w-1``, for a test to kill, pause or stop that worker and watch the job's
stream on the API node (``test_cluster_failover.py``).

Every wait is bounded, on a stream's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from .redis import SHARED_URL
from .servers import ServerProcess, server_process
from .streams import Ev, SseStream, create_job, open_sse, read_sse

#: Seconds a worker may go without a heartbeat here (short: the tests wait for it).
TIMEOUT = "1"


@dataclass
class Running:
    """A job running on worker ``w-1``, and the events its stream on the API node gave until
    then (that stream closed)."""

    api: httpx.AsyncClient
    job: str
    w1: ServerProcess
    seen: list[Ev]

    def resume(self) -> AbstractAsyncContextManager[SseStream]:
        """The job's stream on the API node again, after ``seen`` (``Last-Event-ID``)."""
        return open_sse(self.api, self._events, headers=self._after_seen)

    async def rest(self) -> list[Ev]:
        """The job's events after ``seen``, to its end."""
        with trio.fail_after(60):
            return await read_sse(self.api, self._events, headers=self._after_seen)

    @property
    def _events(self) -> str:
        return f"/api/jobs/{self.job}/events"

    @property
    def _after_seen(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.seen[-1].id)}


class Cluster:
    """One API node and the workers a test starts, on one prefix and data dir."""

    def __init__(self, stack: AsyncExitStack, data_dir: Path, prefix: str) -> None:
        self.stack = stack
        self.data_dir = data_dir
        self.common = ["--redis", SHARED_URL, "--redis-prefix", prefix, "--log-format", "json"]
        self.common += ["--worker-timeout", TIMEOUT]
        self.api: httpx.AsyncClient | None = None
        self.api_node: ServerProcess | None = None

    async def node(self, role: str, name: str, *extra: str) -> ServerProcess:
        args = [*self.common, "--role", role, "--node-name", name, *extra]
        return await self.stack.enter_async_context(server_process(self.data_dir, args))

    async def client_of(self, server: ServerProcess) -> httpx.AsyncClient:
        """An HTTP client of ``server``, closed with the cluster."""
        return await self.stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, timeout=30)
        )

    async def client(self) -> httpx.AsyncClient:
        """Start the API node ``api-1``: a client of it."""
        self.api_node = await self.node("api", "api-1")
        self.api = await self.client_of(self.api_node)
        return self.api

    async def snapshot(self, job: str) -> dict[str, Any]:
        assert self.api is not None
        answer: dict[str, Any] = (await self.api.get(f"/api/jobs/{job}")).json()
        return answer

    async def running_on_w1(
        self, job: dict[str, Any], *flags: str, until: str = "step-progress"
    ) -> Running:
        """Start the API node and worker ``w-1`` (with ``flags``), post ``job``, and read
        its stream until its first ``until`` event (``step-progress``: its actor runs).

        The stream is closed then: starting a process inside it would interleave the
        test's context managers.
        """
        api = await self.client()
        w1 = await self.node("worker", "w-1", *flags)
        job_id = await create_job(api, job)
        with trio.fail_after(30):
            async with open_sse(api, f"/api/jobs/{job_id}/events") as stream:
                seen = await stream.until(lambda event: event.event == until)
        return Running(api, job_id, w1, seen)

    async def take_over(self, run: Running, signum: int, *flags: str) -> ServerProcess:
        """Send ``run``'s worker w-1 ``signum``, then start worker w-2 (with ``flags``).

        In that order, w-1 (killed or paused) cannot end the job while w-2 starts, and
        w-2's reaper takes the job over once w-1's heartbeat has expired.
        """
        run.w1.send_signal(signum)
        return await self.node("worker", "w-2", *flags)


@asynccontextmanager
async def cluster(tmp_path: Path, prefix: str) -> AsyncIterator[Cluster]:
    """A :class:`Cluster` whose nodes are stopped when the block ends."""
    async with AsyncExitStack() as stack:
        yield Cluster(stack, tmp_path / "data", prefix)
