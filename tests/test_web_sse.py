"""Server-Sent Events: headers, exact framing on the wire, keep-alive, replay, end, 204/404/400.

Byte-level checks read the response off a raw socket (h11 only de-chunks);
the rest go through httpx-sse, a client someone else wrote. Each test runs
against one process and against a cluster behind a round-robin load balancer
(``service``, tests/support/service.py), but those marked ``one_process``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
import trio
from support.contract import EVENT_DATA_KEYS, QUICK_JOB, WAITING_JOB
from support.servers import InProcessServer, run_server
from support.service import Service, one_process
from support.streams import (
    Ev,
    RawHttp,
    assert_strictly_increasing,
    compact_progress,
    create_job,
    open_sse,
    parse_sse_wire,
    raw_request,
    read_sse,
    summary,
    wait_until,
)

from aura_actors.web import ServerSettings

DATA_KEYS = {name: {"jobId", *keys} for name, keys in EVENT_DATA_KEYS.items()}
QUICK, WAITING = QUICK_JOB, WAITING_JOB


def check_job_stream(events: list[Ev], job_id: str, *, stages: int) -> None:
    """A whole job stream: contract payloads, order of a job's life, monotonic progress."""
    assert_strictly_increasing(events)
    for event in events:
        assert event.id is not None
        assert set(event.data) == DATA_KEYS[event.event], (event.event, event.data)
        assert event.data["jobId"] == job_id
    first, second = events[0], events[1]
    assert [first.event, second.event] == ["job-status", "job-status"], summary(events)
    assert (first.event, first.data["status"], first.data["previousStatus"]) == (
        "job-status",
        "Queued",
        None,
    )
    assert (second.event, second.data["status"], second.data["previousStatus"]) == (
        "job-status",
        "Running",
        "Queued",
    )
    steps = [e for e in events if e.event == "step-status"]
    expected_steps = [
        (f"stage-{i + 1}", i, stages, state)
        for i in range(stages)
        for state in ("Started", "Completed")
    ]
    assert [
        (e.data["step"], e.data["stepIndex"], e.data["totalSteps"], e.data["state"]) for e in steps
    ] == expected_steps, summary(events)
    progress = [e.data["progressPct"] for e in events if "progressPct" in e.data]
    assert progress == sorted(progress), "progress went backwards"
    assert all(0 <= pct <= 100 for pct in progress)
    for event in events:
        if event.event == "step-progress":
            assert 0 <= event.data["stepProgressPct"] <= 100
            assert event.data["etaSeconds"] is None or event.data["etaSeconds"] >= 0
    assert sum(e.is_terminal for e in events) == 1 and events[-1].is_terminal


@pytest.fixture
def service_settings() -> ServerSettings:
    return ServerSettings.of(keepalive=0.2, max_concurrent_jobs=4)


async def create(client: httpx.AsyncClient, body: Mapping[str, object] = QUICK) -> str:
    return await create_job(client, body)


async def fill_slots(client: httpx.AsyncClient, service: Service) -> list[str]:
    """As many waiting jobs as the service runs at once: the next job stays Queued."""
    return [await create(client, WAITING) for _ in range(service.capacity)]


async def test_headers_retry_line_and_exact_framing_on_the_wire(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client)
    with trio.fail_after(10):
        answer = await raw_request(
            service.url,
            "GET",
            f"/api/jobs/{job_id}/events",
            [("Accept", "text/event-stream"), *service.auth_pairs],
        )
    assert answer.status == 200
    assert answer.header("content-type") == "text/event-stream"
    assert answer.header("cache-control") == "no-cache"
    assert answer.header("x-accel-buffering") == "no"
    assert answer.header("content-length") is None
    assert answer.header("transfer-encoding") == "chunked"
    assert answer.body.startswith(b"retry: 1000\n\n")
    wire = parse_sse_wire(answer.body)
    assert wire.retry == 1000
    check_job_stream(wire.events, job_id, stages=2)
    assert [e.event for e in wire.events][-2:] == ["job-status", "job-completed"]
    assert wire.events[-2].data["status"] == "Done"
    completed = wire.events[-1].data
    assert completed["artifacts"] == [] and completed["durationSeconds"] >= 0
    # Each data line is the compact one-line JSON of the payload.
    for line in answer.body.split(b"\n"):
        if line.startswith(b"data: "):
            assert b"\r" not in line
            assert json.loads(line[6:]) is not None

    # httpx-sse reads the very same events, but for intermediate progress: the raw read
    # may have followed the job live, this one replays its stored history.
    again = await read_sse(client, f"/api/jobs/{job_id}/events")
    assert compact_progress(again) == compact_progress(wire.events)
    assert again[-1] == wire.events[-1]


