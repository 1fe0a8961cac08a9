"""The cluster the contract tests run against (tests/support/service.py): its load balancer
hands consecutive connections to alternate API nodes, and every node is up."""

from __future__ import annotations

import httpx
import trio
from support.service import ClusterHarness


async def test_consecutive_requests_land_on_alternate_api_nodes(cluster: ClusterHarness) -> None:
    assert cluster.proxy is not None
    backends = list(cluster.proxy.backends)
    before = {backend: cluster.proxy.connections[backend] for backend in backends}
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=cluster.url, limits=limits, timeout=10) as client:
        with trio.fail_after(10):
            for _ in range(6):
                assert (await client.get("/api/health")).status_code == 200
    # (The proxy counts in the cluster's own thread; a read of a Counter is safe.)
    assert {b: cluster.proxy.connections[b] - before[b] for b in backends} == dict.fromkeys(
        backends, 3
    )
