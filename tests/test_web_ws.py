"""The WebSocket view (trio-websocket as the client): frames, cancel, close codes, bad input, pings.

Also: SSE and WebSocket subscribers of one job see the same (id, event, data).
Each test runs against one process and against a cluster behind a round-robin
load balancer (``service``, tests/support/service.py), but those marked
``one_process``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio
import wsproto.events
from support.contract import QUICK_JOB, WAITING_JOB
from support.servers import InProcessServer, run_server, write_tokens
from support.service import Service, one_process
from support.streams import (
    Ev,
    assert_strictly_increasing,
    compact_progress,
    create_job,
    open_sse,
    read_sse,
    wait_until,
)
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from aura_actors.web import ServerSettings

QUICK, WAITING = QUICK_JOB, WAITING_JOB
JOB = {"pipeline": "synthetic", "params": {"stages": 3, "ticks": 8, "tickSeconds": 0.01}}


def ws_url(server: InProcessServer | Service, job_id: str, query: str = "") -> str:
    if isinstance(server, Service):
        return server.ws_url(job_id, query)
    url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
    return f"{url}?{query}" if query else url


def parse(message: str | bytes) -> Ev:
    assert isinstance(message, str), "events come as text frames"
    frame = json.loads(message)
    assert set(frame) == {"id", "event", "data"}, frame
    assert isinstance(frame["data"], dict)
    return Ev(frame["id"], frame["event"], frame["data"])


async def next_event(ws: WebSocketConnection) -> Ev:
    return parse(await ws.get_message())


async def read_to_close(ws: WebSocketConnection) -> tuple[list[Ev], int]:
    """Every frame until the server closes; and the close code."""
    events: list[Ev] = []
    while True:
        try:
            events.append(await next_event(ws))
        except ConnectionClosed as closed:
            assert closed.reason is not None
            return events, closed.reason.code


@pytest.fixture
def service_settings() -> ServerSettings:
    return ServerSettings.of(max_concurrent_jobs=2, websocket_ping_interval=0.2)


async def create(client: httpx.AsyncClient, body: Mapping[str, object] = QUICK) -> str:
    return await create_job(client, body)


async def test_one_text_frame_per_event_then_close_1000(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client)
    with trio.fail_after(10):
        sse = await read_sse(client, f"/api/jobs/{job_id}/events")
        async with open_websocket_url(ws_url(service, job_id)) as ws:
            events, code = await read_to_close(ws)
    assert code == 1000
    assert_strictly_increasing(events)
    assert events[0].data["status"] == "Queued" and events[-1].event == "job-completed"
    # A replayed job: the same ids, types and data as the SSE stream, but for the
    # intermediate progress the SSE read may have seen live (the replay compacts it).
    assert [e.triple() for e in compact_progress(events)] == [
        e.triple() for e in compact_progress(sse)
    ]


async def test_sse_and_websocket_subscribers_of_one_job_see_the_same_events(
    service: Service, client: httpx.AsyncClient
) -> None:
    """Both subscribed before the job starts (it waits behind blockers). Equality is exact
    for every id both saw, and after compacting progress runs for the sequences (the
    contract lets a reader skip intermediate progress; with these rates neither does)."""
    blockers = [await create(client, WAITING) for _ in range(service.capacity)]
    job_id = await create(client, JOB)
    by_sse: list[Ev] = []
    by_ws: list[Ev] = []
    with trio.fail_after(15):
        async with (
            open_sse(client, f"/api/jobs/{job_id}/events") as stream,
            open_websocket_url(ws_url(service, job_id)) as ws,
        ):
            by_sse.append(await stream.next())
            by_ws.append(await next_event(ws))
            for blocker in blockers:
                await client.post(f"/api/jobs/{blocker}/cancel")

            async def sse_rest() -> None:
                by_sse.extend(await stream.rest())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sse_rest)
                events, code = await read_to_close(ws)
                by_ws.extend(events)
    assert code == 1000
    for events in (by_sse, by_ws):
        assert_strictly_increasing(events)
        assert events[0].data["status"] == "Queued" and events[-1].event == "job-completed"
    assert [e.triple() for e in compact_progress(by_ws)] == [
        e.triple() for e in compact_progress(by_sse)
    ]
    sse_by_id = {e.id: e for e in by_sse}
    for event in by_ws:
        if event.id in sse_by_id:
            assert event.triple() == sse_by_id[event.id].triple()
    # Identical sequences, as long as neither reader fell behind (reported, not required).
    if len(by_ws) == len(by_sse):
        assert [e.triple() for e in by_ws] == [e.triple() for e in by_sse]


async def test_cancel_action_cancels_then_job_cancelled_and_close_1000(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client, WAITING)
    with trio.fail_after(10):
        async with open_websocket_url(ws_url(service, job_id)) as ws:
            first = [await next_event(ws) for _ in range(3)]
            assert [e.event for e in first] == ["job-status", "job-status", "step-status"]
            await ws.send_message(json.dumps({"action": "cancel"}))
            events, code = await read_to_close(ws)
    assert code == 1000
    assert [e.event for e in events] == ["job-status", "job-cancelled"]
    assert events[0].data["status"] == "Canceled"
    assert events[1].data == {"jobId": job_id, "step": "stage-1", "message": "canceled by user"}
    assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Canceled"


async def test_unknown_job_closes_4404(service: Service) -> None:
    with trio.fail_after(5):
        async with open_websocket_url(ws_url(service, "no-such-job")) as ws:
            events, code = await read_to_close(ws)
    assert (events, code) == ([], 4404)


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "{",
        '{"action": "dance"}',
        '{"action": null}',
        '{"verb": "cancel"}',
        '["cancel"]',
        '"cancel"',
        "42",
        "",
        b"\x00\x01binary",
        b'{"action": "cancel"}',
    ],
    ids=repr,
)
async def test_malformed_messages_get_an_error_and_the_connection_stays_usable(
    service: Service, client: httpx.AsyncClient, message: str | bytes
) -> None:
    job_id = await create(client, WAITING)
    with trio.fail_after(10):
        async with open_websocket_url(ws_url(service, job_id)) as ws:
            for _ in range(3):
                await next_event(ws)
            await ws.send_message(message)
            error = await next_event(ws)
            assert error.id is None and error.event == "error"
            assert error.data["code"] == "bad_message"
            assert isinstance(error.data["message"], str) and error.data["message"]
            assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Running"
            # Still usable: a second bad message, then a real cancel.
            await ws.send_message("nope")
            assert (await next_event(ws)).data["code"] == "bad_message"
            await ws.send_message('{"action": "cancel"}')
            events, code = await read_to_close(ws)
    assert [e.event for e in events] == ["job-status", "job-cancelled"], events
    assert code == 1000


async def test_last_event_id_query_resumes_and_terminal_id_closes_at_once(
    service: Service, client: httpx.AsyncClient
) -> None:
    job_id = await create(client)
    with trio.fail_after(10):
        sse = await read_sse(client, f"/api/jobs/{job_id}/events")
        async with open_websocket_url(ws_url(service, job_id, f"lastEventId={sse[3].id}")) as ws:
            events, code = await read_to_close(ws)
        assert code == 1000
        # The same events, intermediate progress aside: the live SSE read may have seen
        # progress that the stored history the WebSocket replays has compacted.
        assert [e.triple() for e in compact_progress(events)] == [
            e.triple() for e in compact_progress(sse[4:])
        ]
        async with open_websocket_url(ws_url(service, job_id, f"lastEventId={sse[-1].id}")) as ws:
            events, code = await read_to_close(ws)
        assert (events, code) == ([], 1000)
        async with open_websocket_url(ws_url(service, job_id, "lastEventId=garbage")) as ws:
            events, code = await read_to_close(ws)
    assert code == 4400
    assert [(e.id, e.event, e.data["code"]) for e in events] == [
        (None, "error", "invalid_last_event_id")
    ]


@contextmanager
def watch_pings() -> Iterator[list[float]]:
    """Times (trio clock) at which trio-websocket's reader saw a Ping, from its debug log."""
    seen: list[float] = []

    class PingHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.args and record.args[-1] is wsproto.events.Ping:  # type: ignore[index]
                seen.append(trio.current_time())

    logger = logging.getLogger("trio-websocket")
    handler = PingHandler(logging.DEBUG)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def test_idle_connections_get_pings(service: Service, client: httpx.AsyncClient) -> None:
    job_id = await create(client, WAITING)
    with watch_pings() as pings, trio.fail_after(5):
        async with open_websocket_url(ws_url(service, job_id)) as ws:
            for _ in range(3):
                await next_event(ws)
            # Idle now: pings keep coming; trio-websocket answers each with a pong.
            with trio.move_on_after(1.2):
                while True:
                    message = await ws.get_message()
                    raise AssertionError(f"unexpected message on an idle job: {message!r}")
            assert len(pings) >= 3, pings
            gaps = [b - a for a, b in itertools.pairwise(pings)]
            assert all(0.1 < gap < 0.6 for gap in gaps), gaps
            # Still alive and well after all those pings.
            await ws.send_message('{"action": "cancel"}')
            events, code = await read_to_close(ws)
    assert [e.event for e in events] == ["job-status", "job-cancelled"] and code == 1000


