"""The SSE/WebSocket delivery path's own pieces: shared encodings, the keep-alive loop, writes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from aura_actors.protocol import CloseCode, SseEncoder
from aura_actors.runtime import Event, EventId, EventType, Subscription, stream_error
from aura_actors.web._sse import (
    KEEPALIVE_FRAME,
    encode_batch,
    encode_event,
    send_events,
    shielded_writer,
)
from aura_actors.web._ws_routes import event_frame, event_message, send_ws_events


def progress(counter: int, job_id: str = "j1") -> Event:
    data = {"jobId": job_id, "step": "Script", "progressPct": counter, "message": "é"}
    return Event(EventId(1_700_000_000_000, counter), EventType.STEP_PROGRESS, data, job_id)


def test_an_sse_frame_is_encoded_once_and_shared() -> None:
    event = progress(1)
    frame = encode_event(event)
    assert frame == SseEncoder().event(event.data_json, event="step-progress", id="1700000000000-1")
    assert encode_event(event) is frame, "every subscriber sends the same bytes object"
    assert encode_batch([event]) is frame
    other = progress(2)
    assert encode_batch([event, other]) == frame + encode_event(other)


def test_a_websocket_message_is_encoded_once_and_apart_from_the_sse_frame() -> None:
    event = progress(3)
    frame = encode_event(event)
    message = event_message(event)
    assert json.loads(message) == {
        "id": "1700000000000-3",
        "event": "step-progress",
        "data": event.data,
    }
    assert event_message(event) is message
    assert encode_event(event) is frame, "each view has its own cache entry"
    error = stream_error("subscriber_overflow", "behind", "j1")
    assert json.loads(event_message(error))["id"] is None
    assert b"id:" not in encode_event(error)


@pytest.mark.parametrize(
    "data",
    [
        {"jobId": "j1", "message": "plain"},
        {"jobId": "j1", "message": "line\nbreak\r\nand \u2028 \u0085 é 😀"},
        {"jobId": "j1", "nested": {"list": [1, 2.5, None, True]}},
    ],
)
def test_the_fast_frame_is_byte_for_byte_the_encoder_s(data: dict[str, Any]) -> None:
    for event in (
        Event(EventId(1_700_000_000_123, 7), EventType.WARNING, data, "j1"),
        Event(None, EventType.ERROR, data, "j1"),
    ):
        expected = SseEncoder().event(event.data_json, event=event.type.value, id=event.id_text)
        assert encode_event(event) == expected


def test_encoded_caches_per_function_and_computes_once() -> None:
    event = progress(4)
    calls: list[Event] = []

    def view(e: Event) -> str:
        calls.append(e)
        return f"view of {e.id}"

    assert event.encoded(view) == "view of 1700000000000-4"
    assert event.encoded(view) == "view of 1700000000000-4"
    assert calls == [event]
    assert event.encoded(lambda e: None) is None  # a None view is cached too


def subscription_of(events: list[Event]) -> Subscription:
    return Subscription(replay=events, max_buffer=100)


async def testsend_events_sends_batches_keepalives_when_quiet_and_stops_at_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    subscription = subscription_of([progress(1), progress(2)])
    sent: list[tuple[float, bytes]] = []

    async def send(message: dict[str, Any]) -> None:
        assert message["type"] == "http.response.body" and message["more_body"] is True
        sent.append((trio.current_time(), message["body"]))
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_events, subscription, shielded_writer(send), 10.0)
        await trio.sleep(25)  # quiet: keep-alives at 10 and 20
        subscription.offer(progress(3))
        await trio.sleep(5)
        subscription.end()
    bodies = [body for _, body in sent]
    assert bodies[1:3] == [KEEPALIVE_FRAME, KEEPALIVE_FRAME]
    assert b"1700000000000-1" in bodies[0] and b"1700000000000-2" in bodies[0]
    assert b"1700000000000-3" in bodies[3]
    assert [round(t) for t, _ in sent] == [0, 10, 20, 25]


async def test_a_keepalive_never_interrupts_a_write(autojump_clock: trio.testing.MockClock) -> None:
    """A write slower than the keep-alive interval is not cancelled, and nothing is lost."""
    subscription = subscription_of([progress(1)])
    sent: list[bytes] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await trio.sleep(30)  # three keep-alive intervals
        sent.append(message["body"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_events, subscription, shielded_writer(slow_send), 10.0)
        await trio.sleep(1)
        subscription.offer(progress(2))
        await trio.sleep(100)
        subscription.end()
    events = b"".join(body for body in sent if body != KEEPALIVE_FRAME)
    assert events == encode_event(progress(1)) + encode_event(progress(2))


async def test_a_keepalive_comes_one_interval_after_the_last_write_never_while_events_flow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The timer's deadline is set once per quiet spell, yet counts from the last write."""
    subscription = subscription_of([])
    sent: list[tuple[float, bytes]] = []

    async def write(body: bytes) -> None:
        sent.append((trio.current_time(), body))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_events, subscription, write, 10.0)
        for counter in range(1, 6):
            await trio.sleep(6)  # events every 6 s: never quiet for 10
            subscription.offer(progress(counter))
        await trio.sleep(25)  # then quiet: keep-alives 10 and 20 s after the last event
        subscription.end()
    keepalives = [round(t) for t, body in sent if body == KEEPALIVE_FRAME]
    events = [round(t) for t, body in sent if body != KEEPALIVE_FRAME]
    assert events == [6, 12, 18, 24, 30]
    assert keepalives == [40, 50]


