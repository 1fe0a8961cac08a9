"""Failures of API nodes and of Redis, with real processes (contract sections 7 and 8).

- An API node SIGKILLed right after it answered 202: the job is stored and runs;
  the other API node serves its whole stream.
- An API node SIGTERMed while streams are open: its streams end cleanly, it exits 0,
  the clients resume through the load balancer on the other API node exactly
  (``Last-Event-ID``), the streams on the other node never notice, the jobs go on.
- Redis killed and started again mid-stream (a private ``redis-server`` with
  ``appendonly yes``): a stream stays open, or its client resumes, and it goes on once
  Redis is back; ``POST /api/jobs`` answers 503 ``storage_unavailable`` meanwhile;
  nothing acknowledged is lost.

(Worker deaths and drain are another part of the cluster: not here.)
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.proxy import RoundRobinProxy
from support.redis import SHARED_URL, private_redis, shared_prefix
from support.servers import ServerProcess, server_process
from support.streams import (
    Ev,
    assert_strictly_increasing,
    compact_progress,
    create_job,
    open_sse,
    read_sse,
    summary,
)

#: A job that takes a second or so.
STEPPING = {"pipeline": "synthetic", "params": {"stages": 3, "ticks": 5, "tickSeconds": 0.05}}
#: A job that reports progress every 50 ms until it is cancelled.
PROGRESSING = {
    "pipeline": "synthetic",
    "params": {"stages": 1, "ticks": 100_000, "tickSeconds": 0.05},
}
QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}


@asynccontextmanager
async def nodes(
    data_dir: Path, redis_url: str, prefix: str, roles: Sequence[tuple[str, str]]
) -> AsyncIterator[dict[str, ServerProcess]]:
    """``serve`` processes of the given ``(name, role)`` on one prefix and data dir."""
    common = ["--redis", redis_url, "--redis-prefix", prefix, "--log-format", "json"]
    async with AsyncExitStack() as stack:
        started = {}
        for name, role in roles:
            args = [*common, "--role", role, "--node-name", name]
            started[name] = await stack.enter_async_context(server_process(data_dir, args))
        yield started


API_API_WORKER = (("api-1", "api"), ("api-2", "api"), ("w-1", "worker"))


async def stop(server: ServerProcess) -> None:
    """SIGTERM; it must exit 0."""
    server.send_signal(signal.SIGTERM)
    with trio.fail_after(30):
        code = await server.wait()
    assert code == 0, server.stderr.decode(errors="replace")[-2000:]


def assert_whole(seen: list[Ev], history: list[Ev]) -> None:
    """What a client saw over all its connections is the job's history: no gap, no
    duplicate, nothing out of order; only intermediate progress may differ."""
    assert_strictly_increasing(seen)
    assert len({e.id for e in seen}) == len(seen)
    assert [e.triple() for e in compact_progress(seen)] == [
        e.triple() for e in compact_progress(history)
    ], (summary(compact_progress(seen)), summary(compact_progress(history)))


async def test_an_api_node_killed_right_after_a_202_leaves_the_job_stored_and_running(
    tmp_path: Path,
) -> None:
    async with (
        shared_prefix() as prefix,
        nodes(tmp_path / "data", SHARED_URL, prefix, API_API_WORKER) as cluster,
        httpx.AsyncClient(base_url=cluster["api-1"].url, timeout=30) as one,
        httpx.AsyncClient(base_url=cluster["api-2"].url, timeout=30) as two,
    ):
        with trio.fail_after(60):
            # Posts in flight at once; api-1 is killed as soon as the first is answered.
            acknowledged: list[str] = []

            async def post() -> None:
                try:
                    created = await one.post("/api/jobs", json=STEPPING)
                except httpx.TransportError:
                    return  # cut by the kill: never acknowledged, may or may not exist
                assert created.status_code == 202, created.text
                acknowledged.append(created.json()["id"])
                cluster["api-1"].send_signal(signal.SIGKILL)

            async with trio.open_nursery() as posting:
                for _ in range(8):
                    posting.start_soon(post)
            assert await cluster["api-1"].wait() == -signal.SIGKILL
            assert acknowledged

            for job_id in acknowledged:  # every acknowledged job is stored and runs
                events = await read_sse(two, f"/api/jobs/{job_id}/events")
                assert events[0].data["status"] == "Queued", summary(events)
                assert events[-1].event == "job-completed", summary(events)
                assert_strictly_increasing(events)
                steps = [e for e in events if e.event == "step-status"]
                assert len(steps) == 2 * 3, summary(events)
                snapshot = (await two.get(f"/api/jobs/{job_id}")).json()
                assert (snapshot["status"], snapshot["node"]) == ("Done", "w-1")
                assert snapshot["lastEventId"] == events[-1].id
            for name in ("api-2", "w-1"):
                await stop(cluster[name])


async def _follow_through_a_restart(
    client: httpx.AsyncClient,
    job_id: str,
    seen: list[Ev],
    *,
    live: trio.Event,
    cut_off: trio.Event,
    may_resume: trio.Event,
    flowing: trio.Event,
) -> int:
    """Follow ``job_id``: set ``live`` at its first progress; if the stream ends before the
    job does, wait for ``may_resume`` and resume after the last id seen; set ``flowing``
    at the first progress after ``cut_off``. The number of connections it took."""
    path = f"/api/jobs/{job_id}/events"
    connections = 0
    while not (seen and seen[-1].is_terminal):
        headers = {"Last-Event-ID": seen[-1].id or ""} if seen else {}
        if seen:
            await may_resume.wait()
        connections += 1
        async with open_sse(client, path, headers=headers) as stream:
            assert stream.response.status_code == 200, stream.response.text
            async for event in stream.events:
                seen.append(event)
                if event.event == "step-progress":
                    live.set()
                    if cut_off.is_set():
                        flowing.set()
    return connections


async def test_an_api_node_stopped_ends_its_streams_and_their_clients_resume_on_the_other(
    tmp_path: Path,
) -> None:
    async with (
        shared_prefix() as prefix,
        nodes(tmp_path / "data", SHARED_URL, prefix, API_API_WORKER) as cluster,
        trio.open_nursery() as nursery,
    ):
        proxy = RoundRobinProxy([cluster["api-1"].url, cluster["api-2"].url])
        await nursery.start(proxy.serve)
        balanced = httpx.AsyncClient(
            base_url=proxy.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        async with balanced as client:
            jobs = [await create_job(client, PROGRESSING) for _ in range(4)]
            seen: dict[str, list[Ev]] = {job_id: [] for job_id in jobs}
            connections: dict[str, int] = {}
            cut_off, api_1_gone = trio.Event(), trio.Event()
            flowing = {job_id: trio.Event() for job_id in jobs}

            async def follow(job_id: str, live: trio.Event) -> None:
                connections[job_id] = await _follow_through_a_restart(
                    client,
                    job_id,
                    seen[job_id],
                    live=live,
                    cut_off=cut_off,
                    may_resume=api_1_gone,
                    flowing=flowing[job_id],
                )

            with trio.fail_after(60):
                async with trio.open_nursery() as readers:
                    for job_id in jobs:  # one after the other: they alternate between nodes
                        live = trio.Event()
                        readers.start_soon(follow, job_id, live)
                        await live.wait()
                    cut_off.set()
                    await stop(cluster["api-1"])
                    api_1_gone.set()
                    for job_id in jobs:
                        await flowing[job_id].wait()
                        answer = await client.get(f"/api/jobs/{job_id}")
                        assert answer.json()["status"] == "Running", "the job went on"
                    for job_id in jobs:
                        assert (await client.post(f"/api/jobs/{job_id}/cancel")).status_code == 202
            # Two streams were on api-1: each ended and resumed on api-2; the two on api-2
            # never ended early.
            assert sorted(connections.values()) == [1, 1, 2, 2], connections
            for job_id in jobs:
                history = await read_sse(client, f"/api/jobs/{job_id}/events")
                assert history[-1].event == "job-cancelled"
                assert_whole(seen[job_id], history)
        nursery.cancel_scope.cancel()
    assert proxy.connections[cluster["api-2"].url] > proxy.connections[cluster["api-1"].url]


async def _health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/health")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_redis_restarted_mid_stream_streams_go_on_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    async with (
        private_redis(tmp_path / "redis") as redis,
        nodes(tmp_path / "data", redis.url, "aura-failures", API_API_WORKER) as cluster,
        httpx.AsyncClient(base_url=cluster["api-1"].url, timeout=30) as one,
        httpx.AsyncClient(base_url=cluster["api-2"].url, timeout=30) as two,
    ):
        finished = await create_job(two, QUICK)
        before = await read_sse(one, f"/api/jobs/{finished}/events")
        running = await create_job(two, PROGRESSING)
        seen: list[Ev] = []
        live, cut_off, back, flowing = trio.Event(), trio.Event(), trio.Event(), trio.Event()
        with trio.fail_after(90):
            async with trio.open_nursery() as readers:

                async def follow() -> None:
                    await _follow_through_a_restart(
                        one,
                        running,
                        seen,
                        live=live,
                        cut_off=cut_off,
                        may_resume=back,
                        flowing=flowing,
                    )

                readers.start_soon(follow)
                await live.wait()
                last_acknowledged = await create_job(two, STEPPING)
                await redis.stop(signal.SIGKILL)
                cut_off.set()

                refused = await two.post("/api/jobs", json=QUICK)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "storage_unavailable"
                code, body = await _health(two)
                assert (code, body["status"]) == (503, "degraded"), body

                await redis.start()
                for client in (one, two):  # each node notices by itself (5 s at most)
                    while (await _health(client))[0] != 200:  # noqa: ASYNC110 - polled
                        await trio.sleep(0.05)
                back.set()
                await flowing.wait()
                assert (await two.post(f"/api/jobs/{running}/cancel")).status_code == 202

            # The stream went on to the job's end; nothing it saw was lost by Redis.
            history = await read_sse(two, f"/api/jobs/{running}/events")
            assert history[-1].event == "job-cancelled"
            assert_whole(seen, history)
            assert await read_sse(two, f"/api/jobs/{finished}/events") == before
            late = await read_sse(one, f"/api/jobs/{last_acknowledged}/events")
            assert late[0].data["status"] == "Queued" and late[-1].event == "job-completed"
            fresh = await create_job(one, QUICK)
            assert (await read_sse(two, f"/api/jobs/{fresh}/events"))[-1].is_terminal
        for server in cluster.values():
            await stop(server)


pytestmark = pytest.mark.timeout(180)
