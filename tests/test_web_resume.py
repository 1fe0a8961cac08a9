"""Resume: a client that disconnects mid-job and reconnects with its last id loses nothing.

What is asserted, precisely. Let R be what a subscriber that never
disconnected received and U the concatenation of what a resuming client
received over all its connections. Then:

1. U's ids are strictly increasing as (millis, counter): no duplicate, no
   reordering, across reconnects.
2. ``compact(U) == compact(R)``, where ``compact`` replaces every run of
   consecutive ``step-progress`` events by its last one: the very same
   non-progress events (same id, type and data) in the same order, and the
   same latest progress before each of them. This is exactly what the
   contract lets a reader lose: intermediate progress, nothing else.
3. An id present in both U and R carries identical type and data: ids name
   events server-wide.
4. After the terminal event, a reconnect with its id gets 204.

With a fast reader and modest rates U and R are usually identical; the
contract allows a slow reader (or a replay from the compacted history) to
skip intermediate progress, so equality is asserted only after compaction.

Each test runs against one process and against a cluster behind a round-robin
load balancer (``service``, tests/support/service.py): there every reconnect
lands on the other API node.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import trio
from support.service import Service
from support.streams import (
    Ev,
    assert_strictly_increasing,
    compact_progress,
    open_sse,
    summary,
)

from aura_actors.web import ServerSettings

WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
JOB = {"pipeline": "synthetic", "params": {"stages": 3, "ticks": 12, "tickSeconds": 0.01}}

Cut = Callable[[Ev], bool]


def nth(n: int) -> Cut:
    """Disconnect after the n-th event of this connection."""
    count = 0

    def cut(_: Ev) -> bool:
        nonlocal count
        count += 1
        return count >= n

    return cut


CUTS: dict[str, Callable[[], list[Cut]]] = {
    "at landmarks": lambda: [
        lambda e: e.data.get("status") == "Queued",
        lambda e: e.data.get("status") == "Running",
        lambda e: e.event == "step-progress" and e.data["stepProgressPct"] >= 40,
        lambda e: e.event == "step-status" and e.data["state"] == "Completed",
        lambda e: e.event == "step-status" and e.data["state"] == "Started",
        lambda e: e.event == "step-progress" and e.data["step"] == "stage-3",
        lambda e: e.data.get("status") == "Done",
    ],
    "every few events": lambda: [nth(n) for n in (3, 1, 2, 5, 1, 4, 3, 2, 1, 6, 2)],
}


@pytest.fixture
def service_settings() -> ServerSettings:
    return ServerSettings.of(max_concurrent_jobs=1)


async def never_disconnects(
    client: httpx.AsyncClient, job_id: str, started: trio.Event, out: list[Ev]
) -> None:
    async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
        started.set()
        out.extend(await stream.rest())


async def resumes(
    client: httpx.AsyncClient, job_id: str, cuts: list[Cut], started: trio.Event, out: list[Ev]
) -> None:
    """Read until each cut, disconnect, reconnect after the last id (header, then query, ...)."""
    path = f"/api/jobs/{job_id}/events"
    last: str | None = None

    def at_terminal(event: Ev) -> bool:
        return event.is_terminal

    for index, cut in enumerate([*cuts, at_terminal]):
        if last is None:
            headers, params = {}, None
        elif index % 2:
            headers, params = {"Last-Event-ID": last}, None
        else:
            headers, params = {}, {"lastEventId": last}
        async with open_sse(client, path, headers=headers, params=params) as stream:
            assert stream.response.status_code == 200, (index, stream.response.status_code)
            started.set()
            while True:
                try:
                    event = await stream.next()
                except StopAsyncIteration:
                    raise AssertionError(f"stream ended early; got {summary(out)}") from None
                out.append(event)
                last = event.id
                if cut(event) or event.is_terminal:
                    break
        if out[-1].is_terminal:
            break
    # The terminal event was the last one: a reconnect with its id is told to stop.
    assert last is not None and out[-1].is_terminal
    answer = await client.get(path, headers={"Last-Event-ID": last})
    assert answer.status_code == 204


def assert_resumed_equals_reference(resumed: list[Ev], reference: list[Ev]) -> None:
    assert_strictly_increasing(resumed)
    assert len({e.id for e in resumed}) == len(resumed)
    assert [e.triple() for e in compact_progress(resumed)] == [
        e.triple() for e in compact_progress(reference)
    ], (summary(compact_progress(resumed)), summary(compact_progress(reference)))
    by_id = {e.id: e for e in reference}
    for event in resumed:
        if event.id in by_id:
            assert event.triple() == by_id[event.id].triple()
    assert reference[0].data["status"] == "Queued" and reference[-1].event == "job-completed"


@pytest.mark.parametrize("cuts", list(CUTS), ids=list(CUTS))
async def test_disconnect_mid_job_and_resume_loses_nothing(service: Service, cuts: str) -> None:
    async with service.client() as client:
        # The job waits behind blockers, so both readers are there from its first event.
        blockers = [(await client.post("/api/jobs", json=WAITING)).json()["id"]]
        blockers += [
            (await client.post("/api/jobs", json=WAITING)).json()["id"]
            for _ in range(service.capacity - 1)
        ]
        job_id = (await client.post("/api/jobs", json=JOB)).json()["id"]
        reference: list[Ev] = []
        resumed: list[Ev] = []
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                ready = [trio.Event(), trio.Event()]
                nursery.start_soon(never_disconnects, client, job_id, ready[0], reference)
                nursery.start_soon(resumes, client, job_id, CUTS[cuts](), ready[1], resumed)
                for event in ready:
                    await event.wait()
                for blocker in blockers:
                    assert (await client.post(f"/api/jobs/{blocker}/cancel")).status_code == 202
    assert_resumed_equals_reference(resumed, reference)
    # Every connection but the first resumed mid-job at least once for these cuts.
    assert len(compact_progress(reference)) >= 4 + 3 * 3


async def test_resume_after_the_job_ended_replays_the_rest_from_history(
    service: Service,
) -> None:
    """Disconnected during the job, reconnecting only after it ended: the rest comes from
    the retained history, then the stream ends."""
    async with service.client() as client:
        job_id = (await client.post("/api/jobs", json=JOB)).json()["id"]
        path = f"/api/jobs/{job_id}/events"
        with trio.fail_after(15):
            async with open_sse(client, path) as stream:
                head = await stream.until(lambda e: e.event == "step-progress")
            async with open_sse(client, path) as stream:  # a witness, read to the end
                whole = await stream.rest()
            async with open_sse(client, path, headers={"Last-Event-ID": head[-1].id or ""}) as s:
                tail = await s.rest()
    assert_strictly_increasing(head + tail)
    assert [e.triple() for e in compact_progress(head + tail)] == [
        e.triple() for e in compact_progress(whole)
    ]
