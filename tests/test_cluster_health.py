"""What a cluster's node says about the cluster's jobs: ``/api/health`` and the gauges.

An API node holds no jobs, so its own counts would say nothing runs while the
workers are busy: on a cluster's node, health's ``jobs`` and the
``aura_running_jobs`` / ``aura_queue_depth`` gauges are the whole cluster's
(the store's counts), and health's ``node`` says what the node holds itself.
If the counts cannot be read, the node's own stand in and health still answers.

In-process servers (an ``api`` node, and a one-slot ``worker``) on one prefix
of the shared Redis, in one trio run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.cluster import WAITING as WAITING_PARAMS
from support.cluster import server_node
from support.servers import InProcessServer
from support.streams import create_job, open_sse, read_sse

from aura_actors.runtime import Runtime, StorageUnavailable

#: A job that sits in its first tick until cancelled.
WAITING = {"pipeline": "synthetic", "params": WAITING_PARAMS}


async def health(client: httpx.AsyncClient, status: int = 200) -> dict[str, Any]:
    response = await client.get("/api/health")
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def gauges(client: httpx.AsyncClient) -> tuple[float, float]:
    """(``aura_running_jobs``, ``aura_queue_depth``) from ``/metrics``."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    values = []
    for name in ("aura_running_jobs", "aura_queue_depth"):
        match = re.search(rf"^{name} ([0-9.e+-]+)$", response.text, re.MULTILINE)
        assert match is not None, response.text
        values.append(float(match.group(1)))
    return values[0], values[1]


def runtime_of(server: InProcessServer) -> Runtime:
    assert server.runtime is not None
    return server.runtime


async def test_health_and_gauges_count_the_jobs_of_the_whole_cluster(
    tmp_path: Path, prefix: str
) -> None:
    async with (
        server_node(tmp_path, prefix, "api", "api-1") as api,
        server_node(tmp_path, prefix, "worker", "w-1", max_concurrent_jobs=1) as worker,
        httpx.AsyncClient(base_url=api.url, timeout=10) as client,
        httpx.AsyncClient(base_url=worker.url, timeout=10) as bare,
    ):
        body = await health(client)
        assert body["jobs"] == {"running": 0, "queued": 0, "total": 0}
        assert body["node"] == {"name": "api-1", "role": "api", "running": 0, "queued": 0}
        with trio.fail_after(20):
            ids = [await create_job(client, WAITING) for _ in range(3)]
            # The worker's one slot takes the oldest; the other two wait for it.
            async with open_sse(client, f"/api/jobs/{ids[0]}/events") as stream:
                await stream.until(lambda e: e.event == "step-status")
            cluster_wide = {"running": 1, "queued": 2, "total": 3}
            body = await health(client)
            assert body["jobs"] == cluster_wide
            assert body["node"] == {"name": "api-1", "role": "api", "running": 0, "queued": 0}
            assert await gauges(client) == (1, 2)
            # The worker says the same of the cluster, and that the running job is its own.
            body = await health(bare)
            assert body["jobs"] == cluster_wide
            assert body["node"] == {"name": "w-1", "role": "worker", "running": 1, "queued": 0}
            assert await gauges(bare) == (1, 2)

            for job_id in ids:
                assert (await client.post(f"/api/jobs/{job_id}/cancel")).status_code == 202
            for job_id in ids:
                assert (await read_sse(client, f"/api/jobs/{job_id}/events"))[-1].is_terminal
            for node in (client, bare):
                assert (await health(node))["jobs"] == {"running": 0, "queued": 0, "total": 3}
                assert await gauges(node) == (0, 0)


async def test_a_node_that_cannot_read_the_counts_reports_its_own_and_stays_up(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        server_node(tmp_path, prefix, "api", "api-1") as api,
        httpx.AsyncClient(base_url=api.url, timeout=10) as client,
    ):
        runtime = runtime_of(api)
        with trio.fail_after(20):
            for _ in range(2):  # no worker: they wait
                await create_job(client, WAITING)
            assert (await health(client))["jobs"] == {"running": 0, "queued": 2, "total": 2}
            assert await gauges(client) == (0, 2)

            reads = 0

            async def failing() -> dict[tuple[str, str], int]:
                nonlocal reads
                reads += 1
                raise StorageUnavailable("Redis: cannot count jobs: ConnectionError")

            monkeypatch.setattr(runtime.storage, "count_jobs", failing)
            # The node's own counts stand in (an API node holds no jobs).
            own = {"running": 0, "queued": 0, "total": 2}
            body = await health(client)
            assert (body["status"], body["jobs"]) == ("ok", own)
            assert body["node"] == {"name": "api-1", "role": "api", "running": 0, "queued": 0}
            assert await gauges(client) == (0, 0)
            assert reads == 2  # one per request

            # While the runtime knows its storage fails, health does not even try.
            runtime.broadcaster.storage_error = StorageUnavailable("Redis: gone")
            try:
                body = await health(client, 503)
            finally:
                runtime.broadcaster.storage_error = None
            assert (body["status"], body["jobs"]) == ("degraded", own)
            assert reads == 2
