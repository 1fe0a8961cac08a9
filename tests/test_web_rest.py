"""The REST half of the contract, route by route and status code by status code (httpx, trio).

Each test runs against one process and against a cluster behind a round-robin
load balancer (``service``, tests/support/service.py), but those marked
``one_process``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.contract import SNAPSHOT_KEYS
from support.servers import InProcessServer, run_server
from support.service import Service, one_process
from support.streams import open_sse, raw_request, read_sse

from aura_actors.web import ServerSettings

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")
EVENT_ID = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)")
MIB = 1024 * 1024

QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
#: A job that sits in its first tick until cancelled (or the server stops).
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error answer: ``status`` and ``{"error": {"code", "message"}}``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


async def assert_healthy(client: httpx.AsyncClient) -> None:
    """Health answers ok and a job still runs to completion."""
    health = await client.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    created = await client.post("/api/jobs", json=QUICK)
    assert created.status_code == 202
    events = await read_sse(client, f"/api/jobs/{created.json()['id']}/events")
    assert events[-1].event == "job-completed"


@pytest.fixture
def service_settings() -> ServerSettings:
    return ServerSettings.of(max_concurrent_jobs=4)


async def fill_slots(client: httpx.AsyncClient, service: Service) -> list[str]:
    """As many waiting jobs as the service runs at once, each seen running: the next waits."""
    ids = []
    for _ in range(service.capacity):
        created = await client.post("/api/jobs", json=WAITING)
        assert created.status_code == 202
        ids.append(created.json()["id"])
    for job_id in ids:
        async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
            await stream.until(lambda e: e.event == "step-status")
    return ids


async def test_create_answers_202_with_location_and_the_snapshot(
    client: httpx.AsyncClient,
) -> None:
    with trio.fail_after(10):
        created = await client.post("/api/jobs", json=QUICK)
        assert created.status_code == 202
        assert created.headers["content-type"].startswith("application/json")
        snapshot = created.json()
        assert set(snapshot) == SNAPSHOT_KEYS
        job_id = snapshot["id"]
        assert isinstance(job_id, str) and job_id
        assert created.headers["location"] == f"/api/jobs/{job_id}"
        assert snapshot["pipeline"] == "synthetic"
        # Defaults are filled in; the given values kept.
        assert snapshot["params"] == {"stages": 2, "ticks": 3, "tickSeconds": 0}
        assert snapshot["status"] in {"Queued", "Running"}
        assert 0 <= snapshot["progressPct"] <= 100
        assert ISO_UTC.fullmatch(snapshot["createdAt"])
        assert snapshot["finishedAt"] is None
        assert snapshot["artifacts"] == []
        assert snapshot["error"] is None
        assert EVENT_ID.fullmatch(snapshot["lastEventId"])

        fetched = await client.get(created.headers["location"])
        assert fetched.status_code == 200
        assert set(fetched.json()) == SNAPSHOT_KEYS
        assert fetched.json()["id"] == job_id

        events = await read_sse(client, f"/api/jobs/{job_id}/events")
        done = (await client.get(f"/api/jobs/{job_id}")).json()
    assert done["status"] == "Done"
    assert done["progressPct"] == 100
    assert done["stage"] == "stage-2"
    assert ISO_UTC.fullmatch(done["startedAt"]) and ISO_UTC.fullmatch(done["finishedAt"])
    assert done["etaSeconds"] is None
    assert done["lastEventId"] == events[-1].id


async def test_defaults_fill_params_and_video_jobs_are_accepted(client: httpx.AsyncClient) -> None:
    synthetic = await client.post("/api/jobs", json={"pipeline": "synthetic"})
    assert synthetic.status_code == 202
    assert synthetic.json()["params"] == {"stages": 3, "ticks": 10, "tickSeconds": 0.01}
    video = await client.post(
        "/api/jobs", json={"pipeline": "video", "params": {"topic": "tides", "speed": 1000}}
    )
    assert video.status_code == 202
    assert video.json()["params"] == {"topic": "tides", "durationSeconds": 30, "speed": 1000}
    with trio.fail_after(10):
        events = await read_sse(client, f"/api/jobs/{video.json()['id']}/events")
    assert events[-1].event == "job-completed"
    assert events[-1].data["artifacts"], "a video job ends with at least one artifact"


async def test_unicode_params_round_trip(client: httpx.AsyncClient) -> None:
    topic = 'Ünïcødé ☃ 𝄞 \u2028 line\nbreak "quoted"'
    created = await client.post("/api/jobs", json={"pipeline": "video", "params": {"topic": topic}})
    assert created.status_code == 202
    assert created.headers["content-type"].startswith("application/json")
    fetched = await client.get(created.headers["location"])
    assert fetched.json()["params"]["topic"] == topic
    await client.post(f"{created.headers['location']}/cancel")


async def test_get_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/jobs/no-such-job"), 404, "job_not_found")
    assert_error(await client.post("/api/jobs/no-such-job/cancel"), 404, "job_not_found")


async def test_list_is_newest_first_filters_by_status_and_pages_with_a_cursor(
    service: Service, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(10):
        empty = await client.get("/api/jobs")
        assert empty.status_code == 200
        assert empty.json() == {"jobs": [], "nextCursor": None}
        # Jobs run (and wait) in every slot; five more queue behind them.
        running = await fill_slots(client, service)
        ids = list(running)
        for _ in range(5):
            created = await client.post("/api/jobs", json=WAITING)
            assert created.status_code == 202
            ids.append(created.json()["id"])
        queued = ids[len(running) :]
        canceled = await client.post(f"/api/jobs/{queued[1]}/cancel")
        assert canceled.status_code == 202

        listing = await client.get("/api/jobs")
        assert listing.status_code == 200
        body = listing.json()
        assert set(body) == {"jobs", "nextCursor"}
        assert body["nextCursor"] is None
        assert [job["id"] for job in body["jobs"]] == ids[::-1]
        assert all(set(job) == SNAPSHOT_KEYS for job in body["jobs"])

        async def ids_with(status: str) -> list[str]:
            response = await client.get("/api/jobs", params={"status": status})
            assert response.status_code == 200
            jobs = response.json()["jobs"]
            assert all(job["status"] == status for job in jobs)
            return [job["id"] for job in jobs]

        assert await ids_with("Running") == running[::-1]
        assert await ids_with("Queued") == [queued[4], queued[3], queued[2], queued[0]]
        assert await ids_with("Canceled") == [queued[1]]
        assert await ids_with("Done") == []
        assert await ids_with("Failed") == []

        for limit in (1, 2, 4, 6, len(ids), 200):
            seen: list[str] = []
            cursor: str | None = None
            pages = 0
            while True:
                params = {"limit": str(limit)}
                if cursor is not None:
                    params["cursor"] = cursor
                page = await client.get("/api/jobs", params=params)
                assert page.status_code == 200
                jobs = page.json()["jobs"]
                # Full pages until the last, which holds what is left (never empty).
                assert len(jobs) == min(limit, len(ids) - len(seen))
                seen.extend(job["id"] for job in jobs)
                pages += 1
                cursor = page.json()["nextCursor"]
                if cursor is None:
                    break
                assert isinstance(cursor, str)
            assert seen == ids[::-1], f"paging by {limit}"
            assert pages == -(-len(ids) // limit)

        # The cursor pages a filtered listing too.
        first = (await client.get("/api/jobs", params={"status": "Queued", "limit": 3})).json()
        assert [job["id"] for job in first["jobs"]] == [queued[4], queued[3], queued[2]]
        second = await client.get(
            "/api/jobs", params={"status": "Queued", "limit": 3, "cursor": first["nextCursor"]}
        )
        assert [job["id"] for job in second.json()["jobs"]] == [queued[0]]
        assert second.json()["nextCursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"status": "running"},
        {"status": "Bogus"},
        {"status": ""},
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "201"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"cursor": "not-a-cursor"},
        {"cursor": "-3"},
        {"cursor": "99999999"},
    ],
)
async def test_list_rejects_bad_queries_with_422(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    assert_error(await client.get("/api/jobs", params=query), 422)


async def test_cancel_answers_202_while_queued_or_running_and_409_once_terminal(
    service: Service, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(10):
        running = (await client.get(f"/api/jobs/{(await fill_slots(client, service))[0]}")).json()
        queued = (await client.post("/api/jobs", json=WAITING)).json()
        assert queued["status"] == "Queued"

        answer = await client.post(f"/api/jobs/{queued['id']}/cancel")
        assert answer.status_code == 202
        assert set(answer.json()) == SNAPSHOT_KEYS
        assert answer.json()["status"] == "Canceled"  # a queued job ends at once
        assert answer.json()["startedAt"] is None
        assert_error(await client.post(f"/api/jobs/{queued['id']}/cancel"), 409, "job_finished")

        async with open_sse(client, f"/api/jobs/{running['id']}/events") as stream:
            await stream.until(lambda e: e.event == "step-status")
            answer = await client.post(f"/api/jobs/{running['id']}/cancel")
            assert answer.status_code == 202
            assert answer.json()["status"] in {"Running", "Canceled"}
            rest = await stream.rest()
        assert [e.event for e in rest][-2:] == ["job-status", "job-cancelled"]
        assert rest[-1].data == {
            "jobId": running["id"],
            "step": "stage-1",
            "message": "canceled by user",
        }
        final = (await client.get(f"/api/jobs/{running['id']}")).json()
        assert final["status"] == "Canceled"
        assert final["finishedAt"] is not None
        assert_error(await client.post(f"/api/jobs/{running['id']}/cancel"), 409)

        done = (await client.post("/api/jobs", json=QUICK)).json()
        await read_sse(client, f"/api/jobs/{done['id']}/events")
        assert_error(await client.post(f"/api/jobs/{done['id']}/cancel"), 409, "job_finished")


async def test_health(service: Service, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    if service.is_cluster:
        # The jobs are the whole cluster's (docs/cluster.md): earlier tests on the shared
        # nodes stored jobs and may still be closing streams. The API node holds none.
        assert {key: type(value) for key, value in body["jobs"].items()} == dict.fromkeys(
            ("running", "queued", "total"), int
        )
        assert min(body["jobs"].values()) >= 0
        node = body["node"]
        assert node["name"] in ("api-1", "api-2")
        assert (node["role"], node["running"], node["queued"]) == ("api", 0, 0)
        assert isinstance(body["subscribers"], int) and body["subscribers"] >= 0
    else:
        assert body["jobs"] == {"running": 0, "queued": 0, "total": 0}
        assert body["subscribers"] == 0
        assert "node" not in body  # a cluster's node only


@one_process("counts storage reads of the in-process runtime")
async def test_health_in_one_process_counts_from_memory_without_reading_storage(
    service: Service,
    client: httpx.AsyncClient,
    process_server: InProcessServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = process_server.runtime
    assert runtime is not None
    with trio.fail_after(10):
        ids = await fill_slots(client, service)
        queued = (await client.post("/api/jobs", json=WAITING)).json()["id"]
        reads = 0
        count_jobs = runtime.storage.count_jobs

        async def counted() -> dict[tuple[str, str], int]:
            nonlocal reads
            reads += 1
            return await count_jobs()

        monkeypatch.setattr(runtime.storage, "count_jobs", counted)
        body = (await client.get("/api/health")).json()
        assert body["jobs"] == {"running": len(ids), "queued": 1, "total": len(ids) + 1}
        assert reads == 0
        for job_id in [*ids, queued]:
            assert (await client.post(f"/api/jobs/{job_id}/cancel")).status_code == 202


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "malformed_json"),
        (b'{"pipeline": "synthetic",}', 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"NaN-ish", 400, "malformed_json"),
        (b"[]", 422, None),
        (b'"synthetic"', 422, None),
        (b"42", 422, None),
        (b"null", 422, None),
        (b"{}", 422, None),
        (b'{"pipeline": 5}', 422, None),
        (b'{"pipeline": null}', 422, None),
        (b'{"pipeline": ["synthetic"]}', 422, None),
        (b'{"pipeline": "nope"}', 422, "unknown_pipeline"),
        (b'{"pipeline": "synthetic", "params": []}', 422, None),
        (b'{"pipeline": "synthetic", "params": "ticks=3"}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"ticks": "3"}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"ticks": 0}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"stages": 51}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"tickSeconds": -1}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"tick": 3}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"ticks": true}}', 422, None),
        (b'{"pipeline": "synthetic", "params": {"failAt": {"stage": 9, "tick": 0}}}', 422, None),
        (b'{"pipeline": "video", "params": {}}', 422, None),
        (b'{"pipeline": "video", "params": {"topic": ""}}', 422, None),
        (b'{"pipeline": "video", "params": {"topic": "x", "durationSeconds": 4}}', 422, None),
        (b'{"pipeline": "video", "params": {"topic": "x", "speed": 0}}', 422, None),
        (b'{"pipeline": "synthetic", "extra": 1}', 422, None),
        # Deeper than the parser goes, or an int longer than Python reads: still a 400.
        (b"[" * 100_000, 400, "malformed_json"),
        (
            b'{"pipeline": "synthetic", "params": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
            400,
            None,
        ),
        (b'{"pipeline": "synthetic", "params": {"ticks": ' + b"7" * 5000 + b"}}", 400, None),
    ],
    ids=lambda value: repr(value)[:60] if isinstance(value, bytes) else None,
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, body: bytes, status: int, code: str | None
) -> None:
    response = await client.post(
        "/api/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, status, code)
    listing = await client.get("/api/jobs")
    assert listing.json()["jobs"] == [], "a refused request must not create a job"


async def test_bad_input_leaves_the_server_healthy(client: httpx.AsyncClient) -> None:
    with trio.fail_after(15):
        for body in (b"{", b"[]", b'{"pipeline": "nope"}', b"x" * (MIB + 1)):
            response = await client.post(
                "/api/jobs", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code in {400, 413, 422}
        assert_error(await client.get("/api/jobs/%00%ff"), 404)
        assert_error(await client.get("/api/jobs/" + "x" * 4000), 404)
        await assert_healthy(client)


async def test_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    client.headers["Content-Type"] = "application/json"
    with trio.fail_after(15):
        # Exactly 1 MiB is read (and refused for its content); one byte more is 413.
        padding = MIB - len(b'{"pipeline": "synthetic", "pad": ""}')
        at_limit = b'{"pipeline": "synthetic", "pad": "' + b"a" * padding + b'"}'
        assert len(at_limit) == MIB
        assert_error(await client.post("/api/jobs", content=at_limit), 422)
        over = at_limit[:-2] + b'a"}'
        assert len(over) == MIB + 1
        assert_error(await client.post("/api/jobs", content=over), 413, "payload_too_large")

        # Without a Content-Length: chunked, counted as it arrives.
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"pipeline": "synthetic", "pad": "'
            for _ in range(17):
                yield b"b" * 65536
            yield b'"}'

        request = client.build_request("POST", "/api/jobs", content=chunks())
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        assert_error(await client.send(request), 413, "payload_too_large")
        await assert_healthy(client)


async def test_unknown_routes_are_404_and_wrong_methods_405(client: httpx.AsyncClient) -> None:
    for path in ("/api/nope", "/api", "/api/jobs/x/y/z", "/nothing-here"):
        assert_error(await client.get(path), 404)
    job_id = (await client.post("/api/jobs", json=WAITING)).json()["id"]
    for method, path in (
        ("PUT", "/api/jobs"),
        ("DELETE", "/api/jobs"),
        ("PATCH", f"/api/jobs/{job_id}"),
        ("GET", f"/api/jobs/{job_id}/retry"),
        ("POST", f"/api/jobs/{job_id}/logs"),
        ("GET", f"/api/jobs/{job_id}/cancel"),
        ("POST", f"/api/jobs/{job_id}/events"),
        ("POST", "/api/events"),
        ("POST", "/api/health"),
    ):
        response = await client.request(method, path)
        assert_error(response, 405)
        assert "allow" in response.headers
    await assert_healthy(client)


@one_process("--max-queued-jobs is not counted cluster-wide yet (docs/cluster.md)")
async def test_queue_full_is_429(tmp_path: Path) -> None:
    settings = ServerSettings.of(max_concurrent_jobs=1, max_queued_jobs=1)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        running = await client.post("/api/jobs", json=WAITING)
        queued = await client.post("/api/jobs", json=WAITING)
        assert (running.status_code, queued.status_code) == (202, 202)
        assert queued.json()["status"] == "Queued"
        error = assert_error(await client.post("/api/jobs", json=QUICK), 429, "queue_full")
        assert "queue" in error["message"]
        assert (await client.get("/api/health")).json()["jobs"] == {
            "running": 1,
            "queued": 1,
            "total": 2,
        }
        # A freed place is usable again.
        assert (await client.post(f"/api/jobs/{queued.json()['id']}/cancel")).status_code == 202
        assert (await client.post("/api/jobs", json=QUICK)).status_code == 202
        assert_error(await client.post("/api/jobs", json=QUICK), 429, "queue_full")


@one_process("starts the shutdown through the runtime")
async def test_shutting_down_refuses_new_jobs_with_503(tmp_path: Path) -> None:
    async with (
        run_server(data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert server.runtime is not None
        with trio.fail_after(10):
            job_id = (await client.post("/api/jobs", json=WAITING)).json()["id"]
            async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
                await stream.until(lambda e: e.event == "step-status")
                # The first step of shutdown, as SIGTERM starts it; the server still answers.
                server.runtime.begin_shutdown()
                rest = await stream.rest()
            assert rest[-1].event == "job-cancelled"
            assert rest[-1].data["message"] == "canceled: the server is shutting down"
            assert_error(await client.post("/api/jobs", json=QUICK), 503, "shutting_down")
            health = await client.get("/api/health")
            assert health.status_code == 503
            assert health.json()["status"] == "shutting_down"
            assert_error(await client.get("/api/events"), 503, "shutting_down")
            # What exists can still be read.
            assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Canceled"


async def test_no_content_and_error_answers_are_well_formed_http(
    service: Service, client: httpx.AsyncClient
) -> None:
    """A 204 carries no body and no Content-Length (RFC 9110 §8.6); errors are JSON."""
    job_id = (await client.post("/api/jobs", json=QUICK)).json()["id"]
    with trio.fail_after(10):
        events = await read_sse(client, f"/api/jobs/{job_id}/events")
        answer = await raw_request(
            service.url,
            "GET",
            f"/api/jobs/{job_id}/events",
            [("Last-Event-ID", events[-1].id or ""), *service.auth_pairs],
        )
    assert answer.status == 204
    assert answer.body == b""
    assert answer.header("content-length") is None
    assert answer.header("transfer-encoding") is None

    preflight = await raw_request(
        service.url,
        "OPTIONS",
        "/api/jobs",
        [("Origin", "http://localhost:5173"), ("Access-Control-Request-Method", "POST")],
    )
    assert preflight.status == 204
    assert preflight.header("content-length") is None

    missing = await raw_request(service.url, "GET", "/api/jobs/nope", service.auth_pairs)
    assert missing.status == 404
    assert missing.header("content-type") == "application/json"
    assert json.loads(missing.body)["error"]["code"] == "job_not_found"


async def test_openapi_document_is_valid_and_lists_the_real_routes(
    client: httpx.AsyncClient,
) -> None:
    from openapi_spec_validator import validate

    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    validate(document)
    paths = document["paths"]
    expected = {
        "/api/jobs": {"get", "post"},
        "/api/jobs/{job_id}": {"get"},
        "/api/jobs/{job_id}/cancel": {"post"},
        "/api/jobs/{job_id}/events": {"get"},
        "/api/events": {"get"},
        "/api/health": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, f"{path} missing from the OpenAPI document"
        assert methods <= set(paths[path]), (path, set(paths[path]))
    # Every documented operation is a real route: none answers 404 or 405 as a route.
    for path, operations in paths.items():
        concrete = path.replace("{job_id}", "no-such-job").replace("{name}", "x")
        for method in operations:
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
            async with client.stream(method.upper(), concrete, content=b"{}") as answer:
                assert answer.status_code != 405, (method, path)
                if answer.status_code == 404:
                    await answer.aread()
                    assert answer.json()["error"]["code"] != "not_found", (method, path)


@pytest.mark.parametrize(
    ("target", "size"),
    [("/api/nothing", 500_000), ("/api/jobs/x/cancel", 300_000), ("/api/jobs", MIB + 1)],
)
async def test_an_answer_before_the_whole_body_never_wedges_the_connection(
    service: Service, target: str, size: int
) -> None:
    """A request whose answer needs none of its body (404, 413) still has its body read:
    the client, which sends all of it before reading, gets the answer (not a reset), and
    the next request on the same connection is answered (it used to hang forever)."""
    host, port = service.url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    auth = "".join(f"{name}: {value}\r\n" for name, value in service.auth_pairs)
    head = (
        f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {size}\r\n\r\n"
    ).encode()
    received = bytearray()
    closed = False

    async def read_response() -> bytes | None:
        """One whole response (it has a Content-Length), or ``None`` at EOF/reset."""
        while True:
            end = received.find(b"\r\n\r\n")
            if end >= 0:
                length = int(re.search(rb"content-length: (\d+)", received[:end]).group(1))  # type: ignore[union-attr]
                if len(received) >= end + 4 + length:
                    response = bytes(received[: end + 4 + length])
                    del received[: end + 4 + length]
                    return response
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return None
            if not chunk:
                return None
            received.extend(chunk)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def send_body() -> None:
                nonlocal closed
                try:
                    await stream.send_all(head + b"x" * size)
                except trio.BrokenResourceError:
                    closed = True

            nursery.start_soon(send_body)
            first = await read_response()
        assert first is not None, "reset before the answer could be read"
        assert first.split(b" ", 2)[1] in {b"404", b"413"}
        assert not closed, "the connection was closed while the body was being sent"
        await stream.send_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        second = await read_response()
        assert second is not None and second.startswith(b"HTTP/1.1 200"), second
    await stream.aclose()
    async with service.client() as client:
        assert (await client.get("/api/health")).status_code == 200