@one_process("settings of its own")
async def test_retry_is_configurable(tmp_path: Path) -> None:
    async with run_server(ServerSettings.of(sse_retry_ms=2500), data_dir=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            job_id = await create(client)
        with trio.fail_after(10):
            answer = await raw_request(server.url, "GET", f"/api/jobs/{job_id}/events")
        assert answer.body.startswith(b"retry: 2500\n\n")


async def test_failed_and_warned_jobs_stream_their_contract_payloads(
    client: httpx.AsyncClient,
) -> None:
    job_id = await create(
        client,
        {
            "pipeline": "synthetic",
            "params": {
                "stages": 3,
                "ticks": 4,
                "tickSeconds": 0,
                "warnAt": {"stage": 0, "tick": 1},
                "failAt": {"stage": 1, "tick": 2},
            },
        },
    )
    with trio.fail_after(10):
        events = await read_sse(client, f"/api/jobs/{job_id}/events")
    assert_strictly_increasing(events)
    for event in events:
        assert set(event.data) == DATA_KEYS[event.event], event
    warnings = [e for e in events if e.event == "warning"]
    assert len(warnings) == 1 and warnings[0].data["step"] == "stage-1"
    assert isinstance(warnings[0].data["message"], str) and warnings[0].data["message"]
    assert [e.event for e in events][-2:] == ["job-status", "job-failed"]
    assert events[-2].data["status"] == "Failed"
    failed = events[-1].data
    assert failed["step"] == "stage-2"
    assert failed["errorMessage"]
    assert failed["errors"] and all(
        set(error) == {"code", "message", "remediation"} for error in failed["errors"]
    )
    assert failed["errors"][0]["code"] == "synthetic_failure"
    assert isinstance(failed["logs"], list) and all(
        isinstance(line, str) for line in failed["logs"]
    )
    snapshot = (await client.get(f"/api/jobs/{job_id}")).json()
    assert snapshot["status"] == "Failed"
    assert snapshot["error"] == {"message": failed["errorMessage"], "errors": failed["errors"]}


async def test_keep_alive_comments_while_quiet(service: Service, client: httpx.AsyncClient) -> None:
    job_id = await create(client, WAITING)
    raw = await RawHttp.connect(service.url)

    def quiet_keep_alives(body: bytes) -> int:
        """Keep-alives after the stream's third event (the job's step started)."""
        if body.count(b"\nevent: ") < 3:
            return 0
        return body.rsplit(b"\nevent: ", 1)[1].count(b": keep-alive\n\n")

    try:
        with trio.fail_after(5):
            await raw.send_request("GET", f"/api/jobs/{job_id}/events", service.auth_pairs)
            await raw.read_head()
            assert raw.status == 200
            body = bytearray()
            # Queued, Running, step Started, then nothing: keep-alives every 0.2 s.
            while quiet_keep_alives(body) < 3:
                piece = await raw.read_data()
                assert piece is not None, "the stream of a running job ended"
                body.extend(piece)
        wire = parse_sse_wire(bytes(body))
        assert [e.event for e in wire.events] == ["job-status", "job-status", "step-status"]
        assert wire.items[-3:] == ["keep-alive"] * 3
        assert wire.items[-1] == "keep-alive"
    finally:
        await raw.aclose()


@one_process("a keep-alive of an hour: settings of its own")
async def test_events_are_pushed_as_they_happen(tmp_path: Path) -> None:
    """A live event reaches an open stream without waiting for a keep-alive or a poll.

    The keep-alive is an hour here, so nothing but the event itself can wake the
    stream: its arrival at all (within a generous bound) shows it was pushed.
    """
    async with (
        run_server(ServerSettings.of(keepalive=3600), data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        job_id = await create(client, WAITING)
        async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
            with trio.fail_after(30):
                await stream.until(lambda e: e.event == "step-status")
                await client.post(f"/api/jobs/{job_id}/cancel")
                rest = await stream.rest()
    assert [e.event for e in rest] == ["job-status", "job-cancelled"]


async def test_replay_after_last_event_id_header_or_query(client: httpx.AsyncClient) -> None:
    # A burst of events, several per millisecond. Resuming at crafted ids such as "M-10"
    # checks that ids compare as integer pairs, not as strings ("M-10" is after "M-9").
    burst = {"pipeline": "synthetic", "params": {"stages": 50, "ticks": 1, "tickSeconds": 0}}
    job_id = await create(client, burst)
    # Some hundreds of streams, each a new connection in the cluster: a bound for a hang.
    with trio.fail_after(60):
        await read_sse(client, f"/api/jobs/{job_id}/events")  # to the end of the job
        # Now the retained history: what every replay below is cut from.
        events = await read_sse(client, f"/api/jobs/{job_id}/events")
        check_job_stream(events, job_id, stages=50)
        path = f"/api/jobs/{job_id}/events"
        for millis in sorted({e.key[0] for e in events}):
            for counter in (0, 1, 9, 10, 11, 99, 100):
                resume = f"{millis}-{counter}"
                expected = [e for e in events if e.key > (millis, counter)]
                if expected:
                    got = await read_sse(client, path, headers={"Last-Event-ID": resume})
                    assert got == expected, resume
        for cut in [*range(0, len(events) - 1, 7), len(events) - 2]:
            last = events[cut].id
            assert last is not None
            by_header = await read_sse(client, path, headers={"Last-Event-ID": last})
            assert by_header == events[cut + 1 :], f"after {last}"
            by_query = await read_sse(client, path, params={"lastEventId": last})
            assert by_query == events[cut + 1 :], f"after {last} (query)"
        # An id between two events resumes after the earlier one.
        millis, counter = events[2].key
        between = f"{millis}-{counter}"
        assert await read_sse(client, path, headers={"Last-Event-ID": between}) == events[3:]
        # An id older than the job replays all of it; so does an empty one.
        assert await read_sse(client, path, headers={"Last-Event-ID": "0-0"}) == events
        assert await read_sse(client, path, headers={"Last-Event-ID": ""}) == events
        # The header wins over the query.
        both = await read_sse(
            client,
            path,
            headers={"Last-Event-ID": events[4].id or ""},
            params={"lastEventId": events[1].id or ""},
        )
        assert both == events[5:]


async def test_replay_then_live_for_a_running_job(client: httpx.AsyncClient) -> None:
    job_id = await create(
        client, {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 5, "tickSeconds": 0.02}}
    )
    with trio.fail_after(10):
        async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
            head = await stream.until(lambda e: e.event == "step-progress")
        assert head[-1].id is not None
        async with open_sse(
            client, f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": head[-1].id}
        ) as stream:
            tail = await stream.rest()
        whole = await read_sse(client, f"/api/jobs/{job_id}/events")
    assert tail[-1].event == "job-completed"
    assert_strictly_increasing(head + tail)
    ids = {e.id for e in head + tail}
    # Every non-progress event is there exactly once, after the resume point as before it.
    assert [e for e in whole if e.event != "step-progress"] == [
        e for e in head + tail if e.event != "step-progress"
    ]
    assert len(ids) == len(head) + len(tail)


async def test_terminal_id_gets_204_and_the_stream_ends_after_the_terminal_event(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client)
    with trio.fail_after(10):
        events = await read_sse(client, f"/api/jobs/{job_id}/events")
        terminal = events[-1]
        assert terminal.is_terminal and terminal.id is not None
        path = f"/api/jobs/{job_id}/events"
        for headers, params in (
            ({"Last-Event-ID": terminal.id}, None),
            (None, {"lastEventId": terminal.id}),
            ({"Last-Event-ID": "99999999999999-0"}, None),
        ):
            response = await client.get(path, headers=headers, params=params)
            assert response.status_code == 204
            assert response.content == b""
            assert "text/event-stream" not in response.headers.get("content-type", "")
        # One before the terminal id: just the terminal event, then the end.
        tail = await read_sse(client, path, headers={"Last-Event-ID": events[-2].id or ""})
        assert tail == [terminal]
        last = [("Last-Event-ID", events[-2].id or ""), *service.auth_pairs]
        raw = await raw_request(service.url, "GET", path, last)
        wire = parse_sse_wire(raw.body)
        assert wire.events == [terminal]
        assert raw.body.endswith(b"\n\n"), "the stream ends cleanly after the terminal event"


async def test_unknown_job_is_404_not_a_stream(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Last-Event-ID": "1-0"}):
        response = await client.get("/api/jobs/no-such-job/events", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"] == "job_not_found"


@pytest.mark.parametrize(
    "bad", ["abc", "1-", "-1", "1", "01-2", "1-02", "1-2-3", "1.5-2", "x-1", "１-1"]
)
async def test_malformed_last_event_id_is_400(client: httpx.AsyncClient, bad: str) -> None:
    job_id = await create(client)
    for path in (f"/api/jobs/{job_id}/events", "/api/events"):
        by_query = await client.get(path, params={"lastEventId": bad})
        assert by_query.status_code == 400, (path, bad)
        assert by_query.json()["error"]["code"] == "invalid_last_event_id"
        if bad.isascii():
            by_header = await client.get(path, headers={"Last-Event-ID": bad})
            assert by_header.status_code == 400, (path, bad)
            assert set(by_header.json()) == {"error"}


@one_process("counts the runtime's subscribers")
async def test_disconnecting_ends_the_subscription_at_once(
    process_server: InProcessServer, client: httpx.AsyncClient
) -> None:
    server = process_server
    runtime = server.runtime
    assert runtime is not None
    broadcaster = runtime.broadcaster
    job_id = await create(client, WAITING)

    async def subscribers() -> int:
        count: int = (await client.get("/api/health")).json()["subscribers"]
        assert count == broadcaster.subscriber_count
        return count

    assert await subscribers() == 0
    for path in (f"/api/jobs/{job_id}/events", "/api/events"):
        async with open_sse(client, path) as stream:
            if path == "/api/events":
                await client.post("/api/jobs", json=QUICK)
            await stream.next()
            assert await subscribers() == 1
        await wait_until(lambda: broadcaster.subscriber_count == 0, within=1)
        assert await subscribers() == 0

    # A socket closed abruptly (RST, nothing read) too.
    raw = await RawHttp.connect(server.url)
    await raw.send_request("GET", f"/api/jobs/{job_id}/events")
    await raw.read_head()
    await wait_until(lambda: broadcaster.subscriber_count == 1, within=1)
    raw.stream.socket.setsockopt(
        __import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER, b"\x01\0\0\0\0\0\0\0"
    )
    await raw.aclose()
    await wait_until(lambda: broadcaster.subscriber_count == 0, within=1)
    assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Running"


async def test_all_events_follows_jobs_from_connect_and_never_ends(
    service: Service, client: httpx.AsyncClient
) -> None:
    before = await create(client)
    await read_sse(client, f"/api/jobs/{before}/events")  # finished before the subscription
    with trio.fail_after(10):
        raw = await RawHttp.connect(service.url)
        try:
            await raw.send_request("GET", "/api/events", service.auth_pairs)
            await raw.read_head()
            assert raw.status == 200
            assert ("content-type", "text/event-stream") in raw.headers
            assert ("cache-control", "no-cache") in raw.headers
            assert ("x-accel-buffering", "no") in raw.headers
            first = await raw.read_data()
            assert first == b"retry: 1000\n\n"
            jobs = [await create(client) for _ in range(3)]
            body = bytearray(first)
            while body.count(b"event: job-completed\n") < 3:
                piece = await raw.read_data()
                assert piece is not None, "/api/events ended"
                body.extend(piece)
            # Still open after every job ended: the keep-alive keeps coming.
            while not body.endswith(b": keep-alive\n\n"):
                piece = await raw.read_data()
                assert piece is not None, "/api/events ended"
                body.extend(piece)
        finally:
            await raw.aclose()
    wire = parse_sse_wire(bytes(body))
    events = wire.events
    assert_strictly_increasing(events)
    assert {e.data["jobId"] for e in events} == set(jobs), "only jobs since connect"
    for job_id in jobs:
        mine = [e for e in events if e.data["jobId"] == job_id]
        check_job_stream(mine, job_id, stages=2)
        # The multiplexed view has the same events as the job's own stream (modulo progress
        # that the job stream's history compacted).
        own = await read_sse(client, f"/api/jobs/{job_id}/events")
        assert [e for e in own if e.event != "step-progress"] == [
            e for e in mine if e.event != "step-progress"
        ]


async def test_all_events_resumes_after_last_event_id(client: httpx.AsyncClient) -> None:
    with trio.fail_after(10):
        async with open_sse(client, "/api/events") as stream:
            first = await create(client)
            second = await create(client)
            seen: list[Ev] = []
            done = 0
            while done < 2:
                event = await stream.next()
                seen.append(event)
                done += event.event == "job-completed"
        cut = len(seen) // 2
        async with open_sse(
            client, "/api/events", headers={"Last-Event-ID": seen[cut].id or ""}
        ) as stream:
            replay = await stream.until(lambda e: e.id == seen[-1].id)
    assert {e.data["jobId"] for e in seen} == {first, second}
    compact = [e for e in seen[cut + 1 :] if e.event != "step-progress"]
    assert [e for e in replay if e.event != "step-progress"] == compact, summary(replay)
    assert_strictly_increasing(seen[: cut + 1] + replay)


async def test_stream_of_a_queued_job_starts_with_queued(
    service: Service, client: httpx.AsyncClient
) -> None:
    blockers = await fill_slots(client, service)
    queued = await create(client)
    with trio.fail_after(10):
        async with open_sse(client, f"/api/jobs/{queued}/events") as stream:
            first = await stream.next()
            assert (first.event, first.data["status"]) == ("job-status", "Queued")
            for blocker in blockers:
                await client.post(f"/api/jobs/{blocker}/cancel")
            rest = await stream.rest()
    check_job_stream([first, *rest], queued, stages=2)


async def test_cancel_of_a_queued_job_streams_job_cancelled_with_null_step(
    service: Service, client: httpx.AsyncClient
) -> None:
    await fill_slots(client, service)
    queued = await create(client, WAITING)
    with trio.fail_after(10):
        async with open_sse(client, f"/api/jobs/{queued}/events") as stream:
            await stream.next()
            await client.post(f"/api/jobs/{queued}/cancel")
            rest = await stream.rest()
    assert [(e.event, e.data.get("status")) for e in rest] == [
        ("job-status", "Canceled"),
        ("job-cancelled", None),
    ]
    assert rest[0].data["previousStatus"] == "Queued"
    assert rest[1].data == {"jobId": queued, "step": None, "message": "canceled by user"}


@one_process("a history TTL of its own; reads the runtime")
async def test_after_the_history_ttl_a_finished_job_streams_204(tmp_path: Path) -> None:
    async with (
        run_server(ServerSettings.of(history_ttl=0.05), data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert server.runtime is not None
        runtime = server.runtime
        job_id = await create(client)
        with trio.fail_after(10):
            events = await read_sse(client, f"/api/jobs/{job_id}/events")
            assert events[-1].event == "job-completed"
            while not (await runtime.get(job_id)).history_expired:  # noqa: ASYNC110 - the TTL
                await trio.sleep(0.01)
            # Nothing more to say (with or without a last id); the snapshot is still there.
            for headers in ({}, {"Last-Event-ID": events[2].id or ""}):
                response = await client.get(f"/api/jobs/{job_id}/events", headers=headers)
                assert response.status_code == 204
            snapshot = await client.get(f"/api/jobs/{job_id}")
            assert snapshot.json()["status"] == "Done"


async def test_head_answers_the_stream_headers_and_holds_nothing_open(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client, WAITING)
    raw = await RawHttp.connect(service.url)
    with trio.fail_after(5):
        for path in (f"/api/jobs/{job_id}/events", "/api/events", f"/api/jobs/{job_id}/events"):
            # One connection: each answer ends, so the next request on it is served.
            await raw.send_request("HEAD", path, service.auth_pairs)
            await raw.read_head()
            assert raw.status == 200
            assert dict(raw.headers)["content-type"] == "text/event-stream"
            assert await raw.read_body() == b""
            raw.conn.start_next_cycle()
            if service.server is not None and service.server.runtime is not None:
                assert service.server.runtime.broadcaster.subscriber_count == 0
        await raw.send_request("HEAD", "/api/jobs/no-such-job/events", service.auth_pairs)
        await raw.read_head()
        assert raw.status == 404
    await raw.aclose()
