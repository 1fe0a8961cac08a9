"""Resource abuse, from outside against a server subprocess (issue 11, findings 4 to 8).

Asserted: status codes and error codes, answers staying small, the other user
still served, the server's descriptors back to the baseline; never timings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import trio
from support.abuse import (
    abuse_server,
    as_user,
    body_of,
    connection_from,
    eventually_at_most,
    host_port,
    open_fds,
    raw_connection,
    read_until_closed,
)

LONG_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 1}}
FOREVER = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 3600}}


async def test_one_user_cannot_take_every_slot(tmp_path: Path) -> None:
    """Finding 4: ``--max-jobs-per-user``: 429 ``user_quota_exceeded`` for one, not the other."""
    args = ("--max-jobs-per-user", "2", "--max-concurrent-jobs", "2", "--max-queued-jobs", "50")
    async with abuse_server(tmp_path, *args, auth=True) as (_server, client):
        for _ in range(2):
            assert (await client.post("/api/jobs", json=LONG_JOB)).status_code == 202
        answer = await client.post("/api/jobs", json=LONG_JOB)
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "user_quota_exceeded"
        bob = as_user("token-bob")
        answer = await client.post("/api/jobs", json=LONG_JOB, headers=bob)
        assert answer.status_code == 202, "another user is not held back by alice's quota"


async def test_a_job_cannot_run_for_years(tmp_path: Path) -> None:
    """Finding 4: ``--max-job-seconds``: a job running longer ends Failed ``timeout``."""
    async with abuse_server(tmp_path, "--max-job-seconds", "1") as (_server, client):
        job_id = (await client.post("/api/jobs", json=FOREVER)).json()["id"]
        with trio.fail_after(30):
            async with client.stream("GET", f"/api/jobs/{job_id}/events") as answer:
                async for line in answer.aiter_lines():
                    if line.startswith("data: ") and '"errors"' in line:
                        failed = json.loads(line.removeprefix("data: "))
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        assert job["status"] == "Failed"
        assert [error["code"] for error in failed["errors"]] == ["timeout"]


async def test_a_huge_params_object_gets_a_small_422(tmp_path: Path) -> None:
    """Finding 5: 90k unknown params (a 0.9 MB body) gave a 10 MB answer; now a short one."""
    params = {str(index): 1 for index in range(90_000)}
    body = json.dumps({"pipeline": "synthetic", "params": params}, separators=(",", ":"))
    assert len(body) < 1024 * 1024
    async with abuse_server(tmp_path) as (_server, client):
        answer = await client.post(
            "/api/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422
        assert len(answer.content) < 4096
        # Up to 100 params are read; their problems are listed 20 at most.
        few = {f"unknown{index}": 1 for index in range(99)}
        answer = await client.post("/api/jobs", json={"pipeline": "synthetic", "params": few})
        assert answer.status_code == 422
        assert len(answer.json()["error"]["details"]) == 20
        assert "and 94 more" in answer.json()["error"]["message"]
        assert (await client.get("/api/health")).status_code == 200


async def test_a_replay_storm_leaves_others_served(tmp_path: Path) -> None:
    """Finding 5: replays of a long history are paged; a health check is answered meanwhile."""
    quick = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 5, "tickSeconds": 0}}
    async with abuse_server(tmp_path, "--max-concurrent-jobs", "50") as (_server, client):
        ids = [(await client.post("/api/jobs", json=quick)).json()["id"] for _ in range(60)]
        with trio.fail_after(60):
            for job_id in ids:
                async with client.stream("GET", f"/api/jobs/{job_id}/events") as answer:
                    async for _line in answer.aiter_lines():
                        pass
            counts: list[int] = []

            async def replay() -> None:
                seen = 0
                with trio.move_on_after(20):
                    async with client.stream(
                        "GET", "/api/events", headers={"Last-Event-ID": "0-0"}
                    ) as answer:
                        async for line in answer.aiter_lines():
                            if line.startswith("event: job-completed"):
                                seen += 1
                                if seen == len(ids):
                                    break
                counts.append(seen)

            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(replay)
                assert (await client.get("/api/health")).status_code == 200
        assert counts == [len(ids)] * 6


@pytest.mark.parametrize(
    "limit", ["²", "①", "５", "٣", "1_0", " 5", "+5", "-1", "0x10", "1" * 5000, "9" * 40]
)
async def test_query_numbers_are_ascii_digits_only(tmp_path: Path, limit: str) -> None:
    """Finding 6: ``limit=²`` was a 500, ``５`` was taken as 5: now every one is a 422."""
    async with abuse_server(tmp_path) as (_server, client):
        answer = await client.get("/api/jobs", params={"limit": limit})
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "validation_error"
        assert (await client.get("/api/jobs", params={"limit": "5"})).status_code == 200


async def test_slowloris_is_cut_by_the_header_timeout(tmp_path: Path) -> None:
    """Finding 7: sockets trickling header bytes are closed, their descriptors returned;
    another address is served (the trickling one is in the penalty box)."""
    async with abuse_server(tmp_path, "--header-timeout", "1") as (server, client):
        baseline = open_fds(server.pid)
        streams = [await connection_from(server.url, "127.0.0.2") for _ in range(50)]
        for stream in streams:
            await stream.send_all(b"GET /api/health HTTP/1.1\r\nHost: local")
        with trio.fail_after(30):
            for stream in streams:
                await stream.send_all(b"h")
                assert await read_until_closed(stream) == b""
                await stream.aclose()
        await eventually_at_most(server.pid, baseline)
        assert (await client.get("/api/health")).status_code == 200


async def test_connections_beyond_the_cap_get_503_and_close(tmp_path: Path) -> None:
    """Finding 7: ``--max-connections``: one more connection is answered 503 and closed;
    once some close, new ones are served again."""
    args = ("--max-connections", "10", "--header-timeout", "60")
    async with abuse_server(tmp_path, *args) as (server, _client):
        held = [await raw_connection(server.url) for _ in range(10)]
        for stream in held:
            await stream.send_all(b"GET /api/health HTTP/1.1\r\nHo")
        with trio.fail_after(20):
            for _ in range(5):
                extra = await raw_connection(server.url)
                await extra.send_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                answer = await read_until_closed(extra)
                assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
                assert b"Retry-After: 1" in answer
                assert body_of(answer)["error"]["code"] == "too_many_connections"
                await extra.aclose()
            for stream in held:
                await stream.aclose()
            while True:  # the server notices the closes as it reads them
                fresh = await raw_connection(server.url)
                await fresh.send_all(
                    b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                answer = await read_until_closed(fresh)
                await fresh.aclose()
                if not answer.startswith(b"HTTP/1.1 503"):
                    break
        assert answer.startswith(b"HTTP/1.1 200")


async def test_the_request_line_limit_is_16_kib(tmp_path: Path) -> None:
    """Finding 8: the docs said 16 KiB and the server took ~64 KiB; now 16 KiB holds."""
    async with abuse_server(tmp_path) as (_server, client):
        assert (await client.get("/api/health", params={"x": "a" * 15_000})).status_code == 200
        for size in (17_000, 60_000):
            answer = await client.get("/api/health", params={"x": "a" * size})
            assert answer.status_code == 414
            assert answer.json()["error"]["code"] == "uri_too_long"
        answer = await client.get("/api/health", headers={"X-Big": "a" * 30_000})
        assert answer.status_code == 431
        assert answer.json()["error"]["code"] == "headers_too_large"


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port`` (``ss``'s Send-Q of a listener)."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[2])


async def test_the_listen_backlog_is_the_configured_one(tmp_path: Path) -> None:
    """``--backlog 300``: the kernel's queue of the listening socket holds 300."""
    async with abuse_server(tmp_path, "--backlog", "300") as (server, _client):
        assert listen_backlog(host_port(server.url)[1]) == 300
