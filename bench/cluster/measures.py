"""The cluster's measures that drive a stream themselves: a dead worker, and throughput."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from typing import Any

import trio

from bench.cluster.nodes import Cluster
from bench.http.loadgen import create_job, create_jobs
from bench.http.wire import SseEvent, SseStream, open_sse, request

HOST = "127.0.0.1"
#: A job that runs until it is cancelled (or its worker dies).
LONG_JOB = {"stages": 1, "ticks": 100_000, "tickSeconds": 0.05}


class EventReader:
    """A stream's events one at a time: what one read brought past a wanted event waits
    for the next :meth:`until` (a ``warning`` and a ``job-status`` often come in one read)."""

    def __init__(self, stream: SseStream) -> None:
        self.stream = stream
        self._pending: deque[SseEvent] = deque()

    async def until(self, *types: str) -> str:
        """Read until an event of one of ``types``; return its type ("" at the stream's end)."""
        while self._pending or not self.stream.closed:
            if not self._pending:
                self._pending.extend(await self.stream.receive())
                continue
            event = self._pending.popleft()
            if event.event in types:
                return event.event
        return ""


async def run_probe_job(port: int) -> None:
    """One short job through the cluster, to its end: the workers claim (warm-up)."""
    job_id = await create_job(port, {"stages": 1, "ticks": 1, "tickSeconds": 0})
    stream = await open_sse(HOST, port, f"/api/jobs/{job_id}/events")
    async with stream.stream:
        if await EventReader(stream).until("job-completed") != "job-completed":
            raise RuntimeError(f"probe job {job_id} did not complete")


async def dead_worker_once(nodes: Cluster) -> dict[str, Any]:
    """Kill the worker running a job (SIGKILL); time until the job's stream says it runs again.

    Returns the seconds from the kill to the ``warning`` that starts the next
    attempt, and to ``job-status`` Running after it.
    """
    port = nodes.api.port
    job_id = await create_job(port, LONG_JOB)
    stream = await open_sse(HOST, port, f"/api/jobs/{job_id}/events")
    # Bounded: a cluster that never notices the death fails the measure, it does not hang.
    with trio.fail_after(30 + 10 * nodes.worker_timeout):
        async with stream.stream:
            return await _kill_and_watch(nodes, job_id, stream)


async def _kill_and_watch(nodes: Cluster, job_id: str, stream: SseStream) -> dict[str, Any]:
    port = nodes.api.port
    events = EventReader(stream)
    await events.until("step-progress")
    holder = (await request(HOST, port, "GET", f"/api/jobs/{job_id}")).json()["node"]
    victim = next(node for node in nodes.workers if node.name == holder)
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait()
    nodes.workers.remove(victim)
    if await events.until("warning") != "warning":
        raise RuntimeError(f"job {job_id}: no warning after its worker died")
    warned = time.monotonic() - killed_at
    await events.until("job-status")
    running = time.monotonic() - killed_at
    await request(HOST, port, "POST", f"/api/jobs/{job_id}/cancel")
    return {"job": job_id, "victim": holder, "warning_s": warned, "running_again_s": running}


async def throughput(nodes: Cluster, jobs: int, ticks: int) -> dict[str, Any]:
    """Submit ``jobs`` busy jobs (``ticks`` ticks of no sleep) at once; time them all to done.

    The end of each job is read on ``/api/events`` (every job; auth is off).
    """
    port = nodes.api.port
    stream = await open_sse(HOST, port, "/api/events")
    with trio.fail_after(120 + jobs * ticks / 100):
        async with stream.stream:
            began = time.monotonic()
            params = {"stages": 1, "ticks": ticks, "tickSeconds": 0}
            done = await _run_jobs(port, stream, jobs, params)
            seconds = time.monotonic() - began
    if done < jobs:
        raise RuntimeError(f"throughput: only {done} of {jobs} jobs completed")
    return {
        "jobs": jobs,
        "ticks": ticks,
        "seconds": seconds,
        "jobs_per_second": jobs / seconds,
        "ticks_per_second": jobs * ticks / seconds,
    }


async def _run_jobs(port: int, stream: SseStream, jobs: int, params: dict[str, Any]) -> int:
    """Submit ``jobs`` jobs while counting ``job-completed`` on ``stream``; the count at the end."""
    done = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(create_jobs, port, jobs, params)
        while done < jobs and not stream.closed:
            events = await stream.receive()
            done += sum(1 for event in events if event.event == "job-completed")
    return done
