"""Reconnect, backoff and resume of the client's SSE streams, on trio's autojump clock.

A scripted fake server (``httpx.MockTransport``) plays one answer per
connection, so the schedule of reconnection tries is asserted to the exact
(virtual) second, with no network and no real waiting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
import trio
import trio.testing

from aura_actors.client import (
    AuraClient,
    ConnectionLost,
    ErrorEvent,
    Event,
    JobCompletedEvent,
    NotFound,
    Reconnecting,
    ReconnectPolicy,
    StepProgressEvent,
    Unauthorized,
    ValidationFailed,
)

JOB = "job-1"


def frame(event_id: str | None, event: str, **data: Any) -> bytes:
    """One SSE block as the server writes it."""
    data.setdefault("jobId", JOB)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def progress(event_id: str, pct: float) -> bytes:
    return frame(
        event_id,
        "step-progress",
        step="stage-1",
        progressPct=pct,
        stepProgressPct=pct,
        message=f"at {pct}",
        etaSeconds=None,
        currentItem=None,
        totalItems=None,
    )


def completed(event_id: str) -> bytes:
    return frame(event_id, "job-completed", artifacts=[], durationSeconds=1.5)


End = Literal["eof", "reset", "hang"]


class Body(httpx.AsyncByteStream):
    """A response body: the chunks, then end of stream, a reset, or nothing more."""

    def __init__(self, chunks: list[bytes], end: End) -> None:
        self.chunks = chunks
        self.end = end
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await trio.lowlevel.checkpoint()
            yield chunk
        if self.end == "reset":
            raise httpx.ReadError("connection reset by peer")
        if self.end == "hang":
            await trio.sleep_forever()

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Answer:
    """What the fake server does with one connection."""

    status: int = 200
    chunks: list[bytes] = field(default_factory=list)
    end: End = "eof"
    refuse: bool = False  # no connection at all

    @classmethod
    def refused(cls) -> Answer:
        return cls(refuse=True)

    @classmethod
    def stream(cls, *chunks: bytes, end: End = "eof", retry: int | None = None) -> Answer:
        head = [f"retry: {retry}\n\n".encode()] if retry is not None else []
        return cls(200, [*head, *chunks], end)


@dataclass
class Request:
    at: float
    last_event_id: str | None


class FakeServer:
    """Plays ``answers`` in order, one per request; refuses every request after them."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []
        self.bodies: list[Body] = []

    @property
    def times(self) -> list[float]:
        return [request.at for request in self.requests]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(Request(trio.current_time(), request.headers.get("last-event-id")))
        answer = self.answers.pop(0) if self.answers else Answer.refused()
        if answer.refuse:
            raise httpx.ConnectError("connection refused", request=request)
        if answer.status != 200:
            body = json.dumps({"error": {"code": f"e{answer.status}", "message": "no"}})
            return httpx.Response(answer.status, content=body.encode())
        stream = Body(answer.chunks, answer.end)
        self.bodies.append(stream)
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=stream)

    def client(self, **policy: Any) -> AuraClient:
        return AuraClient(
            "http://fake",
            reconnect=ReconnectPolicy(**policy),
            transport=httpx.MockTransport(self.handle),
        )


async def read_all(client: AuraClient, *, job: str | None = JOB, **kwargs: Any) -> list[Event]:
    stream = client.events(job, **kwargs) if job is not None else client.all_events(**kwargs)
    async with stream:
        return [event async for event in stream]


def relative(times: list[float]) -> list[float]:
    return [round(t - times[0], 6) for t in times]


# -- the schedule -------------------------------------------------------------------------


async def test_unreachable_server_is_tried_after_1_2_4_8_16_s_then_connection_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer()
    async with server.client() as client:
        with pytest.raises(ConnectionLost) as raised:
            await read_all(client)
    assert relative(server.times) == [0, 1, 3, 7, 15, 31]
    assert raised.value.attempts == 5
    assert raised.value.last_event_id is None
    assert "gave up after 5 reconnection tries" in str(raised.value)


async def test_a_drop_after_events_resumes_with_last_event_id_on_the_same_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 5), progress("10-1", 10), end="reset"))
    seen: list[Reconnecting] = []
    async with server.client() as client:
        with pytest.raises(ConnectionLost) as raised:
            await read_all(client, on_reconnect=seen.append)
    assert relative(server.times) == [0, 1, 3, 7, 15, 31]
    assert [r.last_event_id for r in server.requests] == [None, *["10-1"] * 5]
    assert [info.delay for info in seen] == [1, 2, 4, 8, 16]
    assert [info.attempt for info in seen] == [1, 2, 3, 4, 5]
    assert raised.value.last_event_id == "10-1"


