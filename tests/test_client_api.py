"""The Python client against the real server: REST, typed events, SSE, WebSocket.

Each test runs against one process and against a cluster behind a round-robin
load balancer (``service``, tests/support/service.py), but those marked
``one_process`` (or starting a server of their own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.servers import InProcessServer, run_server, write_tokens
from support.service import Service, one_process
from support.streams import Ev, read_sse, wait_until

from aura_actors.client import (
    AuraClient,
    Conflict,
    ConnectionFailed,
    Event,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobSnapshot,
    JobStatus,
    JobStatusEvent,
    NotFound,
    QueueFull,
    StepProgressEvent,
    StepStatusEvent,
    Unauthorized,
    ValidationFailed,
    WarningEvent,
)
from aura_actors.client.sync import SyncClient
from aura_actors.web import ServerSettings

QUICK: dict[str, Any] = {"stages": 2, "ticks": 3, "tickSeconds": 0}
#: A job that sits in its first tick until cancelled.
WAITING: dict[str, Any] = {"stages": 1, "ticks": 1, "tickSeconds": 600}


@pytest.fixture
def service_settings() -> ServerSettings:
    return ServerSettings.of(max_concurrent_jobs=8)


@pytest.fixture
async def client(service: Service) -> AsyncIterator[AuraClient]:
    async with AuraClient(service.url, service.token) as client:
        yield client


async def collect(client: AuraClient, job_id: str, **kwargs: Any) -> list[Event]:
    async with client.events(job_id, **kwargs) as stream:
        return [event async for event in stream]


def triples(events: list[Event]) -> list[tuple[str | None, str, dict[str, Any]]]:
    return [(event.id, str(event.type), dict(event.data)) for event in events]


def compact(events: list[Event]) -> list[Event]:
    """Each run of ``step-progress`` events reduced to its last one (what history keeps)."""
    out: list[Event] = []
    for event in events:
        if out and event.type == "step-progress" and out[-1].type == "step-progress":
            out[-1] = event
        else:
            out.append(event)
    return out


def ev_triples(events: list[Ev]) -> list[tuple[str | None, str, dict[str, Any]]]:
    return [(event.id, event.event, event.data) for event in events]


# -- REST ---------------------------------------------------------------------------------


async def test_create_get_cancel_and_list_are_typed(client: AuraClient) -> None:
    with trio.fail_after(10):
        job = await client.create_job("synthetic", WAITING)
        assert isinstance(job, JobSnapshot)
        assert job.pipeline == "synthetic"
        assert job.params == {"stages": 1, "ticks": 1, "tickSeconds": 600}
        assert job.status in {JobStatus.QUEUED, JobStatus.RUNNING}
        assert job.created_at is not None and job.created_at.tzinfo is not None
        assert job.finished_at is None and job.error is None and job.artifacts == []

        fetched = await client.get_job(job.id)
        assert fetched.id == job.id
        # Listed as Running once its stream says it runs (not at the instant of the 202).
        async with client.events(job.id) as stream:
            async for event in stream:
                if isinstance(event, JobStatusEvent) and event.status is JobStatus.RUNNING:
                    break
        page = await client.list_jobs(status="Running")
        assert [listed.id for listed in page.jobs] == [job.id]
        assert page.next_cursor is None

        cancelled = await client.cancel_job(job.id)
        assert cancelled.id == job.id
        final = await client.wait(job.id)
        assert isinstance(final, JobCancelledEvent)
        assert (await client.get_job(job.id)).status is JobStatus.CANCELED
        with pytest.raises(Conflict) as conflict:
            await client.cancel_job(job.id)
        assert conflict.value.status == 409


async def test_iter_jobs_walks_every_page_newest_first(client: AuraClient) -> None:
    with trio.fail_after(10):
        ids = [(await client.create_job("synthetic", QUICK)).id for _ in range(5)]
        listed = [job.id async for job in client.iter_jobs(page_size=2)]
        first_page = await client.list_jobs(limit=2)
    assert listed == ids[::-1]
    assert len(first_page.jobs) == 2 and first_page.next_cursor is not None


async def test_errors_are_typed(client: AuraClient) -> None:
    with trio.fail_after(10):
        with pytest.raises(NotFound) as missing:
            await client.get_job("no-such-job")
        assert (missing.value.status, missing.value.code) == (404, "job_not_found")
        with pytest.raises(NotFound):
            await client.cancel_job("no-such-job")
        with pytest.raises(ValidationFailed) as invalid:
            await client.create_job("video", {"topic": "x", "durationSeconds": 1})
        assert invalid.value.status == 422
        assert any(item.get("field") == "params.durationSeconds" for item in invalid.value.details)
        with pytest.raises(ValidationFailed):
            await client.create_job("no-such-pipeline")


@one_process("--max-queued-jobs is not counted cluster-wide yet (docs/cluster.md)")
async def test_queue_full_is_its_own_error(tmp_path: Path) -> None:
    settings = ServerSettings.of(max_concurrent_jobs=1, max_queued_jobs=0)
    async with run_server(settings, data_dir=tmp_path) as server, AuraClient(server.url) as client:
        with trio.fail_after(10):
            running = await client.create_job("synthetic", WAITING)
            with pytest.raises(QueueFull) as full:
                await client.create_job("synthetic", WAITING)
            assert full.value.status == 429
            await client.cancel_job(running.id)


@one_process("a server of its own, stopped before the request")
async def test_an_unreachable_server_is_a_connection_failure(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:
        url = server.url
    async with AuraClient(url) as client:
        with trio.fail_after(10), pytest.raises(ConnectionFailed):
            await client.get_job("x")


@one_process("tokens of its own")
async def test_auth_token_is_sent_and_a_missing_one_stops_every_stream(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"secret-a": "alice"})
    settings = ServerSettings.of(auth_tokens=tokens)
    async with run_server(settings, data_dir=tmp_path / "data") as server:
        async with AuraClient(server.url, token="secret-a") as alice:
            job = await alice.create_job("synthetic", QUICK)
            with trio.fail_after(10):
                assert isinstance(await alice.wait(job.id), JobCompletedEvent)
        async with AuraClient(server.url) as anonymous, AuraClient(server.url, "bad") as bad:
            with trio.fail_after(10):
                for who in (anonymous, bad):
                    with pytest.raises(Unauthorized):
                        await who.get_job(job.id)
                    with pytest.raises(Unauthorized):
                        await collect(who, job.id)
                    with pytest.raises(Unauthorized):
                        async with who.websocket_events(job.id) as socket:
                            [event async for event in socket]


# -- SSE ----------------------------------------------------------------------------------


async def test_events_are_typed_and_match_an_independent_sse_reader(
    service: Service, client: AuraClient
) -> None:
    with trio.fail_after(20):
        job = await client.create_job(
            "video", {"topic": "Tides", "durationSeconds": 12, "speed": 40}
        )
        events = await collect(client, job.id)  # live
        replayed = await collect(client, job.id)  # from the history, progress compacted
        async with service.client() as http:
            reference = await read_sse(http, f"/api/jobs/{job.id}/events")
    assert triples(replayed) == ev_triples(reference)
    assert compact(events) == replayed

    first, running = events[0], events[1]
    assert isinstance(first, JobStatusEvent)
    assert (first.status, first.previous_status, first.job_id) == (JobStatus.QUEUED, None, job.id)
    assert isinstance(running, JobStatusEvent) and running.previous_status is JobStatus.QUEUED
    stages = [e for e in events if isinstance(e, StepStatusEvent) and e.state == "Started"]
    assert [e.step for e in stages] == ["Script", "Voice", "Visuals", "Composition", "Rendering"]
    assert all(e.total_steps == 5 for e in stages)
    progress = [e for e in events if isinstance(e, StepProgressEvent)]
    assert progress and all(e.total_items is not None and e.current_item for e in progress)
    assert [e.progress_pct for e in progress] == sorted(e.progress_pct for e in progress)
    final = events[-1]
    assert isinstance(final, JobCompletedEvent) and final.is_terminal
    assert final.artifacts and all((service.data_dir / a.path).is_file() for a in final.artifacts)
    assert sum(event.is_terminal for event in events) == 1


async def test_failures_and_warnings_are_typed(client: AuraClient) -> None:
    params = {**QUICK, "failAt": {"stage": 1, "tick": 1}, "warnAt": {"stage": 0, "tick": 1}}
    with trio.fail_after(10):
        job = await client.create_job("synthetic", params)
        events = await collect(client, job.id)
    warnings = [event for event in events if isinstance(event, WarningEvent)]
    assert [w.step for w in warnings] == ["stage-1"]
    failed = events[-1]
    assert isinstance(failed, JobFailedEvent)
    assert failed.step == "stage-2"
    assert [e.code for e in failed.errors] == ["synthetic_failure"]
    assert failed.errors[0].remediation
    assert failed.logs


async def test_resume_after_an_id_sends_exactly_the_rest_and_after_the_end_nothing(
    client: AuraClient,
) -> None:
    with trio.fail_after(10):
        job = await client.create_job("synthetic", QUICK)
        everything = await collect(client, job.id)
        for cut in (0, 3, len(everything) - 2):
            rest = await collect(client, job.id, last_event_id=everything[cut].id)
            # Exactly the rest, but for intermediate progress: the first read followed
            # the job live, a resume replays its stored history (progress runs compacted).
            assert _compacted(rest) == _compacted(everything[cut + 1 :])
            assert rest[-1] == everything[-1]
        stream = client.events(job.id, last_event_id=everything[-1].id)
        assert [event async for event in stream] == []  # 204
        assert stream.connections == 0


async def test_an_unknown_job_stream_is_not_found_at_once(client: AuraClient) -> None:
    with trio.fail_after(2), pytest.raises(NotFound):
        await collect(client, "no-such-job")


async def test_all_events_follows_every_job(client: AuraClient) -> None:
    with trio.fail_after(10):
        start = await client.create_job("synthetic", QUICK)
        await client.wait(start.id)
        stream = client.all_events(last_event_id=(await client.get_job(start.id)).last_event_id)
        async with stream:
            first = await client.create_job("synthetic", QUICK)
            second = await client.create_job("synthetic", QUICK)
            ended: set[str] = set()
            seen: list[Event] = []
            async for event in stream:
                seen.append(event)
                if event.is_terminal and event.job_id is not None:
                    ended.add(event.job_id)
                if ended == {first.id, second.id}:
                    break
    assert {event.job_id for event in seen} == {first.id, second.id}
    keys = [event.key for event in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_all_events_without_an_id_starts_at_connection(client: AuraClient) -> None:
    with trio.fail_after(10):
        before = await client.create_job("synthetic", QUICK)
        await client.wait(before.id)
        stream = client.all_events()
        got: list[Event] = []

        async def read_one() -> None:
            got.append(await anext(stream))

        # The first event comes from the job created once the stream is open.
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(read_one)
            await wait_until(lambda: stream.connections == 1)
            after = await client.create_job("synthetic", QUICK)
    assert got[0].job_id == after.id


@one_process("counts the runtime's subscribers")
async def test_cancelling_the_caller_closes_the_stream_on_the_server(
    process_server: InProcessServer, client: AuraClient
) -> None:
    server = process_server
    assert server.runtime is not None
    runtime = server.runtime
    with trio.fail_after(10):
        job = await client.create_job("synthetic", WAITING)
        with trio.CancelScope() as scope:
            async with client.events(job.id) as stream:
                async for event in stream:
                    if isinstance(event, StepStatusEvent):
                        assert runtime.broadcaster.subscriber_count == 1
                        scope.cancel()
        await wait_until(lambda: runtime.broadcaster.subscriber_count == 0)
        await client.cancel_job(job.id)


# -- WebSocket ----------------------------------------------------------------------------


async def test_websocket_carries_the_same_events_as_sse(client: AuraClient) -> None:
    with trio.fail_after(10):
        job = await client.create_job("synthetic", QUICK)
        async with client.websocket_events(job.id) as socket:
            over_ws = [event async for event in socket]
        over_sse = await collect(client, job.id)
    # The same events, but for intermediate progress: the WebSocket followed the job
    # live, the SSE read replays its stored history, where progress runs are compacted.
    assert _compacted(over_ws) == _compacted(over_sse)
    assert isinstance(over_ws[-1], JobCompletedEvent)


def _compacted(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if out and isinstance(event, StepProgressEvent) and isinstance(out[-1], StepProgressEvent):
            out[-1] = event
        else:
            out.append(event)
    return out


async def test_websocket_cancel_and_resume(client: AuraClient) -> None:
    with trio.fail_after(10):
        job = await client.create_job("synthetic", WAITING)
        async with client.websocket_events(job.id) as socket:
            events: list[Event] = []
            async for event in socket:
                events.append(event)
                if isinstance(event, StepStatusEvent):
                    await socket.cancel()
        assert isinstance(events[-1], JobCancelledEvent)
        assert events[-1].step == "stage-1"
        assert socket.last_event_id == events[-1].id
        # Resuming after the second event gives the rest, nothing before.
        async with client.websocket_events(job.id, last_event_id=events[1].id) as socket:
            rest = [event async for event in socket]
        assert rest == events[2:]
        # A cancel sent while the socket is still opening waits for it.
        waiting = await client.create_job("synthetic", WAITING)
        async with client.websocket_events(waiting.id) as socket:
            await socket.cancel()
            assert socket.connections == 1
            ended = [event async for event in socket]
        assert isinstance(ended[-1], JobCancelledEvent)


async def test_websocket_of_an_unknown_job_is_not_found(client: AuraClient) -> None:
    with trio.fail_after(5), pytest.raises(NotFound):
        async with client.websocket_events("no-such-job") as socket:
            [event async for event in socket]


# -- the sync facade ----------------------------------------------------------------------


async def test_sync_facade(service: Service) -> None:
    def script() -> tuple[JobSnapshot, Event | None, list[str]]:
        client = SyncClient(service.url, service.token)
        job = client.create_job("synthetic", QUICK)
        seen: list[str] = []
        final = client.follow(job.id, on_event=lambda event: seen.append(str(event.type)))
        return client.get_job(job.id), final, seen

    with trio.fail_after(20):
        snapshot, final, seen = await trio.to_thread.run_sync(script)
    assert snapshot.status is JobStatus.DONE
    assert isinstance(final, JobCompletedEvent)
    assert seen[0] == "job-status" and seen[-1] == "job-completed"
