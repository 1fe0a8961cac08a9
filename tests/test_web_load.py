"""Many jobs and streams at once, and clients that stop reading."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
from support.servers import run_server
from support.streams import (
    Ev,
    RawHttp,
    assert_strictly_increasing,
    compact_progress,
    open_sse,
    parse_sse_wire,
    stuck_client,
    summary,
    wait_until,
)

from aura_actors.web import ServerSettings

JOBS = 50
JOB = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 8, "tickSeconds": 0.01}}


def check_job(events: list[Ev], job_id: str) -> None:
    assert_strictly_increasing(events)
    assert all(e.data["jobId"] == job_id for e in events)
    assert (events[0].event, events[0].data["status"]) == ("job-status", "Queued")
    assert events[-1].event == "job-completed"
    assert sum(e.is_terminal for e in events) == 1
    progress = [e.data["progressPct"] for e in events if "progressPct" in e.data]
    assert progress == sorted(progress)
    steps = [(e.data["step"], e.data["state"]) for e in events if e.event == "step-status"]
    assert steps == [
        ("stage-1", "Started"),
        ("stage-1", "Completed"),
        ("stage-2", "Started"),
        ("stage-2", "Completed"),
    ]


async def test_fifty_jobs_each_with_a_subscriber_plus_the_multiplexed_stream(
    tmp_path: Path,
) -> None:
    settings = ServerSettings.of(max_concurrent_jobs=JOBS)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        httpx.AsyncClient(
            base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=JOBS + 10)
        ) as client,
    ):
        per_job: dict[str, list[Ev]] = {}
        everything: list[Ev] = []
        with trio.fail_after(40):
            async with open_sse(client, "/api/events") as multiplexed:

                async def one_job() -> None:
                    job_id = (await client.post("/api/jobs", json=JOB)).json()["id"]
                    async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
                        per_job[job_id] = await stream.rest()

                async def read_multiplexed() -> None:
                    completed = 0
                    while completed < JOBS:
                        event = await multiplexed.next()
                        everything.append(event)
                        completed += event.event == "job-completed"

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_multiplexed)
                    for _ in range(JOBS):
                        nursery.start_soon(one_job)

        assert len(per_job) == JOBS
        for job_id, events in per_job.items():
            check_job(events, job_id)
        # Ids are unique server-wide, not just per stream.
        all_ids = [e.id for events in per_job.values() for e in events]
        assert len(set(all_ids)) == len(all_ids)
        # The multiplexed stream: one strictly increasing sequence with every job's events.
        assert_strictly_increasing(everything)
        assert {e.data["jobId"] for e in everything} == set(per_job)
        for job_id, events in per_job.items():
            mine = [e for e in everything if e.data["jobId"] == job_id]
            check_job(mine, job_id)
            # Same events as the job's own stream, progress runs compacted in both (the job
            # stream replays a compacted history for what came before it connected).
            assert [e.triple() for e in compact_progress(mine)] == [
                e.triple() for e in compact_progress(events)
            ], job_id
        health = (await client.get("/api/health")).json()
        assert health["jobs"] == {"running": 0, "queued": 0, "total": JOBS}


async def drain(raw: RawHttp) -> bytes:
    """Now read everything the stuck client was sent, to the end of the response."""
    await raw.read_head()
    assert raw.status == 200
    return await raw.read_body()


#: Jobs flooding the stuck client and the normal reader.
FLOODING_JOBS = 4


async def test_a_client_that_stops_reading_overflows_alone(tmp_path: Path) -> None:
    """Many non-progress events toward a client that reads nothing: the job and a normal
    reader carry on, the server answers at once, and the stuck client's subscription is
    ended with ``subscriber_overflow`` after at most its bounded buffer."""
    settings = ServerSettings.of(subscriber_buffer=16, max_concurrent_jobs=8)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        assert server.runtime is not None
        broadcaster = server.runtime.broadcaster
        many = {"pipeline": "synthetic", "params": {"stages": 50, "ticks": 2, "tickSeconds": 0}}
        seen: list[Ev] = []
        mid_flood = trio.Event()

        async def read_normally(task_status: trio.TaskStatus[None]) -> None:
            # Its own task, reading all along: a reader that keeps up.
            async with open_sse(client, "/api/events") as normal:
                task_status.started()
                while sum(e.event == "job-completed" for e in seen) < FLOODING_JOBS:
                    try:
                        seen.append(await normal.next())
                    except StopAsyncIteration:
                        ended = summary(seen[-3:])
                        raise AssertionError(f"the normal reader's stream ended: {ended}") from None
                    if len(seen) == 100:
                        mid_flood.set()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(read_normally)
                raw = await stuck_client(server.url, "/api/events")
                await wait_until(lambda: broadcaster.subscriber_count == 2, within=2)
                jobs = [
                    (await client.post("/api/jobs", json=many)).json()["id"]
                    for _ in range(FLOODING_JOBS)
                ]
                await mid_flood.wait()
                # Mid-flood, the server answers at once.
                with trio.fail_after(1):
                    assert (await client.get("/api/health")).status_code == 200
            # The stuck client was dropped; the normal one, done reading, has closed.
            await wait_until(lambda: broadcaster.subscriber_count == 0, within=2)
            for job_id in jobs:
                snapshot = (await client.get(f"/api/jobs/{job_id}")).json()
                assert snapshot["status"] == "Done"
            assert_strictly_increasing(seen)
            assert {e.data["jobId"] for e in seen} == set(jobs)
            others = [e for e in seen if e.event != "step-progress"]
            assert len(others) == len(jobs) * (4 + 50 * 2), "the normal reader missed events"

            body = await drain(raw)
            await raw.aclose()
        wire = parse_sse_wire(body)
        *delivered, last = wire.events
        assert (last.id, last.event, last.data["code"]) == (None, "error", "subscriber_overflow")
        assert isinstance(last.data["message"], str)
        # What it did get is a gap-free prefix of what the normal reader got (intermediate
        # progress aside, which either reader may have skipped).
        assert delivered, "the stuck client got nothing at all"
        assert_strictly_increasing(delivered)
        cutoff = delivered[-1].key
        prefix = [e for e in seen if e.key <= cutoff]
        assert [e.triple() for e in delivered if e.event != "step-progress"] == [
            e.triple() for e in prefix if e.event != "step-progress"
        ]
        assert len(prefix) < len(seen), "the stuck client was sent everything after all"


async def test_a_slow_reader_skips_only_intermediate_progress(tmp_path: Path) -> None:
    """A stuck reader of one job full of progress never overflows (progress is superseded
    in its buffer), never holds the job back, and when it reads again it gets every other
    event and the latest progress before each."""
    settings = ServerSettings.of(subscriber_buffer=16)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        assert server.runtime is not None
        broadcaster = server.runtime.broadcaster
        blocker_body = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1}}
        job = {"pipeline": "synthetic", "params": {"stages": 3, "ticks": 2000, "tickSeconds": 0}}
        with trio.fail_after(30):
            job_id = (await client.post("/api/jobs", json=job)).json()["id"]
            raw = await stuck_client(server.url, f"/api/jobs/{job_id}/events")
            async with open_sse(client, f"/api/jobs/{job_id}/events") as fast:
                fast_events = await fast.rest()
            assert fast_events[-1].event == "job-completed"
            # Other work goes on meanwhile.
            other = (await client.post("/api/jobs", json=blocker_body)).json()["id"]
            async with open_sse(client, f"/api/jobs/{other}/events") as stream:
                assert (await stream.rest())[-1].event == "job-completed"
            body = await drain(raw)
            await raw.aclose()
            await wait_until(lambda: broadcaster.subscriber_count == 0, within=2)
        slow = parse_sse_wire(body).events
        assert slow[-1].event == "job-completed", summary(slow[-3:])
        assert all(e.id is not None for e in slow), "no overflow error"
        assert_strictly_increasing(slow)
        assert [e.triple() for e in compact_progress(slow)] == [
            e.triple() for e in compact_progress(fast_events)
        ]
        assert len(slow) < 3 * 2000, "the stuck reader was sent every progress event"
