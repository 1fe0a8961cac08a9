"""Workers that die, pause or stop, as real processes on one Redis prefix (contract section 8).

- SIGKILL of a worker running a job: within ``--worker-timeout`` another worker's
  reaper takes it over and runs it again (its stream: ``warning``, then
  ``job-status`` Running) while attempts remain, else it ends Failed ``worker_lost``.
- SIGSTOP of a worker running a job until it is taken over, then SIGCONT: it never
  writes to that job again (the stream shows only the new holder's run, no
  ``job-cancelled`` of the old one) and its actor is cancelled.
- SIGTERM drain: a worker lets a short job finish and exits 0; with a job longer
  than ``--drain-seconds`` it hands it back (another worker runs it) and exits 0.

Every wait is on a stream's events, a process's exit or a log line, bounded.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import httpx
import trio
from support.redis import SHARED_URL
from support.servers import ServerProcess, server_process
from support.streams import (
    Ev,
    SseStream,
    assert_strictly_increasing,
    create_job,
    open_sse,
    read_sse,
)

from aura_actors.cluster import KeyLayout

#: Seconds a worker may go without a heartbeat here (short: the tests wait for it).
TIMEOUT = "1"


def _job(ticks: int, tick_seconds: float) -> dict[str, Any]:
    return {
        "pipeline": "synthetic",
        "params": {"stages": 1, "ticks": ticks, "tickSeconds": tick_seconds},
    }


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

    async def client(self) -> httpx.AsyncClient:
        api = self.api_node = await self.node("api", "api-1")
        self.api = await self.stack.enter_async_context(
            httpx.AsyncClient(base_url=api.url, timeout=30)
        )
        return self.api

    async def snapshot(self, job: str) -> dict[str, Any]:
        assert self.api is not None
        answer: dict[str, Any] = (await self.api.get(f"/api/jobs/{job}")).json()
        return answer


@asynccontextmanager
async def cluster(tmp_path: Path, prefix: str) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        yield Cluster(stack, tmp_path / "data", prefix)


async def _running(stream: SseStream) -> list[Ev]:
    """The job's events until its stage reports progress (its actor is running)."""
    return await stream.until(lambda event: event.event == "step-progress")


async def _until_running(api: httpx.AsyncClient, job: str) -> list[Ev]:
    """The job's events until it runs (its stream closed then: starting a process inside
    it would interleave the test's context managers)."""
    with trio.fail_after(30):
        async with open_sse(api, f"/api/jobs/{job}/events") as stream:
            return await _running(stream)


async def _resumed(api: httpx.AsyncClient, job: str, seen: list[Ev]) -> list[Ev]:
    """The job's events after ``seen`` (resumed with ``Last-Event-ID``) to its end."""
    headers = {"Last-Event-ID": str(seen[-1].id)}
    with trio.fail_after(60):
        return await read_sse(api, f"/api/jobs/{job}/events", headers=headers)


def _rerun(events: Sequence[Ev]) -> int:
    """The index of the ``warning`` that opens a run again (followed by Running)."""
    for index, event in enumerate(events[:-1]):
        after = events[index + 1]
        if event.event == "warning" and "running again" in event.data["message"]:
            assert after.event == "job-status" and after.data["status"] == "Running"
            return index
    raise AssertionError(f"no run again in {[e.event for e in events]}")


async def _exits_0(server: ServerProcess, seconds: float = 30) -> None:
    with trio.fail_after(seconds):
        code = await server.wait()
    assert code == 0, server.stderr.decode(errors="replace")[-3000:]


