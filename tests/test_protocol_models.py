"""The protocol models: the one definition of the wire, checked against what the server sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import trio
from support.contract import QUICK_JOB, WAITING_JOB
from support.servers import InProcessServer, run_server
from support.streams import Ev, create_job, read_sse
from trio_websocket import ConnectionClosed, open_websocket_url

from aura_actors import protocol, runtime
from aura_actors.protocol import (
    EVENT_DATA_MODELS,
    CloseCode,
    CreateJobRequest,
    ErrorBody,
    ErrorCode,
    ErrorData,
    EventMessage,
    EventType,
    Health,
    HealthJobs,
    HealthNode,
    JobList,
    JobSnapshot,
    JobStatus,
    StepProgressData,
    dump_json,
    dump_wire,
    parse_event_data,
)
from aura_actors.web import ServerSettings

#: One job of every ending, with a warning on the way: between them every event type.
WARN_THEN_FAIL = {
    "pipeline": "synthetic",
    "params": {
        "stages": 2,
        "ticks": 3,
        "tickSeconds": 0,
        "warnAt": {"stage": 0, "tick": 1},
        "failAt": {"stage": 1, "tick": 2},
    },
}


def test_the_runtime_uses_the_protocol_definitions() -> None:
    assert runtime.EventId is protocol.EventId
    assert runtime.EventType is protocol.EventType
    assert runtime.JobStatus is protocol.JobStatus
    assert runtime.check_transition is protocol.check_transition
    assert runtime.ALLOWED_TRANSITIONS is protocol.ALLOWED_TRANSITIONS


def test_every_event_type_has_a_data_model() -> None:
    assert set(EVENT_DATA_MODELS) == set(EventType)
    assert {t for t in EventType if t.is_terminal} == {
        EventType.JOB_COMPLETED,
        EventType.JOB_FAILED,
        EventType.JOB_CANCELLED,
    }


def test_codes_are_the_contracts() -> None:
    assert CloseCode.NORMAL == 1000 and CloseCode.NOT_FOUND == 4404
    assert CloseCode.UNAUTHORIZED == 4401 and CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.NORMAL.is_final and CloseCode.NOT_FOUND.is_final
    assert not CloseCode.GOING_AWAY.is_final and not CloseCode.TRY_AGAIN_LATER.is_final
    for code in ("interrupted", "worker_lost", "timeout", "stalled", "storage_unavailable"):
        assert ErrorCode(code) == code


PROGRESS = {
    "job_id": "j1",
    "step": "Voice",
    "progress_pct": 23.0,
    "step_progress_pct": 40.0,
    "message": "voicing scene 2 of 5",
    "eta_seconds": 9.3,
    "current_item": 2,
    "total_items": 5,
}


def test_build_is_model_construct_without_the_cost() -> None:
    built = StepProgressData.build(**PROGRESS)
    assert built == StepProgressData.model_construct(**PROGRESS) == StepProgressData(**PROGRESS)
    assert dump_json(built) == json.dumps(
        dump_wire(StepProgressData(**PROGRESS)), separators=(",", ":")
    )
    assert json.loads(dump_json(built))["progressPct"] == 23.0
    assert built.model_fields_set == set(PROGRESS)


def test_build_fills_defaults_and_refuses_missing_or_unknown_fields() -> None:
    assert ErrorData.build(code="x", message="m").job_id is None
    assert CreateJobRequest.build(pipeline="video").params == {}
    with pytest.raises(TypeError, match="missing"):
        StepProgressData.build(job_id="j")
    with pytest.raises(TypeError, match="unknown"):
        StepProgressData.build(**PROGRESS, extra=1)


def test_a_stream_error_has_no_job_id_key_unless_a_job_applies() -> None:
    assert json.loads(dump_json(ErrorData.build(code="c", message="m"))) == {
        "code": "c",
        "message": "m",
    }
    with_job = dump_wire(ErrorData(job_id="j", code="c", message="m"))
    assert with_job == {"jobId": "j", "code": "c", "message": "m"}


def test_health_has_a_node_key_only_on_a_clusters_node() -> None:
    jobs = HealthJobs(running=3, queued=5, total=9)
    alone = dump_wire(Health(status="ok", jobs=jobs))
    assert "node" not in alone and alone["jobs"] == {"running": 3, "queued": 5, "total": 9}
    node = HealthNode(name="api-1", role="api", running=0, queued=0)
    clustered = dump_wire(Health(status="ok", jobs=jobs, node=node))
    assert clustered["node"] == {"name": "api-1", "role": "api", "running": 0, "queued": 0}
    assert Health.model_validate(clustered).node == node
    # What the server sends always has the other keys; ``node`` only in a cluster.
    required = Health.model_json_schema(mode="serialization")["required"]
    assert required == ["status", "version", "storage", "jobs", "subscribers"]


def test_times_go_out_as_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 24, 9, 42, 55, 123456, tzinfo=timezone(timedelta(hours=1)))
    snapshot = JobSnapshot.model_validate(
        {
            "id": "j",
            "pipeline": "video",
            "params": {},
            "status": "Queued",
            "stage": None,
            "progressPct": 0,
            "message": "",
            "etaSeconds": None,
            "createdAt": moment,
            "startedAt": "2026-11-24T08:42:55",
            "finishedAt": None,
            "artifacts": [],
            "error": None,
            "lastEventId": None,
        }
    )
    wire = dump_wire(snapshot)
    assert wire["createdAt"] == "2026-11-24T08:42:55.123Z"
    assert snapshot.started_at == datetime(2026, 11, 24, 8, 42, 55, tzinfo=UTC)
    assert (wire["attempt"], wire["retryOf"], wire["node"]) == (1, None, None)


@pytest.mark.parametrize(
    "body",
    [{}, {"pipeline": ""}, {"pipeline": "video", "params": []}, {"pipeline": "v", "x": 1}],
)
def test_a_create_request_is_validated(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        CreateJobRequest.model_validate(body)


def test_malformed_event_data_and_ids_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_event_data("job-status", {"jobId": "j", "status": "Sleeping"})
    with pytest.raises(pydantic.ValidationError):
        EventMessage.model_validate({"id": "01-2", "event": "warning", "data": {}})
    with pytest.raises(ValueError, match="no-such-type"):
        parse_event_data("no-such-type", "{}")


# -- against the server as it is -----------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with run_server(ServerSettings.of(max_concurrent_jobs=4), data_dir=tmp_path) as server:
        yield server


@pytest.fixture
async def client(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


def assert_snapshot_round_trips(snapshot: dict[str, Any]) -> JobSnapshot:
    model = JobSnapshot.model_validate(snapshot)
    assert dump_wire(model) == snapshot
    return model


def assert_event_round_trips(event: Ev) -> None:
    model = parse_event_data(event.event, event.data)
    assert type(model) is EVENT_DATA_MODELS[EventType(event.event)]
    assert dump_wire(model) == event.data, event
    assert json.loads(dump_json(model)) == event.data


async def test_snapshots_and_events_of_the_server_round_trip(
    client: httpx.AsyncClient,
) -> None:
    seen: set[str] = set()
    with trio.fail_after(20):
        waiting = await create_job(client, WAITING_JOB)
        for body in (QUICK_JOB, WARN_THEN_FAIL):
            job_id = await create_job(client, body)
            for event in await read_sse(client, f"/api/jobs/{job_id}/events"):
                assert_event_round_trips(event)
                seen.add(event.event)
            assert_snapshot_round_trips((await client.get(f"/api/jobs/{job_id}")).json())
        cancelled = await client.post(f"/api/jobs/{waiting}/cancel")
        assert_snapshot_round_trips(cancelled.json())
        for event in await read_sse(client, f"/api/jobs/{waiting}/events"):
            assert_event_round_trips(event)
            seen.add(event.event)
        listing = (await client.get("/api/jobs", params={"limit": 2})).json()
    assert seen == {t.value for t in EventType} - {"error"}
    jobs = JobList.model_validate(listing)
    assert dump_wire(jobs)["nextCursor"] == listing["nextCursor"]
    assert [job.id for job in jobs.jobs] == [job["id"] for job in listing["jobs"]]
    failed = assert_snapshot_round_trips((await client.get(f"/api/jobs/{job_id}")).json())
    assert failed.status is JobStatus.FAILED and failed.error is not None


async def test_error_bodies_and_health_round_trip(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/jobs/nope"),
        await client.post("/api/jobs", json={"pipeline": "video", "params": {"topic": ""}}),
        await client.post("/api/jobs", content=b"{"),
    ):
        body = response.json()
        assert dump_wire(ErrorBody.model_validate(body)) == body
        assert ErrorCode(body["error"]["code"])
    health = (await client.get("/api/health")).json()
    assert dump_wire(Health.model_validate(health)) == health


async def test_websocket_frames_parse_as_event_messages(
    server: InProcessServer, client: httpx.AsyncClient
) -> None:
    job_id = await create_job(client, QUICK_JOB)
    url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
    frames: list[dict[str, Any]] = []
    with trio.fail_after(10):
        async with open_websocket_url(url) as ws:
            try:
                while True:
                    frames.append(json.loads(await ws.get_message()))
            except ConnectionClosed as closed:
                assert closed.reason.code == CloseCode.NORMAL
    assert frames and frames[-1]["event"] == "job-completed"
    for frame in frames:
        message = EventMessage.model_validate(frame)
        assert dump_wire(message) == frame
        assert dump_wire(parse_event_data(message.event, message.data)) == frame["data"]


def test_build_writes_the_fields_in_their_declared_order_whatever_the_order_given() -> None:
    backwards = dict(reversed(PROGRESS.items()))
    assert dump_json(StepProgressData.build(**backwards)) == dump_json(
        StepProgressData.build(**PROGRESS)
    )
    assert list(json.loads(dump_json(ErrorData.build(message="m", code="c", job_id="j")))) == [
        "jobId",
        "code",
        "message",
    ]