@one_process("tokens of its own")
async def test_auth_close_codes(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"tok-alice": "alice", "tok-bob": "bob"})
    settings = ServerSettings.of(auth_tokens=tokens)
    async with run_server(settings, data_dir=tmp_path / "data") as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": "Bearer tok-alice"}
        ) as alice:
            job_id = await create(alice)
        with trio.fail_after(10):
            for query, headers, expected in (
                ("", None, 4401),
                ("access_token=wrong", None, 4401),
                ("", [(b"Authorization", b"Bearer wrong")], 4401),
                ("access_token=tok-bob", None, 4404),
                ("", [(b"Authorization", b"Bearer tok-bob")], 4404),
                ("access_token=tok-alice", None, 1000),
                ("", [(b"Authorization", b"Bearer tok-alice")], 1000),
            ):
                async with open_websocket_url(
                    ws_url(server, job_id, query), extra_headers=headers
                ) as ws:
                    events, code = await read_to_close(ws)
                assert code == expected, (query, headers)
                if expected == 1000:
                    assert events[-1].event == "job-completed"
                else:
                    assert events == [], "nothing of the job before a refusal"
            async with open_websocket_url(
                ws_url(server, "no-such-job", "access_token=tok-alice")
            ) as ws:
                assert await read_to_close(ws) == ([], 4404)


@one_process("counts the runtime's subscribers")
async def test_client_going_away_ends_its_subscription_and_not_the_job(
    process_server: InProcessServer, client: httpx.AsyncClient
) -> None:
    server = process_server
    assert server.runtime is not None
    broadcaster = server.runtime.broadcaster
    job_id = await create(client, WAITING)
    with trio.fail_after(5):
        async with open_websocket_url(ws_url(server, job_id)) as ws:
            await next_event(ws)
            assert broadcaster.subscriber_count == 1
        await wait_until(lambda: broadcaster.subscriber_count == 0, within=1)
        # Torn down without a closing handshake, too. The client's queue must hold what
        # it has not read: a batch of events arrives in one write, and trio-websocket's
        # reader, blocked on a full queue, would never see its stream closed.
        async with open_websocket_url(ws_url(server, job_id), message_queue_size=256) as ws:
            await next_event(ws)
            assert broadcaster.subscriber_count == 1
            await ws._close_stream()  # the TCP connection just goes away
        await wait_until(lambda: broadcaster.subscriber_count == 0, within=1)
    assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "Running"
