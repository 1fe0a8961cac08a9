"""Cross-site requests and DNS rebinding against the default server (issue 11, finding 2).

From outside against a server subprocess: a web page can send a ``text/plain``
or form body without a preflight, a body-less ``POST`` or a ``DELETE`` from any
origin, and, by DNS rebinding, any request with its own ``Host``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.abuse import abuse_server

LONG_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 1}}
EVIL = "http://evil.example"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_post_body_that_is_not_declared_json_is_415(
    tmp_path: Path, content_type: str | None
) -> None:
    async with abuse_server(tmp_path) as (_server, client):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = await client.post("/api/jobs", content=json.dumps(LONG_JOB), headers=headers)
        assert answer.status_code == 415
        assert answer.json()["error"]["code"] == "unsupported_media_type"
        assert (await client.get("/api/jobs")).json()["jobs"] == []
        # Declared JSON (with a charset) is taken.
        answer = await client.post(
            "/api/jobs",
            content=json.dumps(LONG_JOB),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert answer.status_code == 202


async def test_state_changes_from_a_foreign_origin_are_403(tmp_path: Path) -> None:
    async with abuse_server(tmp_path, "--cors-origin", "http://app.example") as (server, client):
        job_id = (await client.post("/api/jobs", json=LONG_JOB)).json()["id"]
        for method, path in (
            ("POST", f"/api/jobs/{job_id}/cancel"),
            ("POST", f"/api/jobs/{job_id}/retry"),
            ("DELETE", f"/api/jobs/{job_id}"),
        ):
            for origin in (EVIL, "null", "http://app.example.evil.example"):
                answer = await client.request(method, path, headers={"Origin": origin})
                assert answer.status_code == 403, (method, path, origin)
                assert answer.json()["error"]["code"] == "forbidden_origin"
        for origin in (EVIL, "null"):
            answer = await client.post("/api/jobs", json=LONG_JOB, headers={"Origin": origin})
            assert answer.status_code == 403
        assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Running"
        assert len((await client.get("/api/jobs")).json()["jobs"]) == 1
        # The configured origin, the server's own page, and no Origin at all (curl) pass.
        own = server.url
        answer = await client.post("/api/jobs", json=LONG_JOB, headers={"Origin": own})
        assert answer.status_code == 202
        answer = await client.post(
            "/api/jobs", json=LONG_JOB, headers={"Origin": "http://app.example"}
        )
        assert answer.status_code == 202
        answer = await client.post(f"/api/jobs/{job_id}/cancel")
        assert answer.status_code == 202


async def test_a_websocket_from_a_foreign_origin_is_refused(tmp_path: Path) -> None:
    from trio_websocket import ConnectionRejected, open_websocket_url

    async with abuse_server(tmp_path) as (server, client):
        job_id = (await client.post("/api/jobs", json=LONG_JOB)).json()["id"]
        url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(url, extra_headers=[("Origin", EVIL)]):
                pass
        assert rejected.value.status_code == 403
        async with open_websocket_url(url) as ws:  # no Origin: not a browser
            assert json.loads(await ws.get_message())["event"] == "job-status"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
async def test_a_foreign_host_is_400_on_a_loopback_bind(tmp_path: Path, host: str) -> None:
    async with abuse_server(tmp_path) as (_server, client):
        await client.post("/api/jobs", json=LONG_JOB)
        for path in ("/api/jobs", "/api/health", "/api/events", "/openapi.json"):
            answer = await client.get(path, headers={"Host": host})
            assert answer.status_code == 400, path
            assert answer.json()["error"]["code"] == "invalid_host"
        for good in ("localhost", "127.0.0.1:1", "[::1]:8000", "app.localhost"):
            answer = await client.get("/api/jobs", headers={"Host": good})
            assert answer.status_code == 200, good


async def test_allowed_host_lets_a_name_in(tmp_path: Path) -> None:
    args = ("--allowed-host", "jobs.internal", "--allowed-host", "other.internal")
    async with abuse_server(tmp_path, *args) as (_server, client):
        assert (await client.get("/api/jobs", headers={"Host": "jobs.internal:8000"})).is_success
        assert (await client.get("/api/jobs", headers={"Host": "other.internal"})).is_success
        answer = await client.get("/api/jobs", headers={"Host": "evil.example"})
        assert answer.status_code == 400