class StepCounter(trio.abc.Instrument):
    """Counts the steps of the tasks named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


def terminal(counter: int, job_id: str = "j1") -> Event:
    data = {"jobId": job_id, "result": None}
    return Event(EventId(1_700_000_000_000, counter), EventType.JOB_COMPLETED, data, job_id)


async def test_a_websocket_wakeup_is_one_step_and_one_write_of_prebuilt_frames() -> None:
    """Each event offered alone: one task step and one write each (no lock's extra step)."""
    subscription = subscription_of([])
    written: list[bytes] = []
    codes: list[CloseCode] = []

    async def frames(data: bytes) -> bool:  # as _Connection.write_raw when the socket takes it
        written.append(data)
        return True

    async def send(text: str) -> None:
        raise AssertionError("the frames went through the frame writer")

    async def deliver() -> None:
        codes.append(await send_ws_events(subscription, frames, send))

    counter = StepCounter("ws-deliver")
    trio.lowlevel.add_instrument(counter)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver, name="ws-deliver")
            await trio.testing.wait_all_tasks_blocked()
            before = counter.steps
            for number in range(1, 21):
                subscription.offer(progress(number))
                await trio.testing.wait_all_tasks_blocked()
            steps = counter.steps - before
            subscription.offer(terminal(21))
            subscription.end()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert written == [event_frame(progress(n)) for n in range(1, 21)] + [event_frame(terminal(21))]
    assert steps == 20
    assert codes == [CloseCode.NORMAL]


async def test_websocket_events_go_one_message_each_where_no_frame_writer_takes_them() -> None:
    events = [progress(1), progress(2), stream_error("overflow", "too slow")]
    subscription = subscription_of(events)
    subscription.end()
    sent: list[str] = []

    async def declining(data: bytes) -> bool:
        return False

    async def send(text: str) -> None:
        sent.append(text)

    code = await send_ws_events(subscription, declining, send)
    assert sent == [event_message(event) for event in events]
    assert code is CloseCode.TRY_AGAIN_LATER
    subscription = subscription_of([progress(3)])
    subscription.end()
    assert await send_ws_events(subscription, None, send) is CloseCode.GOING_AWAY
    assert sent[-1] == event_message(progress(3))