async def test_the_servers_retry_is_the_base_of_the_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 5), end="reset", retry=250))
    async with server.client() as client:
        with pytest.raises(ConnectionLost):
            await read_all(client)
    assert relative(server.times) == [0, 0.25, 0.75, 1.75, 3.75, 7.75]


async def test_a_retry_alone_before_the_drop_still_sets_the_base(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(end="reset", retry=100))
    async with server.client(max_attempts=2) as client:
        with pytest.raises(ConnectionLost):
            await read_all(client)
    assert relative(server.times) == [0, 0.1, 0.3]


async def test_without_use_server_retry_the_base_delay_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 5), end="reset", retry=250))
    async with server.client(base_delay=0.5, max_attempts=3, use_server_retry=False) as client:
        with pytest.raises(ConnectionLost) as raised:
            await read_all(client)
    assert relative(server.times) == [0, 0.5, 1.5, 3.5]
    assert raised.value.attempts == 3


async def test_max_delay_caps_each_wait(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer()
    async with server.client(max_delay=3) as client:
        with pytest.raises(ConnectionLost):
            await read_all(client)
    assert relative(server.times) == [0, 1, 3, 6, 9, 12]


async def test_the_count_starts_again_after_a_connection_that_delivered_an_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(
        Answer.stream(progress("10-0", 10), end="reset", retry=1000),
        Answer.refused(),  # try 1 (after 1 s)
        Answer.stream(progress("11-0", 20), end="reset"),  # try 2 (after 2 s) delivers
        Answer.refused(),  # try 1 again (after 1 s)
        Answer.refused(),  # try 2 (after 2 s)
        Answer.stream(progress("12-0", 30), completed("13-0")),  # try 3 (after 4 s)
    )
    async with server.client() as client:
        events = await read_all(client)
    assert relative(server.times) == [0, 1, 3, 4, 6, 10]
    assert [event.id for event in events] == ["10-0", "11-0", "12-0", "13-0"]
    assert [r.last_event_id for r in server.requests] == [
        None,
        "10-0",
        "10-0",
        "11-0",
        "11-0",
        "11-0",
    ]


async def test_connections_that_deliver_no_event_count_as_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each connection opens (200, retry:, a keep-alive) and ends before any event.
    empty = Answer.stream(b": keep-alive\n\n", retry=1000)
    server = FakeServer(*[empty] * 6)
    async with server.client() as client:
        with pytest.raises(ConnectionLost):
            await read_all(client)
    assert relative(server.times) == [0, 1, 3, 7, 15, 31]


async def test_max_attempts_zero_gives_up_at_the_first_drop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 5), end="reset"))
    async with server.client(max_attempts=0) as client:
        stream = client.events(JOB)
        async with stream:
            assert (await anext(stream)).id == "10-0"
            with pytest.raises(ConnectionLost) as raised:
                await anext(stream)
    assert raised.value.attempts == 0
    assert len(server.requests) == 1


# -- what is retried, what stops ----------------------------------------------------------


async def test_5xx_answers_are_retried(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(
        Answer(status=503),
        Answer(status=502),
        Answer(status=500),
        Answer.stream(completed("20-0")),
    )
    async with server.client() as client:
        events = await read_all(client)
    assert relative(server.times) == [0, 1, 3, 7]
    assert [event.type for event in events] == ["job-completed"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFound), (401, Unauthorized), (400, ValidationFailed)],
)
async def test_4xx_stops_for_good(
    autojump_clock: trio.testing.MockClock, status: int, error: type[Exception]
) -> None:
    server = FakeServer(Answer(status=status))
    async with server.client() as client:
        with pytest.raises(error):
            await read_all(client)
    assert len(server.requests) == 1


async def test_204_ends_the_stream_quietly(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 50), end="reset"), Answer(status=204))
    async with server.client() as client:
        events = await read_all(client)
    assert [event.id for event in events] == ["10-0"]
    assert len(server.requests) == 2


async def test_204_also_stops_a_stream_asked_to_start_after_the_terminal_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer(status=204))
    async with server.client() as client:
        assert await read_all(client, last_event_id="13-0") == []
    assert server.requests[0].last_event_id == "13-0"


# -- exactly once -------------------------------------------------------------------------


