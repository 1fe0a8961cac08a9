"""A first end-to-end check that the support helpers and the server work together."""

from __future__ import annotations

from pathlib import Path

import httpx
from support.servers import run_server, server_process


async def test_in_process_server_creates_and_streams_a_job(tmp_path: Path) -> None:
    async with (
        run_server(data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        created = await client.post(
            "/api/jobs", json={"pipeline": "synthetic", "params": {"ticks": 3, "tickSeconds": 0}}
        )
        assert created.status_code == 202
        job_id = created.json()["id"]
        assert created.headers["location"] == f"/api/jobs/{job_id}"
        async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
            assert response.headers["content-type"] == "text/event-stream"
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert body.startswith(b"retry: 1000\n\n")
        assert b"event: job-completed\n" in body


async def test_server_process_exits_zero_on_sigterm(tmp_path: Path) -> None:
    async with server_process(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/api/health")).json()["status"] == "ok"
        server.send_signal()
        assert await server.wait() == 0