async def test_a_killed_workers_job_runs_again_on_another_worker(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1", "--max-attempts", "2")
        job = await create_job(api, _job(ticks=30, tick_seconds=0.1))
        first = await _until_running(api, job)
        # Killed first, then w-2 started: w-1 cannot end the job while w-2 starts, and
        # w-2's reaper takes it over once w-1's heartbeat has expired.
        w1.send_signal(signal.SIGKILL)
        await nodes.node("worker", "w-2", "--max-attempts", "2")
        events = first + await _resumed(api, job, first)
        assert_strictly_increasing(events)
        again = _rerun(events)
        assert events[again].data["message"] == "running again (attempt 2)"
        assert events[-1].event == "job-completed", [e.event for e in events]
        assert [e.event for e in events].count("job-completed") == 1
        snapshot = await nodes.snapshot(job)
        assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-2", 2)


async def test_a_killed_workers_job_with_no_attempt_left_ends_worker_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1")  # --max-attempts 1
        job = await create_job(api, _job(ticks=1, tick_seconds=600))
        with trio.fail_after(30):
            async with open_sse(api, f"/api/jobs/{job}/events") as stream:
                first = await stream.until(lambda event: event.event == "step-status")
        w1.send_signal(signal.SIGKILL)
        await nodes.node("worker", "w-2")
        rest = await _resumed(api, job, first)
        assert rest[-1].event == "job-failed", [e.event for e in rest]
        assert rest[-1].data["errors"][0]["code"] == "worker_lost"
        assert "w-1" in rest[-1].data["errors"][0]["message"]
        assert "warning" not in {e.event for e in rest}
        assert (await nodes.snapshot(job))["status"] == "Failed"


async def test_a_paused_worker_never_writes_to_the_job_taken_from_it(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1", "--max-attempts", "2")
        job = await create_job(api, _job(ticks=30, tick_seconds=0.1))
        first = await _until_running(api, job)
        w1.send_signal(signal.SIGSTOP)
        await nodes.node("worker", "w-2", "--max-attempts", "2")
        headers = {"Last-Event-ID": str(first[-1].id)}
        with trio.fail_after(60):
            async with open_sse(api, f"/api/jobs/{job}/events", headers=headers) as stream:
                try:
                    taken = await stream.until(
                        lambda event: (
                            event.event == "job-status"
                            and event.data["status"] == "Running"
                            and event.data["previousStatus"] == "Running"
                        )
                    )
                finally:
                    w1.send_signal(signal.SIGCONT)
                # The resumed worker's next write is refused: its actor is cancelled.
                await _logged(w1, "job taken from this worker: cancelling its actor")
                events = first + stream.received + await stream.rest()
        assert taken[-1].data["previousStatus"] == "Running"
        again = _rerun(events)
        after = events[again:]
        assert events[-1].event == "job-completed", [e.event for e in events]
        assert "job-cancelled" not in {e.event for e in events}
        # From the takeover on, one run: its progress goes 1, 2, ... 30, never back.
        ticks = [e.data["currentItem"] for e in after if e.event == "step-progress"]
        assert ticks == sorted(ticks) and ticks[-1] == 30, ticks
        assert_strictly_increasing(events)
        snapshot = await nodes.snapshot(job)
        assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-2", 2)
        w1.send_signal(signal.SIGTERM)
        await _exits_0(w1)


async def _logged(server: ServerProcess, message: str, seconds: float = 20) -> None:
    """Wait until ``server`` logs ``message`` (nothing else tells: polled, bounded)."""
    with trio.move_on_after(seconds):
        while not any(line.get("msg") == message for line in server.log_lines()):  # noqa: ASYNC110
            await trio.sleep(0.05)
        return
    raise AssertionError(f"{message!r} not logged: {server.stderr.decode()[-4000:]}")


async def test_sigterm_lets_a_short_job_finish_then_the_worker_exits_0(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1", "--drain-seconds", "30")
        job = await create_job(api, _job(ticks=10, tick_seconds=0.1))
        with trio.fail_after(60):
            async with open_sse(api, f"/api/jobs/{job}/events") as stream:
                await _running(stream)
                w1.send_signal(signal.SIGTERM)
                rest = await stream.rest()
            await _exits_0(w1)
        assert rest[-1].event == "job-completed", [e.event for e in rest]
        assert "warning" not in {e.event for e in rest}
        snapshot = await nodes.snapshot(job)
        assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-1", 1)


async def test_sigterm_hands_a_long_job_back_within_the_drain_and_exits_0(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1", "--drain-seconds", "1", "--max-attempts", "2")
        job = await create_job(api, _job(ticks=30, tick_seconds=0.1))
        first = await _until_running(api, job)
        w1.send_signal(signal.SIGTERM)
        await _exits_0(w1)
        # Handed back: queued again, no one holds it until a worker claims it (not left
        # to a reaper: w-1 holds it no more).
        assert (await nodes.snapshot(job))["status"] == "Running"
        async with coredis.Redis.from_url(SHARED_URL, decode_responses=True) as client:
            held = await client.hmget(KeyLayout(prefix).job(job), ["worker", "attempt"])
            assert list(held) == [None, "1"]
            assert await client.zrange(KeyLayout(prefix).queued, 0, -1) == (job,)
        await nodes.node("worker", "w-2", "--max-attempts", "2")
        events = first + await _resumed(api, job, first)
        again = _rerun(events)
        assert events[-1].event == "job-completed", [e.event for e in events]
        assert "job-cancelled" not in {e.event for e in events}
        ticks = [e.data["currentItem"] for e in events[again:] if e.event == "step-progress"]
        assert ticks == sorted(ticks) and ticks[-1] == 30, ticks
        snapshot = await nodes.snapshot(job)
        assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-2", 2)


async def test_sigterm_on_an_api_node_ends_its_streams_and_the_job_goes_on(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        other = await nodes.node("api", "api-2")
        two = await nodes.stack.enter_async_context(
            httpx.AsyncClient(base_url=other.url, timeout=30)
        )
        await nodes.node("worker", "w-1")
        api_1 = nodes.api_node
        assert api_1 is not None
        job = await create_job(api, _job(ticks=1, tick_seconds=600))  # runs until cancelled
        with trio.fail_after(30):
            async with open_sse(api, f"/api/jobs/{job}/events") as stream:
                seen = await stream.until(lambda event: event.event == "step-status")
                api_1.send_signal(signal.SIGTERM)
                seen += await stream.rest()  # the node ends it: the job cannot have ended
            await _exits_0(api_1)
        assert not seen[-1].is_terminal
        # The job goes on: a client resumes on api-2, and a cancel there ends it.
        headers = {"Last-Event-ID": str(seen[-1].id)}
        with trio.fail_after(30):
            async with open_sse(two, f"/api/jobs/{job}/events", headers=headers) as resumed:
                answer = await two.post(f"/api/jobs/{job}/cancel")
                assert answer.status_code == 202, answer.text
                rest = await resumed.rest()
        assert rest[-1].event == "job-cancelled", [e.event for e in rest]
        assert_strictly_increasing(seen + rest)
