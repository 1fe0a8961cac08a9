"""Auth (every route × no token, bad token, owner, other user; header and query) and CORS.

Each test runs against one process and against a cluster behind a round-robin
load balancer (``service``, tests/support/service.py), but those marked
``one_process``; in the cluster, alice and bob are two of its users.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.servers import run_server, write_tokens
from support.service import CORS_ORIGINS, ClusterHarness, Service, one_process
from support.streams import Ev, open_sse, read_sse

from aura_actors.web import ServerSettings

TOKENS = {"tok-alice-7f3a": "alice", "tok-bob-91c2": "bob"}
ALICE, BOB = "tok-alice-7f3a", "tok-bob-91c2"
QUICK = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 2, "tickSeconds": 0}}
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
VIDEO = {"pipeline": "video", "params": {"topic": "tides", "durationSeconds": 5, "speed": 1000}}


ALLOWED = CORS_ORIGINS


@pytest.fixture
def service_settings(tmp_path: Path) -> ServerSettings:
    tokens = write_tokens(tmp_path / "tokens.json", TOKENS)
    return ServerSettings.of(auth_tokens=tokens, max_concurrent_jobs=8, cors_origins=ALLOWED)


@pytest.fixture
def users(cluster_or_none: ClusterHarness | None) -> tuple[str, str]:
    """The tokens of alice and bob: two users of the service."""
    if cluster_or_none is None:
        return ALICE, BOB
    return cluster_or_none.next_token(), cluster_or_none.next_token()


def credentials(token: str | None, via: str) -> dict[str, Any]:
    """Request options carrying ``token`` the given way (or none)."""
    if token is None:
        return {}
    if via == "header":
        return {"headers": {"Authorization": f"Bearer {token}"}}
    return {"params": {"access_token": token}}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.request.url, response.text)
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("via", ["header", "query"])
async def test_auth_matrix_every_route(service: Service, users: tuple[str, str], via: str) -> None:
    ALICE, BOB = users
    async with service.client(auth=False) as client:

        async def call(method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
            options = credentials(token, via)
            if "params" in kw:
                options["params"] = {**options.get("params", {}), **kw.pop("params")}
            return await client.request(method, path, **options, **kw)

        with trio.fail_after(20):
            # Create: needs a valid token; the job belongs to whoever created it.
            for token in (None, "wrong-token"):
                assert_unauthorized(await call("POST", "/api/jobs", token, json=QUICK))
            video = await call("POST", "/api/jobs", ALICE, json=VIDEO)
            waiting = await call("POST", "/api/jobs", ALICE, json=WAITING)
            assert (video.status_code, waiting.status_code) == (202, 202)
            video_id, waiting_id = video.json()["id"], waiting.json()["id"]
            bobs = (await call("POST", "/api/jobs", BOB, json=QUICK)).json()["id"]
            await read_sse(client, f"/api/jobs/{video_id}/events", **credentials(ALICE, via))
            artifact = (await call("GET", f"/api/jobs/{video_id}", ALICE)).json()["artifacts"][0]

            paths = {
                "get": ("GET", f"/api/jobs/{waiting_id}"),
                "events": ("GET", f"/api/jobs/{video_id}/events"),
                "artifact": ("GET", f"/api/jobs/{video_id}/artifacts/{artifact['name']}"),
                "cancel": ("POST", f"/api/jobs/{waiting_id}/cancel"),
            }
            for method, path in paths.values():
                for token in (None, "wrong-token", f"{ALICE}x", ALICE[:-1]):
                    assert_unauthorized(await call(method, path, token))
                # Another user: the job does not exist.
                assert_not_found(await call(method, path, BOB))
            # The owner, last (cancel ends the job).
            got = await call("GET", f"/api/jobs/{waiting_id}", ALICE)
            assert got.status_code == 200 and got.json()["status"] == "Running"
            events = await call("GET", f"/api/jobs/{video_id}/events", ALICE)
            assert events.status_code == 200
            assert events.headers["content-type"] == "text/event-stream"
            download = await call("GET", paths["artifact"][1], ALICE)
            assert download.status_code == 200
            assert len(download.content) == artifact["sizeBytes"]
            assert download.headers["content-type"].startswith(artifact["mimeType"])
            assert (await call("POST", f"/api/jobs/{waiting_id}/cancel", ALICE)).status_code == 202

            # Listing: 401 without a valid token; each user sees only their own jobs.
            for token in (None, "wrong-token"):
                assert_unauthorized(await call("GET", "/api/jobs", token))
            alice_list = (await call("GET", "/api/jobs", ALICE)).json()["jobs"]
            bob_list = (await call("GET", "/api/jobs", BOB)).json()["jobs"]
            assert {job["id"] for job in alice_list} == {video_id, waiting_id}
            assert {job["id"] for job in bob_list} == {bobs}

            # The multiplexed stream: 401 without a valid token, 200 with one.
            for token in (None, "wrong-token"):
                assert_unauthorized(await call("GET", "/api/events", token))
            async with open_sse(client, "/api/events", **credentials(BOB, via)) as stream:
                assert stream.response.status_code == 200

            # Health needs nothing (and ignores a bad token); the OpenAPI document is public.
            for options in ({}, credentials("wrong-token", via)):
                health = await client.get("/api/health", **options)
                assert health.status_code == 200 and health.json()["status"] == "ok"
            assert (await client.get("/openapi.json")).status_code == 200


async def test_malformed_authorization_headers_are_401(
    service: Service, users: tuple[str, str]
) -> None:
    ALICE, _ = users
    async with service.client(auth=False) as client:
        for value in ("Basic dG9rOnRvaw==", ALICE, "Bearer", f"Bearer  {ALICE}x", f"Token {ALICE}"):
            assert_unauthorized(await client.get("/api/jobs", headers={"Authorization": value}))
        # The scheme is case-insensitive (RFC 9110 §11.1).
        for scheme in ("bearer", "BEARER"):
            ok = await client.get("/api/jobs", headers={"Authorization": f"{scheme} {ALICE}"})
            assert ok.status_code == 200


async def test_multiplexed_streams_never_show_another_users_jobs(
    service: Service, users: tuple[str, str]
) -> None:
    ALICE, BOB = users
    async with service.client(auth=False) as client:
        alice_headers = {"Authorization": f"Bearer {ALICE}"}
        seen: dict[str, list[Ev]] = {"alice": [], "bob": []}
        created: dict[str, set[str]] = {"alice": set(), "bob": set()}
        with trio.fail_after(15):
            async with (
                open_sse(client, "/api/events", headers=alice_headers) as alice_stream,
                open_sse(client, "/api/events", params={"access_token": BOB}) as bob_stream,
            ):
                for who, token in (("alice", ALICE), ("bob", BOB)) * 3:
                    job = await client.post(
                        "/api/jobs", json=QUICK, headers={"Authorization": f"Bearer {token}"}
                    )
                    created[who].add(job.json()["id"])
                for who, stream in (("alice", alice_stream), ("bob", bob_stream)):
                    while sum(e.event == "job-completed" for e in seen[who]) < 3:
                        seen[who].append(await stream.next())
            # A replay by Last-Event-ID is filtered the same way.
            first = seen["alice"][0].id or ""
            async with open_sse(
                client, "/api/events", headers={**alice_headers, "Last-Event-ID": first}
            ) as replay:
                replayed = await replay.until(lambda e: e.id == seen["alice"][-1].id)
        for who in ("alice", "bob"):
            assert {e.data["jobId"] for e in seen[who]} == created[who]
        assert {e.data["jobId"] for e in replayed} <= created["alice"]
        for events in (*seen.values(), replayed):
            text = json.dumps([e.data for e in events])
            assert ALICE not in text and BOB not in text, "a token in an event"


@one_process("auth off")
async def test_auth_off_means_everyone_is_the_same_anonymous_owner(tmp_path: Path) -> None:
    async with (
        run_server(data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        job_id = (await client.post("/api/jobs", json=QUICK)).json()["id"]
        # A stray token is ignored when auth is off.
        got = await client.get(f"/api/jobs/{job_id}", headers={"Authorization": "Bearer x"})
        assert got.status_code == 200


# -- CORS ----------------------------------------------------------------------------------


def split(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


@pytest.mark.parametrize("origin", ALLOWED)
async def test_preflight_from_an_allowed_origin(service: Service, origin: str) -> None:
    async with service.client(auth=False) as client:
        for path, method, asked in (
            ("/api/jobs", "POST", "content-type, authorization"),
            ("/api/jobs/some-id/events", "GET", "last-event-id, authorization"),
            ("/api/jobs/some-id/cancel", "POST", "authorization"),
        ):
            response = await client.options(
                path,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": asked,
                },
            )
            assert response.status_code in {200, 204}
            assert response.headers["access-control-allow-origin"] == origin
            assert method.lower() in split(response.headers["access-control-allow-methods"])
            assert split(asked) <= split(response.headers["access-control-allow-headers"])
            assert "origin" in split(response.headers.get("vary", ""))
            assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://localhost:5174", "https://localhost:5173", "null"],
)
async def test_no_cors_headers_for_other_origins(service: Service, origin: str) -> None:
    async with service.client(auth=False) as client:
        preflight = await client.options(
            "/api/jobs",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-methods" not in preflight.headers
        for response in (
            await client.get("/api/health", headers={"Origin": origin}),
            await client.get("/api/jobs", headers={"Origin": origin}),
        ):
            assert "access-control-allow-origin" not in response.headers


async def test_actual_responses_carry_allow_origin_only_for_allowed_origins(
    service: Service, users: tuple[str, str]
) -> None:
    ALICE, _ = users
    auth = {"Authorization": f"Bearer {ALICE}"}
    async with service.client(auth=False) as client:
        origin = ALLOWED[1]
        created = await client.post("/api/jobs", json=QUICK, headers={**auth, "Origin": origin})
        assert created.status_code == 202
        assert created.headers["access-control-allow-origin"] == origin
        # A cross-origin script may read Location.
        assert "location" in split(created.headers["access-control-expose-headers"])
        job_id = created.json()["id"]
        for method, path, headers in (
            ("GET", "/api/health", {}),
            ("GET", f"/api/jobs/{job_id}", auth),
            ("GET", "/api/jobs/nope", auth),  # errors are readable too
            ("GET", "/api/jobs", {}),  # ... including a 401
        ):
            response = await client.request(method, path, headers={**headers, "Origin": origin})
            assert response.headers["access-control-allow-origin"] == origin, path
            assert "origin" in split(response.headers["vary"])
            without = await client.request(method, path, headers=headers)
            assert "access-control-allow-origin" not in without.headers
        # An EventSource from the page: the stream itself carries the header.
        async with open_sse(
            client,
            f"/api/jobs/{job_id}/events",
            headers={"Origin": origin},
            params={"access_token": ALICE},
        ) as stream:
            assert stream.response.headers["access-control-allow-origin"] == origin
            assert (await stream.rest())[-1].event == "job-completed"
