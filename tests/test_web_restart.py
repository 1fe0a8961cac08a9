"""End to end: the server's job store, across a graceful restart and a crash (SIGKILL)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import trio
from support.servers import ServerProcess, server_process
from trio_websocket import ConnectionClosed, open_websocket_url

VIDEO = {"pipeline": "video", "params": {"topic": "Tides", "durationSeconds": 5, "speed": 1000}}
#: A job that sits in its first tick until cancelled (or the server stops).
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}


async def run_to_the_end(client: httpx.AsyncClient, job_id: str) -> bytes:
    """The job's whole SSE stream (it ends after the terminal event)."""
    async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        return b"".join([chunk async for chunk in response.aiter_bytes()])


async def wait_until_running(client: httpx.AsyncClient, job_id: str) -> None:
    """Read the job's stream up to its first stage starting."""
    async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if line == "event: step-status":
                return
    raise AssertionError("the stream ended before the job started")


async def websocket_close_code(
    server: ServerProcess, job_id: str, query: str = ""
) -> tuple[int, int]:
    """How many frames the job's WebSocket sends before it closes, and the close code."""
    url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws{query}"
    frames = 0
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            try:
                while True:
                    await ws.get_message()
                    frames += 1
            except ConnectionClosed as closed:
                assert closed.reason is not None
                return frames, closed.reason.code


async def snapshot(server: ServerProcess, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def test_finished_jobs_survive_a_restart_and_a_crash(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    # 1. A finished job and a running one; SIGTERM ends the running one (Canceled).
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            done_id = (await client.post("/api/jobs", json=VIDEO)).json()["id"]
            assert b"event: job-completed" in await run_to_the_end(client, done_id)
            history = await run_to_the_end(client, done_id)  # the stored history's replay
            running_id = (await client.post("/api/jobs", json=WAITING)).json()["id"]
            await wait_until_running(client, running_id)
            done = (await client.get(f"/api/jobs/{done_id}")).json()
        assert done["status"] == "Done" and done["artifacts"]
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0

    # 2. A new process on the same data dir answers for both.
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert await snapshot(server, done_id) == done
            canceled = await snapshot(server, running_id)
            assert canceled["status"] == "Canceled"
            assert canceled["message"] == "canceled: the server is shutting down"
            assert canceled["startedAt"] is not None and canceled["finishedAt"] is not None
            assert canceled["lastEventId"] is not None
            # The history survived: the same events with the same ids, and resume is exact.
            assert await run_to_the_end(client, done_id) == history
            for job_id, job in ((done_id, done), (running_id, canceled)):
                replay = await run_to_the_end(client, job_id)
                assert replay.count(b"\nid: ") + replay.startswith(b"id: ") >= 3
                terminal = {"Last-Event-ID": job["lastEventId"]}
                events = await client.get(f"/api/jobs/{job_id}/events", headers=terminal)
                assert events.status_code == 204, "resumed after the terminal event"
                frames, code = await websocket_close_code(server, job_id)
                assert frames >= 3 and code == 1000
                query = f"?lastEventId={job['lastEventId']}"
                assert await websocket_close_code(server, job_id, query) == (0, 1000)
                refused = await client.post(f"/api/jobs/{job_id}/cancel")
                assert refused.status_code == 409
                assert refused.json()["error"]["code"] == "job_finished"
            listing = (await client.get("/api/jobs")).json()
            assert [job["id"] for job in listing["jobs"]] == [running_id, done_id]
            assert listing["jobs"][1] == done
            first_page = (await client.get("/api/jobs", params={"limit": 1})).json()
            assert [job["id"] for job in first_page["jobs"]] == [running_id]
            next_page = (
                await client.get(
                    "/api/jobs", params={"limit": 1, "cursor": first_page["nextCursor"]}
                )
            ).json()
            assert [job["id"] for job in next_page["jobs"]] == [done_id]
            artifact = done["artifacts"][0]
            download = await client.get(f"/api/jobs/{done_id}/artifacts/{artifact['name']}")
            assert download.status_code == 200 and len(download.content) == artifact["sizeBytes"]

            # 3. It is then killed while a job runs.
            killed_id = (await client.post("/api/jobs", json=WAITING)).json()["id"]
            await wait_until_running(client, killed_id)
            before_kill = await snapshot(server, killed_id)
        # No waiting for a write: what a client saw (Running) is stored already.
        server.send_signal(signal.SIGKILL)
        assert await server.wait() == -signal.SIGKILL

    # 4. The next process says what happened to it.
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            interrupted = await snapshot(server, killed_id)
            assert interrupted["status"] == "Failed"
            assert interrupted["error"]["errors"] == [
                {
                    "code": "interrupted",
                    "message": "the server stopped while the job was running",
                    "remediation": "retry the job",
                }
            ]
            assert interrupted["startedAt"] == before_kill["startedAt"]
            assert interrupted["finishedAt"] is not None
            assert b"event: job-failed" in await run_to_the_end(client, killed_id)
            assert await snapshot(server, done_id) == done
            listing = (await client.get("/api/jobs")).json()
            assert [job["id"] for job in listing["jobs"]] == [killed_id, running_id, done_id]
            # new jobs still run, and their ids come after every id of the old processes
            fresh_id = (await client.post("/api/jobs", json=VIDEO)).json()["id"]
            await run_to_the_end(client, fresh_id)
            fresh = await snapshot(server, fresh_id)
            assert _id(fresh["lastEventId"]) > max(
                _id(job["lastEventId"]) for job in (done, canceled, interrupted)
            )
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0


def _id(text: str) -> tuple[int, int]:
    millis, counter = text.split("-")
    return int(millis), int(counter)
