"""The broadcaster actor's hop, end to end: a job's events through ``Broadcaster`` to S subscribers.

A job-like sender (a real ``Job`` object, used the way a job actor uses it:
``job.emit`` only puts an item in the broadcaster's inbox) emits ``step-status``
events in batches of ``BATCH``, then waits until every one of S readers has
drained the batch. The broadcaster actor stamps ids, commits what waits in its
inbox to a ``MemoryStorage`` (the job's history) and only then fans it out
through the ``Hub``. Two pacings of the sender:

- ``burst``: a whole batch without yielding, so the broadcaster commits it at once;
- ``paced``: a checkpoint after every event, as a job actor yields between
  reports, so the broadcaster runs (and commits) about once per event.

The reference is the old, synchronous path, done by the sender itself: stamp
the id, append the event to the job's ``JobHistory``, offer it to the hub
(``Hub.publish``): no inbox, no actor, no commit. Both sides share the readers,
the buffers (1024) and the pacing, so the ratio is the cost of the hop.
Measured: delivered events/s (S x events over the wall time) and CPU per event
sent (``time.process_time`` over the timed part, divided by the events sent;
each is delivered to S subscribers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from aura_actors.protocol import JobStatusData, StepStatusData
from aura_actors.runtime import (
    Broadcaster,
    Event,
    EventIdGenerator,
    EventType,
    Hub,
    Job,
    JobHistory,
    JobStatus,
    MemoryStorage,
)
from bench.inproc.fanout import BATCH, BUFFER, Drain, follow, read_subscription
from bench.progress import say
from bench.results import Measure, RunResults

PACINGS = ("burst", "paced")
#: The job history's bound (the runtime's default).
HISTORY_EVENTS = 10_000

Send = Callable[[int], None]


async def _measure(subscribers: int, events: int, paced: bool, hub: Hub, send: Send) -> float:
    """Wall seconds to deliver ``events`` (sent by ``send(i)``) to every subscriber."""
    drain = Drain()
    async with trio.open_nursery() as nursery:
        for subscription in follow(hub, subscribers):
            nursery.start_soon(read_subscription, subscription, drain)
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        for first in range(0, events, BATCH):
            drain.expect(subscribers * BATCH)
            for i in range(first, first + BATCH):
                send(i)
                if paced:
                    await trio.lowlevel.checkpoint()
            await drain.done.wait()
        elapsed = time.perf_counter() - start
        hub.close()
    return elapsed


async def hop(subscribers: int, events: int, paced: bool) -> tuple[float, float]:
    """Wall and CPU seconds for events sent through the broadcaster actor and its storage."""
    storage = MemoryStorage(history_ttl=3600.0, max_history_events=HISTORY_EVENTS)
    hub = Hub()
    # Sliced as ``open_runtime`` slices it for subscribers with BUFFER-deep buffers.
    broadcaster = Broadcaster(storage, hub, fanout_slice=BUFFER // 4)
    job = Job(
        job_id="bench",
        pipeline="bench",
        params={},
        stages=(),
        owner=None,
        broadcaster=broadcaster,
    )

    def send(i: int) -> None:
        job.emit(_payload(i))

    async with trio.open_nursery() as nursery:
        await nursery.start(broadcaster.run)
        # The job's record first, as submit stores it: its events go into its history.
        job.emit(_queued(), create=True)
        if await broadcaster.barrier() is not None:
            raise RuntimeError("the memory storage refused the job")
        cpu = time.process_time()
        elapsed = await _measure(subscribers, events, paced, hub, send)
        cpu = time.process_time() - cpu
        broadcaster.close()
    stored = await storage.job_events("bench", None, HISTORY_EVENTS)
    if len(stored) != min(events + 1, HISTORY_EVENTS):
        raise RuntimeError(f"{len(stored)} events stored, not {events + 1}")
    return elapsed, cpu


async def sync_publish(subscribers: int, events: int, paced: bool) -> tuple[float, float]:
    """Wall and CPU seconds for the old synchronous path: id, history append, hub fan-out."""
    hub = Hub()
    ids = EventIdGenerator()
    history = JobHistory(HISTORY_EVENTS)

    def send(i: int) -> None:
        event = Event(ids.next_id(), EventType.STEP_STATUS, job_id="bench", payload=_payload(i))
        history.append(event)
        hub.publish(event)

    cpu = time.process_time()
    elapsed = await _measure(subscribers, events, paced, hub, send)
    return elapsed, time.process_time() - cpu


def _payload(i: int) -> StepStatusData:
    """The ``i``-th event's payload, built as the job actor builds it."""
    return StepStatusData.build(
        job_id="bench", step="stage-1", step_index=i, total_steps=1, state="Started"
    )


def _queued() -> JobStatusData:
    return JobStatusData.build(
        job_id="bench",
        status=JobStatus.QUEUED,
        previous_status=None,
        stage=None,
        progress_pct=0.0,
    )


def run(results: RunResults, subscriber_counts: list[int], deliveries: int) -> None:
    """Measure each subscriber count and pacing, hop and reference; add rows and raw curves."""
    curve: dict[str, list[dict[str, Any]]] = {"hop": [], "sync": []}
    for subscribers in subscriber_counts:
        events = max(BATCH, (deliveries // subscribers) // BATCH * BATCH)
        for pacing in PACINGS:
            rows = {}
            for side, function in (("hop", hop), ("sync", sync_publish)):
                elapsed, cpu = trio.run(function, subscribers, events, pacing == "paced")
                rows[side] = {
                    "subscribers": subscribers,
                    "events": events,
                    "pacing": pacing,
                    "delivered_per_second": subscribers * events / elapsed,
                    "cpu_seconds_per_event": cpu / events,
                }
                curve[side].append(rows[side])
            _report(results, rows["hop"], rows["sync"])
    results.scenarios["broadcaster"] = {
        "batch": BATCH,
        "buffer": BUFFER,
        "history_events": HISTORY_EVENTS,
        "curve": curve,
    }


def _report(results: RunResults, hop_row: dict[str, Any], sync_row: dict[str, Any]) -> None:
    subscribers, events, pacing = hop_row["subscribers"], hop_row["events"], hop_row["pacing"]
    hop_us = hop_row["cpu_seconds_per_event"] * 1e6
    sync_us = sync_row["cpu_seconds_per_event"] * 1e6
    say(
        f"broadcaster: {subscribers} subscribers x {events:,} events, {pacing}: "
        f"hop {hop_row['delivered_per_second']:,.0f}/s ({hop_us:.2f} µs CPU/event), "
        f"sync publish {sync_row['delivered_per_second']:,.0f}/s ({sync_us:.2f} µs CPU/event)"
    )
    scenario = f"broadcaster S={subscribers} {pacing}"
    label = "sync publish"
    results.add(
        Measure(
            scenario,
            "delivered events/s",
            "events/s",
            hop_row["delivered_per_second"],
            sync_row["delivered_per_second"],
            label,
            better="higher",
        )
    )
    results.add(Measure(scenario, "CPU per event", "µs", hop_us, sync_us, label))
