"""Fan-out throughput: events/s the hub delivers to S subscribers, beside raw trio fan-out.

Both sides do the same work in the same protocol: a publisher makes one small
event object at a time, with its id, and hands it to every subscriber
(``Hub.publish``, which offers it to the job's subscriptions, on one side;
``send_nowait`` to S memory channels on the other), in batches of ``BATCH``
events, then waits until every reader has drained the batch. Readers drain with
``Subscription.receive_batch`` / ``receive`` + ``receive_nowait``. Both buffers
are 1024 events deep. The events are ``step-status`` events, which
subscriptions never coalesce (``step-progress`` would be superseded inside a
batch, which would flatter the runtime).

This is the live half of delivery only; :mod:`bench.inproc.broadcast` measures
the whole hop (the broadcaster actor, its storage commit, then this fan-out).
"""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing

from aura_actors.runtime import Event, EventIdGenerator, EventType, Hub, Subscription
from bench.progress import say
from bench.results import Measure, RunResults

BATCH = 256
BUFFER = 1024


class Drain:
    """How many deliveries of the current batch are still outstanding."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.done = trio.Event()

    def expect(self, count: int) -> None:
        self.outstanding = count
        self.done = trio.Event()

    def got(self, count: int) -> None:
        self.outstanding -= count
        if self.outstanding <= 0:
            self.done.set()


def step_data(i: int) -> dict[str, Any]:
    """The payload of the ``i``-th benchmark event (a ``step-status``)."""
    return {
        "jobId": "bench",
        "step": "stage-1",
        "stepIndex": i,
        "totalSteps": 1,
        "state": "Started",
    }


async def read_subscription(subscription: Subscription, drain: Drain) -> None:
    """Drain ``subscription`` a batch at a time, counting into ``drain``, until it ends."""
    while True:
        batch = await subscription.receive_batch(BATCH)
        if not batch:
            return
        drain.got(len(batch))


def follow(hub: Hub, subscribers: int) -> list[Subscription]:
    """``subscribers`` subscriptions of the job ``bench``, as ``Runtime.subscribe_job`` makes."""
    subscriptions = []
    for _ in range(subscribers):
        subscription = Subscription(max_buffer=BUFFER, job_id="bench")
        hub.follow_job("bench", subscription)
        subscriptions.append(subscription)
    return subscriptions


async def aura_fanout(subscribers: int, events: int) -> float:
    """Seconds to deliver ``events`` events to each of ``subscribers`` via the hub."""
    hub = Hub()
    ids = EventIdGenerator()
    subscriptions = follow(hub, subscribers)
    drain = Drain()
    async with trio.open_nursery() as nursery:
        for subscription in subscriptions:
            nursery.start_soon(read_subscription, subscription, drain)
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        for first in range(0, events, BATCH):
            drain.expect(subscribers * BATCH)
            for i in range(first, first + BATCH):
                hub.publish(Event(ids.next_id(), EventType.STEP_STATUS, step_data(i), "bench"))
            await drain.done.wait()
        elapsed = time.perf_counter() - start
        hub.close()
    return elapsed


async def _raw_reader(channel: trio.MemoryReceiveChannel[Any], drain: Drain) -> None:
    while True:
        try:
            batch = [await channel.receive()]
        except trio.EndOfChannel:
            return
        while len(batch) < BATCH:
            try:
                batch.append(channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        drain.got(len(batch))


async def raw_fanout(subscribers: int, events: int) -> float:
    """Seconds to deliver ``events`` events to each of ``subscribers`` memory channels."""
    pairs = [trio.open_memory_channel[Any](BUFFER) for _ in range(subscribers)]
    drain = Drain()
    async with trio.open_nursery() as nursery:
        for _, receive in pairs:
            nursery.start_soon(_raw_reader, receive, drain)
        await trio.testing.wait_all_tasks_blocked()
        sends = [send for send, _ in pairs]
        start = time.perf_counter()
        for first in range(0, events, BATCH):
            drain.expect(subscribers * BATCH)
            for i in range(first, first + BATCH):
                event = (i, EventType.STEP_STATUS, step_data(i))
                for send in sends:
                    send.send_nowait(event)
            await drain.done.wait()
        elapsed = time.perf_counter() - start
        for send in sends:
            send.close()
    return elapsed


def run(results: RunResults, subscriber_counts: list[int], deliveries: int) -> None:
    """Measure each subscriber count for both sides; add rows and the raw curve."""
    curve: dict[str, list[dict[str, float]]] = {"aura": [], "raw": []}
    for subscribers in subscriber_counts:
        events = max(BATCH, (deliveries // subscribers) // BATCH * BATCH)
        rates = {}
        for side, function in (("aura", aura_fanout), ("raw", raw_fanout)):
            elapsed = trio.run(function, subscribers, events)
            rates[side] = subscribers * events / elapsed
            curve[side].append(
                {"subscribers": subscribers, "events": events, "delivered_per_second": rates[side]}
            )
        say(
            f"fanout: {subscribers} subscribers x {events:,} events: "
            f"hub {rates['aura']:,.0f}/s, raw channels {rates['raw']:,.0f}/s"
        )
        results.add(
            Measure(
                f"fanout S={subscribers}",
                "delivered events/s",
                "events/s",
                rates["aura"],
                rates["raw"],
                "raw channels",
                better="higher",
                target=">= 0.5x raw",
            )
        )
    results.scenarios["fanout"] = {"batch": BATCH, "buffer": BUFFER, "curve": curve}
