"""Event payloads and the job snapshot: exactly the contract's keys, camelCase."""

from __future__ import annotations

import json
from datetime import datetime

import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, job_events
from support.contract import EVENT_DATA_KEYS, SNAPSHOT_KEYS

from aura_actors.runtime import (
    Event,
    EventId,
    EventType,
    JobStatus,
    Stage,
    StageContext,
    stream_error,
)

DATA_KEYS = {EventType(name): keys for name, keys in EVENT_DATA_KEYS.items()}


def _artifact_pipeline() -> FnPipeline:
    async def writes(ctx: StageContext) -> None:
        path = ctx.artifact_dir / "out.txt"
        path.write_text("hello\n")
        ctx.add_artifact("out.txt", path)
        await ctx.report(1.0)

    return FnPipeline("writes", lambda p: [Stage("Write", writes)])


async def test_every_event_type_has_exactly_the_contract_keys(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(_artifact_pipeline(), max_concurrent_jobs=1) as rt:
        done = await rt.submit(
            "synthetic", {"stages": 2, "ticks": 3, "warnAt": {"stage": 0, "tick": 1}}
        )
        queued = await rt.submit("synthetic")  # waits behind `done`, then is cancelled
        await rt.cancel(queued.id)
        events = await job_events(rt, done.id)
        failed = await rt.submit("synthetic", {"failAt": {"stage": 1, "tick": 0}})
        events += await job_events(rt, failed.id)
        long = await rt.submit("synthetic", {"ticks": 1000})
        with await rt.subscribe_job(long.id) as sub:
            running = [await sub.receive() for _ in range(4)]
            await rt.cancel(long.id)
            events += running + [e async for e in sub]
        events += await job_events(rt, queued.id)
        artifact_job = await rt.submit("writes")
        events += await job_events(rt, artifact_job.id)
    seen = {event.type for event in events}
    assert seen == set(DATA_KEYS), f"not every type was produced: {set(DATA_KEYS) - seen}"
    for event in events:
        assert event.id is not None
        assert event.job_id is not None
        assert event.data["jobId"] == event.job_id
        keys = set(event.data) - {"jobId"}
        assert keys == DATA_KEYS[event.type], (event.type, event.data)
        json.loads(event.data_json)  # one line of JSON
        assert "\n" not in event.data_json
        message = event.to_message()
        assert message == {"id": str(event.id), "event": event.type.value, "data": event.data}
    for event in events:
        data = event.data
        match event.type:
            case EventType.JOB_STATUS:
                assert data["status"] in {s.value for s in JobStatus}
                assert data["previousStatus"] in {None, *(s.value for s in JobStatus)}
                assert isinstance(data["progressPct"], float)
            case EventType.STEP_STATUS:
                assert data["state"] in {"Started", "Completed"}
                assert isinstance(data["stepIndex"], int) and isinstance(data["totalSteps"], int)
            case EventType.STEP_PROGRESS:
                assert 0.0 <= data["progressPct"] <= 100.0
                assert 0.0 <= data["stepProgressPct"] <= 100.0
            case EventType.JOB_FAILED:
                assert all(set(e) == {"code", "message", "remediation"} for e in data["errors"])
                assert isinstance(data["logs"], list)
            case EventType.JOB_COMPLETED:
                for artifact in data["artifacts"]:
                    assert set(artifact) == {"name", "path", "sizeBytes", "mimeType"}
    completed = [e for e in events if e.type is EventType.JOB_COMPLETED]
    assert any(e.data["artifacts"] for e in completed)
    firsts = [e for e in events if e.type is EventType.JOB_STATUS and e.data["status"] == "Queued"]
    assert all(e.data["previousStatus"] is None and e.data["stage"] is None for e in firsts)


def test_stream_error_payload() -> None:
    anonymous = stream_error("subscriber_overflow", "too slow")
    assert anonymous.id is None and anonymous.type is EventType.ERROR
    assert anonymous.data == {"code": "subscriber_overflow", "message": "too slow"}
    about_job = stream_error("history_truncated", "gone", "job-1")
    assert about_job.data == {"code": "history_truncated", "message": "gone", "jobId": "job-1"}
    assert about_job.to_message() == {"id": None, "event": "error", "data": about_job.data}


def _iso(text: object) -> datetime:
    assert isinstance(text, str) and text.endswith("Z"), text
    return datetime.fromisoformat(text)


async def test_snapshot_keys_and_values_through_a_jobs_life(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(_artifact_pipeline(), max_concurrent_jobs=1) as rt:
        running = await rt.submit("synthetic", {"ticks": 4, "tickSeconds": 1})
        queued = await rt.submit("writes")
        snapshot = queued.snapshot()
        assert set(snapshot) == SNAPSHOT_KEYS
        assert snapshot["status"] == "Queued"
        assert snapshot["pipeline"] == "writes" and snapshot["params"] == {}
        assert snapshot["stage"] is None and snapshot["progressPct"] == 0.0
        assert snapshot["etaSeconds"] is None and snapshot["error"] is None
        assert snapshot["startedAt"] is None and snapshot["finishedAt"] is None
        assert snapshot["artifacts"] == []
        _iso(snapshot["createdAt"])
        assert EventId.parse(snapshot["lastEventId"])
        assert snapshot["attempt"] == 1
        assert snapshot["retryOf"] is None and snapshot["node"] is None
        stored_queued = await rt.storage.get(queued.id)
        assert stored_queued is not None
        assert stored_queued.snapshot() == snapshot, "submit answers what was stored"
        with await rt.subscribe_job(running.id) as sub:
            async for event in sub:
                if event.type is EventType.STEP_PROGRESS and event.data["currentItem"] == 3:
                    break
        live = (await rt.get(running.id)).snapshot()
        assert set(live) == SNAPSHOT_KEYS
        assert live["status"] == "Running" and live["stage"] == "stage-1"
        assert live["params"] == {"stages": 3, "ticks": 4, "tickSeconds": 1}
        assert 0.0 < live["progressPct"] < 100.0
        assert live["message"] == "tick 3/4"
        assert live["etaSeconds"] is not None and live["etaSeconds"] > 0
        assert _iso(live["startedAt"]) >= _iso(live["createdAt"])
        assert live["lastEventId"] == event.id_text
        events: list[Event] = await job_events(rt, queued.id)
        final = (await rt.get(queued.id)).snapshot()
        await trio.testing.wait_all_tasks_blocked()
        stored = await rt.storage.get(queued.id)
        assert stored is not None and stored.snapshot() == final
    assert set(final) == SNAPSHOT_KEYS
    assert final["status"] == "Done" and final["progressPct"] == 100.0
    assert final["stage"] == "Write"
    assert _iso(final["finishedAt"]) >= _iso(final["startedAt"])
    assert final["artifacts"] == events[-1].data["artifacts"]
    assert final["artifacts"][0]["path"] == f"artifacts/{queued.id}/out.txt"
    assert final["artifacts"][0]["mimeType"] == "text/plain"
    assert final["artifacts"][0]["sizeBytes"] == 6
    assert final["lastEventId"] == events[-1].id_text
    json.dumps(final)