async def test_the_stream_ends_after_the_terminal_event_without_waiting_for_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 50), completed("11-0"), end="hang"))
    async with server.client() as client:
        with trio.fail_after(1):
            events = await read_all(client)
    assert [event.type for event in events] == ["step-progress", "job-completed"]
    assert isinstance(events[-1], JobCompletedEvent)
    assert server.bodies[0].closed


async def test_replayed_events_are_dropped_so_each_arrives_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(
        Answer.stream(progress("10-0", 10), progress("10-1", 20), end="reset"),
        # A (misbehaving) server replays from too early after the resume.
        Answer.stream(progress("10-0", 10), progress("10-1", 20), completed("11-0")),
    )
    async with server.client() as client:
        stream = client.events(JOB)
        async with stream:
            events = [event async for event in stream]
    assert [event.id for event in events] == ["10-0", "10-1", "11-0"]
    assert stream.duplicates_dropped == 2
    assert stream.connections == 2
    assert stream.last_event_id == "11-0"


async def test_a_frame_cut_in_half_is_received_whole_after_the_resume(
    autojump_clock: trio.testing.MockClock,
) -> None:
    second = progress("10-1", 20)
    server = FakeServer(
        Answer.stream(progress("10-0", 10), second[:25], end="reset"),
        Answer.stream(second, completed("11-0")),
    )
    async with server.client() as client:
        events = await read_all(client)
    assert [event.id for event in events] == ["10-0", "10-1", "11-0"]
    assert isinstance(events[1], StepProgressEvent) and events[1].progress_pct == 20
    assert server.requests[1].last_event_id == "10-0"


async def test_a_stream_error_without_id_is_delivered_and_does_not_move_the_resume_point(
    autojump_clock: trio.testing.MockClock,
) -> None:
    overflow = frame(None, "error", code="subscriber_overflow", message="too slow")
    server = FakeServer(
        Answer.stream(progress("10-0", 10), overflow),  # the server ends the stream
        Answer.stream(progress("10-1", 20), completed("11-0")),
    )
    async with server.client() as client:
        events = await read_all(client)
    assert [(event.id, event.type) for event in events] == [
        ("10-0", "step-progress"),
        (None, "error"),
        ("10-1", "step-progress"),
        ("11-0", "job-completed"),
    ]
    assert isinstance(events[1], ErrorEvent) and events[1].code == "subscriber_overflow"
    assert server.requests[1].last_event_id == "10-0"


async def test_all_events_goes_on_past_terminal_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(
        Answer.stream(completed("10-0"), end="reset"),
        Answer.stream(
            frame(
                "11-0",
                "job-status",
                status="Queued",
                previousStatus=None,
                stage=None,
                progressPct=0,
                jobId="job-2",
            ),
            end="hang",
        ),
    )
    async with server.client() as client:
        stream = client.all_events()
        async with stream:
            first = await anext(stream)
            second = await anext(stream)
    assert (first.type, first.job_id) == ("job-completed", JOB)
    assert (second.type, second.job_id) == ("job-status", "job-2")
    assert server.requests[1].last_event_id == "10-0"
    assert len(server.requests) == 2


# -- cancellation -------------------------------------------------------------------------


async def test_cancelling_the_reader_closes_the_connection_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.stream(progress("10-0", 10), end="hang"))
    got: list[Event] = []
    async with server.client() as client:
        with trio.move_on_after(30) as scope:
            async for event in client.events(JOB):
                got.append(event)
        assert scope.cancelled_caught
        assert trio.current_time() == pytest.approx(30)
    assert [event.id for event in got] == ["10-0"]
    assert server.bodies[0].closed
    assert len(server.requests) == 1


async def test_cancelling_during_the_backoff_wait_stops_reconnecting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(Answer.refused())
    async with server.client() as client:
        with trio.move_on_after(0.5):
            await read_all(client)
        assert trio.current_time() == pytest.approx(0.5)
        await trio.sleep(100)
    assert len(server.requests) == 1


# -- the policy itself --------------------------------------------------------------------


def test_policy_defaults_and_validation() -> None:
    policy = ReconnectPolicy()
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert [policy.delay(n, server_retry=0.1) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert policy.max_attempts == 5
    jittered = ReconnectPolicy(jitter=0.5)
    assert all(2 <= jittered.delay(3) <= 6 for _ in range(100))
    for bad in ({"max_attempts": -1}, {"multiplier": 0.5}, {"jitter": 1.5}):
        with pytest.raises(ValueError):
            ReconnectPolicy(**bad)
